//! Verify: re-read every manifest object at the target, hash it, compare with the hash
//! taken at the source; then list the target for objects the manifest does not know.
//!
//! With [`VerifyJob::checksums`] set (`verify: { mode: checksum }` on an S3 target), an
//! object whose store keeps a whole-object SHA-256 is checked against it without being
//! downloaded (one `HEAD`, see [`super::stored`]); every other object is re-read, so each
//! object is checked one way or the other, and the report counts which
//! ([`VerifyReport::by_checksum`]).
//!
//! Every problem is reported per key (to the state, the log and the report); the step
//! fails once at the end with the counts, like `rclone check`. Findings are committed to
//! the state a page at a time as the verify goes. A local target is listed by relocate's
//! own walk: files object_store hides (`name#digits`) are seen, and a symbolic link in
//! the target is an error, never followed.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};
use plans::ChecksumAlgorithm;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::hash::ObjectHasher;
use super::{Counters, KeyFilter, TransferError, key_path};
use crate::state::{Db, ObjectRow, ObjectStatus, ObjectUpdate};

/// Everything one verify of one workload needs.
#[derive(Debug, Clone)]
pub struct VerifyJob {
    /// Workload name.
    pub workload: String,
    /// Target store name, for messages.
    pub target_name: String,
    /// Target store.
    pub target: Arc<dyn ObjectStore>,
    /// Keys the workload owns at the target (others there are not its business).
    pub filter: KeyFilter,
    /// Objects in flight.
    pub concurrency: usize,
    /// Key-space slice, for sharded workers (`None`: every key).
    pub range: Option<super::range::ScanRange>,
    /// The target is a local directory: hash its files directly, batches of small ones
    /// per blocking call (see [`super::local`]).
    pub local: Option<Arc<LocalFileSystem>>,
    /// Compare the store's stored SHA-256 with the manifest instead of re-reading, where
    /// the store keeps one (`None`: re-read every object).
    pub checksums: Option<Arc<super::stored::StoredChecksums>>,
}

/// What kind of problem verify found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The target's bytes hash differently from the source's.
    Mismatch,
    /// The manifest has it; the target does not.
    Missing,
    /// The target has it; the manifest does not.
    Unexpected,
    /// The target could not be read.
    Unreadable,
}

/// One problem, for one key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// The key.
    pub key: String,
    /// What is wrong.
    pub kind: ProblemKind,
    /// Detail (hashes, error).
    pub detail: String,
}

/// What one verify found.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// Objects whose target hash matched.
    pub verified: u64,
    /// Bytes verified.
    pub bytes: u64,
    /// Of the verified objects, those checked against the store's stored checksum
    /// without being downloaded (the rest were re-read).
    #[serde(default)]
    pub by_checksum: u64,
    /// Hash mismatches.
    pub mismatched: u64,
    /// Missing at the target.
    pub missing: u64,
    /// Unexpected at the target.
    pub unexpected: u64,
    /// Unreadable at the target.
    pub unreadable: u64,
    /// The first problems, at most [`super::copy::MAX_REPORTED`].
    pub problems: Vec<Problem>,
    /// Stopped early by an interrupt.
    pub interrupted: bool,
}

impl VerifyReport {
    /// Objects with a problem.
    pub fn failed(&self) -> u64 {
        self.mismatched + self.missing + self.unexpected + self.unreadable
    }

    fn note(&mut self, p: Problem, counters: &Counters) {
        match p.kind {
            ProblemKind::Mismatch => self.mismatched += 1,
            ProblemKind::Missing => self.missing += 1,
            ProblemKind::Unexpected => self.unexpected += 1,
            ProblemKind::Unreadable => self.unreadable += 1,
        }
        Counters::add(&counters.failed, 1);
        tracing::warn!(key = %p.key, kind = ?p.kind, "verify: {}", p.detail);
        if self.problems.len() < super::copy::MAX_REPORTED {
            self.problems.push(p);
        }
    }
}

const PAGE: usize = 1024;

/// Verify one workload's target against its manifest.
pub async fn verify_workload(
    job: &VerifyJob,
    db: &Db,
    counters: &Arc<Counters>,
    cancel: &CancellationToken,
) -> Result<VerifyReport, TransferError> {
    let writer = db.object_writer();
    let sem = Arc::new(Semaphore::new(job.concurrency.max(1)));
    let mut tasks: JoinSet<Vec<Checked>> = JoinSet::new();
    let mut report = VerifyReport::default();
    let mut after: Option<String> = None;
    // The whole manifest's totals are known before the first object is read: the
    // display shows them, not a page at a time (a range counts as it goes).
    let whole = job.range.is_none();
    if whole {
        let counts = db.workload_counts(&job.workload)?;
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        counters
            .discovered_objects
            .store(counts.manifest_objects, relaxed);
        counters
            .discovered_bytes
            .store(counts.manifest_bytes, relaxed);
        counters.listing_done();
    }
    'pages: loop {
        let page = db.manifest_page(&job.workload, after.as_deref(), PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        let rows: Vec<ObjectRow> = page
            .into_iter()
            .filter(|row| job.range.as_ref().is_none_or(|r| r.keys.contains(&row.key)))
            .collect();
        for row in rows.iter().filter(|_| !whole) {
            Counters::add(&counters.discovered_objects, 1);
            Counters::add(&counters.discovered_bytes, row.size);
        }
        // The findings so far are committed as the verify goes, a page at a time: an
        // interrupted verify keeps them, and the writer's queue stays short.
        writer.flush().await?;
        if let Some(fs) = &job.local {
            for batch in super::local::batches(rows, |r| r.size) {
                let permit = tokio::select! {
                    p = sem.clone().acquire_owned() => p.map_err(|e| TransferError::Task(e.to_string()))?,
                    () = cancel.cancelled() => break 'pages,
                };
                while let Some(done) = tasks.try_join_next() {
                    check_all(done, &mut report, &writer, job, counters)?;
                }
                let (fs, counters2, cancel2) = (fs.clone(), counters.clone(), cancel.clone());
                let flight = counters.start();
                tasks.spawn_blocking(move || {
                    let hashed = super::local::hash_batch(
                        &fs,
                        batch,
                        |r| r.key.as_str(),
                        algorithm_of,
                        &counters2,
                        &cancel2,
                    );
                    drop((flight, permit));
                    hashed
                        .into_iter()
                        .filter_map(|(row, result)| result.map(|r| (row, r, false)))
                        .collect()
                });
            }
            continue;
        }
        for row in rows {
            let permit = tokio::select! {
                p = sem.clone().acquire_owned() => p.map_err(|e| TransferError::Task(e.to_string()))?,
                () = cancel.cancelled() => break 'pages,
            };
            while let Some(done) = tasks.try_join_next() {
                check_all(done, &mut report, &writer, job, counters)?;
            }
            let (target, counters2) = (job.target.clone(), counters.clone());
            let algorithm = algorithm_of(&row);
            let stored = job
                .checksums
                .clone()
                .filter(|_| algorithm == ChecksumAlgorithm::Sha256);
            let flight = counters.start();
            tasks.spawn(async move {
                let checked = match stored {
                    Some(stored) => by_checksum(&stored, &target, row, &counters2).await,
                    None => {
                        let result = hash_target(&target, &row.key, algorithm, &counters2).await;
                        (row, result, false)
                    }
                };
                drop((flight, permit));
                vec![checked]
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        check_all(done, &mut report, &writer, job, counters)?;
    }
    report.interrupted = cancel.is_cancelled();
    if !report.interrupted {
        find_unexpected(job, db, &mut report, counters, cancel).await?;
    }
    writer.flush().await?;
    Ok(report)
}

fn algorithm_of(row: &ObjectRow) -> ChecksumAlgorithm {
    match row.algorithm.as_deref() {
        Some("blake3") => ChecksumAlgorithm::Blake3,
        _ => ChecksumAlgorithm::Sha256,
    }
}

/// One object's row, the hash found at the target, and whether that hash is the store's
/// stored checksum (`true`) or was computed by re-reading (`false`).
type Checked = (ObjectRow, Result<String, object_store::Error>, bool);

/// The store's stored SHA-256 of the object when it keeps one, else the object re-read.
async fn by_checksum(
    stored: &super::stored::StoredChecksums,
    target: &Arc<dyn ObjectStore>,
    row: ObjectRow,
    counters: &Counters,
) -> Checked {
    match stored.sha256(&row.key).await {
        super::stored::Stored::Sha256(hash) => (row, Ok(hash), true),
        super::stored::Stored::Missing => {
            let result = Err(object_store::Error::NotFound {
                path: row.key.clone(),
                source: "HEAD answered 404".into(),
            });
            (row, result, true)
        }
        super::stored::Stored::Unknown(why) => {
            tracing::debug!(key = %row.key, "no stored checksum to compare ({why}): re-reading");
            let result = hash_target(target, &row.key, ChecksumAlgorithm::Sha256, counters).await;
            (row, result, false)
        }
    }
}

fn check_all(
    done: Result<Vec<Checked>, tokio::task::JoinError>,
    report: &mut VerifyReport,
    writer: &crate::state::ObjectWriter,
    job: &VerifyJob,
    counters: &Counters,
) -> Result<(), TransferError> {
    for checked in done.map_err(|e| TransferError::Task(e.to_string()))? {
        check(checked, report, writer, job, counters);
    }
    Ok(())
}

fn check(
    (row, result, from_store): Checked,
    report: &mut VerifyReport,
    writer: &crate::state::ObjectWriter,
    job: &VerifyJob,
    counters: &Counters,
) {
    Counters::add(&counters.done_objects, 1);
    Counters::add(&counters.done_bytes, row.size);
    let expected = row.source_hash.clone().unwrap_or_default();
    let (status, target_hash) = match result {
        Ok(h) if h == expected => {
            report.verified += 1;
            report.by_checksum += u64::from(from_store);
            report.bytes += row.size;
            Counters::add(&counters.verified, 1);
            (ObjectStatus::Verified, Some(h))
        }
        Ok(h) => {
            let what = if from_store {
                "target's stored SHA-256"
            } else {
                "target hash"
            };
            let detail = format!("{what} {h} differs from source hash {expected}");
            report.note(
                Problem {
                    key: row.key.clone(),
                    kind: ProblemKind::Mismatch,
                    detail,
                },
                counters,
            );
            (ObjectStatus::Mismatch, Some(h))
        }
        Err(object_store::Error::NotFound { .. }) => {
            let detail = format!("not found in {}", job.target_name);
            report.note(
                Problem {
                    key: row.key.clone(),
                    kind: ProblemKind::Missing,
                    detail,
                },
                counters,
            );
            (ObjectStatus::Missing, None)
        }
        Err(e) => {
            let detail = format!("cannot read from {}: {e}", job.target_name);
            report.note(
                Problem {
                    key: row.key.clone(),
                    kind: ProblemKind::Unreadable,
                    detail,
                },
                counters,
            );
            (ObjectStatus::Missing, None)
        }
    };
    writer.send(ObjectUpdate::Checked {
        workload: job.workload.clone(),
        key: row.key,
        target_hash,
        status,
    });
}

/// Read a target object and hash it.
pub async fn hash_target(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    algorithm: ChecksumAlgorithm,
    counters: &Counters,
) -> object_store::Result<String> {
    let got = store.get(&key_path(key)).await?;
    let mut hasher = ObjectHasher::new(algorithm);
    let mut stream = super::read::body_stream(got);
    while let Some(chunk) = stream.try_next().await? {
        hasher.update(&chunk);
        Counters::add(&counters.transferred_bytes, chunk.len() as u64);
    }
    Ok(hasher.finish_hex())
}

async fn find_unexpected(
    job: &VerifyJob,
    db: &Db,
    report: &mut VerifyReport,
    counters: &Counters,
    cancel: &CancellationToken,
) -> Result<(), TransferError> {
    let mut listing = match &job.local {
        // Never follow a link in a target, and see the `name#digits` files object_store
        // would hide.
        Some(fs) => super::local::list_store(fs, super::local::Links::Target).pages,
        None => super::listing::read_ahead(super::range::cloud_listing(
            job.target.as_ref(),
            job.range.as_ref(),
        )),
    };
    while let Some(page) = tokio::select! {
        p = listing.next() => p,
        () = cancel.cancelled() => None,
    } {
        let listed = super::listing::owned(
            page,
            &job.target_name,
            &job.filter,
            job.range.as_ref().map(|r| &r.keys),
        )?;
        let keys: Vec<&str> = listed.iter().map(|m| m.location.as_ref()).collect();
        let known = db.known(&job.workload, &keys)?;
        for (meta, known) in listed.iter().zip(known) {
            if known.is_some_and(|k| k.status.in_manifest()) {
                continue;
            }
            let detail = format!(
                "in {} but not in the manifest ({} bytes)",
                job.target_name, meta.size
            );
            report.note(
                Problem {
                    key: meta.location.as_ref().to_owned(),
                    kind: ProblemKind::Unexpected,
                    detail,
                },
                counters,
            );
        }
    }
    Ok(())
}
