//! The events a run emits, in the order they happen.

use std::sync::Arc;

use serde::Serialize;

use crate::transfer::Counters;

/// Final counts of one step, as the summary reports them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepSummary {
    /// Stage name.
    pub stage: String,
    /// Step position in the stage.
    pub step: usize,
    /// Step kind.
    pub kind: String,
    /// Workload, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// `succeeded`, `failed`, `skipped` (already done) or `interrupted`.
    pub outcome: String,
    /// Objects copied.
    pub copied: u64,
    /// Objects skipped as already at the target.
    pub skipped: u64,
    /// Objects verified.
    pub verified: u64,
    /// Objects failed.
    pub failed: u64,
    /// Objects pruned (deleted at the source since copied).
    pub pruned: u64,
    /// Bytes copied or verified.
    pub bytes: u64,
    /// Objects found at the target with the source's hash and kept
    /// (`existingTarget: adopt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopted: Option<u64>,
    /// Symbolic links left out of a local source (`symlinks: skip`); present for every
    /// copy from a local directory, so the evidence says 0 when there were none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlinks_skipped: Option<u64>,
    /// Objects the source deleted that could not be removed from the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune_failed: Option<u64>,
    /// How a verify step checked the target: `reread` or `checksum` (the plan's
    /// `verify.mode`); absent for other steps and in evidence written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_mode: Option<String>,
    /// With `verify_mode: checksum`, the objects checked against the store's stored
    /// checksum without being downloaded (the others were re-read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by_checksum: Option<u64>,
    /// The shards of a sharded step, each with the digest of the rows it returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<ShardEvidence>>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// One shard of a sharded step, as its evidence names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardEvidence {
    /// Index, in key order.
    pub index: u32,
    /// Exclusive lower bound of its keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Inclusive upper bound of its keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
    /// Rows it returned.
    pub rows: u64,
    /// `sha256:` of its `result.ndjson`, as merged.
    pub result_digest: String,
}

/// Something that happened in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Plan name.
        plan: String,
        /// Plan digest.
        plan_digest: String,
        /// State directory.
        state_dir: String,
        /// Number of stages.
        stages: usize,
        /// The stages' names in plan order (stage N is `stage_names[N-1]`).
        stage_names: Vec<String>,
    },
    /// A stage is already complete and is not run again.
    StageSkipped {
        /// Stage name.
        stage: String,
        /// Why.
        reason: String,
    },
    /// A stage began (or resumed).
    StageStarted {
        /// Position.
        index: usize,
        /// Name.
        stage: String,
        /// Attempt number.
        attempt: u32,
        /// Whether this continues an interrupted attempt.
        resumed: bool,
    },
    /// A step began.
    StepStarted {
        /// Stage name.
        stage: String,
        /// Position in the stage.
        step: usize,
        /// Kind.
        kind: String,
        /// Workload, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        workload: Option<String>,
        /// What it does, in words.
        description: String,
        /// Live counters for object steps.
        #[serde(skip)]
        counters: Option<Arc<Counters>>,
    },
    /// A per-key finding worth a line of its own (copy failure, verify problem).
    ObjectProblem {
        /// Stage name.
        stage: String,
        /// Workload.
        workload: String,
        /// Key.
        key: String,
        /// Kind (`copy-failed`, `mismatch`, `missing`, `unexpected`, `unreadable`).
        problem: String,
        /// Detail.
        detail: String,
    },
    /// A line of output from a `run` step's command.
    CommandOutput {
        /// Stage name.
        stage: String,
        /// The line.
        line: String,
    },
    /// A step ended.
    StepFinished {
        /// Counts and outcome.
        summary: StepSummary,
        /// Error, when failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A stage's evidence was written.
    EvidenceWritten {
        /// Stage name.
        stage: String,
        /// Evidence digest.
        digest: String,
        /// File.
        path: String,
    },
    /// The gate waits for approvers.
    GateWaiting {
        /// Stage name.
        stage: String,
        /// Approvers asked.
        awaiting: Vec<String>,
        /// Approvals needed.
        threshold: usize,
        /// The evidence file the approvers sign.
        evidence: String,
        /// One paragraph: what the evidence attests.
        attests: String,
        /// How each awaited approver answers (the exact commands for a file hook).
        asks: Vec<String>,
    },
    /// An approver answered (approval or rejection), and the answer was checked.
    ApprovalReceived {
        /// Stage name.
        stage: String,
        /// Approver.
        approver: String,
        /// `approve` or `reject`.
        decision: String,
        /// Their reason, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An approver's answer was refused (bad signature, wrong stage, …) or the hook failed.
    ApprovalRefused {
        /// Stage name.
        stage: String,
        /// Approver.
        approver: String,
        /// Why.
        reason: String,
    },
    /// A stage ended.
    StageFinished {
        /// Stage name.
        stage: String,
        /// `completed`, `failed`, `rejected`, `interrupted`.
        outcome: String,
    },
    /// The run ended; the last event.
    Summary {
        /// `succeeded`, `nothing-to-do`, `failed`, `rejected`, `interrupted`.
        outcome: String,
        /// Per step counts for the steps this run touched.
        steps: Vec<StepSummary>,
        /// Error, when not succeeded.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// Where events go.
pub trait EventSink: Send + Sync {
    /// Handle one event.
    fn emit(&self, event: Event);
    /// Flush and stop any background drawing (called once at the end).
    fn finish(&self) {}
}
