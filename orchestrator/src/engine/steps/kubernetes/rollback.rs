//! `rollback` of a Kubernetes workload's cutover, from the recorded state only.
//!
//! The source comes first, since it is what must serve again: every writer the freeze
//! stopped is put back, best effort per entry, what is gone skipped; the `frozen` record is
//! cleared only once all of it is back, so a retry redoes exactly what is left. Then the
//! target: what the deploy started is stopped (`connectors::kube::stop_target`). With
//! `relocate rollback --source-only` the target is not contacted at all, for when it is
//! unreachable. Every failure is reported; none stops the others.

use connectors::kube::{FrozenState, KubeError, ResourceId, UndoReport, restore, stop_target};
use plans::Stage;

use super::{
    ClusterError, DEPLOYING, FROZEN, StepOutput, client, failed, load, say, started, with_causes,
};
use crate::engine::steps::StepResult;
use crate::engine::{Context, EngineError};
use crate::progress::StepSummary;

/// Why a rollback did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RollbackError {
    /// The step names a workload that is not a Kubernetes one.
    #[error("{0} is not a Kubernetes workload")]
    NotKubernetes(String),
    /// The recorded state could not be read or written.
    #[error(transparent)]
    State(#[from] EngineError),
    /// Some of the rollback failed; the rest was done.
    #[error("rollback of {workload} incomplete, {} failure(s): {}{}{}", failures.len(), join(failures), target_hint(failures), done_note(done))]
    Incomplete {
        /// The workload.
        workload: String,
        /// What was done nevertheless.
        done: Vec<String>,
        /// Each failure, with the side it happened on.
        failures: Vec<Failure>,
    },
}

/// One failure during a rollback.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A cluster could not be reached; nothing was done on that side.
    #[error("{side}: {source}")]
    Unreachable {
        /// `source` or `target`.
        side: &'static str,
        /// Why.
        #[source]
        source: ClusterError,
    },
    /// One resource could not be put back or stopped.
    #[error("{side}: {}", with_causes(source))]
    Resource {
        /// `source` or `target`.
        side: &'static str,
        /// Why.
        #[source]
        source: KubeError,
    },
}

fn join(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn target_hint(failures: &[Failure]) -> &'static str {
    let target = failures.iter().any(|f| {
        matches!(
            f,
            Failure::Unreachable { side: "target", .. } | Failure::Resource { side: "target", .. }
        )
    });
    if target {
        " (the source is restored first regardless; `relocate rollback --source-only` leaves the target alone)"
    } else {
        ""
    }
}

fn done_note(done: &[String]) -> String {
    if done.is_empty() {
        String::new()
    } else {
        format!(" (done: {})", done.join("; "))
    }
}

/// Restore the source from the recorded state and stop the target.
pub(crate) async fn rollback(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
) -> StepOutput {
    started(
        ctx,
        stage,
        step_index,
        "rollback",
        name,
        format!("{name}: restore the source, stop the target"),
    );
    match rollback_workload(ctx, name).await {
        Ok(lines) => {
            for l in lines {
                say(ctx, stage, l);
            }
            Ok((StepSummary::default(), StepResult::Succeeded))
        }
        Err(RollbackError::State(e)) => Err(e),
        Err(e) => failed(e),
    }
}

/// Undo a workload's cutover from the recorded state; returns what was done.
pub(crate) async fn rollback_workload(
    ctx: &Context,
    name: &str,
) -> Result<Vec<String>, RollbackError> {
    let w = ctx
        .plan
        .kubernetes_workload(name)
        .ok_or_else(|| RollbackError::NotKubernetes(name.to_owned()))?;
    let mut done = Vec::new();
    let mut failures = Vec::new();
    if let Some(frozen) = load::<FrozenState>(ctx, name, FROZEN)? {
        match client(ctx, &w.from).await {
            Err(source) => failures.push(Failure::Unreachable {
                side: "source",
                source,
            }),
            Ok(src) => {
                let report = restore(&src, &frozen).await;
                let complete = report.failed.is_empty();
                done.push(format!(
                    "{name}: source replica counts restored in {}: {} of {} writer(s) back as recorded, {} gone",
                    w.from,
                    report.done.len(),
                    frozen.entries.len(),
                    report.gone.len()
                ));
                absorb(&mut done, &mut failures, "source", report);
                if complete {
                    ctx.db
                        .clear_workload_state(name, FROZEN)
                        .map_err(EngineError::from)?;
                }
            }
        }
    }
    if ctx.options.rollback_source_only {
        done.push(format!(
            "{name}: target {} left as it is (--source-only)",
            w.to
        ));
    } else if let Some(ids) = load::<Vec<ResourceId>>(ctx, name, DEPLOYING)? {
        match client(ctx, &w.to).await {
            Err(source) => failures.push(Failure::Unreachable {
                side: "target",
                source,
            }),
            Ok(tgt) => {
                let report = stop_target(&tgt, &ids).await;
                if report.failed.is_empty() {
                    done.push(format!("{name}: target workloads in {} stopped", w.to));
                }
                absorb(&mut done, &mut failures, "target", report);
            }
        }
    }
    if !failures.is_empty() {
        return Err(RollbackError::Incomplete {
            workload: name.to_owned(),
            done,
            failures,
        });
    }
    if done.is_empty() {
        done.push(format!("{name}: nothing recorded to roll back"));
    } else if ctx.plan.volume_workload(name).is_some() {
        // The target's claims may be written from now on (`--source-only` leaves its
        // workload running): their restore and re-read no longer vouch for them, so a
        // later deploy checks them again instead of carrying those checks over.
        for state in [
            super::volumes::RESTORED,
            super::volumes::VERIFIED,
            super::volumes::CHECKS,
        ] {
            ctx.db
                .clear_workload_state(name, state)
                .map_err(EngineError::from)?;
        }
    }
    Ok(done)
}

fn absorb(
    done: &mut Vec<String>,
    failures: &mut Vec<Failure>,
    side: &'static str,
    report: UndoReport,
) {
    done.extend(
        report
            .done
            .into_iter()
            .map(|line| format!("  {side} {line}")),
    );
    done.extend(
        report
            .gone
            .into_iter()
            .map(|id| format!("  {side} {id}: gone, nothing to undo")),
    );
    failures.extend(
        report
            .failed
            .into_iter()
            .map(|source| Failure::Resource { side, source }),
    );
}
