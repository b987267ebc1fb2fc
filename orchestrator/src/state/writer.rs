//! The batch writer of object rows: a thread that commits updates in transactions of
//! up to 512 rows or 50 ms, whichever comes first.
//!
//! One fsync-free transaction per batch instead of one per object keeps the database
//! off the copy's critical path. `flush().await` returns once everything sent before it
//! is committed: the copy pipeline flushes intents before starting the copies they
//! announce, so a crash never leaves an object written without its intent.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::params;
use tokio::sync::oneshot;

use super::db::{blocking, now};
use super::{Db, ObjectStatus, StateError};

impl Db {
    /// A writer that batches object updates on a background thread.
    pub fn object_writer(&self) -> ObjectWriter {
        ObjectWriter::spawn(self.clone())
    }
}

/// An update to one object's row.
#[derive(Debug)]
pub enum ObjectUpdate {
    /// About to copy (intent): upsert with status `copying`.
    Intent {
        workload: String,
        key: String,
        size: u64,
        etag: Option<String>,
        modified: Option<String>,
        epoch: i64,
    },
    /// Copy confirmed by the target.
    Copied {
        workload: String,
        key: String,
        algorithm: String,
        source_hash: String,
    },
    /// Listed again and unchanged: bump its epoch so it is not taken for deleted.
    Seen {
        workload: String,
        key: String,
        epoch: i64,
    },
    /// Copy failed.
    Failed {
        workload: String,
        key: String,
        error: String,
    },
    /// Verify's finding.
    Checked {
        workload: String,
        key: String,
        target_hash: Option<String>,
        status: ObjectStatus,
    },
    /// Removed from the target because the source no longer has it.
    Pruned { workload: String, key: String },
}

enum Msg {
    Update(ObjectUpdate),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Batches object updates into transactions on a background thread.
///
/// `flush().await` returns once everything sent before it is committed: the copy
/// pipeline flushes intents before starting the copies they announce.
#[derive(Debug, Clone)]
pub struct ObjectWriter {
    tx: mpsc::SyncSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

const BATCH_ROWS: usize = 512;
/// Updates queued ahead of the writer before senders wait: a few batches, so a slow
/// disk slows the copy down instead of filling memory.
const QUEUE: usize = 8 * BATCH_ROWS;
const BATCH_AGE: Duration = Duration::from_millis(50);

impl ObjectWriter {
    fn spawn(db: Db) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        std::thread::Builder::new()
            .name("relocate-state-writer".into())
            .spawn(move || writer_loop(&db, &rx))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the state writer thread: {e}"));
        Self { tx }
    }

    /// Queue an update; waits while the queue is full (see [`Db::blocking`]).
    pub fn send(&self, update: ObjectUpdate) {
        // The writer only stops when every sender is gone, so a send cannot fail while
        // `self` is alive unless the thread died; the next flush reports that.
        let _ = self.queue(Msg::Update(update));
    }

    fn queue(&self, msg: Msg) -> Result<(), ()> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(msg)) => blocking(|| self.tx.send(msg)).map_err(|_| ()),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(()),
        }
    }

    /// Wait until every update sent so far is committed.
    pub async fn flush(&self) -> Result<(), StateError> {
        let (tx, rx) = oneshot::channel();
        let dead = || StateError::Corrupt {
            what: "state writer",
            detail: "the writer thread stopped".into(),
        };
        self.queue(Msg::Flush(tx)).map_err(|_| dead())?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(detail)) => Err(StateError::Corrupt {
                what: "object batch",
                detail,
            }),
            Err(_) => Err(dead()),
        }
    }
}

fn writer_loop(db: &Db, rx: &mpsc::Receiver<Msg>) {
    let mut batch: Vec<ObjectUpdate> = Vec::with_capacity(BATCH_ROWS);
    let mut waiting: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let mut failure: Option<String> = None;
    loop {
        let timeout = oldest.map_or(Duration::from_secs(3600), |t| {
            BATCH_AGE.saturating_sub(t.elapsed())
        });
        let disconnected = match rx.recv_timeout(timeout) {
            Ok(Msg::Update(u)) => {
                oldest.get_or_insert_with(Instant::now);
                batch.push(u);
                false
            }
            Ok(Msg::Flush(tx)) => {
                waiting.push(tx);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = batch.len() >= BATCH_ROWS
            || !waiting.is_empty()
            || oldest.is_some_and(|t| t.elapsed() >= BATCH_AGE)
            || disconnected;
        if due && !batch.is_empty() {
            if let Err(e) = commit(db, &batch) {
                tracing::error!("state batch not committed: {e}");
                failure = Some(e.to_string());
            }
            batch.clear();
            oldest = None;
        }
        for w in waiting.drain(..) {
            let _ = w.send(failure.clone().map_or(Ok(()), Err));
        }
        if disconnected {
            return;
        }
    }
}

fn commit(db: &Db, batch: &[ObjectUpdate]) -> Result<(), StateError> {
    let mut conn = db.conn();
    let tx = conn.transaction()?;
    let at = now();
    for u in batch {
        apply(&tx, u, &at)?;
    }
    tx.commit()?;
    Ok(())
}

fn apply(tx: &rusqlite::Transaction<'_>, u: &ObjectUpdate, at: &str) -> Result<(), StateError> {
    match u {
        ObjectUpdate::Intent {
            workload,
            key,
            size,
            etag,
            modified,
            epoch,
        } => {
            tx.prepare_cached(
                "INSERT INTO objects (workload, key, size, etag, modified, status, epoch, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'copying', ?6, ?7)
                 ON CONFLICT (workload, key) DO UPDATE SET size = ?3, etag = ?4, modified = ?5,
                   status = 'copying', epoch = ?6, source_hash = NULL, target_hash = NULL, error = NULL, updated_at = ?7",
            )?
            .execute(params![workload, key, *size as i64, etag, modified, epoch, at])?;
        }
        ObjectUpdate::Copied {
            workload,
            key,
            algorithm,
            source_hash,
        } => {
            tx.prepare_cached(
                "UPDATE objects SET status = 'copied', algorithm = ?3, source_hash = ?4, target_hash = NULL, error = NULL, updated_at = ?5
                 WHERE workload = ?1 AND key = ?2",
            )?
            .execute(params![workload, key, algorithm, source_hash, at])?;
        }
        ObjectUpdate::Seen {
            workload,
            key,
            epoch,
        } => {
            tx.prepare_cached("UPDATE objects SET epoch = ?3 WHERE workload = ?1 AND key = ?2")?
                .execute(params![workload, key, epoch])?;
        }
        ObjectUpdate::Failed {
            workload,
            key,
            error,
        } => {
            tx.prepare_cached("UPDATE objects SET status = 'failed', error = ?3, updated_at = ?4 WHERE workload = ?1 AND key = ?2")?
                .execute(params![workload, key, error, at])?;
        }
        ObjectUpdate::Checked {
            workload,
            key,
            target_hash,
            status,
        } => {
            tx.prepare_cached("UPDATE objects SET status = ?3, target_hash = ?4, updated_at = ?5 WHERE workload = ?1 AND key = ?2")?
                .execute(params![workload, key, status.as_str(), target_hash, at])?;
        }
        ObjectUpdate::Pruned { workload, key } => {
            tx.prepare_cached("UPDATE objects SET status = 'pruned', updated_at = ?3 WHERE workload = ?1 AND key = ?2")?
                .execute(params![workload, key, at])?;
        }
    }
    Ok(())
}
