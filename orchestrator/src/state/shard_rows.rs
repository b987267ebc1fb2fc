//! Object rows as they travel between the coordinator's database and a worker's:
//! whole rows (status, hashes, listing epoch, error) of one key range, exported and
//! imported a page at a time so memory stays flat at any row count.
//!
//! The coordinator exports a range's rows into the work order (what earlier stages
//! copied, for the delta and for verify); a worker journals its rows back as
//! checkpoints and its result; the coordinator replaces the range with that result.
//! Rows are the unit on both sides, so a sharded run ends with the very rows an
//! in-process run would have, and the manifest and its Merkle root follow from them.

use rusqlite::params;

use super::db::{blocking, now};
use super::{Db, ObjectStatus, StateError};
use crate::transfer::KeyRange;

/// One object row, whole.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardRow {
    /// Key relative to the store's prefix.
    pub key: String,
    /// Size at the source.
    pub size: u64,
    /// ETag at the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Last-modified at the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Hash algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Hash of the bytes read from the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_hash: Option<String>,
    /// Hash of the bytes re-read at the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hash: Option<String>,
    /// Status as stored (`copied`, `verified`, …).
    pub status: String,
    /// Listing epoch.
    pub epoch: i64,
    /// Last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ShardRow {
    /// Whether the status is one relocate writes (a row from a file is checked before
    /// it reaches the database).
    pub fn check(&self) -> Result<(), StateError> {
        ObjectStatus::parse(&self.status).map(|_| ())
    }
}

const SELECT: &str = "SELECT key, size, etag, modified, algorithm, source_hash, target_hash, status, epoch, error FROM objects";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<ShardRow> {
    Ok(ShardRow {
        key: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        etag: r.get(2)?,
        modified: r.get(3)?,
        algorithm: r.get(4)?,
        source_hash: r.get(5)?,
        target_hash: r.get(6)?,
        status: r.get(7)?,
        epoch: r.get(8)?,
        error: r.get(9)?,
    })
}

impl Db {
    /// Rows of `workload` in `range` with keys after `after`, in key order, at most
    /// `limit`; with `since`, only rows updated at or after that time (a checkpoint's
    /// increment).
    pub fn range_rows(
        &self,
        workload: &str,
        range: &KeyRange,
        after: Option<&str>,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ShardRow>, StateError> {
        // The page's lower bound is the later of the range's and the cursor's.
        let lower = match (range.after.as_deref(), after) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&format!(
                "{SELECT} WHERE workload = ?1 AND (?2 IS NULL OR key > ?2) AND (?3 IS NULL OR key <= ?3)
                   AND (?4 IS NULL OR updated_at >= ?4) ORDER BY key LIMIT ?5"
            ))?;
            let rows = stmt.query_map(
                params![workload, lower, range.through, since, limit as i64],
                read,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Insert or replace rows of `workload` (a worker loading what it is given).
    pub fn upsert_rows(&self, workload: &str, rows: &[ShardRow]) -> Result<(), StateError> {
        for row in rows {
            row.check()?;
        }
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            insert(&tx, workload, rows)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Replace every row of `workload` in `range` by the rows `next` yields (a shard's
    /// result), in one transaction: a crash keeps the old rows or has all the new.
    pub fn replace_range(
        &self,
        workload: &str,
        range: &KeyRange,
        mut next: impl FnMut() -> Result<Option<Vec<ShardRow>>, StateError>,
    ) -> Result<u64, StateError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM objects WHERE workload = ?1 AND (?2 IS NULL OR key > ?2) AND (?3 IS NULL OR key <= ?3)",
                params![workload, range.after, range.through],
            )?;
            let mut n = 0u64;
            while let Some(rows) = next()? {
                for row in &rows {
                    row.check()?;
                    if !range.contains(&row.key) {
                        return Err(StateError::Corrupt {
                            what: "shard result",
                            detail: format!(
                                "key {:?} is outside the shard's range {}",
                                row.key,
                                range.describe()
                            ),
                        });
                    }
                }
                insert(&tx, workload, &rows)?;
                n += rows.len() as u64;
            }
            tx.commit()?;
            Ok(n)
        })
    }
}

fn insert(tx: &rusqlite::Transaction<'_>, workload: &str, rows: &[ShardRow]) -> Result<(), StateError> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO objects (workload, key, size, etag, modified, algorithm, source_hash, target_hash, status, epoch, error, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let at = now();
    for r in rows {
        stmt.execute(params![
            workload,
            r.key,
            r.size as i64,
            r.etag,
            r.modified,
            r.algorithm,
            r.source_hash,
            r.target_hash,
            r.status,
            r.epoch,
            r.error,
            at
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, status: &str) -> ShardRow {
        ShardRow {
            key: key.into(),
            size: 1,
            etag: None,
            modified: None,
            algorithm: Some("sha256".into()),
            source_hash: Some("ab".into()),
            target_hash: None,
            status: status.into(),
            epoch: 1,
            error: None,
        }
    }

    #[test]
    fn a_range_is_replaced_whole_and_nothing_outside_it_moves() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        db.upsert_rows("w", &[row("a", "copied"), row("m", "copied"), row("z", "copied")])
            .unwrap();
        let range = KeyRange {
            after: Some("a".into()),
            through: Some("n".into()),
        };
        let mut pages = vec![vec![row("b", "copied"), row("n", "failed")]].into_iter();
        assert_eq!(db.replace_range("w", &range, || Ok(pages.next())).unwrap(), 2);
        let all = db.range_rows("w", &KeyRange::default(), None, None, 10).unwrap();
        let keys: Vec<&str> = all.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "n", "z"], "`m` went with its range");
        let outside = vec![vec![row("zz", "copied")]];
        let mut pages = outside.into_iter();
        let err = db.replace_range("w", &range, || Ok(pages.next())).unwrap_err();
        assert!(err.to_string().contains("outside the shard's range"), "{err}");
        let keys: Vec<String> = db
            .range_rows("w", &KeyRange::default(), None, None, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(keys, ["a", "b", "n", "z"], "a refused result changes nothing");
    }

    #[test]
    fn rows_with_an_unknown_status_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        assert!(db.upsert_rows("w", &[row("a", "trusted-me")]).is_err());
    }
}
