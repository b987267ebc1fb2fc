//! The engine: runs a validated plan's stages in order against the state directory.
//!
//! Resumption rules (the state is the journal):
//! - a completed stage is never run again;
//! - an interrupted stage attempt resumes: steps that succeeded in this attempt are
//!   skipped, the interrupted step runs again (copy and verify continue from their
//!   per-object rows);
//! - a failed or rejected stage is run again as a new attempt: every step runs again
//!   (copy is incremental, so that is a delta), new evidence is written, approvers are
//!   asked again — an approval of the old attempt's evidence no longer fits.

mod error;
mod evidence;
mod gate;
pub mod guide;
pub(crate) mod preflight;
mod stage;
pub mod steps;

pub use error::{EngineError, Refusal};
pub use steps::StepFailure;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use connectors::signoff::keys::SecretKey;
use plans::ValidatedPlan;
use tokio_util::sync::CancellationToken;

use crate::progress::{Event, EventSink, StepSummary};
use crate::state::{Db, RunLock, StageStatus, StateDir, StateError};

/// Options of a run beyond the plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Skip the stores' pre-flight check.
    pub skip_preflight: bool,
    /// The `relocate` executable, given to hooks and commands as `RELOCATE_BIN`.
    pub relocate_bin: PathBuf,
    /// Who runs the move (goes into evidence).
    pub operator: String,
    /// A Kubernetes rollback restores the source only and leaves the target untouched
    /// (`relocate rollback --source-only`, for an unreachable target).
    pub rollback_source_only: bool,
    /// `--operator-key FILE`: the operator's secret key, installed into a fresh state
    /// (required when the plan pins `operator.publicKey`), checked against an existing one.
    pub operator_key: Option<PathBuf>,
}

/// How a run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Stages were run and all completed.
    Completed,
    /// Every stage was already complete; nothing changed.
    NothingToDo,
}

/// Everything a stage needs while it runs.
pub(crate) struct Context {
    pub plan: ValidatedPlan,
    pub state: StateDir,
    pub db: Db,
    pub events: Arc<dyn EventSink>,
    pub cancel: CancellationToken,
    pub options: RunOptions,
    pub operator_key: SecretKey,
    pub summaries: Mutex<Vec<StepSummary>>,
}

impl Context {
    pub fn emit(&self, e: Event) {
        self.events.emit(e);
    }
}

/// Run a plan to its end (or to the first stop), resuming from the state directory.
pub async fn run(
    plan: ValidatedPlan,
    state: StateDir,
    events: Arc<dyn EventSink>,
    cancel: CancellationToken,
    options: RunOptions,
) -> (Result<RunOutcome, EngineError>, Vec<StepSummary>) {
    let _lock = match lock(&state) {
        Ok(l) => l,
        Err(e) => return (Err(e), Vec::new()),
    };
    // `relocate watch` follows the run through this file, from any terminal.
    let live = Arc::new(crate::watch::live::LiveFile::new(
        crate::watch::live::path_in(state.root()),
        events,
    ));
    let events: Arc<dyn EventSink> = live.clone();
    let ctx = match open(plan, state, events, cancel, options) {
        Ok(ctx) => ctx,
        Err(e) => {
            live.close();
            return (Err(e), Vec::new());
        }
    };
    let result = run_stages(&ctx).await;
    live.close();
    let summaries = std::mem::take(&mut *ctx.summaries.lock().unwrap_or_else(|p| p.into_inner()));
    (result, summaries)
}

/// Take the state directory's run lock before anything in it is created or opened
/// (database, operator key, subdirectories): a second run started at the same moment
/// is refused as "locked", never half-way through creating the state.
fn lock(state: &StateDir) -> Result<RunLock, EngineError> {
    let root = state.root();
    std::fs::create_dir_all(root).map_err(|source| StateError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    Ok(RunLock::acquire(&state.lock_path())?)
}

fn open(
    plan: ValidatedPlan,
    state: StateDir,
    events: Arc<dyn EventSink>,
    cancel: CancellationToken,
    options: RunOptions,
) -> Result<Context, EngineError> {
    state.create()?;
    let db = Db::open(&state.db_path())?;
    db.bind_plan(state.root(), plan.digest().as_str(), plan.name())?;
    let pinned = plan.plan().operator.as_ref().map(|o| o.public_key.as_str());
    crate::state::settle_operator_key(&state, pinned, options.operator_key.as_deref())?;
    let operator_key = evidence::operator_key(&state)?;
    Ok(Context {
        plan,
        state,
        db,
        events,
        cancel,
        options,
        operator_key,
        summaries: Mutex::default(),
    })
}

/// Roll back a stage's Kubernetes cutover on demand (`relocate rollback --stage`).
pub async fn rollback_stage(
    plan: ValidatedPlan,
    state: StateDir,
    events: Arc<dyn EventSink>,
    stage_name: &str,
    options: RunOptions,
) -> Result<(), EngineError> {
    let _lock = lock(&state)?;
    let ctx = open(plan, state, events, CancellationToken::new(), options)?;
    let stages = &ctx.plan.plan().stages;
    let Some(index) = stages.iter().position(|s| s.name == stage_name) else {
        return Err(EngineError::StepFailed {
            stage: stage_name.to_owned(),
            step: 0,
            kind: "rollback".into(),
            cause: StepFailure::Report("no such stage in the plan".into()),
        });
    };
    let ok = stage::roll_back_cutover(&ctx, &stages[index]).await;
    if ctx.db.stage(index)?.is_some() {
        ctx.db
            .finish_stage(index, StageStatus::Failed, Some("rolled back on demand"))?;
    }
    if ok {
        Ok(())
    } else {
        Err(EngineError::StepFailed {
            stage: stage_name.to_owned(),
            step: 0,
            kind: "rollback".into(),
            cause: StepFailure::Report(
                "some workloads could not be rolled back (see above)".into(),
            ),
        })
    }
}

async fn run_stages(ctx: &Context) -> Result<RunOutcome, EngineError> {
    let stages = &ctx.plan.plan().stages;
    ctx.emit(Event::RunStarted {
        plan: ctx.plan.name().to_owned(),
        plan_digest: ctx.plan.digest().to_string(),
        state_dir: ctx.state.root().display().to_string(),
        stages: stages.len(),
        stage_names: stages.iter().map(|s| s.name.clone()).collect(),
    });
    let pending: Vec<usize> = (0..stages.len())
        .filter(|&i| !matches!(ctx.db.stage(i), Ok(Some(r)) if r.status == StageStatus::Completed))
        .collect();
    if pending.is_empty() {
        for s in stages {
            ctx.emit(Event::StageSkipped {
                stage: s.name.clone(),
                reason: "already completed".into(),
            });
        }
        return Ok(RunOutcome::NothingToDo);
    }
    let problems = preflight::local_problems(&ctx.plan, &pending);
    if !problems.is_empty() {
        return Err(EngineError::LocalPreflight { problems });
    }
    if !ctx.options.skip_preflight {
        preflight::check_stores(ctx, &pending).await?;
        preflight::check_deploys(ctx, &pending).await?;
        preflight::check_volumes(ctx, &pending).await?;
    }
    for (index, stage) in stages.iter().enumerate() {
        if !pending.contains(&index) {
            ctx.emit(Event::StageSkipped {
                stage: stage.name.clone(),
                reason: "already completed".into(),
            });
            continue;
        }
        stage::run_stage(ctx, index, stage).await?;
    }
    Ok(RunOutcome::Completed)
}
