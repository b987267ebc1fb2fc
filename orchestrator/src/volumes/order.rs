//! The volume order: what a coordinator asks of its mover pods, read from the state
//! store like a scale-out work order, and where each mover's result goes.
//!
//! ```text
//! <order dir>/order.json           this file: the plan, the workload, its claims
//! <order dir>/<pack|restore>-<i>.json  mover i's summary (claims[i])
//! ```
//!
//! A mover trusts nothing but the order's plan: it re-validates the plan text, refuses
//! an order whose digest differs, and takes the staging store (and its credentials'
//! `${env:…}`/`${file:…}` references) from that plan's `volumes.staging`. The volume's
//! prefix in the staging store is `<plan>/<workload>/<claim>`.

use object_store::path::Path;
use serde::{Deserialize, Serialize};

/// Version of the order format.
pub const VOLUME_ORDER_VERSION: u32 = 1;

/// What a mover does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoverTask {
    /// Read a source claim into staging.
    Pack,
    /// Write staging into a target claim.
    Restore,
    /// Re-read a target claim and compare its root with the staged one.
    Verify,
}

impl MoverTask {
    /// As written in paths and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            MoverTask::Pack => "pack",
            MoverTask::Restore => "restore",
            MoverTask::Verify => "verify",
        }
    }
}

/// The order of one fan-out of movers, one per claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeOrder {
    /// [`VOLUME_ORDER_VERSION`].
    pub version: u32,
    /// The plan's digest: a mover refuses an order whose plan text does not hash to it.
    pub plan_digest: String,
    /// The plan's text, so a mover runs the reviewed plan and nothing else.
    pub plan_text: String,
    /// Where the plan was (its directory resolves relative paths).
    pub plan_path: String,
    /// The Kubernetes workload whose claims move.
    pub workload: String,
    /// Mover `i` moves `claims[i]`.
    pub claims: Vec<String>,
    /// Segment size in bytes (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
    /// Files per segment (default 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_files: Option<u64>,
}

/// Where an order's files are.
#[derive(Debug, Clone)]
pub struct VolumeLayout {
    dir: String,
}

impl VolumeLayout {
    /// The layout of the order at `order_path` (`<dir>/order.json`).
    pub fn of_order(order_path: &str) -> Self {
        let dir = order_path
            .strip_suffix("/order.json")
            .unwrap_or(order_path)
            .trim_end_matches('/');
        Self {
            dir: dir.to_owned(),
        }
    }

    /// `order.json`.
    pub fn order(&self) -> Path {
        Path::from(format!("{}/order.json", self.dir))
    }

    /// Mover `index`'s summary of `task`.
    pub fn result(&self, task: MoverTask, index: u32) -> Path {
        Path::from(format!("{}/{}-{index}.json", self.dir, task.as_str()))
    }
}

/// A claim's prefix in the staging store.
pub fn volume_prefix(plan: &str, workload: &str, claim: &str) -> Path {
    Path::from(format!("{plan}/{workload}/{claim}"))
}
