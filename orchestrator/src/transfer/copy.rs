//! Copy: list the source, skip what is unchanged, stream the rest to the target while
//! hashing it, and prune what the source no longer has.
//!
//! Order of writes for each object: the `copying` intent is committed before the first
//! byte moves; the `copied` row (with the source hash) is written only after the
//! target confirmed the put. A crash therefore leaves every object either trusted with
//! its hash or marked for a re-copy.

use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use plans::ChecksumAlgorithm;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::local::{BatchContext, LocalEnds};
use super::ratelimit::RateLimiter;
use super::{Counters, KeyFilter, Shard, TransferError};
use crate::state::{Db, Known, ObjectUpdate, ObjectWriter};

/// Multipart tuning.
#[derive(Debug, Clone, Copy)]
pub struct Multipart {
    /// Objects at least this large are uploaded in parts.
    pub threshold: u64,
    /// Part size.
    pub part_size: u64,
    /// Parts in flight per object.
    pub concurrency: usize,
}

impl Default for Multipart {
    fn default() -> Self {
        Self {
            threshold: 32 << 20,
            part_size: 8 << 20,
            concurrency: 4,
        }
    }
}

/// Everything one copy of one workload needs.
#[derive(Debug, Clone)]
pub struct CopyJob {
    /// Workload name (keys the state rows).
    pub workload: String,
    /// Source store name, for messages.
    pub source_name: String,
    /// Target store name, for messages.
    pub target_name: String,
    /// Source store (keys relative to its prefix).
    pub source: Arc<dyn ObjectStore>,
    /// Target store.
    pub target: Arc<dyn ObjectStore>,
    /// Which keys move.
    pub filter: KeyFilter,
    /// Manifest hash.
    pub algorithm: ChecksumAlgorithm,
    /// Objects in flight.
    pub concurrency: usize,
    /// Multipart tuning.
    pub multipart: Multipart,
    /// Shared bandwidth cap.
    pub limiter: Option<Arc<RateLimiter>>,
    /// Key-space slice, for sharded workers.
    pub shard: Option<Shard>,
    /// Remove from the target what relocate copied earlier and the source deleted since.
    pub prune: bool,
    /// Both stores live in one account: copy server-side (no bytes through relocate),
    /// then read the source once to hash it.
    pub server_side: Option<ServerSide>,
    /// Bytes of object data buffered at once across all transfers (bounds memory
    /// whatever the object sizes and concurrency).
    pub memory_budget: u64,
    /// Both stores are local directories: copy files directly, whole objects (and
    /// batches of small ones) per blocking call (see [`super::local`]).
    pub local: Option<LocalEnds>,
}

/// Two prefixes of one bucket/account, for server-side copies.
#[derive(Debug, Clone)]
pub struct ServerSide {
    /// The client at the account's root.
    pub root: Arc<dyn ObjectStore>,
    /// The source store's prefix inside `root`.
    pub source_prefix: Path,
    /// The target store's prefix inside `root`.
    pub target_prefix: Path,
}

impl ServerSide {
    pub(super) fn join(prefix: &Path, key: &Path) -> Path {
        Path::from_iter(prefix.parts().chain(key.parts()))
    }
}

/// Default [`CopyJob::memory_budget`].
pub const DEFAULT_MEMORY_BUDGET: u64 = 64 << 20;

/// Granularity of the memory budget's permits.
const BUDGET_UNIT: u64 = 64 << 10;

/// Permits an object needs from the memory budget: its whole body when it is put in
/// one request, its parts in flight when it goes multipart.
fn budget_units(job: &CopyJob, size: u64) -> u32 {
    let bytes = if size < job.multipart.threshold {
        size
    } else {
        // The parts in flight plus the one being filled.
        part_size(job, size) * (job.multipart.concurrency.max(1) as u64 + 1)
    };
    let total = (job.memory_budget / BUDGET_UNIT).max(1);
    (bytes.div_ceil(BUDGET_UNIT)).clamp(1, total) as u32
}

/// S3 allows at most 10,000 parts: grow the part for objects that would need more.
const MAX_PARTS: u64 = 9_000;

/// Part size for an object of `size` bytes.
pub(super) fn part_size(job: &CopyJob, size: u64) -> u64 {
    job.multipart.part_size.max(size.div_ceil(MAX_PARTS))
}

/// What one copy did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyReport {
    /// Objects listed (after filtering).
    pub listed: u64,
    /// Objects copied.
    pub copied: u64,
    /// Objects skipped (already at the target, unchanged at the source).
    pub skipped: u64,
    /// Objects whose copy failed.
    pub failed: u64,
    /// Objects pruned from the target.
    pub pruned: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// The first failures (key and reason), at most [`MAX_REPORTED`].
    pub failures: Vec<(String, String)>,
    /// The copy was stopped early (interrupt); the rest is left for the rerun.
    pub interrupted: bool,
}

/// How many failures a report keeps in memory (all are in the state database).
pub const MAX_REPORTED: usize = 100;

/// Copy one workload. Per-object failures are counted in the report, not returned as
/// errors; listing and state failures stop the copy.
pub async fn copy_workload(
    job: &CopyJob,
    db: &Db,
    counters: &Arc<Counters>,
    cancel: &CancellationToken,
) -> Result<CopyReport, TransferError> {
    let writer = db.object_writer();
    let epoch = db.next_epoch(&job.workload)?;
    let sem = Arc::new(Semaphore::new(job.concurrency.max(1)));
    let budget = Arc::new(Semaphore::new(
        (job.memory_budget / BUDGET_UNIT).max(1) as usize
    ));
    let mut tasks: JoinSet<Vec<ObjectOutcome>> = JoinSet::new();
    // A bandwidth cap needs the async path's pacing.
    let local = job.local.as_ref().filter(|_| job.limiter.is_none());
    let mut report = CopyReport::default();

    let mut vanished = 0u64;
    let mut listing = source_listing(job);
    while let Some(page) = tokio::select! {
        c = listing.next() => c,
        () = cancel.cancelled() => None,
    } {
        let listed = super::listing::owned(page, &job.source_name, &job.filter, job.shard)?;
        let keys: Vec<&str> = listed.iter().map(|m| m.location.as_ref()).collect();
        let known = db.known(&job.workload, &keys)?;
        let mut to_copy = Vec::new();
        for (meta, known) in listed.into_iter().zip(known) {
            report.listed += 1;
            Counters::add(&counters.discovered_objects, 1);
            Counters::add(&counters.discovered_bytes, meta.size);
            if unchanged(known.as_ref(), &meta) {
                report.skipped += 1;
                Counters::add(&counters.skipped, 1);
                Counters::add(&counters.done_objects, 1);
                Counters::add(&counters.done_bytes, meta.size);
                continue;
            }
            writer.send(ObjectUpdate::Intent {
                workload: job.workload.clone(),
                key: meta.location.as_ref().to_owned(),
                size: meta.size,
                etag: meta.e_tag.clone(),
                modified: Some(meta.last_modified.to_rfc3339()),
                epoch,
            });
            to_copy.push(meta);
        }
        // Intents must be committed before the copies they announce start; a page of
        // unchanged objects writes nothing and needs no wait.
        if !to_copy.is_empty() {
            writer.flush().await?;
        }
        if let Some(ends) = local {
            for batch in super::local::batches(to_copy, |m| m.size) {
                let permit = tokio::select! {
                    p = sem.clone().acquire_owned() => p.map_err(|e| TransferError::Task(e.to_string()))?,
                    () = cancel.cancelled() => break,
                };
                while let Some(done) = tasks.try_join_next() {
                    vanished += record(done, &mut report, &writer, job, counters)?;
                }
                let (ends, cx) = (ends.clone(), batch_context(job, counters, cancel));
                tasks.spawn_blocking(move || {
                    let outcomes = super::local::copy_batch(&ends, batch, &cx);
                    drop(permit);
                    outcomes
                        .into_iter()
                        .filter_map(|(meta, result)| {
                            result.map(|result| ObjectOutcome { meta, result })
                        })
                        .collect()
                });
            }
            continue;
        }
        for meta in to_copy {
            let permit = tokio::select! {
                p = sem.clone().acquire_owned() => p.map_err(|e| TransferError::Task(e.to_string()))?,
                () = cancel.cancelled() => break,
            };
            let memory = tokio::select! {
                p = budget.clone().acquire_many_owned(budget_units(job, meta.size)) => p.map_err(|e| TransferError::Task(e.to_string()))?,
                () = cancel.cancelled() => break,
            };
            // Keep completed tasks from piling up: collect what is done so far.
            while let Some(done) = tasks.try_join_next() {
                vanished += record(done, &mut report, &writer, job, counters)?;
            }
            let (job2, counters2) = (job.clone(), counters.clone());
            tasks.spawn(async move {
                let outcome = super::object::copy_one(&job2, &meta, &counters2).await;
                drop((permit, memory));
                vec![ObjectOutcome {
                    meta,
                    result: outcome,
                }]
            });
        }
    }
    report.interrupted = cancel.is_cancelled();
    while let Some(done) = tasks.join_next().await {
        vanished += record(done, &mut report, &writer, job, counters)?;
    }
    writer.flush().await?;
    if job.prune && !report.interrupted && job.shard.is_none() {
        // Every listed key now has a live row (unchanged, copied or failed) except the
        // ones that vanished mid-copy; more live rows than that are objects the source
        // deleted. Only then is the source listed again to find which: a delta that
        // deletes nothing writes nothing for its unchanged objects.
        if db.live_objects(&job.workload)? > report.listed - vanished {
            mark_listed(job, &writer, epoch, cancel).await?;
            if !cancel.is_cancelled() {
                prune(job, db, &writer, epoch, &mut report, counters).await?;
            }
        }
        writer.flush().await?;
    }
    report.interrupted = cancel.is_cancelled();
    Ok(report)
}

/// Whether a listed object is already at the target as the state recorded it.
pub(crate) fn unchanged(known: Option<&Known>, meta: &ObjectMeta) -> bool {
    let Some(known) = known else { return false };
    let same_etag = match (&known.etag, &meta.e_tag) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    known.trusted()
        && known.size == meta.size
        && same_etag
        && known.modified.as_deref() == Some(meta.last_modified.to_rfc3339().as_str())
}

/// List the source again and stamp every listed key with `epoch`, so [`prune`] can
/// tell what it no longer has.
async fn mark_listed(
    job: &CopyJob,
    writer: &ObjectWriter,
    epoch: i64,
    cancel: &CancellationToken,
) -> Result<(), TransferError> {
    let mut listing = source_listing(job);
    while let Some(page) = tokio::select! {
        c = listing.next() => c,
        () = cancel.cancelled() => None,
    } {
        for meta in super::listing::owned(page, &job.source_name, &job.filter, None)? {
            writer.send(ObjectUpdate::Seen {
                workload: job.workload.clone(),
                key: meta.location.as_ref().to_owned(),
                epoch,
            });
        }
    }
    writer.flush().await?;
    Ok(())
}

/// The source's listing, a page at a time: local directories through the parallel
/// walk, anything else through its client.
fn source_listing(job: &CopyJob) -> futures::stream::BoxStream<'static, super::listing::Page> {
    match &job.local {
        Some(ends) => super::local::list_store(&ends.source),
        None => super::listing::read_ahead(job.source.list(None)),
    }
}

fn batch_context(
    job: &CopyJob,
    counters: &Arc<Counters>,
    cancel: &CancellationToken,
) -> BatchContext {
    BatchContext {
        source_name: job.source_name.clone(),
        target_name: job.target_name.clone(),
        algorithm: job.algorithm,
        counters: counters.clone(),
        cancel: cancel.clone(),
    }
}

struct ObjectOutcome {
    meta: ObjectMeta,
    result: Result<String, CopyFailure>,
}

/// Why one object did not copy.
#[derive(Debug)]
pub(super) enum CopyFailure {
    /// The source no longer has it (deleted between listing and reading).
    Vanished,
    /// Anything else, with the message to report.
    Failed(String),
}

fn record(
    done: Result<Vec<ObjectOutcome>, tokio::task::JoinError>,
    report: &mut CopyReport,
    writer: &ObjectWriter,
    job: &CopyJob,
    counters: &Counters,
) -> Result<u64, TransferError> {
    let mut vanished = 0;
    for outcome in done.map_err(|e| TransferError::Task(e.to_string()))? {
        vanished += record_one(outcome, report, writer, job, counters);
    }
    Ok(vanished)
}

/// Record one object's outcome; 1 when it vanished from the source.
fn record_one(
    outcome: ObjectOutcome,
    report: &mut CopyReport,
    writer: &ObjectWriter,
    job: &CopyJob,
    counters: &Counters,
) -> u64 {
    let ObjectOutcome { meta, result } = outcome;
    let key = meta.location.as_ref().to_owned();
    Counters::add(&counters.done_objects, 1);
    Counters::add(&counters.done_bytes, meta.size);
    match result {
        Ok(source_hash) => {
            report.copied += 1;
            report.bytes += meta.size;
            Counters::add(&counters.copied, 1);
            writer.send(ObjectUpdate::Copied {
                workload: job.workload.clone(),
                key,
                algorithm: job.algorithm.as_str().to_owned(),
                source_hash,
            });
        }
        Err(CopyFailure::Vanished) => {
            tracing::warn!(workload = %job.workload, key = %key, "object vanished from the source during the copy");
            writer.send(ObjectUpdate::Pruned {
                workload: job.workload.clone(),
                key,
            });
            return 1;
        }
        Err(CopyFailure::Failed(reason)) => {
            report.failed += 1;
            Counters::add(&counters.failed, 1);
            tracing::warn!(workload = %job.workload, key = %key, "copy failed: {reason}");
            if report.failures.len() < MAX_REPORTED {
                report.failures.push((key.clone(), reason.clone()));
            }
            writer.send(ObjectUpdate::Failed {
                workload: job.workload.clone(),
                key,
                error: reason,
            });
        }
    }
    0
}

/// Remove from the target what relocate copied earlier and the source no longer lists.
async fn prune(
    job: &CopyJob,
    db: &Db,
    writer: &ObjectWriter,
    epoch: i64,
    report: &mut CopyReport,
    counters: &Counters,
) -> Result<(), TransferError> {
    loop {
        let keys = db.unseen_page(&job.workload, epoch, 512)?;
        if keys.is_empty() {
            return Ok(());
        }
        for key in keys {
            match job.target.delete(&super::key_path(&key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(workload = %job.workload, key = %key, "could not remove from the target: {e}");
                }
            }
            report.pruned += 1;
            Counters::add(&counters.pruned, 1);
            writer.send(ObjectUpdate::Pruned {
                workload: job.workload.clone(),
                key,
            });
        }
        writer.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn job(source: &Arc<InMemory>, target: &Arc<InMemory>) -> CopyJob {
        CopyJob {
            workload: "w".into(),
            source_name: "src".into(),
            target_name: "dst".into(),
            source: source.clone(),
            target: target.clone(),
            filter: super::super::KeyFilter::all(),
            algorithm: ChecksumAlgorithm::Sha256,
            concurrency: 4,
            multipart: Multipart::default(),
            limiter: None,
            shard: None,
            prune: true,
            server_side: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            local: None,
        }
    }

    async fn keys(store: &InMemory) -> Vec<String> {
        let mut keys: Vec<String> = store
            .list(None)
            .map(|m| m.unwrap().location.to_string())
            .collect()
            .await;
        keys.sort();
        keys
    }

    async fn copy(job: &CopyJob, db: &Db) -> CopyReport {
        copy_workload(
            job,
            db,
            &Arc::new(Counters::default()),
            &CancellationToken::new(),
        )
        .await
        .unwrap()
    }

    /// The delta finds deletions by counting live rows against the listing; a deletion
    /// balanced by an addition keeps the listing's length and must still be pruned.
    #[tokio::test]
    async fn a_delete_balanced_by_an_add_is_still_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        let (source, target) = (Arc::new(InMemory::new()), Arc::new(InMemory::new()));
        for k in ["a", "b", "c"] {
            source.put(&Path::from(k), k.into()).await.unwrap();
        }
        let job = job(&source, &target);
        let first = copy(&job, &db).await;
        assert_eq!((first.copied, first.pruned), (3, 0));

        source.delete(&Path::from("b")).await.unwrap();
        source.put(&Path::from("d"), "d".into()).await.unwrap();
        let delta = copy(&job, &db).await;
        assert_eq!(
            (delta.listed, delta.copied, delta.skipped, delta.pruned),
            (3, 1, 2, 1)
        );
        assert_eq!(keys(&target).await, ["a", "c", "d"]);

        let again = copy(&job, &db).await;
        assert_eq!(
            (again.copied, again.skipped, again.pruned),
            (0, 3, 0),
            "a delta with nothing to do copies and prunes nothing"
        );
        assert_eq!(db.live_objects("w").unwrap(), 3);
    }
}
