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

mod copy;
mod deploy;
mod movers;
mod verify;

pub(crate) use copy::copy;
pub(crate) use deploy::{restore_claims, target_claims};
pub(crate) use verify::verify;

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{FROZEN, with_causes};
use crate::engine::{Context, EngineError};
use crate::progress::StepSummary;
use crate::volumes::mover::MoverReport;

/// `workload_state` names.
pub(crate) const PACKED: &str = "volumes-packed";
pub(crate) const RESTORED: &str = "volumes-restored";
pub(crate) const VERIFIED: &str = "volumes-verified";

/// `workload_state`: each target claim's node constraints, from the workload that
/// mounts it (a re-read mover needs its tolerations to reach the claim's node).
pub(crate) const SCHEDULING: &str = "volumes-scheduling";

/// `workload_state`: per claim, the last restore or re-read and where it was made
/// ([`Check`]), so the evidence says which stage and attempt checked the data.
pub(crate) const CHECKS: &str = "volumes-checks";
/// `workload_state`: what the last pack read (`frozen`, `snapshot` or `live`).
pub(crate) const PACKED_FROM: &str = "volumes-packed-from";
/// `workload_state`: where the last pack was made (`<stage> attempt <n>`).
pub(crate) const PACKED_IN: &str = "volumes-packed-in";

/// One claim's last check of its restored data.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Check {
    /// `restored` or `reread`.
    pub(crate) checked: String,
    /// The root the check found.
    pub(crate) root: String,
    /// `<stage> attempt <n>`.
    pub(crate) made_in: String,
}

/// The running attempt of `stage` (1 before its record exists).
pub(super) fn attempt(ctx: &Context, stage: &plans::Stage) -> Result<u32, EngineError> {
    let index = ctx
        .plan
        .plan()
        .stages
        .iter()
        .position(|s| s.name == stage.name)
        .unwrap_or_default();
    Ok(ctx.db.stage(index)?.map_or(1, |r| r.attempt))
}

/// `<stage> attempt <n>` of the running attempt of `stage`.
pub(super) fn made_in(ctx: &Context, stage: &plans::Stage) -> Result<String, EngineError> {
    Ok(format!("{} attempt {}", stage.name, attempt(ctx, stage)?))
}

/// Record `reports` as the claims' last `checked` (`restored` or `reread`).
pub(crate) fn record_checks(
    ctx: &Context,
    stage: &plans::Stage,
    name: &str,
    checked: &str,
    reports: &[MoverReport],
) -> Result<(), EngineError> {
    let mut checks: std::collections::BTreeMap<String, Check> =
        super::load(ctx, name, CHECKS)?.unwrap_or_default();
    let made_in = made_in(ctx, stage)?;
    for r in reports {
        checks.insert(
            r.claim.clone(),
            Check {
                checked: checked.to_owned(),
                root: r.root.clone(),
                made_in: made_in.clone(),
            },
        );
    }
    super::save(ctx, name, CHECKS, &checks)
}

/// `meta` key of the state directory's id in mover names.
pub(super) const RUN_ID: &str = "volumes_run_id";

/// `workload_state`: the digest of the `frozen` record the last pack ran under (empty
/// when the source ran), so a deploy never restores data copied before the source was
/// last put back in service.
pub(crate) const PACKED_UNDER: &str = "volumes-packed-under";

/// How long one claim's mover may run unless the plan says (`volumes.timeout`).
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The image movers run unless the plan names one: the tag the README's `docker build`
/// gives this version.
pub(super) fn default_image() -> String {
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
    /// The staged data is older than the source's current freeze (or the source is not
    /// frozen): nothing staged is worth keeping the source frozen for.
    #[error("{0}")]
    StaleCopy(String),
    /// The state directory could not be read or written.
    #[error("state: {0}")]
    State(String),
}

pub(super) fn manifests_err(
    what: impl Into<String>,
) -> impl FnOnce(connectors::kube::KubeError) -> VolumeStepError {
    let what = what.into();
    move |e| VolumeStepError::Manifests {
        what,
        source: Box::new(e),
    }
}

/// The digest of the `frozen` record now ("" when the source is not frozen).
pub(super) fn frozen_digest(ctx: &Context, name: &str) -> Result<String, EngineError> {
    Ok(ctx
        .db
        .workload_state(name, FROZEN)?
        .map(|json| hex::encode(Sha256::digest(json.as_bytes())))
        .unwrap_or_default())
}

/// A mover's root against the packed one.
pub(super) fn compare(
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

pub(super) fn summary_of(reports: &[MoverReport]) -> StepSummary {
    // A file whose bytes did not change since the last pack is not uploaded again.
    let mut summary = StepSummary::default();
    for p in reports.iter().filter_map(|r| r.packed.as_ref()) {
        summary.copied += p.files.saturating_sub(p.unchanged_files);
        summary.skipped += p.unchanged_files;
        summary.bytes += p.bytes.saturating_sub(p.unchanged_bytes);
    }
    summary
}

/// A re-read's summary: every packed file and byte verified.
pub(super) fn verified_summary(reports: &[MoverReport]) -> StepSummary {
    let mut summary = StepSummary::default();
    for p in reports.iter().filter_map(|r| r.packed.as_ref()) {
        summary.verified += p.files;
        summary.bytes += p.bytes;
    }
    summary
}

impl VolumeStepError {
    /// The operator stopped the run while movers ran (they go on; a rerun re-attaches).
    pub(crate) fn interrupted(&self) -> bool {
        matches!(
            self,
            VolumeStepError::Mover(crate::volumes::mover::MoverError::Interrupted { .. })
        )
    }
}

/// A volume step that stopped: interrupted (resumable), or failed with `e`.
pub(super) fn stopped(
    ctx: &Context,
    stage: &plans::Stage,
    e: VolumeStepError,
) -> super::StepOutput {
    if e.interrupted() {
        super::say(ctx, stage, e.to_string());
        return Ok((
            StepSummary::default(),
            crate::engine::steps::StepResult::Interrupted,
        ));
    }
    super::failed(e)
}

/// A deploy's volume failure, before any workload was applied at the target: the
/// source stays frozen (its data is staged; restarting it would make the copy stale),
/// and the failure says how to go on either way. Not when the staged copy is stale
/// ([`VolumeStepError::StaleCopy`]): the source may be running (saying it "stays
/// frozen" would be false) or frozen for nothing useful, so the step fails as any other
/// (a cutover stage then puts the source back in service).
pub(crate) fn kept_frozen(
    ctx: &Context,
    stage: &plans::Stage,
    e: VolumeStepError,
) -> super::StepOutput {
    if e.interrupted() {
        return stopped(ctx, stage, e);
    }
    if matches!(e, VolumeStepError::StaleCopy(_)) {
        return Ok((
            StepSummary::default(),
            crate::engine::steps::StepResult::failed(e.to_string()),
        ));
    }
    let plan = ctx.plan.path().display();
    Ok((
        StepSummary::default(),
        crate::engine::steps::StepResult::Failed(crate::engine::StepFailure::SourceKeptFrozen {
            detail: e.to_string(),
            hint: format!(
                "nothing was started at the target and the source stays frozen: fix the cause and run `relocate run {plan}` again (claims restored and matching are not written again), or put the source back in service with `relocate rollback {plan} --stage {stage}`. The record is bound to this plan as it is: a fix in the plan means `relocate rollback {plan} --stage {stage}` first, then the changed plan with a new --state-dir",
                stage = stage.name
            ),
        }),
    ))
}

/// Each claim's progress as the operator sees it: a line at most every ten seconds
/// per claim (`RELOCATE_VOLUME_PROGRESS_MS` for tests), from the movers' own lines.
/// `totals` are each claim's packed files and bytes (none for a pack, which finds
/// them as it walks).
pub(super) fn progress_lines(
    ctx: &Context,
    stage: &plans::Stage,
    workload: &str,
    doing: &'static str,
    claims: &[String],
    totals: &[Option<(u64, u64)>],
) -> crate::volumes::progress::OnProgress {
    use bytesize::ByteSize;
    let every = std::env::var("RELOCATE_VOLUME_PROGRESS_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let events = ctx.events.clone();
    let (stage, workload) = (stage.name.clone(), workload.to_owned());
    let claims = claims.to_vec();
    let totals = totals.to_vec();
    let last: std::sync::Mutex<std::collections::BTreeMap<usize, std::time::Instant>> =
        std::sync::Mutex::default();
    std::sync::Arc::new(move |index, p: crate::volumes::progress::Progress| {
        {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            if last
                .get(&index)
                .is_some_and(|at| now.duration_since(*at) < every)
            {
                return;
            }
            last.insert(index, now);
        }
        let claim = claims.get(index).map_or("?", String::as_str);
        let bytes = ByteSize::b(p.bytes).display().iec();
        let line = match totals.get(index).copied().flatten() {
            Some((files, total)) => format!(
                "{workload}: claim {claim}: {doing} {}/{files} file(s), {bytes}/{}",
                p.files,
                ByteSize::b(total).display().iec()
            ),
            None => format!(
                "{workload}: claim {claim}: {doing} {} file(s), {bytes} so far",
                p.files
            ),
        };
        events.emit(crate::progress::Event::CommandOutput {
            stage: stage.clone(),
            line,
        });
    })
}

/// Each claim's packed files and bytes, in `claims` order.
pub(super) fn packed_totals(packed: &[MoverReport], claims: &[String]) -> Vec<Option<(u64, u64)>> {
    claims
        .iter()
        .map(|c| {
            packed
                .iter()
                .find(|r| r.claim == *c)
                .and_then(|r| r.packed.as_ref())
                .map(|p| (p.files, p.bytes))
        })
        .collect()
}

/// Placements that carry only the claims' node constraints.
pub(super) fn placed(
    scheduling: &std::collections::BTreeMap<String, connectors::kube::volumes::Scheduling>,
) -> std::collections::BTreeMap<String, crate::volumes::coordinator::Placement> {
    scheduling
        .iter()
        .map(|(claim, s)| {
            let placement = crate::volumes::coordinator::Placement {
                scheduling: s.clone(),
                ..Default::default()
            };
            (claim.clone(), placement)
        })
        .collect()
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
