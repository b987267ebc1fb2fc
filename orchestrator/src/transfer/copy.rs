//! Copy: list the source, skip what is unchanged, stream the rest to the target while
//! hashing it, and prune what the source no longer has.
//!
//! Order of writes for each object: the `copying` intent is committed before the first
//! byte moves; the `copied` row (with the source hash) is written only after the
//! target confirmed the put. A crash therefore leaves every object either trusted with
//! its hash or marked for a re-copy.
//!
//! Nothing leaves the listing without a word: a key a local store cannot hold fails by
//! name ([`CopyFailure::StagingName`]), a skipped source link is counted, a first copy
//! over a target that already holds objects asks for `existingTarget:` (`existing`),
//! and a prune counts only what it removed (`prune`).

use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use plans::{ChecksumAlgorithm, ExistingTarget, SymlinkPolicy};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use super::failure::CopyFailure;
use super::local::{BatchContext, Links, LocalSides, is_staging_name};
pub(crate) use super::outcome::error_chain;
use super::outcome::{Done, ObjectOutcome, record, record_one};
use super::ratelimit::RateLimiter;
use super::{Counters, KeyFilter, TransferError};
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
    /// Objects in flight (with `adaptive`, the most ever in flight).
    pub concurrency: usize,
    /// Find the objects in flight from measured throughput, between
    /// [`super::adaptive::FLOOR`] and `concurrency` (see [`super::adaptive`]); not for a
    /// copy between two local directories, whose batches take blocking threads.
    pub adaptive: bool,
    /// Multipart tuning.
    pub multipart: Multipart,
    /// Shared bandwidth cap.
    pub limiter: Option<Arc<RateLimiter>>,
    /// Key-space slice, for sharded workers (`None`: every key).
    pub range: Option<super::range::ScanRange>,
    /// Remove from the target what relocate copied earlier and the source deleted since.
    pub prune: bool,
    /// Both stores live in one account: copy server-side (no bytes through relocate),
    /// then read the source once to hash it.
    pub server_side: Option<ServerSide>,
    /// Bytes of object data buffered at once across all transfers (bounds memory
    /// whatever the object sizes and concurrency).
    pub memory_budget: u64,
    /// The ends that are local directories. A local source is listed by relocate's
    /// own walk (links per `symlinks`, no name hidden); a local target is written and
    /// pruned without following links; both local: files are copied directly, whole
    /// objects (and batches of small ones) per blocking call (see [`super::local`]).
    pub local: LocalSides,
    /// Symbolic links in a local source.
    pub symlinks: SymlinkPolicy,
    /// What the first copy does when the target already holds objects.
    pub existing_target: ExistingTarget,
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
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CopyReport {
    /// Objects listed (after filtering).
    pub listed: u64,
    /// Objects copied.
    pub copied: u64,
    /// Objects skipped (already at the target, unchanged at the source).
    pub skipped: u64,
    /// Objects whose copy failed.
    pub failed: u64,
    /// Objects pruned from the target (confirmed gone).
    pub pruned: u64,
    /// Objects the source deleted that could not be removed from the target (the step
    /// fails; the rerun tries again).
    pub prune_failed: u64,
    /// Objects already at the target with the source's hash, kept and recorded
    /// (`existingTarget: adopt`).
    pub adopted: u64,
    /// Symbolic links in a local source left out (`symlinks: skip`).
    pub skipped_links: u64,
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
    let adopt = super::existing::first_copy(job, db, cancel).await?;
    let epoch = db.next_epoch(&job.workload)?;
    let budget = Arc::new(Semaphore::new(
        (job.memory_budget / BUDGET_UNIT).max(1) as usize
    ));
    let mut tasks: JoinSet<Vec<ObjectOutcome>> = JoinSet::new();
    // A bandwidth cap needs the async path's pacing.
    let local = job.local.both().filter(|_| job.limiter.is_none());
    let (mut adaptive, sem) = if job.adaptive && local.is_none() {
        let (a, sem) =
            super::adaptive::Adaptive::new(super::adaptive::FLOOR, job.concurrency, counters);
        (Some(a), sem)
    } else {
        (None, Arc::new(Semaphore::new(job.concurrency.max(1))))
    };
    // object_store's local store neither reads nor writes `name#digits`.
    let reserved = job.local.source.is_some() || job.local.target.is_some();
    let mut report = CopyReport::default();

    let mut vanished = 0u64;
    let (mut listing, skipped_links) = source_listing(job);
    while let Some(page) = tokio::select! {
        c = listing.next() => c,
        () = cancel.cancelled() => None,
    } {
        let listed = super::listing::owned(
            page,
            &job.source_name,
            &job.filter,
            job.range.as_ref().map(|r| &r.keys),
        )?;
        let keys: Vec<&str> = listed.iter().map(|m| m.location.as_ref()).collect();
        let known = db.known(&job.workload, &keys)?;
        let (mut to_copy, mut refused, mut one_by_one) = (Vec::new(), Vec::new(), Vec::new());
        for (meta, known) in listed.into_iter().zip(known) {
            report.listed += 1;
            Counters::add(&counters.discovered_objects, 1);
            Counters::add(&counters.discovered_bytes, meta.size);
            if unchanged(known.as_ref(), &meta) {
                report.skipped += 1;
                Counters::add(&counters.skipped, 1);
                Counters::add(&counters.done_objects, 1);
                Counters::add(&counters.done_bytes, meta.size);
                Counters::add(&counters.skipped_bytes, meta.size);
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
            let key = meta.location.as_ref();
            if reserved && meta.location.filename().is_some_and(is_staging_name) {
                refused.push(meta);
            } else if adopt
                .as_ref()
                .is_some_and(|at_target| at_target.contains(key))
            {
                one_by_one.push((meta, true));
            } else {
                to_copy.push(meta);
            }
        }
        // Intents must be committed before the copies they announce start; a page of
        // unchanged objects writes nothing and needs no wait.
        if !(to_copy.is_empty() && refused.is_empty() && one_by_one.is_empty()) {
            writer.flush().await?;
        }
        for meta in refused {
            let key = meta.location.to_string();
            let result = Err(CopyFailure::StagingName { key });
            record_one(
                ObjectOutcome { meta, result },
                &mut report,
                &writer,
                job,
                counters,
            );
        }
        match &local {
            Some(ends) => {
                for batch in super::local::batches(to_copy, |m| m.size) {
                    let permit = tokio::select! {
                        p = sem.clone().acquire_owned() => p.map_err(|e| TransferError::Task(e.to_string()))?,
                        () = cancel.cancelled() => break,
                    };
                    while let Some(done) = tasks.try_join_next() {
                        vanished += record(done, &mut report, &writer, job, counters)?;
                    }
                    let (ends, cx) = (ends.clone(), batch_context(job, counters, cancel));
                    let flight = counters.start();
                    tasks.spawn_blocking(move || {
                        let outcomes = super::local::copy_batch(&ends, batch, &cx);
                        drop((flight, permit));
                        outcomes
                            .into_iter()
                            .filter_map(|(meta, result)| {
                                result.map(|result| ObjectOutcome {
                                    meta,
                                    result: result.map(Done::Copied),
                                })
                            })
                            .collect()
                    });
                }
            }
            None => one_by_one.extend(to_copy.into_iter().map(|m| (m, false))),
        }
        for (meta, adopting) in one_by_one {
            if let Some(a) = adaptive.as_mut() {
                a.tick(counters);
            }
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
            let done = adaptive.as_ref().map(super::adaptive::Adaptive::start);
            let flight = counters.start();
            tasks.spawn(async move {
                let result = if adopting {
                    super::existing::adopt_or_copy(&job2, &meta, &counters2).await
                } else {
                    super::object::copy_one(&job2, &meta, &counters2)
                        .await
                        .map(Done::Copied)
                };
                drop((flight, permit, memory, done));
                vec![ObjectOutcome { meta, result }]
            });
        }
    }
    if !cancel.is_cancelled() {
        counters.listing_done();
    }
    report.interrupted = cancel.is_cancelled();
    while let Some(done) = tasks.join_next().await {
        vanished += record(done, &mut report, &writer, job, counters)?;
    }
    writer.flush().await?;
    report.skipped_links = skipped_links.load(std::sync::atomic::Ordering::Relaxed);
    if job.prune && !report.interrupted {
        // Every listed key now has a live row (unchanged, copied or failed) except the
        // ones that vanished mid-copy; more live rows than that are objects the source
        // deleted. Only then is the source listed again to find which: a delta that
        // deletes nothing writes nothing for its unchanged objects.
        if db.live_objects(&job.workload)? > report.listed - vanished {
            mark_listed(job, &writer, epoch, cancel).await?;
            if !cancel.is_cancelled() {
                super::prune::prune(job, db, &writer, epoch, &mut report, counters).await?;
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

/// List the source again and stamp every listed key with `epoch`, so the prune can
/// tell what it no longer has.
async fn mark_listed(
    job: &CopyJob,
    writer: &ObjectWriter,
    epoch: i64,
    cancel: &CancellationToken,
) -> Result<(), TransferError> {
    let (mut listing, _) = source_listing(job);
    while let Some(page) = tokio::select! {
        c = listing.next() => c,
        () = cancel.cancelled() => None,
    } {
        for meta in super::listing::owned(
            page,
            &job.source_name,
            &job.filter,
            job.range.as_ref().map(|r| &r.keys),
        )? {
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

/// The source's listing, a page at a time, and the count of links it skipped: a local
/// directory through relocate's own walk (object_store's would hide `name#digits` files
/// and follow every link, out of the tree too), anything else through its client.
fn source_listing(
    job: &CopyJob,
) -> (
    futures::stream::BoxStream<'static, super::listing::Page>,
    Arc<std::sync::atomic::AtomicU64>,
) {
    match &job.local.source {
        Some(fs) => {
            let walk = super::local::list_store(fs, Links::Source(job.symlinks));
            (walk.pages, walk.skipped_links)
        }
        None => (
            super::listing::read_ahead(super::range::cloud_listing(
                job.source.as_ref(),
                job.range.as_ref(),
            )),
            Arc::default(),
        ),
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

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
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
            adaptive: false,
            multipart: Multipart::default(),
            limiter: None,
            range: None,
            prune: true,
            server_side: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            local: LocalSides::default(),
            symlinks: SymlinkPolicy::default(),
            existing_target: ExistingTarget::default(),
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

    /// The display's totals: a verify knows the whole manifest before its first read
    /// (it showed 320/1024 for 2,001 objects, the first page), and a copy says when its
    /// listing is complete; skipped objects count their bytes as done without moving any.
    #[tokio::test]
    async fn totals_are_the_whole_manifest_and_say_when_the_listing_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        let (source, target) = (Arc::new(InMemory::new()), Arc::new(InMemory::new()));
        for i in 0..2001 {
            source
                .put(&Path::from(format!("k{i:05}")), "xy".into())
                .await
                .unwrap();
        }
        let job = job(&source, &target);
        let counters = Arc::new(Counters::default());
        copy_workload(&job, &db, &counters, &CancellationToken::new())
            .await
            .unwrap();
        assert!(counters.snapshot().listing_complete);
        let again = Arc::new(Counters::default());
        copy_workload(&job, &db, &again, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(again.snapshot().skipped_bytes, 4002);

        let verify = super::super::VerifyJob {
            workload: "w".into(),
            target_name: "dst".into(),
            target: target.clone(),
            filter: super::super::KeyFilter::all(),
            concurrency: 4,
            range: None,
            local: None,
            checksums: None,
        };
        // Stopped before reading anything, the totals are already the manifest's.
        let stopped = CancellationToken::new();
        stopped.cancel();
        let counters = Arc::new(Counters::default());
        super::super::verify_workload(&verify, &db, &counters, &stopped)
            .await
            .unwrap();
        let s = counters.snapshot();
        assert_eq!(
            (s.discovered_objects, s.discovered_bytes, s.listing_complete),
            (2001, 4002, true)
        );
    }
}
