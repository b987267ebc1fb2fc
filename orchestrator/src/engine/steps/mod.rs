//! Step kinds: what each step of a stage does.
//!
//! Each step returns its summary and an outcome; errors that are the step's own
//! business (bad objects, a failing command) are outcomes, not `Err`, so the stage can
//! record them. `Err` is for the machinery (state, stores that cannot open).

mod command;
pub(crate) mod kubernetes;
pub(crate) mod objects;

use plans::{Stage, Step};

use super::{Context, EngineError};
use crate::progress::StepSummary;

/// How a step ended.
#[derive(Debug)]
pub(crate) enum StepResult {
    /// Done.
    Succeeded,
    /// Stopped by the operator; resumable.
    Interrupted,
    /// Failed, with its cause.
    Failed(StepFailure),
}

impl StepResult {
    /// A failure from its cause (typed, or a step's own report as text).
    pub(crate) fn failed(cause: impl Into<StepFailure>) -> Self {
        StepResult::Failed(cause.into())
    }
}

/// Why a step failed, kept typed (with its cause) until the stage records it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepFailure {
    /// A `run` step's command is empty (validation prevents it).
    #[error("empty command")]
    EmptyCommand,
    /// A `run` step's `timeout` is not a duration (validation prevents it).
    #[error("timeout: {0}")]
    BadTimeout(String),
    /// The command could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program as written.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the command failed.
    #[error("waiting for {program}: {source}")]
    Wait {
        /// The program as written.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The command exited unsuccessfully.
    #[error("{command} exited with {status}")]
    Exit {
        /// The argv, joined.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The command outlived the step's timeout and was killed.
    #[error("{command} still running after the step's timeout of {}; killed", humantime::format_duration(*after))]
    Timeout {
        /// The argv, joined.
        command: String,
        /// The timeout.
        after: std::time::Duration,
    },
    /// A step names a workload the plan lacks (validation prevents it).
    #[error("workload {0} is not in the plan (validation should have caught this)")]
    MissingWorkload(String),
    /// A step's typed error (a cluster's answer, a dry run's problems), kept as is.
    #[error(transparent)]
    Cause(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A step that reports its failure as text (object counts, a cluster's answer).
    #[error("{0}")]
    Report(String),
    /// A cutover step failed before anything started at the target, on data copied
    /// under the freeze: the source is kept frozen (no automatic rollback), so a rerun
    /// after the fix has no new writes to copy and restores only what is missing.
    #[error("{detail}\n  {hint}")]
    SourceKeptFrozen {
        /// Why the step failed.
        detail: String,
        /// How to go on: rerun, or roll back by hand.
        hint: String,
    },
}

impl From<String> for StepFailure {
    fn from(detail: String) -> Self {
        StepFailure::Report(detail)
    }
}

/// Execute one step.
pub(crate) async fn execute(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    step: &Step,
) -> Result<(StepSummary, StepResult), EngineError> {
    match step {
        Step::Copy(w) if ctx.plan.volume_workload(w).is_some() => {
            kubernetes::volumes::copy(ctx, stage, step_index, w).await
        }
        Step::Verify(w) if ctx.plan.volume_workload(w).is_some() => {
            kubernetes::volumes::verify(ctx, stage, step_index, w).await
        }
        Step::Copy(w) => objects::copy(ctx, stage, step_index, w).await,
        Step::Verify(w) => objects::verify(ctx, stage, step_index, w).await,
        Step::Run(run) => command::run(ctx, stage, step_index, run).await,
        Step::Freeze(w) => kubernetes::freeze(ctx, stage, step_index, w).await,
        Step::Deploy(w) => kubernetes::deploy(ctx, stage, step_index, w).await,
        Step::Rollback(w) => kubernetes::rollback(ctx, stage, step_index, w).await,
    }
}

/// A workload's name that validation guarantees exists; a miss is a bug, reported as a failure.
pub(crate) fn missing_workload(name: &str) -> StepResult {
    StepResult::Failed(StepFailure::MissingWorkload(name.to_owned()))
}
