//! Where a fan-out's workers run, and how their end is observed.
//!
//! Both executors start `relocate worker` for the shards that have no result yet,
//! at most `parallelism` at once, retry a worker that died (a lost node, `kill -9`)
//! and give up on a shard whose worker says its failure is permanent (exit 3: the
//! order is invalid; 4: objects failed to copy or verify). Their workers' progress
//! lines are summed into the step's counters. A Kubernetes Job runs every index of
//! the order: a worker whose shard already has a clean result exits at once.

pub mod kubernetes;
pub mod local;
pub(crate) mod obstacles;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::progress::Aggregate;
use crate::transfer::Counters;

/// Exit codes after which retrying a shard cannot help (the Job's `podFailurePolicy`
/// says the same to Kubernetes).
pub use connectors::kube::workers::PERMANENT_EXIT_CODES;

/// Runs of one shard's worker before it fails for good (the first run and retries).
pub const DEFAULT_ATTEMPTS: u32 = 4;

/// What the executors need to start workers.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The shards to run (those without a result).
    pub shards: Vec<u32>,
    /// The order's path in the state store.
    pub order: String,
    /// `sha256:` of the order's bytes (`--order-digest`).
    pub order_digest: String,
    /// The state store's plan entry, as JSON (`--state-store`; no secret values:
    /// options hold references only).
    pub state_store: String,
    /// Workers at once.
    pub parallelism: u32,
    /// Runs of a shard before it fails.
    pub attempts: u32,
    /// The stage attempt running now (a rerun after a failure is a new attempt, and
    /// gets a new Job; a coordinator restarted in the same attempt re-attaches).
    pub attempt: u32,
}

/// How a shard's last worker ended, when it left no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEnd {
    /// It wrote its result (which may still report failed objects).
    Finished,
    /// It stopped without a result: its exit code when it had one, and why.
    Failed {
        /// The worker's exit code (none when killed by a signal or never started).
        code: Option<i32>,
        /// What happened, with the end of its stderr.
        detail: String,
    },
    /// The run was interrupted before the shard finished.
    Interrupted,
}

/// Progress of the running workers, shared with the display.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Per-shard latest counters.
    pub aggregate: Arc<Aggregate>,
    /// The step's counters (the sum).
    pub counters: Arc<Counters>,
}

/// The shards' ends, by index.
pub type Ends = BTreeMap<u32, ShardEnd>;
