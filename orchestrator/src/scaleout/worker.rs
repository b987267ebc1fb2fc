//! `relocate worker`: run one shard of a work order with the same copy and verify
//! engine as an in-process run, journaling to a local database and checkpointing it
//! to the state store.
//!
//! A worker trusts nothing but the order's plan: it re-validates the plan text and
//! refuses an order whose digest differs, opens the stores that plan names (secrets by
//! the plan's own `${env:…}`/`${file:…}` references, which the pod gets from its
//! Secret), and loads the rows the coordinator exported for its range plus its own
//! earlier checkpoints. Every `checkpointSeconds` it uploads the rows changed since the
//! previous checkpoint; a worker killed and restarted (a new pod) therefore redoes at
//! most one interval. At the end it writes its range's rows and a report; progress
//! goes to stdout as NDJSON, one line a second, which the coordinator aggregates.

use std::io::Write;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use connectors::store::{Access, StoreHandle, open_store};
use futures::TryStreamExt;
use object_store::ObjectStore;
use plans::{StoreSpec, ValidatedPlan};
use tokio_util::sync::CancellationToken;

use super::exchange::{self, load_rows, upload_rows};
use super::order::{Layout, ShardTask, WorkOrder};
use super::progress::WorkerLine;
use super::result::ShardResult;
use super::ScaleError;
use crate::engine::steps::objects::{copy_job, verify_job};
use crate::state::Db;
use crate::transfer::{Counters, copy_workload, verify_workload};

/// How a worker run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerOutcome {
    /// The range is done, with no failure.
    Done,
    /// The range is done; some objects failed (copy) or did not verify.
    Failed,
    /// Stopped by a signal; the last checkpoint is saved and a rerun resumes.
    Interrupted,
}

/// Open the state store from its plan entry (as the coordinator passed it).
pub fn open_state_store(spec: &plans::Store) -> Result<StoreHandle, ScaleError> {
    let typed = StoreSpec::from_store("state", spec).map_err(|e| ScaleError::Order {
        path: "--state-store".into(),
        detail: e.to_string(),
    })?;
    open_store("state", &typed, FsPath::new("/"), Access::Write).map_err(|source| {
        ScaleError::OpenStore {
            store: "state".into(),
            source,
        }
    })
}

/// Run shard `index` of the order at `order_path`.
pub async fn run_worker(
    state: &StoreHandle,
    order_path: &str,
    index: u32,
    cancel: &CancellationToken,
) -> Result<WorkerOutcome, ScaleError> {
    let store = state.store.clone();
    let layout = Layout::of_order(order_path);
    let order: WorkOrder = exchange::get_json(&store, &layout.order(), "work order")
        .await?
        .ok_or_else(|| ScaleError::Order {
            path: order_path.to_owned(),
            detail: "not found in the state store".into(),
        })?;
    let bad = |detail: String| ScaleError::Order {
        path: order_path.to_owned(),
        detail,
    };
    let shard = order
        .shards
        .iter()
        .find(|s| s.index == index)
        .ok_or_else(|| bad(format!("it has no shard {index} (it has {})", order.shards.len())))?
        .clone();
    let plan = plans::parse(&order.plan_text, FsPath::new(&order.plan_path))
        .map_err(|e| bad(format!("its plan does not validate: {e}")))?;
    if plan.digest().to_string() != order.plan_digest {
        return Err(bad(format!(
            "its plan hashes to {}, not the {} it claims",
            plan.digest(),
            order.plan_digest
        )));
    }
    let w = plan
        .object_workload(&order.workload)
        .ok_or_else(|| bad(format!("its plan has no object workload {}", order.workload)))?;
    let open = |name: &str, access| open_plan_store(&plan, name, access);

    let dir = tempfile::tempdir().map_err(|source| ScaleError::Io {
        what: "creating the worker's database directory (TMPDIR)".into(),
        source,
    })?;
    let db = Db::open(&dir.path().join("worker.db"))?;
    load_rows(&store, &layout.known(index), &db, &order.workload).await?;
    let mut next_seq = 0;
    for seq in journal_seqs(&store, &layout, index).await? {
        load_rows(&store, &layout.journal(index, seq), &db, &order.workload).await?;
        next_seq = seq + 1;
    }
    let restarted = exchange::exists(&store, &layout.started(index)).await?;
    let epoch_key = format!("epoch:{}", order.workload);
    match (order.epoch, restarted) {
        (Some(epoch), _) => db.set_meta(&epoch_key, &epoch.to_string())?,
        // An earlier pod began this first copy: what it wrote is this run's, not a
        // foreign target's (`existingTarget` applies to the first start only).
        (None, true) => db.set_meta(&epoch_key, "0")?,
        (None, false) => {}
    }
    exchange::touch(&store, &layout.started(index)).await?;
    if restarted {
        tracing::info!("shard {index}: resuming from {next_seq} checkpoint(s)");
    }

    // Rows loaded above are the coordinator's or earlier checkpoints': a checkpoint
    // carries only what changed after this point.
    let began = stamp(chrono::Utc::now() - STAMP_SLACK);
    let counters = Arc::new(Counters::default());
    let stop_side_tasks = CancellationToken::new();
    let progress = tokio::spawn(print_progress(
        index,
        counters.clone(),
        stop_side_tasks.clone(),
    ));
    let checkpoints = tokio::spawn(checkpoint_loop(
        store.clone(),
        layout.clone(),
        db.clone(),
        order.clone(),
        index,
        next_seq,
        began.clone(),
        stop_side_tasks.clone(),
    ));
    let ran = async {
        match order.task {
            ShardTask::Copy => {
                let source = open(&w.from, Access::Read)?;
                let target = open(&w.to, Access::Write)?;
                let mut job = copy_job(&order.workload, w, order.bandwidth, &source, &target)
                    .map_err(bad)?;
                job.range = Some(shard.range.clone());
                let report = copy_workload(&job, &db, &counters, cancel).await?;
                Ok::<_, ScaleError>(ShardResult::copy(&shard, report))
            }
            ShardTask::Verify => {
                let target = open(&w.to, Access::Read)?;
                let mut job = verify_job(&order.workload, w, &target).map_err(bad)?;
                job.range = Some(shard.range.clone());
                let report = verify_workload(&job, &db, &counters, cancel).await?;
                Ok(ShardResult::verify(&shard, report))
            }
        }
    }
    .await;
    stop_side_tasks.cancel();
    let _ = progress.await;
    let next_seq = match checkpoints.await {
        Ok(Ok(seq)) => seq,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(ScaleError::Executor(format!("checkpoint task: {e}"))),
    };
    let mut result = ran?;
    if result.interrupted() {
        // Keep what this run did for the next one.
        checkpoint(&store, &layout, &db, &order, index, next_seq, Some(&began)).await?;
        return Ok(WorkerOutcome::Interrupted);
    }
    let (rows, digest) = upload_rows(
        &store,
        &layout.result_rows(index),
        &db,
        &order.workload,
        &shard.range,
        None,
    )
    .await?;
    result.rows = rows;
    result.rows_digest = digest;
    exchange::put_json(&store, &layout.result(index), &result).await?;
    println_line(&WorkerLine::finished(index, &counters, &result));
    Ok(if result.failed() > 0 {
        WorkerOutcome::Failed
    } else {
        WorkerOutcome::Done
    })
}

fn open_plan_store(
    plan: &ValidatedPlan,
    name: &str,
    access: Access,
) -> Result<StoreHandle, ScaleError> {
    let spec = plan.store(name).ok_or_else(|| ScaleError::Order {
        path: String::new(),
        detail: format!("store {name} is not in the plan"),
    })?;
    open_store(name, spec, plan.base_dir(), access).map_err(|source| ScaleError::OpenStore {
        store: name.to_owned(),
        source,
    })
}

/// The checkpoints already in the state store for shard `index`, in order.
async fn journal_seqs(
    store: &Arc<dyn ObjectStore>,
    layout: &Layout,
    index: u32,
) -> Result<Vec<u64>, ScaleError> {
    let prefix = layout.shard_dir(index);
    let listed: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|source| ScaleError::Store {
            what: "listing",
            path: prefix.to_string(),
            source,
        })?;
    let mut seqs: Vec<u64> = listed
        .iter()
        .filter_map(|m| m.location.filename().and_then(Layout::journal_seq))
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// Upload rows changed since `since` as checkpoint `seq`; returns the next number.
async fn checkpoint(
    store: &Arc<dyn ObjectStore>,
    layout: &Layout,
    db: &Db,
    order: &WorkOrder,
    index: u32,
    seq: u64,
    since: Option<&str>,
) -> Result<u64, ScaleError> {
    let shard = order
        .shards
        .iter()
        .find(|s| s.index == index)
        .map(|s| s.range.clone())
        .unwrap_or_default();
    let path = layout.journal(index, seq);
    let (rows, _) = upload_rows(store, &path, db, &order.workload, &shard, since).await?;
    if rows == 0 {
        exchange::remove(store, &path).await?;
        return Ok(seq);
    }
    tracing::debug!("shard {index}: checkpoint {seq} with {rows} row(s)");
    Ok(seq + 1)
}

/// Rows are stamped when the writer commits them, up to a batch after the copy
/// confirmed them; a checkpoint therefore also takes rows stamped this long before the
/// previous one began (a row sent twice is harmless: loading is an upsert).
const STAMP_SLACK: chrono::Duration = chrono::Duration::seconds(5);

async fn checkpoint_loop(
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    db: Db,
    order: WorkOrder,
    index: u32,
    mut seq: u64,
    mut since: String,
    stop: CancellationToken,
) -> Result<u64, ScaleError> {
    let every = Duration::from_secs(order.checkpoint_seconds.max(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return Ok(seq),
        }
        let began = stamp(chrono::Utc::now() - STAMP_SLACK);
        seq = checkpoint(&store, &layout, &db, &order, index, seq, Some(&since)).await?;
        since = began;
    }
}

/// A time as the database stamps rows.
fn stamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn print_progress(index: u32, counters: Arc<Counters>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return,
        }
        println_line(&WorkerLine::progress(index, &counters));
    }
}

fn println_line(line: &WorkerLine) {
    if let Ok(text) = serde_json::to_string(line) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (the coordinator went away) must not stop the work.
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }
}
