//! `verify` of a volume workload: re-read every target claim no workload mounts.

use std::collections::BTreeMap;

use connectors::kube::volumes::Scheduling;
use plans::Stage;

use super::super::{StepOutput, client, load, save, say, started};
use super::movers::{movers, order};
use super::{
    PACKED, SCHEDULING, VERIFIED, VolumeStepError, compare, manifests_err, packed_totals, placed,
    progress_lines, record_checks, stopped, verified_summary,
};
use crate::engine::Context;
use crate::engine::steps::{StepResult, missing_workload};
use crate::progress::StepSummary;
use crate::volumes::coordinator::run_movers;
use crate::volumes::mover::MoverReport;
use crate::volumes::order::MoverTask;

/// `verify` of a volume workload: re-read every target claim.
pub(crate) async fn verify(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
) -> StepOutput {
    let Some((w, v)) = ctx.plan.volume_workload(name) else {
        return Ok((StepSummary::default(), missing_workload(name)));
    };
    let target_ns = w.target_namespace().to_owned();
    started(
        ctx,
        stage,
        step_index,
        "verify",
        name,
        format!("{name}: re-read the claims in {}/{target_ns}", w.to),
    );
    let packed: Vec<MoverReport> = load(ctx, name, PACKED)?.unwrap_or_default();
    let result = async {
        let tgt = client(ctx, &w.to)
            .await
            .map_err(|e| VolumeStepError::Manifests {
                what: format!("cluster {}", w.to),
                source: Box::new(e),
            })?;
        // A claim the target workload mounts is being written: re-reading it would find
        // the workload's changes, and a ReadWriteOnce claim may not even attach. Its
        // re-read is the deploy's, made before the workload started.
        let before: Vec<MoverReport> = load(ctx, name, VERIFIED)?.unwrap_or_default();
        let mut names = Vec::new();
        let mut kept = Vec::new();
        for p in &packed {
            let users = connectors::kube::volumes::claim_users(tgt.clone(), &target_ns, &p.claim)
                .await
                .map_err(manifests_err(format!("the pods of {}/{target_ns}", w.to)))?;
            if users.is_empty() {
                names.push(p.claim.clone());
                continue;
            }
            match before.iter().find(|b| b.claim == p.claim && b.root == p.root) {
                Some(b) => {
                    say(
                        ctx,
                        stage,
                        format!(
                            "{name}: claim {} is in use by {}: not re-read now; the deploy re-read it before the workload started (root {})",
                            p.claim,
                            users.join(", "),
                            b.root
                        ),
                    );
                    kept.push(b.clone());
                }
                None => {
                    return Err(VolumeStepError::Claim(format!(
                        "claim {} is in use by {} and was never re-read: stop the workload and run the verify again",
                        p.claim,
                        users.join(", ")
                    )));
                }
            }
        }
        if names.is_empty() {
            return Ok(kept);
        }
        let mut movers = movers(
            ctx,
            stage,
            step_index,
            name,
            v,
            tgt,
            &target_ns,
            MoverTask::Verify,
        )
        .await?;
        let totals = packed_totals(&packed, &names);
        movers.progress = Some(progress_lines(
            ctx, stage, name, "re-read", &names, &totals,
        ));
        let order = order(ctx, name, names);
        let scheduling: BTreeMap<String, Scheduling> =
            load(ctx, name, SCHEDULING)?.unwrap_or_default();
        let reports =
            run_movers(&movers, &order, MoverTask::Verify, &placed(&scheduling)).await?;
        for report in &reports {
            compare(&packed, report, "re-read")?;
        }
        record_checks(ctx, stage, name, "reread", &reports)?;
        let mut reports = reports;
        reports.extend(kept);
        Ok::<_, VolumeStepError>(reports)
    }
    .await;
    match result {
        Ok(reports) => {
            save(ctx, name, VERIFIED, &reports)?;
            say(
                ctx,
                stage,
                format!(
                    "{name}: {} claim(s) re-read at {}: every root equals the packed one",
                    reports.len(),
                    w.to
                ),
            );
            Ok((verified_summary(&packed), StepResult::Succeeded))
        }
        Err(e) => stopped(ctx, stage, e),
    }
}
