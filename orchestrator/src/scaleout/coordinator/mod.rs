//! A sharded `copy` or `verify` step, as `relocate run` drives it: split (or resume
//! the unfinished fan-out of an earlier run), hand the ranges out, follow the workers,
//! merge their rows, and report the step like an in-process one, plus its shards.
//!
//! - [`inputs`]: the state store, the split and the order of a new fan-out;
//! - [`fanout`]: the fan-out's record in the state database, and when a rerun may
//!   resume it (same order, finished shards kept, only while no other fan-out merged
//!   rows of the workload since);
//! - [`results`]: the shards' results merged in key order, summed into the summary.

pub mod fanout;
mod inputs;
mod results;

use std::sync::Arc;

use connectors::store::{Access, StoreHandle};
use plans::{ObjectWorkload, Stage};

use self::fanout::{ExecutorKind, FanOut, ShardState, ShardStatus};
use self::inputs::{NewOrder, state_entry, write_order};
use super::executor::{self, Ends, Launch, Observed};
use super::order::{Layout, ShardTask, WorkOrder, fresh_id};
use super::progress::Aggregate;
use super::worker::open_state_store;
use super::{ScaleError, exchange};
use crate::engine::steps::StepResult;
use crate::engine::steps::objects::open;
use crate::engine::{Context, EngineError};
use crate::progress::{Event, StepSummary};
use crate::transfer::Counters;

pub use fanout::fanout_key;
pub use inputs::CHECKPOINT_SECONDS;

/// Default workers at once.
pub const DEFAULT_PARALLELISM: u32 = 4;

/// Whether a workload runs sharded.
pub fn is_sharded(w: &ObjectWorkload) -> bool {
    w.shards.is_some() || w.workers.is_some()
}

/// Workers at once.
fn parallelism(w: &ObjectWorkload) -> u32 {
    let workers = w.workers.as_ref();
    workers
        .and_then(|x| x.kubernetes.as_ref().and_then(|k| k.parallelism))
        .or(workers.and_then(|x| x.local.as_ref().and_then(|l| l.parallelism)))
        .unwrap_or(DEFAULT_PARALLELISM)
}

/// The order to run: the unfinished fan-out's when it may be resumed, else a new one.
async fn order_to_run(
    ctx: &Context,
    state: &StoreHandle,
    previous: Option<&FanOut>,
    new: &NewOrder<'_>,
) -> Result<(Layout, WorkOrder, String), EngineError> {
    let rows_now = fanout::rows_version(ctx, new.name)?;
    if let Some(p) = previous.filter(|p| fanout::reusable(p, rows_now)) {
        let layout = Layout::of_order(&p.order);
        let order: Option<WorkOrder> =
            exchange::get_json(&state.store, &layout.order(), "work order").await?;
        match order {
            Some(o) if o.plan_digest == ctx.plan.digest().to_string() => {
                tracing::info!("{}: resuming the fan-out of {}", new.name, p.order);
                return Ok((layout, o, p.order_digest.clone()));
            }
            _ => tracing::warn!(
                "{}: the unfinished fan-out's order {} is gone or of another plan; splitting anew",
                new.name,
                p.order
            ),
        }
    }
    let layout = Layout::new(
        ctx.plan.name(),
        new.name,
        new.stage_index,
        new.stage,
        new.step,
        new.task,
        &fresh_id(),
    );
    let (order, digest) = write_order(ctx, &state.store, &layout, new).await?;
    Ok((layout, order, digest))
}

/// Run a sharded copy or verify step.
pub(crate) async fn run(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
    w: &ObjectWorkload,
    task: ShardTask,
) -> Result<(StepSummary, StepResult), EngineError> {
    let stage_index = ctx
        .plan
        .plan()
        .stages
        .iter()
        .position(|s| s.name == stage.name)
        .unwrap_or(0);
    let attempt = ctx.db.stage(stage_index)?.map_or(1, |r| r.attempt);
    let entry = state_entry(ctx)?;
    let state = open_state_store(&entry)?;
    // Every store's secrets are kept out of what workers report.
    let ends_of_workload = [
        open(ctx, &w.from, Access::Read)?,
        open(ctx, &w.to, Access::Read)?,
    ];
    let redact = |text: &str| {
        ends_of_workload
            .iter()
            .fold(state.redact(text), |t, store| store.redact(&t))
    };
    let key = fanout::fanout_key(stage_index, step_index);
    let previous = fanout::load(ctx, name, &key)?;
    let counters = Arc::new(Counters::default());
    ctx.emit(Event::StepStarted {
        stage: stage.name.clone(),
        step: step_index + 1,
        kind: task.as_str().into(),
        workload: Some(name.to_owned()),
        description: match task {
            ShardTask::Copy => format!("{name}: {} → {} in shards", w.from, w.to),
            ShardTask::Verify => format!("{name}: re-read and hash {} in shards", w.to),
        },
        counters: Some(counters.clone()),
    });
    let new = NewOrder {
        name,
        w,
        stage: &stage.name,
        stage_index,
        attempt,
        step: step_index,
        task,
    };
    let (layout, order, order_digest) = order_to_run(ctx, &state, previous.as_ref(), &new).await?;
    let store = state.store.clone();
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    counters.discovered_objects.store(order.objects, relaxed);
    counters.discovered_bytes.store(order.bytes, relaxed);
    counters.listing_done();
    let kubernetes = w.workers.as_ref().and_then(|x| x.kubernetes.as_ref());
    let mut record = FanOut {
        stage: stage.name.clone(),
        step: step_index + 1,
        task: task.as_str().into(),
        order: layout.order().to_string(),
        order_digest: order_digest.clone(),
        executor: if kubernetes.is_some() {
            ExecutorKind::Kubernetes
        } else {
            ExecutorKind::Local
        },
        rows_seen: fanout::rows_version(ctx, name)?,
        finished: false,
        shards: previous
            .filter(|p| p.order == layout.order().to_string())
            .map(|p| p.shards)
            .unwrap_or_else(|| {
                order
                    .shards
                    .iter()
                    .map(|s| ShardStatus {
                        index: s.index,
                        range: s.range.clone(),
                        status: ShardState::Pending,
                        error: None,
                        objects: 0,
                        bytes: 0,
                    })
                    .collect()
            }),
    };
    fanout::save(ctx, name, &key, &record)?;

    // Shards with a clean result of this order stay done; anything else runs (again).
    // A result with failures stays where it is: its worker starts from its rows.
    let mut to_run = Vec::new();
    for shard in &order.shards {
        let result = super::merge::read_result(&store, &layout, shard.index).await?;
        let ours = result
            .as_ref()
            .map(|r| r.order_digest == order_digest && r.range == shard.range);
        match (ours, result.as_ref().map(|r| r.failed())) {
            (Some(true), Some(0)) => {}
            (Some(false), _) => {
                exchange::remove(&store, &layout.result(shard.index)).await?;
                to_run.push(shard.index);
            }
            _ => to_run.push(shard.index),
        }
    }
    let observed = Observed {
        aggregate: Arc::new(Aggregate::default()),
        counters: counters.clone(),
    };
    let launch = Launch {
        shards: to_run,
        order: layout.order().to_string(),
        order_digest: order_digest.clone(),
        state_store: serde_json::to_string(&entry).map_err(|source| ScaleError::Encode {
            what: "the state store entry",
            source,
        })?,
        parallelism: parallelism(w),
        attempts: executor::DEFAULT_ATTEMPTS,
        attempt,
    };
    let ends: Ends = match kubernetes {
        _ if launch.shards.is_empty() => Ends::new(),
        Some(k) => {
            executor::kubernetes::run(ctx, k, &order, &launch, &observed, &ctx.cancel).await?
        }
        None => executor::local::run(&launch, &observed, &ctx.cancel).await?,
    };

    let gathered = results::gather(
        ctx,
        stage,
        (&store, &layout),
        (&order, &order_digest),
        &ends,
        &mut record.shards,
        &redact,
    )
    .await?;
    if gathered.merged {
        record.rows_seen = fanout::bump_rows_version(ctx, name)?;
    }
    record.finished = gathered.failures.is_empty() && !gathered.interrupted;
    fanout::save(ctx, name, &key, &record)?;
    if task == ShardTask::Copy && gathered.merged {
        // The shards listed in epochs from the order's on (one per start): the next
        // copy's epoch must be past all of them.
        let highest = ctx.db.highest_epoch(name)?;
        let next = highest.max(order.epoch.unwrap_or(0) + 1);
        ctx.db
            .set_meta(&format!("epoch:{name}"), &next.to_string())?;
    }
    let outcome = if gathered.interrupted {
        StepResult::Interrupted
    } else if gathered.failures.is_empty() {
        StepResult::Succeeded
    } else {
        StepResult::failed(format!(
            "{} of {} shard(s) failed; a rerun runs only those: {}",
            gathered.failures.len(),
            order.shards.len(),
            gathered.failures.join("; ")
        ))
    };
    Ok((gathered.summary, outcome))
}
