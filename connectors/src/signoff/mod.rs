//! Third-party sign-off: the auditor's cryptography and the hooks that ask approvers.
//!
//! Keys ([`keys`]) sign DSSE envelopes ([`dsse`]) whose payloads are in-toto statements
//! ([`statement`]): a stage's evidence, or an approval over it. The types and every
//! check are the auditor's verifier's (`relocate_verifier`), re-exported here; this
//! side adds secret keys and signing, so signer and verifier share one definition. [`approval`] signs and
//! checks approvals; [`hook`] asks an approver for one (command, webhook or file drop).
//! This module knows nothing of how stages run; the orchestrator composes it.

pub mod approval;
pub mod dsse;
mod error;
pub mod hook;
pub mod keys;
pub mod statement;

pub use approval::{
    ApprovalRefused, CheckedApproval, EvidenceRefused, Expected, approve, check_approval,
    check_evidence,
};
pub use dsse::{Envelope, SignEnvelope, Signature};
pub use error::SignoffError;
pub use hook::{ApprovalHook, ApprovalRequest, HookError, hook_for};
pub use keys::{PublicKey, SecretKey, generate_keypair};
pub use statement::{
    ApprovalPredicate, Decision, EvidencePredicate, SignStatement, Statement, Subject,
    evidence_digest, parse_evidence, sign_evidence,
};
