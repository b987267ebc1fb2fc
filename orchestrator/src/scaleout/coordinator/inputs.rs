//! What a new fan-out starts from: the state store the workers meet in, the split of
//! the keys, and the order written there with each range's known rows.

use std::sync::Arc;

use connectors::store::Access;
use futures::StreamExt;
use object_store::ObjectStore;
use plans::ObjectWorkload;

use super::{DEFAULT_PARALLELISM, parallelism};
use crate::engine::steps::objects::open;
use crate::engine::{Context, EngineError};
use crate::scaleout::order::{Layout, ORDER_VERSION, ShardTask, WorkOrder};
use crate::scaleout::split::{Split, Splitter};
use crate::scaleout::{ScaleError, exchange, listing};
use crate::transfer::KeyFilter;
use crate::transfer::listing::owned;

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

/// The state store's plan entry the workers get: the plan's `state.store` (its URL
/// made absolute), or a directory in the state directory for local workers.
pub fn state_entry(ctx: &Context) -> Result<plans::Store, ScaleError> {
    let plan = &ctx.plan;
    match &plan.plan().state {
        Some(state) => {
            let mut entry = plan
                .plan()
                .stores
                .get(&state.store)
                .cloned()
                .ok_or_else(|| {
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

/// Where a new order is made: the step and its place in the plan.
pub struct NewOrder<'a> {
    /// The workload's name.
    pub name: &'a str,
    /// The workload.
    pub w: &'a ObjectWorkload,
    /// Stage name and position.
    pub stage: &'a str,
    /// Stage position, from 0.
    pub stage_index: usize,
    /// Stage attempt.
    pub attempt: u32,
    /// Step position, from 0.
    pub step: usize,
    /// Copy or verify.
    pub task: ShardTask,
}

/// Split, then write each range's known rows and the order; returns the order and the
/// `sha256:` of its bytes.
pub async fn write_order(
    ctx: &Context,
    store: &Arc<dyn ObjectStore>,
    layout: &Layout,
    new: &NewOrder<'_>,
) -> Result<(WorkOrder, String), EngineError> {
    let split = match new.task {
        ShardTask::Copy => split_source(ctx, new.name, new.w).await?,
        ShardTask::Verify => split_manifest(ctx, new.name, new.w)?,
    };
    let running = parallelism(new.w).min(split.shards.len() as u32).max(1);
    let order = WorkOrder {
        version: ORDER_VERSION,
        plan_digest: ctx.plan.digest().to_string(),
        // The very text that was validated: an edit of the plan file during the run
        // does not reach the workers.
        plan_text: ctx.plan.text().to_owned(),
        plan_path: std::path::absolute(ctx.plan.path())
            .unwrap_or_else(|_| ctx.plan.path().to_path_buf())
            .display()
            .to_string(),
        stage: new.stage.to_owned(),
        stage_index: new.stage_index,
        attempt: new.attempt,
        step: new.step,
        task: new.task,
        workload: new.name.to_owned(),
        epoch: ctx
            .db
            .meta(&format!("epoch:{}", new.name))?
            .and_then(|v| v.parse().ok()),
        checkpoint_seconds: checkpoint_seconds(),
        bandwidth: ctx
            .plan
            .bandwidth(new.name)
            .map(|b| (b / u64::from(running)).max(1)),
        objects: split.objects,
        bytes: split.bytes,
        shards: split.shards,
    };
    for shard in &order.shards {
        exchange::upload_rows(
            store,
            &layout.known(shard.index),
            &ctx.db,
            new.name,
            &shard.range,
            None,
        )
        .await?;
    }
    let digest = exchange::put_json(store, &layout.order(), &order).await?;
    Ok((order, digest))
}

fn shard_count(w: &ObjectWorkload) -> u32 {
    w.shards
        .unwrap_or_else(|| parallelism(w).max(DEFAULT_PARALLELISM))
}

/// Split the source's keys (what the workload moves) by weight.
async fn split_source(ctx: &Context, name: &str, w: &ObjectWorkload) -> Result<Split, EngineError> {
    let source = open(ctx, &w.from, Access::Read)?;
    let filter = KeyFilter::new(&w.include, &w.exclude).map_err(|e| ScaleError::Order {
        path: format!("workloads.{name}"),
        detail: format!("bad include/exclude pattern: {e}"),
    })?;
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
fn split_manifest(ctx: &Context, name: &str, w: &ObjectWorkload) -> Result<Split, EngineError> {
    let mut splitter = Splitter::new(shard_count(w));
    let mut after: Option<String> = None;
    loop {
        let page = ctx.db.manifest_page(name, after.as_deref(), 4096)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for row in &page {
            splitter.push(&row.key, row.size);
        }
    }
    Ok(splitter.finish())
}
