//! `deploy`'s part for a volume workload: the target's claims checked against what
//! was packed, then created, restored, re-read and compared before any workload starts.

use std::collections::BTreeMap;

use connectors::kube::volumes::{
    PlannedClaim, Scheduling, claim_status, default_storage_class, planned_claims,
};
use connectors::kube::{ApplyOptions, Resource, apply};
use plans::{KubernetesWorkload, Stage, Volumes};

use super::super::{load, save, say, with_causes};
use super::movers::{movers, order};
use super::{
    PACKED, PACKED_UNDER, RESTORED, SCHEDULING, VERIFIED, VolumeStepError, compare, frozen_digest,
    manifests_err, packed_totals, placed, progress_lines,
};
use crate::engine::Context;
use crate::volumes::coordinator::{Placement, run_movers};
use crate::volumes::mover::MoverReport;
use crate::volumes::order::MoverTask;

/// The claims the target gets for `transformed`, checked against what was packed:
/// every claim has staged data and room for it. Returns the template claims to add to
/// the applied resources (explicit claims are among them already).
pub(crate) fn target_claims(
    ctx: &Context,
    name: &str,
    transformed: &[Resource],
) -> Result<Vec<PlannedClaim>, VolumeStepError> {
    let packed: Vec<MoverReport> = load(ctx, name, PACKED)?.unwrap_or_default();
    let under: Option<String> = load(ctx, name, PACKED_UNDER)?;
    let now = frozen_digest(ctx, name)?;
    if now.is_empty() || under.as_deref() != Some(now.as_str()) {
        return Err(VolumeStepError::StaleCopy(format!(
            "the last `copy: {name}` did not run under the source's current freeze (the source ran since, or was put back in service by a rollback): what it wrote since would stay behind; run `{{ freeze: {name} }}` and `{{ copy: {name} }}` again before the deploy"
        )));
    }
    let claims = planned_claims(transformed).map_err(manifests_err("the target's claims"))?;
    for claim in &claims {
        let Some(report) = packed.iter().find(|r| r.claim == claim.name) else {
            return Err(VolumeStepError::Claim(format!(
                "claim {} has no staged data: the last `copy: {name}` did not pack it (were replicas added since?); run the copy again",
                claim.name
            )));
        };
        let needed = report.packed.as_ref().map_or(0, |p| p.bytes);
        if let Some(request) = claim.request
            && request < needed
        {
            return Err(VolumeStepError::Claim(format!(
                "claim {}/{} requests {request} bytes, its staged data is {needed}: raise its storage request (transform.jsonPatches) before the deploy",
                claim.resource.namespace, claim.name
            )));
        }
    }
    Ok(claims)
}

/// `deploy`'s part: create the claims, restore each, re-read each, compare each root
/// with the packed one; the restore and re-read reports, and whether this run made
/// them (`false`: carried over from an earlier one, whose checks keep naming it). The
/// workloads are applied by the caller only after this succeeded.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn restore_claims(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
    w: &KubernetesWorkload,
    v: &Volumes,
    tgt: &kube::Client,
    claims: &[PlannedClaim],
) -> Result<(Vec<MoverReport>, Vec<MoverReport>, bool), VolumeStepError> {
    if claims.is_empty() {
        return Ok((Vec::new(), Vec::new(), true));
    }
    let target_ns = claims[0].resource.namespace.clone();
    let packed: Vec<MoverReport> = load(ctx, name, PACKED)?.unwrap_or_default();
    // A claim a workload already mounts is never written into: a resumed deploy whose
    // restore matched (and was re-read) leaves it alone, anything else is refused.
    let mut in_use = Vec::new();
    for claim in claims {
        let users = connectors::kube::volumes::claim_users(tgt.clone(), &target_ns, &claim.name)
            .await
            .map_err(manifests_err(format!("the pods of {}/{target_ns}", w.to)))?;
        if !users.is_empty() {
            in_use.push(format!("{} (by {})", claim.name, users.join(", ")));
        }
    }
    if !in_use.is_empty() {
        let verified: Vec<MoverReport> = load(ctx, name, VERIFIED)?.unwrap_or_default();
        let all_checked = claims.iter().all(|c| {
            let root = packed.iter().find(|p| p.claim == c.name).map(|p| &p.root);
            verified
                .iter()
                .any(|v| v.claim == c.name && Some(&v.root) == root)
        });
        if all_checked {
            say(
                ctx,
                stage,
                format!(
                    "{name}: claims already restored and re-read, now in use at {}: {}; not restored again",
                    w.to,
                    in_use.join("; ")
                ),
            );
            return Ok((
                load(ctx, name, RESTORED)?.unwrap_or_default(),
                verified,
                false,
            ));
        }
        return Err(VolumeStepError::Claim(format!(
            "claims in use at {}/{target_ns}: {}: relocate does not restore into a claim a workload may be writing; stop it (`relocate rollback`, or scale it to 0) and run again",
            w.to,
            in_use.join("; ")
        )));
    }
    check_default_class(w, tgt, claims).await?;
    let resources: Vec<Resource> = claims.iter().map(|c| c.resource.clone()).collect();
    apply(tgt, &resources, ApplyOptions::from(w))
        .await
        .map_err(manifests_err(format!("creating the claims at {}", w.to)))?;
    let names: Vec<String> = claims.iter().map(|c| c.name.clone()).collect();
    say(
        ctx,
        stage,
        format!(
            "{name}: restoring {} claim(s) ({}) with mover Jobs in {}/{target_ns}",
            names.len(),
            names.join(", "),
            w.to
        ),
    );
    let mut restorers = movers(
        ctx,
        stage,
        step_index,
        name,
        v,
        tgt.clone(),
        &target_ns,
        MoverTask::Restore,
    )
    .await?;
    let totals = packed_totals(&packed, &names);
    restorers.progress = Some(progress_lines(
        ctx, stage, name, "restored", &names, &totals,
    ));
    let order = order(ctx, name, names.clone());
    // Each restore mover binds its claim (the first consumer): where the workload may
    // run, and next to the claims one pod mounts with it.
    let scheduling: BTreeMap<String, Scheduling> = claims
        .iter()
        .map(|c| (c.name.clone(), c.scheduling.clone()))
        .collect();
    save(ctx, name, SCHEDULING, &scheduling)?;
    let mut placements: BTreeMap<String, Placement> = claims
        .iter()
        .map(|c| {
            let placement = Placement {
                scheduling: c.scheduling.clone(),
                colocated_with: c.colocated_with.clone(),
                ..Placement::default()
            };
            (c.name.clone(), placement)
        })
        .collect();
    pin_to_provisioned(tgt, &target_ns, claims, &mut placements).await?;
    let reports = run_movers(&restorers, &order, MoverTask::Restore, &placements).await?;
    for report in &reports {
        compare(&packed, report, "restored")?;
        if let Some(r) = &report.restored {
            ownership_restored(r, v)?;
        }
        let status = claim_status(tgt.clone(), &target_ns, &report.claim)
            .await
            .map_err(|e| {
                VolumeStepError::Claim(format!(
                    "claim {target_ns}/{}: {}",
                    report.claim,
                    with_causes(&e)
                ))
            })?;
        status
            .accepts(&target_ns, &report.claim, 0)
            .map_err(|e| VolumeStepError::Claim(e.to_string()))?;
        if let Some(r) = &report.restored {
            say(
                ctx,
                stage,
                format!(
                    "{name}: claim {} restored and re-hashed: {} file(s) written ({} byte(s)), {} already there, {}, root {}",
                    r.claim,
                    r.files_written,
                    r.bytes_written,
                    r.files_present,
                    removed_line(r),
                    r.root
                ),
            );
        }
    }
    // The restore made each claim equal to its manifest (writing what differs, removing
    // what it does not name); the re-read hashes the whole tree again with a fresh
    // mover, before any workload starts on it.
    let mut rereaders = movers(
        ctx,
        stage,
        step_index,
        name,
        v,
        tgt.clone(),
        &target_ns,
        MoverTask::Verify,
    )
    .await?;
    rereaders.progress = Some(progress_lines(ctx, stage, name, "re-read", &names, &totals));
    let verified = run_movers(&rereaders, &order, MoverTask::Verify, &placed(&scheduling)).await?;
    for report in &verified {
        compare(&packed, report, "re-read")?;
    }
    say(
        ctx,
        stage,
        format!(
            "{name}: {} claim(s) re-read at {} before the workload starts: every root equals the packed one",
            verified.len(),
            w.to
        ),
    );
    Ok((reports, verified, true))
}

/// A claim of a co-located set already provisioned for a node (adopted, or left by an
/// earlier attempt) decides where the set's first mover runs: unpinned, that mover
/// could bind the first claim in another zone, and the pod mounting both could never
/// start.
async fn pin_to_provisioned(
    tgt: &kube::Client,
    namespace: &str,
    claims: &[PlannedClaim],
    placements: &mut BTreeMap<String, Placement>,
) -> Result<(), VolumeStepError> {
    let status_err = |claim: &str| {
        let claim = claim.to_owned();
        move |e: connectors::kube::KubeError| {
            VolumeStepError::Claim(format!("claim {namespace}/{claim}: {}", with_causes(&e)))
        }
    };
    for leader in claims.iter().filter(|c| c.colocated_with.is_none()) {
        let members: Vec<&PlannedClaim> = claims
            .iter()
            .filter(|c| c.colocated_with.as_deref() == Some(leader.name.as_str()))
            .collect();
        if members.is_empty() {
            continue;
        }
        let own = claim_status(tgt.clone(), namespace, &leader.name)
            .await
            .map_err(status_err(&leader.name))?;
        if own.phase == "Bound" || own.selected_node.is_some() {
            continue;
        }
        for member in members {
            let status = claim_status(tgt.clone(), namespace, &member.name)
                .await
                .map_err(status_err(&member.name))?;
            if let Some(node) = status.selected_node {
                tracing::info!(claim = %leader.name, next_to = %member.name, %node, "restoring a claim on the node a claim its pod mounts with it was provisioned for");
                if let Some(p) = placements.get_mut(&leader.name) {
                    p.node = Some(node);
                }
                break;
            }
        }
    }
    Ok(())
}

/// A claim that names no class gets the target's default one; without a default it
/// stays `Pending` for ever, so it is refused before anything is created. A cluster
/// whose classes cannot be listed (RBAC) is not refused: the restore's `Pending` check
/// still names the claim.
async fn check_default_class(
    w: &KubernetesWorkload,
    tgt: &kube::Client,
    claims: &[PlannedClaim],
) -> Result<(), VolumeStepError> {
    let classless: Vec<&str> = claims
        .iter()
        .filter(|c| {
            let o = &c.resource.object;
            o.pointer("/spec/storageClassName")
                .is_none_or(|v| v.is_null())
                && o.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                    .is_none()
        })
        .map(|c| c.name.as_str())
        .collect();
    if classless.is_empty() {
        return Ok(());
    }
    match default_storage_class(tgt.clone()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(VolumeStepError::Claim(format!(
            "claims {} name no storage class and {} has no default StorageClass: they would stay Pending; give them one (`spec.storageClassName` through `transform.jsonPatches`), or mark a StorageClass at the target as its default (annotation storageclass.kubernetes.io/is-default-class: \"true\")",
            classless.join(", "),
            w.to
        ))),
        Err(e) => {
            tracing::warn!(cluster = %w.to, error = %with_causes(&e), "cannot list the target's storage classes; the restore's Pending check stands");
            Ok(())
        }
    }
}

/// A restore as the plan's `runAsUser` cannot give other users' files their owner: the
/// claim would differ from its manifest (the re-read would fail on a root alone), so the
/// step fails here, naming the entries and both ways out.
fn ownership_restored(
    r: &crate::volumes::RestoreSummary,
    v: &Volumes,
) -> Result<(), VolumeStepError> {
    if r.ownership_not_restored == 0 {
        return Ok(());
    }
    let user = v.run_as_user.map_or("a non-root user".to_owned(), |u| {
        format!("uid {u} (`runAsUser`)")
    });
    let sample: Vec<String> = r
        .ownership_sample
        .iter()
        .map(|p| p.escape_debug().to_string())
        .collect();
    Err(VolumeStepError::Claim(format!(
        "claim {}: {} entr{} could not be given their owner ({}{}): the restore ran as {user}, which can only own files itself; remove `runAsUser` so the restore runs as root and restores every owner, or give the volume's files to that user at the source and copy again",
        r.claim,
        r.ownership_not_restored,
        if r.ownership_not_restored == 1 {
            "y"
        } else {
            "ies"
        },
        sample.join(", "),
        if r.ownership_not_restored > sample.len() as u64 {
            ", …"
        } else {
            ""
        },
    )))
}

/// `N stray entries removed (a, b, …)`: what a restore removed because the manifest
/// does not name it (left by an earlier attempt, or there before).
fn removed_line(r: &crate::volumes::RestoreSummary) -> String {
    let plural = if r.removed == 1 { "y" } else { "ies" };
    let mut line = format!("{} stray entr{plural} removed", r.removed);
    if !r.removed_paths.is_empty() {
        let names: Vec<String> = r
            .removed_paths
            .iter()
            .map(|p| p.escape_debug().to_string())
            .collect();
        let more = if r.removed > r.removed_paths.len() as u64 {
            ", …"
        } else {
            ""
        };
        line.push_str(&format!(" ({}{more})", names.join(", ")));
    }
    line
}
