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

use super::ScaleError;
use super::exchange::{self, load_rows, upload_rows};
use super::order::{Layout, ShardTask, WorkOrder};
use super::progress::WorkerLine;
use super::result::ShardResult;
use crate::engine::steps::objects::{copy_job, sweep_staging_files, verify_job};
use crate::state::Db;
use crate::transfer::range::ScanRange;
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

/// What a worker is asked to run: the order, pinned by the digest of its bytes (which
/// the Job's arguments carry, out of reach of whoever can write the state store), and
/// its shard.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The order's path in the state store.
    pub order: String,
    /// `sha256:<hex>` of the order's bytes.
    pub order_digest: String,
    /// The shard.
    pub index: u32,
}

/// Read and check the order: its bytes hash to the pinned digest, its version is this
/// build's, its plan validates and hashes to the plan digest it carries.
async fn read_order(
    store: &Arc<dyn ObjectStore>,
    layout: &Layout,
    assignment: &Assignment,
) -> Result<(WorkOrder, ValidatedPlan), ScaleError> {
    let bad = |detail: String| ScaleError::Order {
        path: assignment.order.clone(),
        detail,
    };
    let Some((file, digest)) = exchange::download(store, &layout.order()).await? else {
        return Err(bad("not found in the state store".into()));
    };
    if format!("sha256:{digest}") != assignment.order_digest {
        return Err(bad(format!(
            "its bytes hash to sha256:{digest}, not the {} this worker was started with: the order was changed after the coordinator wrote it",
            assignment.order_digest
        )));
    }
    let bytes = std::fs::read(file.path()).map_err(|source| ScaleError::Io {
        what: format!("reading {}", assignment.order),
        source,
    })?;
    let order: WorkOrder =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a work order: {e}")))?;
    if order.version != super::order::ORDER_VERSION {
        return Err(bad(format!(
            "format version {} (this relocate reads {}): run workers of the coordinator's version",
            order.version,
            super::order::ORDER_VERSION
        )));
    }
    let plan = plans::parse(&order.plan_text, FsPath::new(&order.plan_path))
        .map_err(|e| bad(format!("its plan does not validate: {e}")))?;
    if plan.digest().to_string() != order.plan_digest {
        return Err(bad(format!(
            "its plan hashes to {}, not the {} it claims",
            plan.digest(),
            order.plan_digest
        )));
    }
    Ok((order, plan))
}

/// Run the assigned shard.
pub async fn run_worker(
    state: &StoreHandle,
    assignment: &Assignment,
    cancel: &CancellationToken,
) -> Result<WorkerOutcome, ScaleError> {
    let store = state.store.clone();
    let layout = Layout::of_order(&assignment.order);
    let index = assignment.index;
    let (order, plan) = read_order(&store, &layout, assignment).await?;
    let bad = |detail: String| ScaleError::Order {
        path: assignment.order.clone(),
        detail,
    };
    let shard = order
        .shards
        .iter()
        .find(|s| s.index == index)
        .ok_or_else(|| {
            bad(format!(
                "it has no shard {index} (it has {})",
                order.shards.len()
            ))
        })?
        .clone();
    let w = plan.object_workload(&order.workload).ok_or_else(|| {
        bad(format!(
            "its plan has no object workload {}",
            order.workload
        ))
    })?;
    let open = |name: &str, access| open_plan_store(&plan, name, access);
    // A result of this very order: finished clean, nothing to do (a Job runs every
    // index); finished with failures, its rows are where this run starts.
    let previous = super::merge::read_result(&store, &layout, index)
        .await?
        .filter(|r| r.order_digest == assignment.order_digest && r.range == shard.range);
    if let Some(done) = previous.as_ref().filter(|r| r.failed() == 0) {
        tracing::info!("shard {index}: already finished");
        println_line(&WorkerLine::finished(index, &Counters::default(), done));
        return Ok(WorkerOutcome::Done);
    }

    let dir = tempfile::tempdir().map_err(|source| ScaleError::Io {
        what: "creating the worker's database directory (TMPDIR)".into(),
        source,
    })?;
    let db = Db::open(&dir.path().join("worker.db"))?;
    load_rows(&store, &layout.known(index), &db, &order.workload).await?;
    // Checkpoints older than a previous result are in it; load the result, then only
    // the checkpoints written after it.
    let first_seq = match &previous {
        Some(r) => {
            load_rows(&store, &layout.result_rows(index), &db, &order.workload).await?;
            r.journal_seq
        }
        None => 0,
    };
    let mut next_seq = first_seq;
    for seq in journal_seqs(&store, &layout, index).await? {
        if seq < first_seq {
            continue;
        }
        load_rows(&store, &layout.journal(index, seq), &db, &order.workload).await?;
        next_seq = seq + 1;
    }
    // Each start lists in an epoch of its own, so what a source deleted between two
    // starts is seen as deleted (pruned), as an in-process rerun would.
    let starts = exchange::count_start(&store, &layout.started(index)).await?;
    let epoch_key = format!("epoch:{}", order.workload);
    match (order.epoch, starts) {
        (Some(epoch), n) => db.set_meta(&epoch_key, &(epoch + i64::from(n)).to_string())?,
        // An earlier pod began this first copy: what it wrote is this run's, not a
        // foreign target's (`existingTarget` applies to the first start only).
        (None, n) if n > 0 => db.set_meta(&epoch_key, &n.to_string())?,
        (None, _) => {}
    }
    if starts > 0 {
        tracing::info!(
            "shard {index}: start {}, resuming from {} checkpoint(s)",
            starts + 1,
            next_seq - first_seq
        );
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
        Journal {
            store: store.clone(),
            layout: layout.clone(),
            db: db.clone(),
            order: order.clone(),
            index,
        },
        next_seq,
        began.clone(),
        stop_side_tasks.clone(),
    ));
    let ran = async {
        match order.task {
            ShardTask::Copy => {
                let source = open(&w.from, Access::Read)?;
                let target = open(&w.to, Access::Write)?;
                // A killed earlier run of this shard may have left object_store's
                // staging files (`name#N`) beside objects it was writing, as in process.
                if let Some(dir) = plan
                    .store_url(&w.to)
                    .filter(|u| u.scheme() == "file")
                    .and_then(|u| u.to_file_path().ok())
                {
                    sweep_staging_files(&db, &order.workload, &dir)?;
                }
                let mut job =
                    copy_job(&order.workload, w, order.bandwidth, &source, &target).map_err(bad)?;
                // The range is listed at both ends (the source; the target on a first
                // copy): stop early only if both list in byte order.
                job.range = Some(ScanRange {
                    keys: shard.range.clone(),
                    ordered: source.lists_in_byte_order() && target.lists_in_byte_order(),
                });
                let report = copy_workload(&job, &db, &counters, cancel).await?;
                Ok::<_, ScaleError>(ShardResult::copy(&shard, report))
            }
            ShardTask::Verify => {
                let target = open(&w.to, Access::Read)?;
                let mut job = verify_job(&order.workload, w, &target).map_err(bad)?;
                job.range = Some(ScanRange {
                    keys: shard.range.clone(),
                    ordered: target.lists_in_byte_order(),
                });
                let report = verify_workload(&job, &db, &counters, cancel).await?;
                Ok(ShardResult::verify(&shard, report))
            }
        }
    }
    .await;
    stop_side_tasks.cancel();
    let _ = progress.await;
    let next_seq = checkpoints.await.unwrap_or(next_seq);
    let mut result = match ran {
        Ok(result) => result,
        Err(e) => {
            // Keep what this run did for the next one, then report the error.
            if let Err(c) =
                checkpoint(&store, &layout, &db, &order, index, next_seq, Some(&began)).await
            {
                tracing::warn!("shard {index}: the last checkpoint failed too: {c}");
            }
            return Err(e);
        }
    };
    if result.interrupted() {
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
    result.order_digest = assignment.order_digest.clone();
    result.journal_seq = next_seq;
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
    let Some(shard) = order.shards.iter().find(|s| s.index == index) else {
        return Err(ScaleError::Executor(format!(
            "the order has no shard {index}"
        )));
    };
    let path = layout.journal(index, seq);
    let (rows, _) = upload_rows(store, &path, db, &order.workload, &shard.range, since).await?;
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

/// Where a worker's checkpoints go.
struct Journal {
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    db: Db,
    order: WorkOrder,
    index: u32,
}

/// Checkpoint every interval until stopped; returns the next checkpoint number. A
/// failed checkpoint (the state store unreachable a while) is retried at the next
/// interval with everything since the last one that landed: the copy goes on.
async fn checkpoint_loop(
    journal: Journal,
    mut seq: u64,
    mut since: String,
    stop: CancellationToken,
) -> u64 {
    let every = Duration::from_secs(journal.order.checkpoint_seconds.max(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return seq,
        }
        let began = stamp(chrono::Utc::now() - STAMP_SLACK);
        let Journal {
            store,
            layout,
            db,
            order,
            index,
        } = &journal;
        match checkpoint(store, layout, db, order, *index, seq, Some(&since)).await {
            Ok(next) => {
                seq = next;
                since = began;
            }
            Err(e) => {
                tracing::warn!("shard {index}: checkpoint {seq} failed, retried next interval: {e}")
            }
        }
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
