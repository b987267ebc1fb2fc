//! The auditor's side: the record exported as a self-contained, standard bundle, and
//! its independent verification on any machine.
//!
//! **Export format.** `relocate record export PLAN --out FILE` writes:
//! - `FILE` (conventionally `*.intoto.jsonl`): an in-toto attestation bundle, JSON Lines,
//!   one DSSE envelope per line. Line 1 is the record header ([`RecordHeader`],
//!   predicate type `https://relocate.dev/record/v1`, signed by the operator key): plan
//!   name and digest, the operator's public key, every approver's pinned public key and
//!   key id, each stage's approvers and threshold, the digest of every entry that follows
//!   and the manifests exported. Lines 2.. are the record in order: each stage attempt's
//!   evidence (signed by the operator key) and each checked approval or rejection
//!   (signed by its approver), exactly as the state database holds them.
//! - `FILE.manifests/`: for each object workload, `<workload>.<algo>sums` (GNU
//!   `sha256sum` format, the very file whose digest the evidence signs) and
//!   `<workload>.sizes` (sizes, same order), from which anyone can recompute the signed
//!   Merkle root, prove one object's membership, or re-hash the target. Only each
//!   workload's latest manifest exists; an earlier stage's superseded manifest is not
//!   exported. For each persistent volume the evidence names,
//!   `<workload>.<claim>.volume.ndjson`: the volume's manifest (one entry a line), the
//!   very file whose digest the evidence signs, from which the signed root is
//!   recomputed.
//!
//! **Verification** is the auditor's own crate, `relocate_verifier` (nested at
//! `orchestrator/verifier/`): record parsing, signatures, chain, thresholds, manifests
//! and Merkle proofs, with no engine, state or store code. What needs a store stays
//! here: [`target`] re-hashes the target's objects and [`digests`] checks a store
//! against a digest list, both feeding the bytes they read to the verifier's `sha2`
//! hashing. Any `✘` makes `relocate verify` exit 7.

pub mod digests;
pub mod export;
pub mod hashing;
pub mod manifest_files;
pub mod target;
pub mod transparency;
pub mod volume_files;

use std::path::PathBuf;

pub use export::{ExportSummary, export_record};
pub use relocate_verifier::{Bundle, RecordHeader, Report, VerifiedRecord, check_record};

use crate::state::StateError;

/// Why an export or a verification could not be carried out (as opposed to a check
/// that ran and failed, which is a `✘` in the [`Report`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The state database could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// There is no state directory to export.
    #[error("no state in {} (has the plan been run? pass --state-dir if it lives elsewhere)", dir.display())]
    NoState {
        /// The directory looked in.
        dir: PathBuf,
    },
    /// The state directory belongs to another version of the plan.
    #[error("the state in {} is of plan digest {recorded}, not of this plan ({current})", dir.display())]
    PlanMismatch {
        /// The state directory.
        dir: PathBuf,
        /// The digest the state was created for.
        recorded: String,
        /// The digest of the plan given.
        current: String,
    },
    /// The operator key that signs the export's header cannot be read.
    #[error("operator key {}: {source}", path.display())]
    OperatorKey {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: connectors::signoff::SignoffError,
    },
    /// A record entry in the state database is not a DSSE envelope.
    #[error("record entry {seq} in the state database is unreadable: {reason}")]
    BadRecordEntry {
        /// Its position in the record.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
    /// A file the verifier reads could not be read or is malformed.
    #[error(transparent)]
    Check(#[from] relocate_verifier::CheckError),
    /// A digest list given to `--digests` is malformed.
    #[error("digest list {}: {reason}", path.display())]
    DigestList {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A volume the evidence names has no manifest in the state directory.
    #[error("volume `{volume}`: its manifest {} cannot be exported: {source}", path.display())]
    VolumeManifest {
        /// `<workload>/<claim>`.
        volume: String,
        /// The state directory's copy.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A volume's workload or claim name cannot name a file (only a forged record has
    /// such names: plans and clusters validate them).
    #[error("volume `{volume}`: its name cannot safely name a file")]
    UnsafeVolumeName {
        /// `<workload>/<claim>` as the evidence gives it.
        volume: String,
    },
    /// A workload's include/exclude globs do not compile.
    #[error("workload `{workload}`: bad key filter: {reason}")]
    Filter {
        /// The workload.
        workload: String,
        /// The glob error.
        reason: String,
    },
}
