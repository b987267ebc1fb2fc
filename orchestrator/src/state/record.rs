//! The record: evidence and approvals, append-only, in the order they happened.

use rusqlite::params;

use super::db::{blocking, now};
use super::{Db, StateError};

/// One entry of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    /// Position in the record, from 1.
    pub seq: i64,
    /// `evidence` or `approval`.
    pub kind: String,
    /// The stage it belongs to.
    pub stage: String,
    /// The stage attempt.
    pub attempt: u32,
    /// The approver (approvals only).
    pub approver: Option<String>,
    /// `approve` or `reject` (approvals only).
    pub decision: Option<String>,
    /// The approver's reason, if any.
    pub reason: Option<String>,
    /// Digest of the evidence this entry is or refers to.
    pub digest: String,
    /// The DSSE envelope, as JSON.
    pub envelope: String,
    /// When it was recorded.
    pub at: String,
}

impl Db {
    /// Append an entry to the record.
    #[allow(clippy::too_many_arguments)]
    pub fn append_record(
        &self,
        kind: &str,
        stage: &str,
        attempt: u32,
        approver: Option<&str>,
        decision: Option<&str>,
        reason: Option<&str>,
        digest: &str,
        envelope: &str,
    ) -> Result<(), StateError> {
        blocking(|| {
            self.conn().execute(
            "INSERT INTO record (kind, stage, attempt, approver, decision, reason, digest, envelope, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![kind, stage, attempt as i64, approver, decision, reason, digest, envelope, now()],
        )?;
            Ok(())
        })
    }

    /// The whole record in order.
    pub fn record(&self) -> Result<Vec<RecordEntry>, StateError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
            "SELECT seq, kind, stage, attempt, approver, decision, reason, digest, envelope, at FROM record ORDER BY seq",
        )?;
            let rows = stmt.query_map([], |r| {
                Ok(RecordEntry {
                    seq: r.get(0)?,
                    kind: r.get(1)?,
                    stage: r.get(2)?,
                    attempt: r.get::<_, i64>(3)? as u32,
                    approver: r.get(4)?,
                    decision: r.get(5)?,
                    reason: r.get(6)?,
                    digest: r.get(7)?,
                    envelope: r.get(8)?,
                    at: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
