//! Step kinds: what each step of a stage does.
//!
//! Each step returns its summary and an outcome; errors that are the step's own
//! business (bad objects, a failing command) are outcomes, not `Err`, so the stage can
//! record them. `Err` is for the machinery (state, stores that cannot open).

mod command;
pub(crate) mod kubernetes;
mod objects;

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
    /// Failed, with the detail to report.
    Failed(String),
}

/// Execute one step.
pub(crate) async fn execute(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    step: &Step,
) -> Result<(StepSummary, StepResult), EngineError> {
    match step {
        Step::Copy(w) => objects::copy(ctx, stage, step_index, w).await,
        Step::Verify(w) => objects::verify(ctx, stage, step_index, w).await,
        Step::Run(argv) => command::run(ctx, stage, step_index, argv).await,
        Step::Freeze(w) => kubernetes::freeze(ctx, stage, step_index, w).await,
        Step::Deploy(w) => kubernetes::deploy(ctx, stage, step_index, w).await,
        Step::Rollback(w) => kubernetes::rollback(ctx, stage, step_index, w).await,
    }
}

/// A workload's name that validation guarantees exists; a miss is a bug, reported as a failure.
pub(crate) fn missing_workload(name: &str) -> StepResult {
    StepResult::Failed(format!(
        "workload {name} is not in the plan (validation should have caught this)"
    ))
}
