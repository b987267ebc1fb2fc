//! `relocate run PLAN`: run the stages, resuming from the state directory.
//!
//! The first Ctrl-C (or SIGTERM) asks the engine to stop: no new objects start, the
//! ones in flight finish, the state is flushed, and the exit code is 130. A second one
//! exits at once; the state stays consistent either way (that is what the journal is
//! for).

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::{OutputArgs, StateArgs, load_plan, load_plan_warning};
use crate::engine::{self, EngineError, RunOptions, RunOutcome};
use crate::exit;
use crate::progress::{Event, renderer};

/// `relocate run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// State directory.
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Skip the stores' pre-flight check.
    #[arg(long)]
    pub skip_preflight: bool,
    /// Who runs the move, recorded in evidence (default: $USER@hostname).
    #[arg(long)]
    pub operator: Option<String>,
    /// The operator's secret key file (from `relocate keys generate`): copied into a
    /// fresh state directory (needed when the plan pins `operator.publicKey`), checked
    /// against an existing one.
    #[arg(long, value_name = "FILE")]
    pub operator_key: Option<PathBuf>,
}

/// Run the plan.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let plan = load_plan_warning(&args.plan)?;
    let state = super::state_dir(&args.state, &plan);
    let events = renderer(args.output.output);
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    let options = RunOptions {
        skip_preflight: args.skip_preflight,
        relocate_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("relocate")),
        operator: args.operator.clone().unwrap_or_else(default_operator),
        rollback_source_only: false,
        operator_key: args.operator_key.clone(),
    };
    let (result, steps) = engine::run(plan, state, events.clone(), cancel, options).await;
    let (outcome, error, code) = match &result {
        Ok(RunOutcome::Completed) => ("succeeded", None, exit::SUCCESS),
        Ok(RunOutcome::NothingToDo) => (
            "nothing-to-do: every stage is already complete",
            None,
            exit::SUCCESS,
        ),
        Err(e) => (outcome_of(e), Some(e.to_string()), e.exit_code()),
    };
    events.emit(Event::Summary {
        outcome: outcome.to_owned(),
        steps,
        error: error.clone(),
    });
    events.finish();
    if let Err(e) = result {
        super::report(&anyhow::Error::new(e));
    }
    Ok(code)
}

fn outcome_of(e: &EngineError) -> &'static str {
    match e {
        EngineError::StepFailed { .. } => "failed",
        EngineError::Rejected { .. } => "rejected",
        EngineError::SignoffRefused { .. } => "sign-off refused",
        EngineError::Interrupted => "interrupted",
        _ => "error",
    }
}

fn default_operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("no SIGTERM handler: {e}");
                    return;
                }
            };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                eprintln!(
                    "relocate: stopping after the objects in flight (press Ctrl-C again to quit now)"
                );
                cancel.cancel();
            } else {
                eprintln!("relocate: quitting now; state is consistent, rerun to resume");
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    });
}

/// `relocate rollback` arguments.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The cutover stage to undo.
    #[arg(long)]
    pub stage: String,
    /// Restore the source only; leave the target untouched (when it is unreachable).
    #[arg(long)]
    pub source_only: bool,
    /// State directory.
    #[command(flatten)]
    pub state: StateArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Roll a stage's Kubernetes cutover back from the recorded state.
pub(crate) async fn rollback(args: RollbackArgs) -> anyhow::Result<u8> {
    let plan = load_plan(&args.plan)?;
    let state = super::state_dir(&args.state, &plan);
    let events = renderer(args.output.output);
    let options = RunOptions {
        skip_preflight: true,
        relocate_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("relocate")),
        operator: default_operator(),
        rollback_source_only: args.source_only,
        operator_key: None,
    };
    let result = engine::rollback_stage(plan, state, events.clone(), &args.stage, options).await;
    events.finish();
    match result {
        Ok(()) => Ok(exit::SUCCESS),
        Err(e) => {
            let code = e.exit_code();
            super::report(&anyhow::Error::new(e));
            Ok(code)
        }
    }
}
