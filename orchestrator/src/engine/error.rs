//! What stops a run, by meaning: the binary maps each to its own exit code.

use super::steps::StepFailure;
use crate::state::StateError;
use crate::transfer::TransferError;

/// Why a run stopped before the end of the plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The state directory or database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A store could not be opened or failed its pre-flight check.
    #[error("store {store}: {source}")]
    Store {
        /// The store's name in the plan.
        store: String,
        /// The cause.
        #[source]
        source: connectors::store::StoreError,
    },
    /// A Kubernetes deploy failed its pre-flight dry run; nothing was frozen or applied.
    #[error("pre-flight of deploy {workload}: {cause}")]
    DeployPreflight {
        /// The workload's name in the plan.
        workload: String,
        /// Why: the cluster, the export or every problem the dry run found.
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A volume workload's movers could not run where the pending stages need them
    /// (namespace or Secret missing); nothing was moved.
    #[error("pre-flight of the volumes of {workload}: {detail}")]
    VolumePreflight {
        /// The workload's name in the plan.
        workload: String,
        /// What is missing and how to fix it.
        detail: String,
    },
    /// Something the pending stages need on this machine is missing (a `run` step's
    /// program, a hook's program, a `${file:…}` secret); nothing was moved.
    #[error("pre-flight: {}", problems.join("; "))]
    LocalPreflight {
        /// Every problem found.
        problems: Vec<String>,
    },
    /// A step failed; the stage stopped and keeps its state for a rerun.
    #[error("stage {stage}, step {step} ({kind}) failed: {cause}")]
    StepFailed {
        /// Stage name.
        stage: String,
        /// Step position (1-based as shown to people; 0 for `rollback --stage`).
        step: usize,
        /// Step kind.
        kind: String,
        /// What went wrong (its own cause chain is kept).
        cause: StepFailure,
    },
    /// An approver rejected the stage.
    #[error("stage {stage} rejected by {approver}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Rejected {
        /// Stage name.
        stage: String,
        /// The approver.
        approver: String,
        /// Their reason.
        reason: Option<String>,
    },
    /// The gate did not get enough valid approvals (refused signatures, failing hooks).
    #[error("stage {stage}: sign-off not obtained ({approved} of {threshold} approvals): {detail}")]
    SignoffRefused {
        /// Stage name.
        stage: String,
        /// Valid approvals received.
        approved: usize,
        /// Approvals needed.
        threshold: usize,
        /// Each refusal's reason.
        detail: String,
    },
    /// Evidence could not be built, signed or written.
    #[error("evidence for stage {stage}: {detail}")]
    Evidence {
        /// Stage name.
        stage: String,
        /// Why.
        detail: String,
    },
    /// The operator stopped the run (Ctrl-C / SIGTERM); state is saved.
    #[error("interrupted; state saved: run again to resume")]
    Interrupted,
    /// A transfer failed as a whole (listing, state).
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// A sharded step's machinery failed (state store, workers, merge).
    #[error(transparent)]
    ScaleOut(Box<crate::scaleout::ScaleError>),
}

impl EngineError {
    /// The exit code this stop means (see [`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        use crate::exit;
        match self {
            EngineError::StepFailed { .. } => exit::STEP_FAILED,
            EngineError::Rejected { .. } | EngineError::SignoffRefused { .. } => exit::SIGNOFF,
            EngineError::Interrupted => exit::INTERRUPTED,
            EngineError::State(StateError::Locked { .. }) => exit::LOCKED,
            _ => exit::ERROR,
        }
    }
}

/// Why an approver's answer did not count at a gate. Reported with the approver's name;
/// the gate fails (exit 5) when too few answers count.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The gate names an approver the plan does not define (validation prevents it).
    #[error("approver is not in the plan")]
    NotInPlan,
    /// The plan's pinned key cannot be read (validation prevents it).
    #[error("pinned key unreadable: {0}")]
    PinnedKey(#[source] connectors::signoff::SignoffError),
    /// The hook's `timeout` is not a duration (validation prevents it).
    #[error("hook timeout: {0}")]
    HookTimeout(String),
    /// The hook command names no program (validation prevents it).
    #[error("the hook command names no program")]
    NoProgram,
    /// The hook brought back no envelope.
    #[error(transparent)]
    Hook(#[from] connectors::signoff::hook::HookError),
    /// The envelope is not a valid approval of this evidence by the pinned key.
    #[error(transparent)]
    Approval(#[from] connectors::signoff::approval::ApprovalRefused),
    /// The approval was valid but could not be appended to the record.
    #[error("could not record the approval: {0}")]
    Record(#[source] StateError),
    /// Another approver already approved with the same key.
    #[error("pins the same key as another approver; one key counts once")]
    SameKey,
}

impl From<crate::scaleout::ScaleError> for EngineError {
    fn from(e: crate::scaleout::ScaleError) -> Self {
        EngineError::ScaleOut(Box::new(e))
    }
}
