//! The auditor's verifier: everything that decides `relocate verify`'s verdict on an
//! exported record, small enough to read whole, with no engine, state or store code.
//! Hashing is `sha2`, signatures `ed25519-dalek`; nothing else does cryptography.
//!
//! [`verify_record`] runs the checks in this order, each a `✔`/`✘` line in a
//! [`Report`]:
//!
//! 1. **Pins** ([`trust`]): the operator key from the reviewed plan's
//!    `operator.publicKey` or `--operator-key`; the approver keys from the plan. Keys
//!    taken from the record itself prove integrity only, and the verdict says so.
//! 2. **Header** ([`header`]): line 1 is a DSSE envelope ([`dsse`]) holding an in-toto
//!    statement ([`statement`]) with the record header ([`record`]), signed by the
//!    (pinned) operator key ([`keys`]).
//! 3. **Chain** ([`chain`]): every following line verifies under its key; evidence in
//!    stage order, each naming the previous stage's evidence by digest; each approval
//!    by an approver's pinned key, bound to this plan, stage and evidence
//!    ([`approval`]); each gate's threshold met over its stage's final evidence; the
//!    lines exactly the ones the header lists, in order.
//! 4. **Plan** ([`pinning`]): with a reviewed plan, the record is of its digest, pins
//!    its approver keys and has its stages and sign-off rules.
//! 5. **Manifests** ([`signed_manifests`], [`manifest`], [`merkle`]): the manifests
//!    the signed evidence names (never the header's list), each exported file's digest,
//!    object count and Merkle root equal to what the evidence signs; likewise each
//!    volume manifest ([`signed_volumes`], [`volume`], [`volume_check`]): file digest,
//!    recomputed root, counts, and a structure a restore can trust; no other file.
//! 6. **Attestations** ([`trust`]): per stage, the keys that attest it and whether each
//!    is pinned; the verdict's limits.
//!
//! The caller adds what needs I/O beyond files: re-hashing a target store feeds bytes to
//! [`hash::Sha256Stream`]; [`proof`] proves one object's membership.

pub mod approval;
pub mod chain;
pub mod dsse;
mod error;
pub mod hash;
pub mod header;
pub mod keys;
pub mod manifest;
pub mod merkle;
pub mod pinning;
pub mod proof;
pub mod record;
pub mod report;
pub mod signed_manifests;
pub mod signed_volumes;
pub mod statement;
pub mod trust;
pub mod volume;
pub mod volume_check;

use std::path::PathBuf;

pub use chain::{VerifiedRecord, check_record};
pub use error::VerifyError;
pub use keys::PublicKey;
pub use pinning::ReviewedPlan;
pub use record::{Bundle, RecordHeader};
pub use report::Report;
pub use signed_manifests::SignedManifest;
pub use trust::Pins;

/// Why a file a check needs could not be read (as opposed to a check that ran and
/// failed, which is a `✘` in the [`Report`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An exported manifest file is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// What [`verify_record`] established.
#[derive(Debug)]
pub struct Outcome {
    /// The pins the checks ran with.
    pub pins: Pins,
    /// The record, when its header could be trusted enough to check the rest.
    pub record: Option<VerifiedRecord>,
    /// The manifests the signed evidence names whose exported files hold: the only
    /// ones a target check or an object proof may use.
    pub manifests: Vec<SignedManifest>,
}

/// Run steps 1–6 on `bundle`, pinning keys from the reviewed `plan` and `operator_key`.
pub fn verify_record(
    bundle: &Bundle,
    plan: Option<&ReviewedPlan>,
    operator_key: Option<PublicKey>,
    report: &mut Report,
) -> Result<Outcome, VerifyError> {
    let from_plan = plan
        .and_then(|p| p.operator_key.as_deref())
        .map(PublicKey::parse)
        .transpose()?;
    let mut pins = Pins {
        operator: trust::operator_pin(from_plan, operator_key, report),
        approvers_by_plan: false,
    };
    let pinned = pins.operator.as_ref().map(|p| &p.key);
    let Some(record) = check_record(bundle, pinned, report) else {
        trust::state_limits(&pins, report);
        return Ok(Outcome {
            pins,
            record: None,
            manifests: Vec::new(),
        });
    };
    if let Some(plan) = plan {
        pins.approvers_by_plan = pinning::check_plan(&record.header, plan, report);
    }
    let dir = bundle.manifests_dir();
    let signed = signed_manifests::from_evidence(&record, report);
    let manifests = signed_manifests::check_export(&signed, &dir, report);
    let volumes = signed_volumes::from_evidence(&record, report);
    let mut expected = signed_manifests::expected_files(&signed);
    expected.extend(signed_volumes::check_export(&volumes, &dir, report));
    signed_manifests::check_no_unsigned_files(&dir, &expected, report);
    trust::list_attestations(&record, &pins, report);
    trust::state_limits(&pins, report);
    Ok(Outcome {
        pins,
        record: Some(record),
        manifests,
    })
}
