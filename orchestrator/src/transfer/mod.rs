//! The copy engine: object-store to object-store transfer and verification.
//!
//! A library over `Arc<dyn ObjectStore>` pairs and the state database, knowing nothing
//! of stages or plans, so the same functions serve a local run today and a sharded
//! worker (a [`KeyRange`] picks a contiguous slice of the key space; rows are keyed by
//! workload and key so shards never collide).
//!
//! - [`copy`]: list the source (streamed), skip what is already at the target
//!   unchanged, copy the rest with the hash computed as the bytes flow, prune what
//!   relocate copied earlier that the source no longer has;
//! - [`verify`]: re-read every manifest object at the target, hash it, compare; list
//!   the target for unexpected extras;
//! - [`manifest`]: the manifest file and its Merkle root for evidence;
//! - [`stored`]: the store's own checksum of an object, for a verify that does not
//!   download (`verify: { mode: checksum }`).

pub mod adaptive;
pub mod copy;
pub mod counters;
mod existing;
pub mod failure;
pub mod filter;
pub mod hash;
pub mod listing;
pub mod local;
pub mod manifest;
mod object;
mod outcome;
mod prune;
pub mod range;
pub mod ratelimit;
pub mod read;
pub mod stored;
pub mod verify;

pub use copy::{CopyJob, CopyReport, copy_workload};
pub use counters::Counters;
pub use failure::CopyFailure;
pub use filter::KeyFilter;
pub use manifest::{ManifestSummary, write_manifest};
pub use range::KeyRange;
pub use verify::{Problem, ProblemKind, VerifyJob, VerifyReport, verify_workload};

/// The store path of a key as recorded in the state (the listing's own form, so
/// parsing cannot re-encode it).
pub fn key_path(key: &str) -> object_store::path::Path {
    object_store::path::Path::parse(key).unwrap_or_else(|_| object_store::path::Path::from(key))
}

/// Errors that stop a transfer step as a whole (per-object failures are counted and
/// reported instead, so one bad object does not hide the others).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Listing a store failed.
    #[error("listing {store} failed: {source}")]
    List {
        /// Which store (source or target name).
        store: String,
        /// The cause.
        #[source]
        source: object_store::Error,
    },
    /// The state database failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Writing the manifest file failed.
    #[error("writing manifest {}: {source}", path.display())]
    Manifest {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The first copy of a workload found its target already holding objects under the
    /// workload's keys, and the plan does not say to adopt them.
    #[error(
        "{store} already holds {objects} object(s) under this workload's keys, and this state \
         never copied there: relocate does not overwrite them silently. Set \
         `existingTarget: adopt` on the workload to keep the objects whose hash matches the \
         source's and copy the rest, empty the target, or run from the state directory \
         that copied them"
    )]
    ExistingTarget {
        /// The target store, for messages.
        store: String,
        /// Objects found there.
        objects: u64,
    },
    /// A worker task panicked or was cancelled unexpectedly.
    #[error("a transfer task stopped unexpectedly: {0}")]
    Task(String),
}
