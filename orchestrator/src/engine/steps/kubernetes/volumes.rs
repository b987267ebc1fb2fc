//! The claims' data of a Kubernetes workload with `volumes: { copy: true }`.
//!
//! - `copy` packs every claim of the workload at the source into the staging store,
//!   one mover Job per claim ([`crate::volumes::coordinator`]): while the source runs it
//!   reads the live volume (on the node that holds it attached) and says the copy is not
//!   point-in-time; after `freeze` it is the final, consistent one. Each claim's staged
//!   manifest is fetched into the state directory, checked against the staged digest
//!   and root, and kept for the evidence and the record.
//! - `deploy` ([`restore_claims`]) creates the target's claims (a StatefulSet's template
//!   claims included, under the names its controller adopts), refuses a claim smaller
//!   than its data before writing anything, restores each from staging with a mover
//!   (the first consumer, which binds `WaitForFirstConsumer` claims), and compares each
//!   restored root with the packed one; only then are the workloads applied.
//! - `verify` re-reads every target claim with a mover and compares its root.
//!
//! Every report is recorded in `workload_state` (`volumes-packed`, `volumes-restored`,
//! `volumes-verified`); the stage's evidence names each claim's manifest and root.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use connectors::kube::volumes::{
    PlannedClaim, claim_node, claim_status, delete_snapshot_clone, planned_claims, snapshot_claim,
};
use connectors::kube::workers::WorkerResources;
use connectors::kube::{ApplyOptions, FrozenState, Resource, apply, export};
use connectors::store::{Access, StoreHandle, open_store};
use plans::{KubernetesWorkload, Stage, Volumes};
use sha2::{Digest, Sha256};

use super::{
    FROZEN, StepOutput, client, failed, load, restore_recorded_scale, save, say, started,
    with_causes,
};
use crate::engine::steps::{StepResult, missing_workload};
use crate::engine::{Context, EngineError};
use crate::progress::StepSummary;
use crate::volumes::coordinator::{Movers, Placement, run_movers};
use crate::volumes::mover::MoverReport;
use crate::volumes::order::{MoverTask, VOLUME_ORDER_VERSION, VolumeOrder, volume_prefix};

/// `workload_state` names.
pub(crate) const PACKED: &str = "volumes-packed";
pub(crate) const RESTORED: &str = "volumes-restored";
pub(crate) const VERIFIED: &str = "volumes-verified";

/// `meta` key of the state directory's id in mover names.
const RUN_ID: &str = "volumes_run_id";

/// `workload_state`: the digest of the `frozen` record the last pack ran under (empty
/// when the source ran), so a deploy never restores data copied before the source was
/// last put back in service.
pub(crate) const PACKED_UNDER: &str = "volumes-packed-under";

/// How long one claim's mover may run unless the plan says (`volumes.timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The image movers run unless the plan names one: the tag the README's `docker build`
/// gives this version.
fn default_image() -> String {
    format!("relocate:{}", env!("CARGO_PKG_VERSION"))
}

/// Why the claims' data could not move; the step fails with it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VolumeStepError {
    /// Reading or transforming the workload's manifests failed.
    #[error("{what}: {}", with_causes(source.as_ref()))]
    Manifests {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A store could not be opened or read.
    #[error("{what}: {}", with_causes(source.as_ref()))]
    Store {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A mover failed or a claim was refused.
    #[error("{}", with_causes(.0))]
    Mover(#[from] crate::volumes::mover::MoverError),
    /// The staged or restored data is not what was packed.
    #[error("{0}")]
    Mismatch(String),
    /// A claim cannot take its data, or has none staged.
    #[error("{0}")]
    Claim(String),
    /// The state directory could not be read or written.
    #[error("state: {0}")]
    State(String),
}

fn manifests_err(
    what: impl Into<String>,
) -> impl FnOnce(connectors::kube::KubeError) -> VolumeStepError {
    let what = what.into();
    move |e| VolumeStepError::Manifests {
        what,
        source: Box::new(e),
    }
}

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
            Ok((summary_of(&reports), StepResult::Succeeded))
        }
        Err(e) => failed(e),
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
        if frozen.is_none()
            && v.snapshot_class.is_none()
            && let Some(node) = claim_node(src.clone(), &w.namespace, &claim.name)
                .await
                .map_err(manifests_err(format!(
                    "the pods of {}/{}",
                    w.from, w.namespace
                )))?
        {
            placements.insert(
                claim.name.clone(),
                Placement {
                    node: Some(node),
                    mount: None,
                },
            );
        }
    }
    let names: Vec<String> = claims.iter().map(|c| c.name.clone()).collect();
    let movers = movers(
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
            placements.insert(
                claim.clone(),
                Placement {
                    node: None,
                    mount: Some(clone.claim.clone()),
                },
            );
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
pub(crate) fn manifest_path(ctx: &Context, workload: &str, claim: &str) -> PathBuf {
    ctx.state
        .root()
        .join("volumes")
        .join(workload)
        .join(format!("{claim}.manifest.ndjson"))
}

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
        return Err(VolumeStepError::Claim(format!(
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
/// with the packed one; the restore and re-read reports. The workloads are applied by
/// the caller only after this succeeded.
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
) -> Result<(Vec<MoverReport>, Vec<MoverReport>), VolumeStepError> {
    if claims.is_empty() {
        return Ok((Vec::new(), Vec::new()));
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
            return Ok((load(ctx, name, RESTORED)?.unwrap_or_default(), verified));
        }
        return Err(VolumeStepError::Claim(format!(
            "claims in use at {}/{target_ns}: {}: relocate does not restore into a claim a workload may be writing; stop it (`relocate rollback`, or scale it to 0) and run again",
            w.to,
            in_use.join("; ")
        )));
    }
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
    let restorers = movers(
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
    let order = order(ctx, name, names.clone());
    let reports = run_movers(&restorers, &order, MoverTask::Restore, &BTreeMap::new()).await?;
    for report in &reports {
        compare(&packed, report, "restored")?;
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
                    "{name}: claim {} restored and re-hashed: {} file(s) written ({} byte(s)), {} already there, {} stray entr{} removed{}, root {}",
                    r.claim,
                    r.files_written,
                    r.bytes_written,
                    r.files_present,
                    r.removed,
                    if r.removed == 1 { "y" } else { "ies" },
                    if r.removed_paths.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({}{})",
                            r.removed_paths
                                .iter()
                                .map(|p| p.escape_debug().to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            if r.removed > r.removed_paths.len() as u64 {
                                ", …"
                            } else {
                                ""
                            }
                        )
                    },
                    r.root
                ),
            );
        }
    }
    // The restore compared each file with the manifest; the re-read compares the whole
    // tree, so a file the manifest does not name (left by an earlier attempt) fails here,
    // before any workload starts on it.
    let rereaders = movers(
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
    let verified = run_movers(&rereaders, &order, MoverTask::Verify, &BTreeMap::new()).await?;
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
    Ok((reports, verified))
}

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
        let movers = movers(
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
        let order = order(ctx, name, names);
        let reports = run_movers(&movers, &order, MoverTask::Verify, &BTreeMap::new()).await?;
        for report in &reports {
            compare(&packed, report, "re-read")?;
        }
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
            let mut summary = summary_of(&packed);
            summary.verified = summary.copied;
            summary.copied = 0;
            Ok((summary, StepResult::Succeeded))
        }
        Err(e) => failed(e),
    }
}

/// The digest of the `frozen` record now ("" when the source is not frozen).
fn frozen_digest(ctx: &Context, name: &str) -> Result<String, EngineError> {
    Ok(ctx
        .db
        .workload_state(name, FROZEN)?
        .map(|json| hex::encode(Sha256::digest(json.as_bytes())))
        .unwrap_or_default())
}

/// A mover's root against the packed one.
fn compare(
    packed: &[MoverReport],
    report: &MoverReport,
    what: &str,
) -> Result<(), VolumeStepError> {
    let expected = packed
        .iter()
        .find(|p| p.claim == report.claim)
        .map(|p| p.root.as_str());
    if expected != Some(report.root.as_str()) {
        return Err(VolumeStepError::Mismatch(format!(
            "claim {}: the {what} volume's root is {}, the packed one {}",
            report.claim,
            report.root,
            expected.unwrap_or("(none: never packed)")
        )));
    }
    Ok(())
}

fn summary_of(reports: &[MoverReport]) -> StepSummary {
    let (files, bytes) = reports
        .iter()
        .filter_map(|r| r.packed.as_ref())
        .fold((0, 0), |(f, b), p| (f + p.files, b + p.bytes));
    StepSummary {
        copied: files,
        bytes,
        ..Default::default()
    }
}

fn order(ctx: &Context, workload: &str, claims: Vec<String>) -> VolumeOrder {
    VolumeOrder {
        version: VOLUME_ORDER_VERSION,
        plan_digest: ctx.plan.digest().to_string(),
        plan_text: ctx.plan.text().to_owned(),
        plan_path: ctx.plan.path().display().to_string(),
        workload: workload.to_owned(),
        claims,
        segment_bytes: None,
        segment_files: None,
    }
}

/// The staging store, as the coordinator reads it.
fn staging(ctx: &Context, v: &Volumes) -> Result<StoreHandle, VolumeStepError> {
    let spec = ctx
        .plan
        .store(&v.staging)
        .ok_or_else(|| VolumeStepError::Claim(format!("store {} is not in the plan", v.staging)))?;
    open_store(&v.staging, spec, ctx.plan.base_dir(), Access::Read).map_err(|e| {
        VolumeStepError::Store {
            what: format!("opening the staging store {}", v.staging),
            source: Box::new(e),
        }
    })
}

/// The movers of one step: where orders and reports are exchanged (the plan's
/// `state.store`, else the staging store), the image, the Secret, the labels.
#[allow(clippy::too_many_arguments)]
async fn movers(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    workload: &str,
    v: &Volumes,
    client: kube::Client,
    namespace: &str,
    task: MoverTask,
) -> Result<Movers, VolumeStepError> {
    let exchange_name = ctx
        .plan
        .plan()
        .state
        .as_ref()
        .map_or(v.staging.clone(), |s| s.store.clone());
    let mut entry = ctx
        .plan
        .plan()
        .stores
        .get(&exchange_name)
        .cloned()
        .ok_or_else(|| {
            VolumeStepError::Claim(format!("store {exchange_name} is not in the plan"))
        })?;
    if let Some(url) = ctx.plan.store_url(&exchange_name) {
        entry.url = url.to_string();
    }
    let state_entry = serde_json::to_string(&entry).map_err(|e| VolumeStepError::Store {
        what: "encoding the exchange store's entry".into(),
        source: Box::new(e),
    })?;
    let spec = ctx.plan.store(&exchange_name).ok_or_else(|| {
        VolumeStepError::Claim(format!("store {exchange_name} is not in the plan"))
    })?;
    let exchange =
        open_store(&exchange_name, spec, ctx.plan.base_dir(), Access::Write).map_err(|e| {
            VolumeStepError::Store {
                what: format!("opening {exchange_name}, where mover orders go"),
                source: Box::new(e),
            }
        })?;
    let index = ctx
        .plan
        .plan()
        .stages
        .iter()
        .position(|s| s.name == stage.name)
        .unwrap_or_default();
    let attempt = ctx.db.stage(index)?.map_or(1, |r| r.attempt);
    // A state directory's own id in every Job and order name: a rehearsal's Jobs (same
    // plan, stage and attempt, finished less than a day ago) are never re-attached to
    // by the real run from a fresh state directory.
    let run = match ctx.db.meta(RUN_ID)? {
        Some(id) => id,
        None => {
            let seed = format!(
                "{:?} {} {}",
                std::time::SystemTime::now(),
                std::process::id(),
                ctx.state.root().display()
            );
            let id = hex::encode(&Sha256::digest(seed.as_bytes())[..4]);
            ctx.db.set_meta(RUN_ID, &id)?;
            id
        }
    };
    let plan_name = &ctx.plan.plan().name;
    let step = format!("{}-{}", step_index + 1, task.as_str());
    let labels = BTreeMap::from([
        (
            "relocate.io/plan-digest".to_owned(),
            ctx.plan
                .digest()
                .as_str()
                .trim_start_matches("sha256:")
                .chars()
                .take(63)
                .collect(),
        ),
        ("relocate.io/stage".to_owned(), stage.name.clone()),
        ("relocate.io/attempt".to_owned(), attempt.to_string()),
    ]);
    Ok(Movers {
        client,
        namespace: namespace.to_owned(),
        image: v.image.clone().unwrap_or_else(default_image),
        secret_name: v.credentials.as_ref().map(|c| c.secret_name.clone()),
        resources: WorkerResources {
            cpu: v.resources.as_ref().and_then(|r| r.cpu.clone()),
            memory: v.resources.as_ref().and_then(|r| r.memory.clone()),
        },
        state: exchange.store,
        state_entry,
        order_path: format!(
            "relocate/{plan_name}/volumes/{workload}/{run}/{}-{attempt}-{step}/order.json",
            stage.name,
        ),
        labels,
        attempt,
        stage: format!("{run}/{}", stage.name),
        step,
        timeout: ctx.plan.volume_timeout(workload).unwrap_or(DEFAULT_TIMEOUT),
    })
}

impl From<crate::state::StateError> for VolumeStepError {
    fn from(e: crate::state::StateError) -> Self {
        VolumeStepError::State(e.to_string())
    }
}

impl From<EngineError> for VolumeStepError {
    fn from(e: EngineError) -> Self {
        VolumeStepError::State(e.to_string())
    }
}
