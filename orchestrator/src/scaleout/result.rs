//! A shard's result: the worker's report of its range and the digest of its rows.

use super::split::PlannedShard;
use crate::transfer::{CopyReport, KeyRange, VerifyReport};

/// What a worker writes as `result.json` when its range is done.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardResult {
    /// The shard.
    pub index: u32,
    /// Its keys.
    pub range: KeyRange,
    /// Rows in `result.ndjson`.
    pub rows: u64,
    /// SHA-256 of `result.ndjson`: the coordinator refuses rows that do not hash to it,
    /// and the evidence names it.
    pub rows_digest: String,
    /// `sha256:` of the order the worker ran (a result of another order is not this
    /// shard's, whatever its path).
    #[serde(default)]
    pub order_digest: String,
    /// Checkpoints numbered below this are contained in this result.
    #[serde(default)]
    pub journal_seq: u64,
    /// The copy's report, for a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyReport>,
    /// The verify's report, for a verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
}

impl ShardResult {
    /// A copy's result (rows filled in once written).
    pub fn copy(shard: &PlannedShard, report: CopyReport) -> Self {
        Self {
            index: shard.index,
            range: shard.range.clone(),
            copy: Some(report),
            ..Self::default()
        }
    }

    /// A verify's result.
    pub fn verify(shard: &PlannedShard, report: VerifyReport) -> Self {
        Self {
            index: shard.index,
            range: shard.range.clone(),
            verify: Some(report),
            ..Self::default()
        }
    }

    /// Whether the run was stopped before the range was done.
    pub fn interrupted(&self) -> bool {
        self.copy.as_ref().is_some_and(|r| r.interrupted)
            || self.verify.as_ref().is_some_and(|r| r.interrupted)
    }

    /// Objects that failed (copy) or did not verify, plus removals that failed.
    pub fn failed(&self) -> u64 {
        self.copy.as_ref().map_or(0, |r| r.failed + r.prune_failed)
            + self.verify.as_ref().map_or(0, VerifyReport::failed)
    }
}
