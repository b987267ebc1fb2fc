//! The fan-out record: one per sharded step, in the state database beside the
//! workload, saying where its order is, how each shard ended, and whether a rerun may
//! reuse it.
//!
//! A rerun reuses an unfinished fan-out (same order, finished shards kept) only while
//! the workload's rows are the ones it last saw: every merge bumps the workload's
//! `rows:` counter, so a fan-out that another one merged after (a stage's copy run
//! again before its verify is resumed) is not reused with stale rows: it starts anew
//! from a fresh split.

use serde::{Deserialize, Serialize};

use crate::engine::{Context, EngineError};
use crate::scaleout::ScaleError;
use crate::transfer::KeyRange;

/// How a shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardState {
    /// Not finished yet.
    Pending,
    /// Finished, every object done.
    Done,
    /// Finished with failures, or its worker failed for good, or its result was refused.
    Failed,
    /// The run stopped before it finished.
    Interrupted,
}

/// One shard as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    /// Index.
    pub index: u32,
    /// Keys.
    #[serde(flatten)]
    pub range: KeyRange,
    /// Where it stands.
    pub status: ShardState,
    /// Why it failed (redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows it returned.
    #[serde(default)]
    pub objects: u64,
    /// Bytes it moved or verified.
    #[serde(default)]
    pub bytes: u64,
}

/// Where the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Child processes.
    Local,
    /// A Kubernetes Indexed Job.
    Kubernetes,
}

/// The record of a step's fan-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOut {
    /// Stage name.
    pub stage: String,
    /// Step position, from 1.
    pub step: usize,
    /// `copy` or `verify`.
    pub task: String,
    /// The order's path in the state store.
    pub order: String,
    /// `sha256:` of the order's bytes.
    pub order_digest: String,
    /// Where the workers run.
    pub executor: ExecutorKind,
    /// The workload's `rows:` counter when this fan-out last wrote or merged.
    pub rows_seen: u64,
    /// Whether every shard finished clean.
    pub finished: bool,
    /// The shards.
    pub shards: Vec<ShardStatus>,
}

/// The workload_state name of a step's fan-out record.
pub fn fanout_key(stage_index: usize, step_index: usize) -> String {
    format!("fanout:{stage_index}:{step_index}")
}

/// The workload's rows counter (bumped by every merge).
pub(crate) fn rows_version(ctx: &Context, workload: &str) -> Result<u64, EngineError> {
    Ok(ctx
        .db
        .meta(&format!("rows:{workload}"))?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Bump the workload's rows counter; returns the new value.
pub(crate) fn bump_rows_version(ctx: &Context, workload: &str) -> Result<u64, EngineError> {
    let next = rows_version(ctx, workload)? + 1;
    ctx.db
        .set_meta(&format!("rows:{workload}"), &next.to_string())?;
    Ok(next)
}

/// The step's record, if one is saved and readable.
pub(crate) fn load(
    ctx: &Context,
    workload: &str,
    key: &str,
) -> Result<Option<FanOut>, EngineError> {
    let Some(text) = ctx.db.workload_state(workload, key)? else {
        return Ok(None);
    };
    match serde_json::from_str(&text) {
        Ok(record) => Ok(Some(record)),
        Err(e) => {
            tracing::warn!(
                "{workload}: the fan-out record {key} is unreadable ({e}); starting a new fan-out"
            );
            Ok(None)
        }
    }
}

/// Save the step's record.
pub(crate) fn save(
    ctx: &Context,
    workload: &str,
    key: &str,
    record: &FanOut,
) -> Result<(), EngineError> {
    let json = serde_json::to_string(record).map_err(|e| ScaleError::Encode {
        what: "the fan-out record",
        source: e,
    })?;
    ctx.db.set_workload_state(workload, key, &json)?;
    Ok(())
}

/// Whether `previous` may be resumed: unfinished, and no other fan-out merged rows of
/// the workload since it last did.
pub fn reusable(previous: &FanOut, rows_now: u64) -> bool {
    !previous.finished && previous.rows_seen == rows_now
}
