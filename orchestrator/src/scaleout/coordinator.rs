//! A sharded `copy` or `verify` step, as `relocate run` drives it: split (or reuse the
//! unfinished fan-out of an earlier run), hand the ranges out, follow the workers,
//! merge their rows, and report the step like an in-process one, plus its shards.
//!
//! The fan-out's own record (generation, shards and how each ended) is kept in the
//! state database beside the workload, so `relocate status` shows it per shard and a
//! rerun knows which shards are done: a coordinator killed mid-run and started again
//! reuses the order and the finished shards, and a rerun after a failure runs only the
//! shards that failed.

use std::sync::Arc;

use connectors::store::{Access, StoreHandle};
use plans::{ObjectWorkload, Stage, ValidatedPlan};

use super::executor::{self, Ends, Launch, Observed, ShardEnd};
use super::exchange;
use super::merge::{merge_shard, read_result};
use super::order::{Layout, ORDER_VERSION, ShardTask, WorkOrder};
use super::progress::Aggregate;
use super::result::ShardResult;
use super::split::{Split, Splitter};
use super::worker::open_state_store;
use super::{ScaleError, listing};
use crate::engine::steps::StepResult;
use crate::engine::steps::objects::open;
use crate::engine::{Context, EngineError};
use crate::progress::{Event, ShardEvidence, StepSummary};
use crate::transfer::listing::owned;
use crate::transfer::{Counters, KeyFilter, KeyRange};

/// Seconds between a worker's checkpoints: at most this much work is redone when a
/// worker dies. `RELOCATE_CHECKPOINT_SECONDS` changes it (tests use 1).
pub const CHECKPOINT_SECONDS: u64 = 10;

fn checkpoint_seconds() -> u64 {
    std::env::var("RELOCATE_CHECKPOINT_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(CHECKPOINT_SECONDS)
}

/// Default workers at once.
pub const DEFAULT_PARALLELISM: u32 = 4;

/// One shard as the fan-out record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    /// Index.
    pub index: u32,
    /// Keys.
    #[serde(flatten)]
    pub range: KeyRange,
    /// `pending`, `done`, `failed` or `interrupted`.
    pub status: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Objects and bytes it moved or verified.
    #[serde(default)]
    pub objects: u64,
    /// Bytes.
    #[serde(default)]
    pub bytes: u64,
}

/// The record of a step's fan-out, in the state database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOut {
    /// Generation (see [`super::order`]).
    pub generation: u32,
    /// Stage and step.
    pub stage: String,
    /// Step position, from 1.
    pub step: usize,
    /// `copy` or `verify`.
    pub task: String,
    /// Where the order is.
    pub order: String,
    /// Executor: `local` or `kubernetes`.
    pub executor: String,
    /// Whether every shard finished clean.
    pub finished: bool,
    /// The shards.
    pub shards: Vec<ShardStatus>,
}

/// The workload_state name of a step's fan-out record.
pub fn fanout_key(stage_index: usize, step_index: usize) -> String {
    format!("fanout:{stage_index}:{step_index}")
}

/// Whether a workload runs sharded.
pub fn is_sharded(w: &ObjectWorkload) -> bool {
    w.shards.is_some() || w.workers.is_some()
}

/// The state store's plan entry the workers get: the plan's `state.store` (its URL
/// made absolute), or a directory in the state directory for local workers.
fn state_entry(ctx: &Context) -> Result<plans::Store, ScaleError> {
    let plan = &ctx.plan;
    match &plan.plan().state {
        Some(state) => {
            let mut entry = plan.plan().stores.get(&state.store).cloned().ok_or_else(|| {
                ScaleError::Executor(format!("state store {} is not in the plan", state.store))
            })?;
            if let Some(url) = plan.store_url(&state.store) {
                entry.url = url.to_string();
            }
            Ok(entry)
        }
        None => {
            let dir = std::path::absolute(ctx.state.root().join("exchange")).map_err(|source| {
                ScaleError::Io {
                    what: "locating the state directory".into(),
                    source,
                }
            })?;
            std::fs::create_dir_all(&dir).map_err(|source| ScaleError::Io {
                what: format!("creating {}", dir.display()),
                source,
            })?;
            let url = url::Url::from_directory_path(&dir).map_err(|()| {
                ScaleError::Executor(format!("{} is not an absolute path", dir.display()))
            })?;
            Ok(plans::Store {
                region: plan.plan().target.clone(),
                url: url.to_string(),
                options: Default::default(),
                multipart: None,
                retry: None,
                credentials: Default::default(),
            })
        }
    }
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
    let key = fanout_key(stage_index, step_index);
    let previous: Option<FanOut> = ctx
        .db
        .workload_state(name, &key)?
        .and_then(|v| serde_json::from_str(&v).ok());
    let generation = match &previous {
        Some(p) if !p.finished => p.generation,
        Some(p) => p.generation + 1,
        None => 1,
    };
    let layout = Layout::new(
        ctx.plan.name(),
        name,
        stage_index,
        &stage.name,
        step_index,
        task,
        generation,
    );
    let store = state.store.clone();
    let reused: Option<WorkOrder> = match &previous {
        Some(p) if !p.finished => exchange::get_json(&store, &layout.order(), "work order")
            .await?
            .filter(|o: &WorkOrder| o.plan_digest == ctx.plan.digest().to_string()),
        _ => None,
    };
    let counters = Arc::new(Counters::default());
    let description = match task {
        ShardTask::Copy => format!("{name}: {} → {} in shards", w.from, w.to),
        ShardTask::Verify => format!("{name}: re-read and hash {} in shards", w.to),
    };
    ctx.emit(Event::StepStarted {
        stage: stage.name.clone(),
        step: step_index + 1,
        kind: task.as_str().into(),
        workload: Some(name.to_owned()),
        description,
        counters: Some(counters.clone()),
    });
    let order = match reused {
        Some(order) => {
            tracing::info!(
                "{name}: resuming the fan-out of {} (generation {generation})",
                layout.order()
            );
            order
        }
        None => {
            let split = match task {
                ShardTask::Copy => split_source(ctx, name, w).await?,
                ShardTask::Verify => split_manifest(ctx, name, w)?,
            };
            let parallelism = parallelism(w);
            let order = WorkOrder {
                version: ORDER_VERSION,
                plan_digest: ctx.plan.digest().to_string(),
                plan_text: std::fs::read_to_string(ctx.plan.path()).map_err(|source| {
                    ScaleError::Io {
                        what: format!("reading {}", ctx.plan.path().display()),
                        source,
                    }
                })?,
                plan_path: std::path::absolute(ctx.plan.path())
                    .unwrap_or_else(|_| ctx.plan.path().to_path_buf())
                    .display()
                    .to_string(),
                stage: stage.name.clone(),
                stage_index,
                attempt,
                step: step_index,
                task,
                workload: name.to_owned(),
                epoch: ctx
                    .db
                    .meta(&format!("epoch:{name}"))?
                    .and_then(|v| v.parse().ok()),
                checkpoint_seconds: checkpoint_seconds(),
                bandwidth: ctx
                    .plan
                    .bandwidth(name)
                    .map(|b| (b / u64::from(parallelism.min(split.shards.len() as u32).max(1))).max(1)),
                objects: split.objects,
                bytes: split.bytes,
                shards: split.shards,
            };
            for shard in &order.shards {
                exchange::upload_rows(
                    &store,
                    &layout.known(shard.index),
                    &ctx.db,
                    name,
                    &shard.range,
                    None,
                )
                .await?;
            }
            exchange::put_json(&store, &layout.order(), &order).await?;
            order
        }
    };
    counters
        .discovered_objects
        .store(order.objects, std::sync::atomic::Ordering::Relaxed);
    counters
        .discovered_bytes
        .store(order.bytes, std::sync::atomic::Ordering::Relaxed);
    let mut record = FanOut {
        generation,
        stage: stage.name.clone(),
        step: step_index + 1,
        task: task.as_str().into(),
        order: layout.order().to_string(),
        executor: if w.workers.as_ref().is_some_and(|x| x.kubernetes.is_some()) {
            "kubernetes".into()
        } else {
            "local".into()
        },
        finished: false,
        shards: order
            .shards
            .iter()
            .map(|s| ShardStatus {
                index: s.index,
                range: s.range.clone(),
                status: "pending".into(),
                error: None,
                objects: 0,
                bytes: 0,
            })
            .collect(),
    };
    save(ctx, name, &key, &record)?;

    // Shards with a clean result stay done; a result with failures is run again.
    let mut to_run = Vec::new();
    for shard in &order.shards {
        match read_result(&store, &layout, shard.index).await? {
            Some(r) if r.failed() == 0 => {}
            Some(_) => {
                exchange::remove(&store, &layout.result(shard.index)).await?;
                to_run.push(shard.index);
            }
            None => to_run.push(shard.index),
        }
    }
    let observed = Observed {
        aggregate: Arc::new(Aggregate::default()),
        counters: counters.clone(),
    };
    let launch = Launch {
        shards: to_run,
        order: layout.order().to_string(),
        state_store: serde_json::to_string(&entry).map_err(|e| ScaleError::Io {
            what: "encoding the state store".into(),
            source: e.into(),
        })?,
        parallelism: parallelism(w),
        attempts: executor::DEFAULT_ATTEMPTS,
    };
    let ends: Ends = match w.workers.as_ref().and_then(|x| x.kubernetes.as_ref()) {
        Some(k) => {
            executor::kubernetes::run(ctx, k, &order, &launch, &observed, &ctx.cancel).await?
        }
        None => executor::local::run(&launch, &observed, &ctx.cancel).await?,
    };

    // Merge every shard that has a result, in key order.
    let mut summary = StepSummary::default();
    let mut evidence = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut interrupted = ctx.cancel.is_cancelled();
    for (status, shard) in record.shards.iter_mut().zip(&order.shards) {
        let result = read_result(&store, &layout, shard.index).await?;
        match result {
            Some(result) => {
                merge_shard(&store, &layout, &ctx.db, name, &result).await?;
                add_report(ctx, stage, name, &state, &result, &mut summary);
                status.objects = result.rows;
                status.bytes = result
                    .copy
                    .as_ref()
                    .map(|r| r.bytes)
                    .or(result.verify.as_ref().map(|r| r.bytes))
                    .unwrap_or(0);
                if result.failed() > 0 {
                    status.status = "failed".into();
                    status.error = Some(format!("{} object(s) failed", result.failed()));
                    failures.push(format!(
                        "shard {} {}: {} object(s) failed{}",
                        shard.index,
                        shard.range.describe(),
                        result.failed(),
                        first_failure(&result)
                            .map(|(k, why)| format!(" (first: {k:?}: {})", state.redact(&why)))
                            .unwrap_or_default()
                    ));
                } else {
                    status.status = "done".into();
                }
                evidence.push(ShardEvidence {
                    index: shard.index,
                    after: shard.range.after.clone(),
                    through: shard.range.through.clone(),
                    rows: result.rows,
                    result_digest: format!("sha256:{}", result.rows_digest),
                });
            }
            None => match ends.get(&shard.index) {
                Some(ShardEnd::Failed(why)) => {
                    status.status = "failed".into();
                    status.error = Some(why.clone());
                    failures.push(format!(
                        "shard {} {}: {}",
                        shard.index,
                        shard.range.describe(),
                        state.redact(why)
                    ));
                }
                _ => {
                    status.status = "interrupted".into();
                    interrupted = true;
                }
            },
        }
    }
    record.finished = failures.is_empty() && !interrupted;
    save(ctx, name, &key, &record)?;
    if task == ShardTask::Copy && !interrupted {
        // The shards each started a new listing epoch from the order's.
        let epoch = order.epoch.unwrap_or(0) + 1;
        ctx.db.set_meta(&format!("epoch:{name}"), &epoch.to_string())?;
    }
    summary.shards = Some(evidence);
    let outcome = if interrupted {
        StepResult::Interrupted
    } else if failures.is_empty() {
        StepResult::Succeeded
    } else {
        StepResult::failed(format!(
            "{} of {} shard(s) failed; a rerun runs only those: {}",
            failures.len(),
            order.shards.len(),
            failures.join("; ")
        ))
    };
    Ok((summary, outcome))
}

/// A shard's first failed object and why, for the step's message.
fn first_failure(result: &ShardResult) -> Option<(String, String)> {
    let copy = result
        .copy
        .as_ref()
        .and_then(|r| r.failures.first().cloned());
    copy.or_else(|| {
        result
            .verify
            .as_ref()
            .and_then(|r| r.problems.first())
            .map(|p| (p.key.clone(), p.detail.clone()))
    })
}

fn parallelism(w: &ObjectWorkload) -> u32 {
    let workers = w.workers.as_ref();
    workers
        .and_then(|x| x.kubernetes.as_ref().and_then(|k| k.parallelism))
        .or(workers.and_then(|x| x.local.as_ref().and_then(|l| l.parallelism)))
        .unwrap_or(DEFAULT_PARALLELISM)
}

fn save(ctx: &Context, name: &str, key: &str, record: &FanOut) -> Result<(), EngineError> {
    let json = serde_json::to_string(record).map_err(|e| ScaleError::Io {
        what: "encoding the fan-out record".into(),
        source: e.into(),
    })?;
    ctx.db.set_workload_state(name, key, &json)?;
    Ok(())
}

fn shard_count(w: &ObjectWorkload) -> u32 {
    w.shards.unwrap_or_else(|| parallelism(w))
}

/// Split the source's keys (what the workload moves) by weight.
async fn split_source(ctx: &Context, name: &str, w: &ObjectWorkload) -> Result<Split, EngineError> {
    use futures::StreamExt;
    let source = open(ctx, &w.from, Access::Read)?;
    let filter = key_filter(w)?;
    let mut splitter = Splitter::new(shard_count(w));
    let mut pages = listing::for_split(&source, w.symlinks);
    let shown = format!("{} ({})", source.name, source.display_url);
    while let Some(page) = tokio::select! {
        p = pages.next() => p,
        () = ctx.cancel.cancelled() => None,
    } {
        for meta in owned(page, &shown, &filter, None)? {
            splitter.push(meta.location.as_ref(), meta.size);
        }
    }
    if ctx.cancel.is_cancelled() {
        return Err(EngineError::Interrupted);
    }
    let split = splitter.finish();
    tracing::info!(
        "{name}: {} objects, {} bytes, split into {} range(s)",
        split.objects,
        split.bytes,
        split.shards.len()
    );
    Ok(split)
}

/// Split the manifest (what verify re-reads), from the state database, in key order.
fn split_manifest(ctx: &Context, _name: &str, w: &ObjectWorkload) -> Result<Split, EngineError> {
    let mut splitter = Splitter::new(shard_count(w));
    let mut after: Option<String> = None;
    loop {
        let page = ctx.db.manifest_page(_name, after.as_deref(), 4096)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for row in &page {
            splitter.push(&row.key, row.size);
        }
    }
    Ok(splitter.finish())
}

fn key_filter(w: &ObjectWorkload) -> Result<KeyFilter, EngineError> {
    KeyFilter::new(&w.include, &w.exclude).map_err(|e| EngineError::StepFailed {
        stage: String::new(),
        step: 0,
        kind: "copy".into(),
        cause: format!("bad include/exclude pattern: {e}").into(),
    })
}

/// Add a shard's report to the step's summary and emit its problems.
fn add_report(
    ctx: &Context,
    stage: &Stage,
    name: &str,
    state: &StoreHandle,
    result: &ShardResult,
    summary: &mut StepSummary,
) {
    if let Some(r) = &result.copy {
        summary.copied += r.copied;
        summary.skipped += r.skipped;
        summary.failed += r.failed;
        summary.pruned += r.pruned;
        summary.bytes += r.bytes;
        if r.adopted > 0 {
            *summary.adopted.get_or_insert(0) += r.adopted;
        }
        if r.prune_failed > 0 {
            *summary.prune_failed.get_or_insert(0) += r.prune_failed;
        }
        for (key, reason) in &r.failures {
            ctx.emit(Event::ObjectProblem {
                stage: stage.name.clone(),
                workload: name.to_owned(),
                key: key.clone(),
                problem: "copy-failed".into(),
                detail: state.redact(reason),
            });
        }
    }
    if let Some(r) = &result.verify {
        summary.verified += r.verified;
        summary.failed += r.failed();
        summary.bytes += r.bytes;
        for p in &r.problems {
            ctx.emit(Event::ObjectProblem {
                stage: stage.name.clone(),
                workload: name.to_owned(),
                key: p.key.clone(),
                problem: serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                detail: state.redact(&p.detail),
            });
        }
    }
}

/// The plan a worker would run: kept for callers that check it up front.
pub fn plan_digest(plan: &ValidatedPlan) -> String {
    plan.digest().to_string()
}
