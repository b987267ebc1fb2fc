//! `copy` of a volume workload: pack every claim at the source into staging, and keep
//! each claim's staged manifest (checked against the pack's report) in the state
//! directory for the evidence and the record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use connectors::kube::volumes::{
    claim_node, claim_status, delete_snapshot_clone, planned_claims, snapshot_claim,
};
use connectors::kube::{FrozenState, export};
use connectors::store::StoreHandle;
use plans::{KubernetesWorkload, Stage, Volumes};

use super::super::{
    FROZEN, StepOutput, client, load, restore_recorded_scale, save, say, started, with_causes,
};
use super::movers::{movers, order, staging};
use super::{
    PACKED, PACKED_FROM, PACKED_IN, PACKED_UNDER, VolumeStepError, frozen_digest, made_in,
    manifests_err, progress_lines, stopped, summary_of,
};
use crate::engine::Context;
use crate::engine::steps::{StepResult, missing_workload};
use crate::progress::StepSummary;
use crate::volumes::coordinator::{Placement, run_movers};
use crate::volumes::mover::MoverReport;
use crate::volumes::order::{MoverTask, volume_prefix};

/// `copy` of a volume workload: pack every claim at the source into staging.
pub(crate) async fn copy(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
) -> StepOutput {
    let Some((w, v)) = ctx.plan.volume_workload(name) else {
        return Ok((StepSummary::default(), missing_workload(name)));
    };
    let frozen: Option<FrozenState> = load(ctx, name, FROZEN)?;
    started(
        ctx,
        stage,
        step_index,
        "copy",
        name,
        format!(
            "{name}: pack the claims of {}/{} into {}{}",
            w.from,
            w.namespace,
            v.staging,
            match (&frozen, &v.snapshot_class) {
                (Some(_), _) => " (source frozen)".to_owned(),
                (None, Some(class)) => format!(" (source running: from {class} snapshots)"),
                (None, None) => " (source running: not point-in-time)".to_owned(),
            }
        ),
    );
    match pack_claims(ctx, stage, step_index, name, w, v, frozen.as_ref()).await {
        Ok(reports) => {
            save(ctx, name, PACKED, &reports)?;
            save(ctx, name, PACKED_UNDER, &frozen_digest(ctx, name)?)?;
            let from = match (&frozen, &v.snapshot_class) {
                (Some(_), _) => "frozen",
                (None, Some(_)) => "snapshot",
                (None, None) => "live",
            };
            save(ctx, name, PACKED_FROM, &from)?;
            save(ctx, name, PACKED_IN, &made_in(ctx, stage)?)?;
            Ok((summary_of(&reports), StepResult::Succeeded))
        }
        Err(e) => stopped(ctx, stage, e),
    }
}

async fn pack_claims(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
    w: &KubernetesWorkload,
    v: &Volumes,
    frozen: Option<&FrozenState>,
) -> Result<Vec<MoverReport>, VolumeStepError> {
    let src = client(ctx, &w.from)
        .await
        .map_err(|e| VolumeStepError::Manifests {
            what: format!("cluster {}", w.from),
            source: Box::new(e),
        })?;
    let mut resources = export(&src, w)
        .await
        .map_err(manifests_err(format!("export from {}", w.from)))?;
    if let Some(frozen) = frozen {
        restore_recorded_scale(&mut resources, frozen);
    }
    let claims = planned_claims(&resources).map_err(manifests_err("the workload's claims"))?;
    if claims.is_empty() {
        say(
            ctx,
            stage,
            format!("{name}: no PersistentVolumeClaim selected; nothing to pack"),
        );
        return Ok(Vec::new());
    }
    let mut placements: BTreeMap<String, Placement> = BTreeMap::new();
    for claim in &claims {
        let status = claim_status(src.clone(), &w.namespace, &claim.name)
            .await
            .map_err(|e| {
                VolumeStepError::Claim(format!(
                    "claim {}/{} at {}: {}",
                    w.namespace,
                    claim.name,
                    w.from,
                    with_causes(&e)
                ))
            })?;
        if status.phase != "Bound" {
            return Err(VolumeStepError::Claim(format!(
                "claim {}/{} at {} is {}, not Bound: it holds no data to pack",
                w.namespace, claim.name, w.from, status.phase
            )));
        }
        // A mover may need the workload's tolerations to reach the claim's node, and
        // its node selector to stay where the claim can attach.
        let placement = placements
            .entry(claim.name.clone())
            .or_insert_with(|| Placement {
                scheduling: claim.scheduling.clone(),
                ..Placement::default()
            });
        if frozen.is_none() && v.snapshot_class.is_none() {
            placement.node = claim_node(src.clone(), &w.namespace, &claim.name)
                .await
                .map_err(manifests_err(format!(
                    "the pods of {}/{}",
                    w.from, w.namespace
                )))?;
            if placement.node.is_some() {
                // Pinned where the running pod holds the claim: that node is the only
                // one the mover can use. The workload's selector and affinity are
                // checked only when a pod is scheduled (`IgnoredDuringExecution`): a
                // node relabelled since no longer matches them, and the mover would
                // wait for ever. Its tolerations still let it onto a tainted node.
                placement.scheduling.node_selector.clear();
                placement.scheduling.node_affinity = None;
            }
        }
    }
    let names: Vec<String> = claims.iter().map(|c| c.name.clone()).collect();
    let mut movers = movers(
        ctx,
        stage,
        step_index,
        name,
        v,
        src.clone(),
        &w.namespace,
        MoverTask::Pack,
    )
    .await?;
    let unknown = vec![None; names.len()];
    movers.progress = Some(progress_lines(ctx, stage, name, "packed", &names, &unknown));
    // While the source runs, a snapshot class makes the seed point-in-time: each claim
    // is snapshotted and the mover reads a clone of it.
    let mut clones = Vec::new();
    if let (None, Some(class)) = (frozen, &v.snapshot_class) {
        for claim in &names {
            let clone_name =
                connectors::kube::workers::job_name(claim, &movers.stage, movers.attempt, "seed");
            let clone = match snapshot_claim(
                src.clone(),
                &w.namespace,
                claim,
                class,
                &clone_name,
                &movers.labels,
                movers.timeout,
            )
            .await
            {
                Ok(clone) => clone,
                Err(e) => {
                    // The clones already made are full-size claims: none is left behind.
                    for made in &clones {
                        if let Err(e) = delete_snapshot_clone(src.clone(), &w.namespace, made).await
                        {
                            tracing::warn!(snapshot = %made.snapshot, error = %with_causes(&e), "could not delete a seed's snapshot and its clone; delete them by hand");
                        }
                    }
                    return Err(manifests_err(format!(
                        "snapshot of claim {}/{claim} at {}",
                        w.namespace, w.from
                    ))(e));
                }
            };
            say(
                ctx,
                stage,
                format!(
                    "{name}: claim {claim} snapshotted as {} (class {class}); packing from it",
                    clone.snapshot
                ),
            );
            let placement = placements.entry(claim.clone()).or_default();
            placement.node = None;
            placement.mount = Some(clone.claim.clone());
            clones.push(clone);
        }
    }
    let order = order(ctx, name, names);
    say(
        ctx,
        stage,
        format!(
            "{name}: packing {} claim(s) ({}) with mover Jobs in {}/{}",
            order.claims.len(),
            order.claims.join(", "),
            w.from,
            w.namespace
        ),
    );
    let reports = run_movers(&movers, &order, MoverTask::Pack, &placements).await;
    for clone in &clones {
        if let Err(e) = delete_snapshot_clone(src.clone(), &w.namespace, clone).await {
            tracing::warn!(snapshot = %clone.snapshot, error = %with_causes(&e), "could not delete the seed's snapshot and its clone; delete them by hand");
        }
    }
    let reports = reports?;
    let point_in_time = frozen.is_some() || !clones.is_empty();
    let staging = staging(ctx, v)?;
    for report in &reports {
        let packed = report.packed.as_ref().ok_or_else(|| {
            VolumeStepError::Mismatch(format!(
                "claim {}: the pack's report has no summary",
                report.claim
            ))
        })?;
        let prefix = volume_prefix(ctx.plan.plan().name.as_str(), name, &report.claim);
        keep_manifest(ctx, &staging, name, &report.claim, &prefix, packed).await?;
        say(ctx, stage, packed_line(name, packed, point_in_time));
    }
    Ok(reports)
}

fn packed_line(name: &str, packed: &crate::volumes::VolumeSummary, point_in_time: bool) -> String {
    let mut line = format!(
        "{name}: claim {} packed: {} file(s), {} byte(s), {} dir(s), {} symlink(s), root {}",
        packed.claim, packed.files, packed.bytes, packed.dirs, packed.symlinks, packed.root
    );
    if packed.hard_links > 0 {
        line.push_str(&format!(
            "; {} hard link(s) kept as links",
            packed.hard_links
        ));
    }
    if !packed.sparse.is_empty() {
        line.push_str(&format!(
            "; sparse (stored in full, restored with holes): {}",
            packed.sparse.join(", ")
        ));
    }
    if !packed.not_moved.is_empty() {
        line.push_str(&format!(
            "; not moved (sockets): {}",
            packed.not_moved.join(", ")
        ));
    }
    if packed.unchanged_files > 0 {
        line.push_str(&format!(
            "; {} file(s) ({} byte(s)) unchanged since the last pack: hashed again, not uploaded again",
            packed.unchanged_files, packed.unchanged_bytes
        ));
    }
    if !point_in_time {
        line.push_str("; read while the source ran, so not point-in-time: the delta after `freeze` is the copy that counts");
    }
    line
}

/// Fetch a claim's staged manifest into the state directory, checking its digest and
/// recomputing its root against what the pack reported.
async fn keep_manifest(
    ctx: &Context,
    staging: &StoreHandle,
    workload: &str,
    claim: &str,
    prefix: &object_store::path::Path,
    packed: &crate::volumes::VolumeSummary,
) -> Result<PathBuf, VolumeStepError> {
    let location = object_store::path::Path::from(format!("{prefix}/manifest.ndjson"));
    let (file, digest) = crate::scaleout::exchange::download(&staging.store, &location)
        .await
        .map_err(|e| VolumeStepError::Store {
            what: format!("reading {location} from {}", staging.display_url),
            source: Box::new(e),
        })?
        .ok_or_else(|| {
            VolumeStepError::Mismatch(format!(
                "claim {claim}: the pack reported done, but {location} is not in {}",
                staging.display_url
            ))
        })?;
    let path = manifest_path(ctx, workload, claim);
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| VolumeStepError::Store {
            what: format!("writing {}", path.display()),
            source: Box::new(e),
        }
    };
    if digest != packed.manifest_sha256 {
        return Err(VolumeStepError::Mismatch(format!(
            "claim {claim}: the staged manifest hashes to {digest}, the pack reported {}",
            packed.manifest_sha256
        )));
    }
    let root =
        crate::volumes::manifest::root_of(file.path()).map_err(|e| VolumeStepError::Store {
            what: format!("reading the manifest of claim {claim}"),
            source: Box::new(e),
        })?;
    if root != packed.root {
        return Err(VolumeStepError::Mismatch(format!(
            "claim {claim}: the staged manifest's root is {root}, the pack reported {}",
            packed.root
        )));
    }
    let dir = path.parent().unwrap_or(ctx.state.root()).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    // The scratch file is in TMPDIR, maybe another filesystem: copied, not renamed.
    let kept = tempfile::NamedTempFile::new_in(&dir).map_err(io(&dir))?;
    std::fs::copy(file.path(), kept.path()).map_err(io(&path))?;
    kept.persist(&path).map_err(|e| io(&path)(e.error))?;
    Ok(path)
}

/// Where a claim's manifest is kept in the state directory.
fn manifest_path(ctx: &Context, workload: &str, claim: &str) -> PathBuf {
    ctx.state
        .root()
        .join("volumes")
        .join(workload)
        .join(format!("{claim}.manifest.ndjson"))
}
