//! Third-party sign-off: the auditor's cryptography and the hooks that ask approvers.
//!
//! Keys ([`keys`]) sign DSSE envelopes ([`dsse`]) whose payloads are in-toto statements
//! ([`statement`]): a stage's evidence, or an approval over it. [`approval`] signs and
//! checks approvals; [`hook`] asks an approver for one (command, webhook or file drop).
//! This module knows nothing of how stages run; the orchestrator composes it.

pub mod approval;
pub mod dsse;
mod error;
pub mod hook;
pub mod keys;
pub mod statement;

pub use approval::{ApprovalRefused, CheckedApproval, Expected, approve, check_approval};
pub use dsse::{Envelope, Signature};
pub use error::SignoffError;
pub use hook::{ApprovalHook, ApprovalRequest, HookError, hook_for};
pub use keys::{PublicKey, SecretKey, generate_keypair};
pub use statement::{
    ApprovalPredicate, Decision, EvidencePredicate, Statement, Subject, evidence_digest,
    parse_evidence, sign_evidence,
};
