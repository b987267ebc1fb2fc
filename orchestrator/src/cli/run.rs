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
use crate::state::StateDir;

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
    /// Who runs the move, recorded in evidence (default: user@hostname; the user from
    /// $USER, else $LOGNAME, else the OS account).
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

/// `user@host`: the user from `$USER`, else `$LOGNAME`, else the OS account of this
/// process (`/etc/passwd` by uid), else `uid<N>`; never "unknown".
pub(crate) fn default_operator() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        .unwrap_or_else(os_user);
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// The name of this process's user in `/etc/passwd`, or `uid<N>`.
fn os_user() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?;
                (id.parse::<u32>().ok()? == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid{uid}"))
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
    if let Some(code) = nothing_to_roll_back(&plan, &state, &args.stage) {
        return Ok(code);
    }
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

/// Say so, and the exit code, when `rollback --stage` has nothing to act on: a stage
/// the plan does not have (exit 2, a usage error), a stage with no Kubernetes cutover,
/// or a plan that never ran (exit 0: there is nothing to undo).
fn nothing_to_roll_back(plan: &plans::ValidatedPlan, state: &StateDir, name: &str) -> Option<u8> {
    let stages = &plan.plan().stages;
    let Some(stage) = stages.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "relocate: error: plan {} has no stage `{name}`; its stages are: {}",
            plan.name(),
            names.join(", ")
        );
        return Some(exit::USAGE);
    };
    let cutover = stage
        .steps
        .iter()
        .any(|s| matches!(s, plans::Step::Freeze(_) | plans::Step::Deploy(_)));
    if !cutover {
        eprintln!(
            "relocate: stage {name} has nothing to roll back: it freezes and deploys no \
             Kubernetes workload (copied objects are left at the target; nothing else changed)"
        );
        return Some(exit::SUCCESS);
    }
    if !state.exists() {
        eprintln!(
            "relocate: stage {name} has nothing to roll back: the plan has not run (no state in {})",
            state.root().display()
        );
        return Some(exit::SUCCESS);
    }
    None
}
