//! The work order: what the coordinator asks of its workers, and where in the state
//! store each shard's inputs, checkpoints and result live.
//!
//! Layout under the state store (all names are plan, stage and workload names, which
//! validation keeps to `[A-Za-z0-9._-]`):
//!
//! ```text
//! relocate/<plan>/<workload>/<NN>-<stage>/step-<K>-<copy|verify>/<fan-out id>/
//!   order.json                  this file: plan, stage, attempt, workload, ranges
//!   shard-<i>/known.ndjson      rows the coordinator had for the range (delta, verify)
//!   shard-<i>/started           a worker began (a restart is then not a first copy)
//!   shard-<i>/journal-<S>.ndjson  checkpoints: rows changed since the previous one
//!   shard-<i>/result.ndjson     every row of the range at the end, in key order
//!   shard-<i>/result.json       the worker's report and the result file's digest
//! ```
//!
//! Each fan-out of a step gets a directory of its own, named by a fresh id
//! (`<unix seconds>-<random>`), never reused for another order: a rerun that resumes a
//! fan-out finds it through the coordinator's record; a new split never lands beside
//! an older order's results.

use object_store::path::Path;

use super::split::PlannedShard;

/// Version of the order format.
pub const ORDER_VERSION: u32 = 1;

/// What a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardTask {
    /// Copy the range.
    Copy,
    /// Re-read the range at the target and compare.
    Verify,
}

impl ShardTask {
    /// As written in paths and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ShardTask::Copy => "copy",
            ShardTask::Verify => "verify",
        }
    }
}

/// The work order of one fan-out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkOrder {
    /// [`ORDER_VERSION`].
    pub version: u32,
    /// The plan's digest: a worker refuses an order whose plan text does not hash to it.
    pub plan_digest: String,
    /// The plan's text, so a worker runs the reviewed plan and nothing else.
    pub plan_text: String,
    /// Where the plan was (its directory resolves relative paths).
    pub plan_path: String,
    /// Stage name.
    pub stage: String,
    /// Stage position, from 0.
    pub stage_index: usize,
    /// Stage attempt that created the order.
    pub attempt: u32,
    /// Step position in the stage, from 0.
    pub step: usize,
    /// Copy or verify.
    pub task: ShardTask,
    /// The object workload.
    pub workload: String,
    /// The coordinator's listing epoch of the workload before this copy (`None`: it
    /// never copied it, so each shard's first copy checks its target range is empty).
    pub epoch: Option<i64>,
    /// Seconds between a worker's checkpoints.
    pub checkpoint_seconds: u64,
    /// Bandwidth cap of one worker, bytes per second (the workload's cap divided by the
    /// workers running at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
    /// Objects the split listed (the step's total).
    #[serde(default)]
    pub objects: u64,
    /// Bytes the split listed.
    #[serde(default)]
    pub bytes: u64,
    /// The ranges.
    pub shards: Vec<PlannedShard>,
}

/// Where one fan-out's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    dir: Path,
}

impl Layout {
    /// The directory of fan-out `id` of a step.
    pub fn new(
        plan: &str,
        workload: &str,
        stage_index: usize,
        stage: &str,
        step: usize,
        task: ShardTask,
        id: &str,
    ) -> Self {
        let dir = format!(
            "relocate/{plan}/{workload}/{:02}-{stage}/step-{}-{}/{id}",
            stage_index + 1,
            step + 1,
            task.as_str()
        );
        Self {
            dir: Path::from(dir),
        }
    }

    /// The layout of the order at `order` (a worker's `--order`).
    pub fn of_order(order: &str) -> Self {
        let path = Path::from(order);
        let dir = path
            .as_ref()
            .rsplit_once('/')
            .map_or(String::new(), |(dir, _)| dir.to_owned());
        Self {
            dir: Path::from(dir),
        }
    }

    /// `order.json`.
    pub fn order(&self) -> Path {
        self.dir.clone().join("order.json")
    }

    fn shard(&self, index: u32) -> Path {
        self.dir.clone().join(format!("shard-{index}"))
    }

    /// Rows the coordinator had for the range.
    pub fn known(&self, index: u32) -> Path {
        self.shard(index).join("known.ndjson")
    }

    /// Marker of a worker having begun.
    pub fn started(&self, index: u32) -> Path {
        self.shard(index).join("started")
    }

    /// Prefix of the shard's checkpoints.
    pub fn shard_dir(&self, index: u32) -> Path {
        self.shard(index)
    }

    /// Checkpoint number `seq`.
    pub fn journal(&self, index: u32, seq: u64) -> Path {
        self.shard(index).join(format!("journal-{seq:08}.ndjson"))
    }

    /// Whether `name` (a file name in the shard's directory) is a checkpoint, and which.
    pub fn journal_seq(name: &str) -> Option<u64> {
        name.strip_prefix("journal-")?
            .strip_suffix(".ndjson")?
            .parse()
            .ok()
    }

    /// The shard's rows at the end.
    pub fn result_rows(&self, index: u32) -> Path {
        self.shard(index).join("result.ndjson")
    }

    /// The shard's report.
    pub fn result(&self, index: u32) -> Path {
        self.shard(index).join("result.json")
    }
}

/// A fresh fan-out id: the time and 64 random bits, so no two fan-outs share a
/// directory, even from two state directories or after a lost record.
pub fn fresh_id() -> String {
    let mut random = [0u8; 8];
    // The OS's generator; should it fail, the time's nanoseconds and the process id
    // still make a collision as good as impossible.
    if getrandom::fill(&mut random).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        random =
            (u64::from(now.subsec_nanos()) << 32 | u64::from(std::process::id())).to_le_bytes();
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}-{}", hex::encode(random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_finds_the_shard_files_beside_its_order() {
        let layout = Layout::new("move", "telemetry", 0, "seed", 1, ShardTask::Copy, "gen-3");
        let order = layout.order();
        assert_eq!(
            order.as_ref(),
            "relocate/move/telemetry/01-seed/step-2-copy/gen-3/order.json"
        );
        assert_ne!(fresh_id(), fresh_id());
        let again = Layout::of_order(order.as_ref());
        assert_eq!(again, layout);
        assert_eq!(
            again.journal(7, 12).as_ref(),
            "relocate/move/telemetry/01-seed/step-2-copy/gen-3/shard-7/journal-00000012.ndjson"
        );
        assert_eq!(Layout::journal_seq("journal-00000012.ndjson"), Some(12));
        assert_eq!(Layout::journal_seq("result.ndjson"), None);
    }
}
