//! `relocate volume pack|restore|verify`: one mover, one claim, its order read from the
//! state store (see [`super::order`]) and its summary written back there.

use std::path::Path as FsPath;

use connectors::store::{Access, StoreHandle, open_store};
use serde::{Deserialize, Serialize};

use super::order::{MoverTask, VolumeLayout, VolumeOrder, volume_prefix};
use super::staged::read_summary;
use super::{PackOptions, RestoreSummary, VolumeError, VolumeSummary, pack, restore, scan};
use crate::scaleout::{ScaleError, exchange};

/// A mover's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MoverError {
    /// The order is unusable (permanent: a retry would fail alike).
    #[error("volume order {path}: {detail}")]
    Order {
        /// The order's path.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The state store failed.
    #[error("state store")]
    State(#[source] Box<ScaleError>),
    /// The staging store could not be opened.
    #[error("opening the staging store {store}")]
    OpenStaging {
        /// Its name in the plan.
        store: String,
        /// Why.
        #[source]
        source: connectors::store::StoreError,
    },
    /// Moving the volume failed.
    #[error("claim {claim}")]
    Volume {
        /// The claim.
        claim: String,
        /// Why.
        #[source]
        source: Box<VolumeError>,
    },
    /// The cluster could not be asked (Job, claim).
    #[error("claim {claim}: the cluster")]
    Cluster {
        /// The claim.
        claim: String,
        /// Why.
        #[source]
        source: Box<connectors::kube::KubeError>,
    },
    /// The target claim cannot take the data.
    #[error(transparent)]
    Claim(#[from] connectors::kube::volumes::ClaimRefused),
    /// The operator stopped the run (Ctrl-C, SIGTERM) while movers ran: the coordinator
    /// stops waiting, the Jobs go on in the cluster, and a rerun re-attaches to them.
    #[error(
        "stopped waiting for the {task} movers ({jobs}): they go on in {namespace}; `relocate run` again re-attaches to them"
    )]
    Interrupted {
        /// `pack`, `restore` or `verify`.
        task: &'static str,
        /// The movers' namespace.
        namespace: String,
        /// The Jobs, comma-separated.
        jobs: String,
    },
    /// The mover's Job failed (it is kept, with its pods' logs, until its TTL).
    #[error(
        "claim {claim}: the {task} Job {namespace}/{job} failed ({detail}); it is kept for inspection for 24h: kubectl -n {namespace} logs job/{job}"
    )]
    MoverFailed {
        /// The claim.
        claim: String,
        /// pack, restore or verify.
        task: &'static str,
        /// The Job's namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// What Kubernetes says.
        detail: String,
    },
    /// The mover's pod cannot run (not created, not scheduled, its volume not mounted)
    /// and has not for longer than the grace its kind gets. Its Job is deleted, so it
    /// cannot start later beside a rerun's mover of the same claim.
    #[error(transparent)]
    Blocked(Box<BlockedMover>),
    /// The mover's Job did not finish within `volumes.timeout`. It is left running (it
    /// may be slow, not stuck), and a rerun starts its own mover of the claim.
    #[error(
        "claim {claim}: the {task} Job {namespace}/{name} is not done after {after}; it is left running (kubectl -n {namespace} logs job/{name} -f): delete it before a rerun, which starts its own mover of this claim (kubectl -n {namespace} delete job {name} --cascade=background), or raise `volumes.timeout`"
    )]
    TimedOut {
        /// The claim.
        claim: String,
        /// pack, restore or verify.
        task: &'static str,
        /// The Job's namespace.
        namespace: String,
        /// The Job's name.
        name: String,
        /// The timeout, as a duration.
        after: String,
    },
    /// A mover's report in the exchange store is not the one its pod sealed with its
    /// termination message: rewritten after the mover exited, or never sealed.
    #[error("claim {claim}: the {task} report is refused: {detail} (Job {job}, pod {pod})")]
    ReportRefused {
        /// The claim.
        claim: String,
        /// pack, restore or verify.
        task: &'static str,
        /// The Job, `<namespace>/<name>`.
        job: String,
        /// The succeeded pod whose message was read.
        pod: String,
        /// What differs, and what it means.
        detail: String,
    },
    /// The mover could not write its termination message.
    #[error("writing the termination message to {path}")]
    TerminationLog {
        /// `RELOCATE_TERMINATION_LOG`.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The target volume does not match what was staged.
    #[error(
        "claim {claim}: the target volume's root is {found}, the staged manifest's is {staged}"
    )]
    Mismatch {
        /// The claim.
        claim: String,
        /// The root found on disk.
        found: String,
        /// The staged root.
        staged: String,
    },
}

/// A mover whose pod cannot run (see [`MoverError::Blocked`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "claim {claim}: the {task} Job {namespace}/{job}: {subject} {what} ({reason}: {message}){claim_state}; still so after {waited}s. {cleanup}"
)]
pub struct BlockedMover {
    /// The claim.
    pub claim: String,
    /// pack, restore or verify.
    pub task: &'static str,
    /// The Job's namespace.
    pub namespace: String,
    /// The Job.
    pub job: String,
    /// `pod <name>`, or `its pod` when none could be created.
    pub subject: String,
    /// "cannot be scheduled", …
    pub what: &'static str,
    /// Kubernetes' reason (`Unschedulable`, `FailedCreate`, `FailedMount`, …).
    pub reason: String,
    /// Kubernetes' message.
    pub message: String,
    /// `; claim <ns>/<name> is still Pending …` when it is, else empty.
    pub claim_state: String,
    /// Seconds waited since first seen.
    pub waited: u64,
    /// What became of the Job, and where its events are.
    pub cleanup: String,
}

/// What a mover writes to the state store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoverReport {
    /// The claim.
    pub claim: String,
    /// What was done.
    pub task: MoverTask,
    /// The manifest's Merkle root (staged, restored or found), hex.
    pub root: String,
    /// A pack's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed: Option<VolumeSummary>,
    /// A restore's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<RestoreSummary>,
}

/// What a mover leaves as its pod's termination message once its report is written:
/// the report's SHA-256, which the coordinator reads back from the pod's status (where
/// the kubelet put it, out of reach of whoever can write the exchange store) and
/// compares with the report's bytes. A few hundred bytes, far under the kubelet's 4096.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminationMessage {
    /// The claim the report is for.
    pub claim: String,
    /// What was done.
    pub task: MoverTask,
    /// Lowercase hex SHA-256 of the report's bytes as written to the exchange store.
    pub report_sha256: String,
}

/// What the Job's own arguments pin, out of reach of whoever can write the state store.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    /// `sha256:<hex>` of the order's bytes.
    pub order_digest: Option<String>,
    /// The claim at the mover's index.
    pub claim: Option<String>,
    /// Where to write the [`TerminationMessage`] (`RELOCATE_TERMINATION_LOG`, the
    /// container's `terminationMessagePath`); none outside a pod.
    pub termination_log: Option<std::path::PathBuf>,
}

/// Run mover `index` of the order at `order_path` on the claim mounted at `dir`.
pub async fn run_mover(
    state: &StoreHandle,
    order_path: &str,
    index: u32,
    task: MoverTask,
    dir: &FsPath,
    pins: &Pins,
) -> Result<MoverReport, MoverError> {
    let layout = VolumeLayout::of_order(order_path);
    let bad = |detail: String| MoverError::Order {
        path: order_path.to_owned(),
        detail,
    };
    let (file, digest) = exchange::download(&state.store, &layout.order())
        .await
        .map_err(|e| MoverError::State(Box::new(e)))?
        .ok_or_else(|| bad("not found in the state store".into()))?;
    if let Some(pinned) = &pins.order_digest
        && format!("sha256:{digest}") != *pinned
    {
        return Err(bad(format!(
            "its bytes hash to sha256:{digest}, not the {pinned} this mover was started with: the order was changed after the coordinator wrote it"
        )));
    }
    let bytes = std::fs::read(file.path())
        .map_err(|e| bad(format!("reading the downloaded order: {e}")))?;
    let order: VolumeOrder =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a volume order: {e}")))?;
    let claim = order
        .claims
        .get(index as usize)
        .ok_or_else(|| {
            bad(format!(
                "it has no claim {index} (it has {})",
                order.claims.len()
            ))
        })?
        .clone();
    if let Some(pinned) = &pins.claim
        && *pinned != claim
    {
        return Err(bad(format!(
            "its claim {index} is {claim}, not the {pinned} this mover was started for"
        )));
    }
    // The claim names the staging prefix: a Kubernetes object name, nothing else.
    let valid = |c: &str| {
        (1..=253).contains(&c.len())
            && c.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    };
    if !valid(&claim) {
        return Err(bad(format!(
            "claim {claim:?} is not a Kubernetes object name"
        )));
    }
    let plan = plans::parse(&order.plan_text, FsPath::new(&order.plan_path))
        .map_err(|e| bad(format!("its plan does not validate: {e}")))?;
    if plan.digest().to_string() != order.plan_digest {
        return Err(bad(format!(
            "its plan hashes to {}, not the {} it claims",
            plan.digest(),
            order.plan_digest
        )));
    }
    let staging_name = plan
        .kubernetes_workload(&order.workload)
        .and_then(|w| w.volumes.as_ref())
        .map(|v| v.staging.clone())
        .ok_or_else(|| {
            bad(format!(
                "its plan has no Kubernetes workload {} with `volumes`",
                order.workload
            ))
        })?;
    let spec = plan
        .store(&staging_name)
        .ok_or_else(|| bad(format!("store {staging_name} is not in the plan")))?;
    let access = match task {
        MoverTask::Pack => Access::Write,
        MoverTask::Restore | MoverTask::Verify => Access::Read,
    };
    let staging = open_store(&staging_name, spec, plan.base_dir(), access).map_err(|source| {
        MoverError::OpenStaging {
            store: staging_name.clone(),
            source,
        }
    })?;
    let prefix = volume_prefix(plan.name(), &order.workload, &claim);
    let failed = |source| MoverError::Volume {
        claim: claim.clone(),
        source: Box::new(source),
    };
    let report = match task {
        MoverTask::Pack => {
            let defaults = PackOptions::default();
            let options = PackOptions {
                segment_bytes: order.segment_bytes.unwrap_or(defaults.segment_bytes),
                segment_files: order.segment_files.unwrap_or(defaults.segment_files),
            };
            let packed = pack(dir, staging.store.clone(), &prefix, &claim, options)
                .await
                .map_err(failed)?;
            MoverReport {
                claim: claim.clone(),
                task,
                root: packed.root.clone(),
                packed: Some(packed),
                restored: None,
            }
        }
        MoverTask::Restore => {
            let restored = restore(staging.store.clone(), &prefix, dir)
                .await
                .map_err(failed)?;
            MoverReport {
                claim: claim.clone(),
                task,
                root: restored.root.clone(),
                packed: None,
                restored: Some(restored),
            }
        }
        MoverTask::Verify => {
            let staged = read_summary(&staging.store, &prefix)
                .await
                .map_err(failed)?;
            let dir = dir.to_path_buf();
            let found = tokio::task::spawn_blocking(move || scan(&dir))
                .await
                .map_err(|e| failed(VolumeError::Task(e.to_string())))?
                .map_err(failed)?;
            if found.root != staged.root {
                return Err(MoverError::Mismatch {
                    claim,
                    found: found.root,
                    staged: staged.root,
                });
            }
            MoverReport {
                claim: claim.clone(),
                task,
                root: found.root,
                packed: None,
                restored: None,
            }
        }
    };
    let digest = exchange::put_json(&state.store, &layout.result(task, index), &report)
        .await
        .map_err(|e| MoverError::State(Box::new(e)))?;
    if let Some(path) = &pins.termination_log {
        seal(path, &report, &digest)?;
    }
    Ok(report)
}

/// Write the termination message for `report`, whose bytes hash to `digest`
/// (`sha256:<hex>`), as the mover's last act.
fn seal(path: &FsPath, report: &MoverReport, digest: &str) -> Result<(), MoverError> {
    let message = TerminationMessage {
        claim: report.claim.clone(),
        task: report.task,
        report_sha256: digest.trim_start_matches("sha256:").to_owned(),
    };
    let failed = |source| MoverError::TerminationLog {
        path: path.to_path_buf(),
        source,
    };
    let bytes = serde_json::to_vec(&message).map_err(|e| failed(std::io::Error::other(e)))?;
    std::fs::write(path, bytes).map_err(failed)?;
    tracing::info!(report_sha256 = %message.report_sha256, "termination message written");
    Ok(())
}

/// Open the state store from its plan entry (as the coordinator passed it).
pub fn open_state(entry: &plans::Store) -> Result<StoreHandle, MoverError> {
    crate::scaleout::worker::open_state_store(entry).map_err(|e| MoverError::State(Box::new(e)))
}
