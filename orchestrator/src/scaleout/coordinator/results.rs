//! After the workers: every shard's result merged in key order, the step's summary
//! and evidence summed from them, and each shard's standing for the record.

use std::sync::Arc;

use object_store::ObjectStore;
use plans::Stage;

use super::fanout::{ShardState, ShardStatus};
use crate::engine::{Context, EngineError};
use crate::progress::{Event, ShardEvidence, StepSummary};
use crate::scaleout::exchange;
use crate::scaleout::executor::{Ends, ShardEnd};
use crate::scaleout::merge::{Refused, merge_shard, read_result};
use crate::scaleout::order::{Layout, WorkOrder};
use crate::scaleout::result::ShardResult;

/// What the shards came to.
pub struct Gathered {
    /// The step's counts and its shards' evidence.
    pub summary: StepSummary,
    /// One line per failed shard (redacted).
    pub failures: Vec<String>,
    /// Some shard did not finish (the run was stopped).
    pub interrupted: bool,
    /// Rows merged at all (the workload's rows changed).
    pub merged: bool,
}

/// Merge each shard's result, in key order, and sum them up. `redact` removes every
/// store's secrets from what a worker reported.
pub async fn gather(
    ctx: &Context,
    stage: &Stage,
    (store, layout): (&Arc<dyn ObjectStore>, &Layout),
    (order, order_digest): (&WorkOrder, &str),
    ends: &Ends,
    statuses: &mut [ShardStatus],
    redact: &dyn Fn(&str) -> String,
) -> Result<Gathered, EngineError> {
    let name = order.workload.as_str();
    let mut out = Gathered {
        summary: StepSummary::default(),
        failures: Vec::new(),
        interrupted: ctx.cancel.is_cancelled(),
        merged: false,
    };
    let mut evidence = Vec::new();
    for (status, shard) in statuses.iter_mut().zip(&order.shards) {
        let place = format!("shard {} {}", shard.index, shard.range.describe());
        let mut fail = |status: &mut ShardStatus, why: String| {
            status.status = ShardState::Failed;
            status.error = Some(why.clone());
            out.failures.push(format!("{place}: {why}"));
        };
        let Some(result) = read_result(store, layout, shard.index).await? else {
            match ends.get(&shard.index) {
                Some(ShardEnd::Failed { detail, .. }) => fail(status, redact(detail)),
                Some(ShardEnd::Finished) => fail(
                    status,
                    "its worker ended successfully but left no result".into(),
                ),
                Some(ShardEnd::Interrupted) | None => {
                    status.status = ShardState::Interrupted;
                    out.interrupted = true;
                }
            }
            continue;
        };
        let merged = merge_shard(
            store,
            layout,
            &ctx.db,
            name,
            (order.task, order_digest, shard),
            &result,
        )
        .await?;
        if let Err(refused) = merged {
            // Set aside, so the rerun runs the shard again instead of refusing it forever.
            exchange::remove(store, &layout.result(shard.index)).await?;
            fail(
                status,
                format!(
                    "its result was refused and set aside ({}); a rerun runs it again",
                    redact(&refused.to_string())
                ),
            );
            if matches!(refused, Refused::Corrupt(_) | Refused::ChangedSource(_)) {
                tracing::warn!("{name}: {place}: {refused}");
            }
            continue;
        }
        out.merged = true;
        add_report(ctx, stage, name, &result, &mut out.summary, redact);
        status.objects = result.rows;
        status.bytes = result
            .copy
            .as_ref()
            .map(|r| r.bytes)
            .or(result.verify.as_ref().map(|r| r.bytes))
            .unwrap_or(0);
        if result.failed() > 0 {
            let first = first_failure(&result)
                .map(|(k, why)| format!(" (first: {k:?}: {})", redact(&why)))
                .unwrap_or_default();
            fail(
                status,
                format!("{} object(s) failed{first}", result.failed()),
            );
        } else {
            status.status = ShardState::Done;
            status.error = None;
        }
        evidence.push(ShardEvidence {
            index: shard.index,
            after: shard.range.after.clone(),
            through: shard.range.through.clone(),
            rows: result.rows,
            result_digest: format!("sha256:{}", result.rows_digest),
        });
    }
    out.summary.shards = Some(evidence);
    Ok(out)
}

/// A shard's first failed object and why, for the step's message.
fn first_failure(result: &ShardResult) -> Option<(String, String)> {
    let copy = result
        .copy
        .as_ref()
        .and_then(|r| r.failures.first().cloned());
    copy.or_else(|| {
        result
            .verify
            .as_ref()
            .and_then(|r| r.problems.first())
            .map(|p| (p.key.clone(), p.detail.clone()))
    })
}

/// Add a shard's report to the step's summary and emit its problems.
fn add_report(
    ctx: &Context,
    stage: &Stage,
    name: &str,
    result: &ShardResult,
    summary: &mut StepSummary,
    redact: &dyn Fn(&str) -> String,
) {
    let problem = |key: &str, problem: String, detail: &str| Event::ObjectProblem {
        stage: stage.name.clone(),
        workload: name.to_owned(),
        key: key.to_owned(),
        problem,
        detail: redact(detail),
    };
    if let Some(r) = &result.copy {
        summary.copied += r.copied;
        summary.skipped += r.skipped;
        summary.failed += r.failed;
        summary.pruned += r.pruned;
        summary.bytes += r.bytes;
        if r.adopted > 0 {
            *summary.adopted.get_or_insert(0) += r.adopted;
        }
        if r.prune_failed > 0 {
            *summary.prune_failed.get_or_insert(0) += r.prune_failed;
        }
        for (key, reason) in &r.failures {
            ctx.emit(problem(key, "copy-failed".into(), reason));
        }
    }
    if let Some(r) = &result.verify {
        summary.verified += r.verified;
        summary.failed += r.failed();
        summary.bytes += r.bytes;
        for p in &r.problems {
            let kind = serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            ctx.emit(problem(&p.key, kind, &p.detail));
        }
    }
}
