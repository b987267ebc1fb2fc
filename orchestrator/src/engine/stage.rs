//! One stage: its steps in order, then its evidence, then its gate.

use std::time::Instant;

use plans::{Stage, Step};

use super::steps::{self, StepFailure, StepResult};
use super::{Context, EngineError, evidence, gate};
use crate::progress::{Event, StepSummary};
use crate::state::{StageStatus, StepStatus, blocking};

/// Run (or resume) stage `index`.
pub(crate) async fn run_stage(
    ctx: &Context,
    index: usize,
    stage: &Stage,
) -> Result<(), EngineError> {
    let previous = ctx.db.stage(index)?;
    let (attempt, resumed) = match &previous {
        None => (1, false),
        Some(r)
            if matches!(
                r.status,
                StageStatus::Running | StageStatus::AwaitingSignoff
            ) =>
        {
            (r.attempt, true)
        }
        Some(r) => (r.attempt + 1, false),
    };
    // Evidence is written once per attempt, after every step succeeded: a resumed
    // attempt that has it only waits at its gate again (whatever its status says), so
    // approvals already given or dropped for that evidence still fit.
    let awaiting = resumed
        && previous
            .as_ref()
            .is_some_and(|r| r.evidence_digest.is_some() && r.evidence_path.is_some());
    ctx.db.start_stage(index, &stage.name, attempt)?;
    ctx.emit(Event::StageStarted {
        index,
        stage: stage.name.clone(),
        attempt,
        resumed,
    });

    let result = steps_and_gate(ctx, index, stage, attempt, resumed, awaiting).await;
    if let Err(e) = &result
        && matches!(
            e,
            EngineError::StepFailed { .. }
                | EngineError::Rejected { .. }
                | EngineError::SignoffRefused { .. }
        )
        && !matches!(
            e,
            EngineError::StepFailed {
                cause: StepFailure::SourceKeptFrozen { .. },
                ..
            }
        )
    {
        roll_back_cutover(ctx, stage).await;
    }
    result?;
    ctx.db.finish_stage(index, StageStatus::Completed, None)?;
    ctx.emit(Event::StageFinished {
        stage: stage.name.clone(),
        outcome: "completed".into(),
    });
    Ok(())
}

async fn steps_and_gate(
    ctx: &Context,
    index: usize,
    stage: &Stage,
    attempt: u32,
    resumed: bool,
    awaiting: bool,
) -> Result<(), EngineError> {
    // Evidence is files and a manifest pass over the database: blocking work.
    let evidence = if awaiting {
        blocking(|| evidence::load_existing(ctx, index, stage))?
    } else {
        for (step_index, step) in stage.steps.iter().enumerate() {
            run_step(ctx, index, stage, step_index, step, attempt, resumed).await?;
        }
        blocking(|| evidence::write_stage_evidence(ctx, index, stage, attempt))?
    };
    if let Some(signoff) = &stage.signoff {
        gate::run_gate(ctx, index, stage, signoff, &evidence).await?;
    }
    Ok(())
}

/// A cutover stage that failed or was refused puts the source back in service: every
/// Kubernetes workload it froze or deployed is rolled back from the recorded state.
pub(crate) async fn roll_back_cutover(ctx: &Context, stage: &Stage) -> bool {
    let mut ok = true;
    let mut workloads: Vec<&str> = stage
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Freeze(w) | Step::Deploy(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    workloads.dedup();
    for w in workloads {
        let lines = match steps::kubernetes::rollback_workload(ctx, w).await {
            Ok(lines) => lines,
            Err(e) => {
                ok = false;
                vec![format!(
                    "rollback of {w} failed: {e}; run `relocate rollback PLAN --stage {}` once the cluster is reachable",
                    stage.name
                )]
            }
        };
        for line in lines {
            ctx.emit(Event::CommandOutput {
                stage: stage.name.clone(),
                line,
            });
        }
    }
    ok
}

async fn run_step(
    ctx: &Context,
    index: usize,
    stage: &Stage,
    step_index: usize,
    step: &Step,
    attempt: u32,
    resumed: bool,
) -> Result<(), EngineError> {
    let kind = step.kind().to_owned();
    let workload = step.workload().map(str::to_owned);
    if resumed
        && let Some(rec) = ctx.db.step(index, step_index)?
        && rec.attempt == attempt
        && rec.status == StepStatus::Succeeded
    {
        let summary = StepSummary {
            stage: stage.name.clone(),
            step: step_index + 1,
            kind,
            workload,
            outcome: "skipped".into(),
            ..Default::default()
        };
        ctx.emit(Event::StepFinished {
            summary,
            error: None,
        });
        return Ok(());
    }
    ctx.db
        .start_step(index, step_index, attempt, &kind, workload.as_deref())?;
    let started = Instant::now();
    let result = steps::execute(ctx, stage, step_index, step).await;
    let seconds = started.elapsed().as_secs_f64();
    let (mut summary, outcome) = match result {
        Ok(r) => r,
        Err(e) => (
            StepSummary::default(),
            StepResult::Failed(StepFailure::Report(e.to_string())),
        ),
    };
    summary.stage = stage.name.clone();
    summary.step = step_index + 1;
    summary.kind = kind.clone();
    summary.workload = workload;
    summary.seconds = seconds;
    let summary_json = serde_json::to_string(&summary).ok();
    let (status, error, stop) = match outcome {
        StepResult::Succeeded => (StepStatus::Succeeded, None, None),
        StepResult::Interrupted => (StepStatus::Started, None, Some(EngineError::Interrupted)),
        StepResult::Failed(cause) => (
            StepStatus::Failed,
            Some(cause.to_string()),
            Some(EngineError::StepFailed {
                stage: stage.name.clone(),
                step: step_index + 1,
                kind: kind.clone(),
                cause,
            }),
        ),
    };
    summary.outcome = match (&status, &stop) {
        (StepStatus::Succeeded, _) => "succeeded",
        (StepStatus::Failed, _) => "failed",
        _ => "interrupted",
    }
    .into();
    if status != StepStatus::Started {
        ctx.db.finish_step(
            index,
            step_index,
            status,
            summary_json.as_deref(),
            error.as_deref(),
        )?;
    }
    ctx.summaries
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(summary.clone());
    ctx.emit(Event::StepFinished { summary, error });
    if let Some(stop) = stop {
        if matches!(stop, EngineError::StepFailed { .. }) {
            ctx.db
                .finish_stage(index, StageStatus::Failed, Some(&stop.to_string()))?;
            ctx.emit(Event::StageFinished {
                stage: stage.name.clone(),
                outcome: "failed".into(),
            });
        } else {
            ctx.emit(Event::StageFinished {
                stage: stage.name.clone(),
                outcome: "interrupted".into(),
            });
        }
        return Err(stop);
    }
    Ok(())
}
