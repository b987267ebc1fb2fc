//! Volume movers on Kubernetes: one Job per PersistentVolumeClaim running `relocate
//! volume pack|restore|verify` with the claim mounted at [`VOLUME_MOUNT`], built on the
//! scale-out worker Job ([`super::workers`]) and changed only where a mover differs:
//!
//! - the claim is mounted **read-only** for `pack` and `verify` (a mover never writes a
//!   source volume), read-write for `restore`;
//! - no `fsGroup`: the kubelet would otherwise re-own every file of the volume to the
//!   pod's group on mount, changing the very ownership the move must preserve;
//! - non-root (65532) by default; a restore that must recreate other owners runs as
//!   root with only `CHOWN`, `FOWNER` and `DAC_OVERRIDE` added (and a pack of files
//!   only their owners can read, with `DAC_READ_SEARCH`), which the plan says;
//! - the path reaches the binary as `RELOCATE_VOLUME_PATH`.
//!
//! [`claim_status`] reads a claim's phase, capacity and class, so a claim still
//! `Pending` or smaller than the staged data is refused naming it.

mod claims;
mod job;
mod node;
mod placement;
mod planned;
mod snapshot;

#[cfg(test)]
mod tests;

pub use claims::{ClaimRefused, ClaimStatus, claim_status, default_storage_class, parse_quantity};
pub use job::{
    MoverExit, TERMINATION_LOG, TERMINATION_LOG_ENV, delete_mover_job, succeeded_movers,
};
pub use job::{MoverJob, VOLUME_MOUNT, build_mover_job, ensure_mover_job};
pub use node::{claim_node, claim_users};
pub use placement::{Scheduling, mover_node, unscheduled_reason};
pub use planned::{PlannedClaim, planned_claims};
pub use snapshot::{SnapshotClone, delete_snapshot_clone, snapshot_claim};
