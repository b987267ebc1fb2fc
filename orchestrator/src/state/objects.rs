//! Per-object rows: what the source listed, what was copied with which hash, what
//! verify found at the target.
//!
//! Writes go through the batch writer ([`super::ObjectWriter`]). A copy is only
//! trusted once its `copied` row is committed, so a crash loses at most the objects in
//! flight plus one batch of completions, which the rerun copies again.

use rusqlite::{OptionalExtension, params};

use super::db::blocking;
use super::{Db, StateError};

/// Where one object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectStatus {
    /// Copy started (intent written, effect not yet confirmed).
    Copying,
    /// Copied; `source_hash` is the hash of the bytes read from the source.
    Copied,
    /// Re-read at the target and the hash matched.
    Verified,
    /// Re-read at the target and the hash differed.
    Mismatch,
    /// Not found at the target.
    Missing,
    /// The copy failed (error kept in the row).
    Failed,
    /// Gone from the source; relocate's copy was removed from the target.
    Pruned,
}

impl ObjectStatus {
    /// Name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectStatus::Copying => "copying",
            ObjectStatus::Copied => "copied",
            ObjectStatus::Verified => "verified",
            ObjectStatus::Mismatch => "mismatch",
            ObjectStatus::Missing => "missing",
            ObjectStatus::Failed => "failed",
            ObjectStatus::Pruned => "pruned",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StateError> {
        Ok(match s {
            "copying" => ObjectStatus::Copying,
            "copied" => ObjectStatus::Copied,
            "verified" => ObjectStatus::Verified,
            "mismatch" => ObjectStatus::Mismatch,
            "missing" => ObjectStatus::Missing,
            "failed" => ObjectStatus::Failed,
            "pruned" => ObjectStatus::Pruned,
            other => {
                return Err(StateError::Corrupt {
                    what: "object status",
                    detail: other.to_owned(),
                });
            }
        })
    }

    /// Whether the object is part of the manifest (copied, with a source hash).
    pub fn in_manifest(self) -> bool {
        matches!(
            self,
            ObjectStatus::Copied
                | ObjectStatus::Verified
                | ObjectStatus::Mismatch
                | ObjectStatus::Missing
        )
    }
}

/// One object's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    /// Key relative to the workload's store prefix.
    pub key: String,
    /// Size at the source.
    pub size: u64,
    /// ETag at the source, when the store gives one.
    pub etag: Option<String>,
    /// Last-modified at the source (RFC 3339).
    pub modified: Option<String>,
    /// Hash algorithm of `source_hash`/`target_hash`.
    pub algorithm: Option<String>,
    /// Hex hash of the bytes read from the source while copying.
    pub source_hash: Option<String>,
    /// Hex hash of the bytes re-read from the target by verify.
    pub target_hash: Option<String>,
    /// Where the object stands.
    pub status: ObjectStatus,
}

/// Counts of a workload's rows by status, for `status` and summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadCounts {
    /// Objects in the manifest.
    pub manifest_objects: u64,
    /// Bytes in the manifest.
    pub manifest_bytes: u64,
    /// Verified objects.
    pub verified: u64,
    /// Objects whose copy is in flight or was interrupted.
    pub copying: u64,
    /// Failed copies.
    pub failed: u64,
    /// Mismatched or missing at the target.
    pub bad: u64,
}

/// What the copy needs to know of a listed key to decide whether it moves: a light
/// row (no hashes), fetched for a whole listing page at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Size at the source when it was recorded.
    pub size: u64,
    /// ETag at the source, when the store gives one.
    pub etag: Option<String>,
    /// Last-modified at the source (RFC 3339).
    pub modified: Option<String>,
    /// Where the object stands.
    pub status: ObjectStatus,
    /// Whether a source hash is recorded.
    pub hashed: bool,
}

impl Known {
    /// Whether the recorded copy can be trusted as is (copied or verified, with its hash).
    pub fn trusted(&self) -> bool {
        self.hashed && matches!(self.status, ObjectStatus::Copied | ObjectStatus::Verified)
    }
}

impl From<&ObjectRow> for Known {
    fn from(row: &ObjectRow) -> Self {
        Known {
            size: row.size,
            etag: row.etag.clone(),
            modified: row.modified.clone(),
            status: row.status,
            hashed: row.source_hash.is_some(),
        }
    }
}

impl Db {
    /// What is recorded for each of `keys`, in their order: one lock and one prepared
    /// statement for a whole listing page instead of a round trip per key.
    pub fn known(&self, workload: &str, keys: &[&str]) -> Result<Vec<Option<Known>>, StateError> {
        blocking(|| {
            let conn = self.conn();
            // One read transaction for the page: outside one, every lookup would take and
            // release the WAL's shared-memory locks (two `fcntl` calls per key).
            let tx = conn.unchecked_transaction()?;
            let mut stmt = tx.prepare_cached(
                "SELECT size, etag, modified, status, source_hash IS NOT NULL
             FROM objects WHERE workload = ?1 AND key = ?2",
            )?;
            // Looked up in key order, so consecutive lookups land on the same B-tree pages
            // (a directory's listing comes in the file system's hash order).
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_unstable_by_key(|&i| keys[i]);
            let mut out: Vec<Option<Known>> = vec![None; keys.len()];
            for i in order {
                let found = stmt
                    .query_row(params![workload, keys[i]], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, bool>(4)?,
                        ))
                    })
                    .optional()?;
                if let Some((size, etag, modified, status, hashed)) = found {
                    out[i] = Some(Known {
                        size: size as u64,
                        etag,
                        modified,
                        status: ObjectStatus::parse(&status)?,
                        hashed,
                    });
                }
            }
            drop(stmt);
            tx.finish()?;
            Ok(out)
        })
    }

    /// Rows of a workload that are not pruned: after a copy, every key the source listed
    /// has one, so a count above the listing's means the source deleted something.
    pub fn live_objects(&self, workload: &str) -> Result<u64, StateError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT COUNT(*) FROM objects WHERE workload = ?1 AND status != 'pruned'",
            )?;
            Ok(stmt.query_row(params![workload], |r| r.get::<_, i64>(0))? as u64)
        })
    }

    /// The row of one object.
    pub fn object(&self, workload: &str, key: &str) -> Result<Option<ObjectRow>, StateError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT key, size, etag, modified, algorithm, source_hash, target_hash, status
             FROM objects WHERE workload = ?1 AND key = ?2",
            )?;
            let row = stmt
                .query_row(params![workload, key], read_row)
                .optional()?;
            row.map(|(row, status)| {
                Ok(ObjectRow {
                    status: ObjectStatus::parse(&status)?,
                    ..row
                })
            })
            .transpose()
        })
    }

    /// Manifest rows (copied, with a source hash) in key order, a page at a time:
    /// keys strictly after `after`, at most `limit`. Paging keeps memory bounded.
    pub fn manifest_page(
        &self,
        workload: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectRow>, StateError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT key, size, etag, modified, algorithm, source_hash, target_hash, status
             FROM objects WHERE workload = ?1 AND key > ?2
               AND status IN ('copied', 'verified', 'mismatch', 'missing')
             ORDER BY key LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![workload, after.unwrap_or(""), limit as i64],
                read_row,
            )?;
            let mut out = Vec::with_capacity(limit.min(4096));
            for r in rows {
                let (row, status) = r?;
                out.push(ObjectRow {
                    status: ObjectStatus::parse(&status)?,
                    ..row
                });
            }
            Ok(out)
        })
    }

    /// Keys of rows copied in an earlier listing epoch and not seen in `epoch`:
    /// objects deleted at the source since they were copied. A page at a time.
    pub fn unseen_page(
        &self,
        workload: &str,
        epoch: i64,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
            "SELECT key FROM objects WHERE workload = ?1 AND epoch < ?2 AND status != 'pruned' ORDER BY key LIMIT ?3",
        )?;
            let rows = stmt.query_map(params![workload, epoch, limit as i64], |r| {
                r.get::<_, String>(0)
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Keys whose copy was started but never confirmed (in flight when a run stopped),
    /// at most `limit`.
    pub fn in_flight_keys(&self, workload: &str, limit: usize) -> Result<Vec<String>, StateError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached("SELECT key FROM objects WHERE workload = ?1 AND status = 'copying' ORDER BY key LIMIT ?2")?;
            let rows =
                stmt.query_map(params![workload, limit as i64], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Counts for a workload.
    pub fn workload_counts(&self, workload: &str) -> Result<WorkloadCounts, StateError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached("SELECT status, COUNT(*), COALESCE(SUM(size), 0) FROM objects WHERE workload = ?1 GROUP BY status")?;
            let mut counts = WorkloadCounts::default();
            let rows = stmt.query_map(params![workload], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for r in rows {
                let (status, n, bytes) = r?;
                let (n, bytes) = (n as u64, bytes as u64);
                let status = ObjectStatus::parse(&status)?;
                if status.in_manifest() {
                    counts.manifest_objects += n;
                    counts.manifest_bytes += bytes;
                }
                match status {
                    ObjectStatus::Verified => counts.verified += n,
                    ObjectStatus::Copying => counts.copying += n,
                    ObjectStatus::Failed => counts.failed += n,
                    ObjectStatus::Mismatch | ObjectStatus::Missing => counts.bad += n,
                    _ => {}
                }
            }
            Ok(counts)
        })
    }

    /// Start a new listing epoch for a workload's copy and return it.
    pub fn next_epoch(&self, workload: &str) -> Result<i64, StateError> {
        let key = format!("epoch:{workload}");
        let epoch = self
            .meta(&key)?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
            + 1;
        self.set_meta(&key, &epoch.to_string())?;
        Ok(epoch)
    }
}

type RawRow = (ObjectRow, String);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        ObjectRow {
            key: r.get(0)?,
            size: r.get::<_, i64>(1)? as u64,
            etag: r.get(2)?,
            modified: r.get(3)?,
            algorithm: r.get(4)?,
            source_hash: r.get(5)?,
            target_hash: r.get(6)?,
            status: ObjectStatus::Copying,
        },
        r.get(7)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ObjectUpdate;

    fn intent(key: &str, epoch: i64) -> ObjectUpdate {
        ObjectUpdate::Intent {
            workload: "w".into(),
            key: key.into(),
            size: 3,
            etag: Some("e".into()),
            modified: None,
            epoch,
        }
    }

    #[tokio::test]
    async fn intents_then_copies_are_committed_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        let w = db.object_writer();
        w.send(intent("a", 1));
        w.send(intent("b", 1));
        w.flush().await.unwrap();
        assert_eq!(
            db.object("w", "a").unwrap().unwrap().status,
            ObjectStatus::Copying
        );
        w.send(ObjectUpdate::Copied {
            workload: "w".into(),
            key: "a".into(),
            algorithm: "sha256".into(),
            source_hash: "ab".into(),
        });
        w.flush().await.unwrap();
        let a = db.object("w", "a").unwrap().unwrap();
        assert_eq!(
            (a.status, a.source_hash.as_deref()),
            (ObjectStatus::Copied, Some("ab"))
        );
        let page = db.manifest_page("w", None, 10).unwrap();
        assert_eq!(
            page.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            vec!["a"]
        );
        let counts = db.workload_counts("w").unwrap();
        assert_eq!((counts.manifest_objects, counts.copying), (1, 1));
    }

    #[tokio::test]
    async fn known_answers_in_the_order_asked() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        let w = db.object_writer();
        for key in ["a", "c"] {
            w.send(intent(key, 1));
        }
        w.send(ObjectUpdate::Copied {
            workload: "w".into(),
            key: "c".into(),
            algorithm: "sha256".into(),
            source_hash: "ab".into(),
        });
        w.flush().await.unwrap();
        let known = db.known("w", &["c", "x", "a"]).unwrap();
        let c = known[0].as_ref().unwrap();
        assert!(c.trusted() && c.size == 3 && c.etag.as_deref() == Some("e"));
        assert!(known[1].is_none());
        let a = known[2].as_ref().unwrap();
        assert!(!a.trusted(), "an intent alone is not a copy");
        assert_eq!(db.live_objects("w").unwrap(), 2);
    }

    #[tokio::test]
    async fn rows_not_seen_in_the_new_epoch_are_reported_unseen() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        let w = db.object_writer();
        w.send(intent("kept", 1));
        w.send(intent("gone", 1));
        w.send(ObjectUpdate::Seen {
            workload: "w".into(),
            key: "kept".into(),
            epoch: 2,
        });
        w.flush().await.unwrap();
        assert_eq!(db.unseen_page("w", 2, 10).unwrap(), vec!["gone".to_owned()]);
    }
}
