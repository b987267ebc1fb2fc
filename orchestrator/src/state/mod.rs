//! The state directory: where a move remembers what it has done.
//!
//! Where it is ([`StateDir::locate`]): `--state-dir` when given; else
//! `<directory of the plan file>/.relocate/<plan name>/`, so the same plan run from any
//! directory finds the same state. Earlier versions kept it in `./.relocate/<plan name>/`
//! under the current directory: when only that one exists it is used (never a second,
//! empty state beside it) with a notice saying how to move it.
//!
//! Layout of `.relocate/<plan>/` (or `--state-dir`):
//! - `state.db`: the SQLite database (objects, steps, stages, gates, the record);
//! - `lock`: held by the one `relocate run` allowed at a time;
//! - `operator.key` / `operator.pub`: the key this state directory signs evidence with;
//! - `evidence/`: each stage attempt's evidence envelope, as sent to approvers;
//! - `approvals/<stage>/<approver>.json`: the file hook's drop zone;
//! - `manifests/`: each workload's manifest in `sha256sum` format;
//! - `volumes/<workload>/<claim>.manifest.ndjson`: each volume's latest manifest.

mod db;
mod lock;
mod objects;
mod operator_key;
mod record;
mod shard_rows;
mod stages;
mod writer;

pub(crate) use db::blocking;
pub use db::{Db, StateError};
pub use lock::RunLock;
pub use objects::{Known, ObjectRow, ObjectStatus, WorkloadCounts};
pub use operator_key::settle_operator_key;
pub use record::RecordEntry;
pub use shard_rows::ShardRow;
pub use stages::{NewEvidence, StageRecord, StageStatus, StepRecord, StepStatus};
pub use writer::{ObjectUpdate, ObjectWriter};

use std::path::{Path, PathBuf};

/// Paths inside one state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory for a plan: `dir` when given, else `.relocate/<plan name>/`.
    pub fn for_plan(dir: Option<&Path>, plan_name: &str) -> Self {
        let root = match dir {
            Some(d) => d.to_path_buf(),
            None => Path::new(".relocate").join(plan_name),
        };
        Self { root }
    }

    /// The state directory of the plan at `plan_dir` (see the module docs), with a
    /// notice for the operator when an old `./.relocate/<name>` was found.
    pub fn locate(dir: Option<&Path>, plan_dir: &Path, plan_name: &str) -> (Self, Option<String>) {
        if let Some(d) = dir {
            return (
                Self {
                    root: d.to_path_buf(),
                },
                None,
            );
        }
        let plan_dir = std::path::absolute(plan_dir).unwrap_or_else(|_| plan_dir.to_path_buf());
        let beside = Self {
            root: plan_dir.join(".relocate").join(plan_name),
        };
        let old = Self {
            root: Path::new(".relocate").join(plan_name),
        };
        let same = match (
            std::fs::canonicalize(beside.root()),
            std::fs::canonicalize(old.root()),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same || !old.exists() {
            return (beside, None);
        }
        if beside.exists() {
            let notice = format!(
                "another state of plan {plan_name} is in {} (the current directory); it is NOT used: \
                 this run uses {} beside the plan (pass --state-dir to choose)",
                old.root().display(),
                beside.root().display()
            );
            return (beside, Some(notice));
        }
        let notice = format!(
            "using the state of plan {plan_name} in {} (where earlier versions kept it); \
             state now lives beside the plan: `mv {} {}` to move it",
            old.root().display(),
            old.root().display(),
            beside.root().display()
        );
        (old, Some(notice))
    }

    /// Create the directory tree if missing.
    pub fn create(&self) -> Result<(), StateError> {
        for dir in [
            self.root.clone(),
            self.evidence_dir(),
            self.approvals_dir(),
            self.manifests_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| StateError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Whether a state database exists yet.
    pub fn exists(&self) -> bool {
        self.db_path().exists()
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// The run lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Stage evidence envelopes.
    pub fn evidence_dir(&self) -> PathBuf {
        self.root.join("evidence")
    }

    /// The file hook's default drop zone.
    pub fn approvals_dir(&self) -> PathBuf {
        self.root.join("approvals")
    }

    /// Manifests in `sha256sum` format.
    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// Each volume's latest manifest, `<workload>/<claim>.manifest.ndjson`, byte for
    /// byte the one the evidence signs.
    pub fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The operator key stem (`operator.key`, `operator.pub`).
    pub fn operator_key_stem(&self) -> PathBuf {
        self.root.join("operator")
    }
}
