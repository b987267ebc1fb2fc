//! Checking the two things an approval joins: the **evidence** an approver is asked to
//! sign (signed, and by the pinned operator key over exactly these bytes) and the
//! **approval** a gate or an auditor receives (by the pinned approver key, binding
//! exactly this plan, this stage and this evidence). Every refusal names its reason,
//! because an operator must be able to tell a replayed approval from a tampered one.

use crate::VerifyError;
use crate::dsse::Envelope;
use crate::keys::PublicKey;
use crate::statement::{
    ApprovalPredicate, Decision, EvidencePredicate, PAYLOAD_TYPE, Statement, Subject,
    parse_approval, parse_evidence,
};

/// Why `relocate approve` refuses to sign evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceRefused {
    /// The envelope carries no signature: nobody vouches for it.
    #[error("the evidence is not signed; refusing to approve evidence nobody vouches for")]
    Unsigned,
    /// A signature names the operator's key but does not verify: the evidence was
    /// edited after the operator signed it.
    #[error(
        "the evidence does not verify under the operator key {key_id}: it was changed after the operator signed it; refusing to sign"
    )]
    Edited {
        /// Key id of the pinned operator key.
        key_id: String,
    },
    /// No signature is by the pinned operator key.
    #[error(
        "the evidence is not signed by the pinned operator key {key_id} (signed by: {}); refusing to sign",
        found_key_ids.join(", ")
    )]
    NotByOperator {
        /// Key id of the pinned operator key.
        key_id: String,
        /// Key ids the signatures name.
        found_key_ids: Vec<String>,
    },
    /// Not stage evidence.
    #[error("the envelope is not stage evidence: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
}

/// Check `evidence` before approving it: signed, and (when `operator` is pinned) by
/// that key over exactly these bytes. Returns the statement it carries.
pub fn check_evidence(
    evidence: &Envelope,
    operator: Option<&PublicKey>,
) -> Result<(Statement, EvidencePredicate), EvidenceRefused> {
    if evidence.signatures.is_empty() {
        return Err(EvidenceRefused::Unsigned);
    }
    if let Some(key) = operator {
        evidence.verify_with(key).map_err(|e| match e {
            VerifyError::BadSignature { key_id } => EvidenceRefused::Edited { key_id },
            _ => EvidenceRefused::NotByOperator {
                key_id: key.key_id(),
                found_key_ids: evidence.key_ids(),
            },
        })?;
    }
    parse_evidence(evidence).map_err(|e| EvidenceRefused::Malformed {
        reason: e.to_string(),
    })
}

/// What the gate expects an approval to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `sha256:<hex>` of the plan being run.
    pub plan_digest: String,
    /// The stage at the gate.
    pub stage: String,
    /// `sha256:<hex>` of the evidence just written ([`crate::statement::evidence_digest`]).
    pub evidence_digest: String,
}

/// An approval that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedApproval {
    /// Approve or reject; a checked rejection stops the move.
    pub decision: Decision,
    /// The approver's reason, if given.
    pub reason: Option<String>,
    /// When the approver signed (RFC 3339, as claimed by the approver).
    pub signed_at: String,
}

/// Why an approval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalRefused {
    /// The approval is not a well-formed approval statement.
    #[error("malformed approval: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The envelope carries no signature at all.
    #[error("approval is not signed")]
    NotSigned,
    /// Signed, but not by the key the plan pins for this approver.
    #[error(
        "approval for `{approver}` is signed by another key than the plan pins \
         (pinned key id {expected_key_id}, signed by {})",
        found_key_ids.join(", ")
    )]
    WrongKey {
        /// The approver asked.
        approver: String,
        /// Key id of the pinned key.
        expected_key_id: String,
        /// Key ids named by the signatures.
        found_key_ids: Vec<String>,
    },
    /// Names the pinned key but the signature does not verify: the approval was edited
    /// after signing.
    #[error(
        "approval signature by the pinned key does not verify: the approval was changed after signing"
    )]
    BadSignature,
    /// An approval for another plan (or another version of this plan).
    #[error("approval is for another plan: expected plan digest {expected}, approval says {found}")]
    WrongPlan {
        /// This plan's digest.
        expected: String,
        /// The approval's.
        found: String,
    },
    /// An approval for another stage.
    #[error("approval is for stage `{found}`, not `{expected}`")]
    WrongStage {
        /// The stage at the gate.
        expected: String,
        /// The approval's.
        found: String,
    },
    /// An approval over other evidence: replayed from an earlier attempt, or the
    /// evidence file changed after the approver signed.
    #[error(
        "approval is over other evidence (a replay from an earlier attempt, or the evidence \
         changed): expected {expected}, approval says {found}"
    )]
    WrongEvidence {
        /// Digest of the evidence at the gate.
        expected: String,
        /// The digest the approval binds.
        found: String,
    },
    /// The envelope is not an in-toto statement.
    #[error("approval envelope has payload type other than `{PAYLOAD_TYPE}`")]
    WrongPayloadType,
}

/// Check `approval` from `approver` against the plan's `pinned` key and what the gate
/// `expected`. The signature is checked first; nothing in an unverified payload is
/// trusted or reported.
pub fn check_approval(
    approval: &Envelope,
    expected: &Expected,
    approver: &str,
    pinned: &PublicKey,
) -> Result<CheckedApproval, ApprovalRefused> {
    check_signature(approval, approver, pinned)?;
    let (statement, predicate) = parse_approval(approval).map_err(|e| match e {
        VerifyError::WrongPayloadType { .. } => ApprovalRefused::WrongPayloadType,
        other => ApprovalRefused::Malformed {
            reason: other.to_string(),
        },
    })?;
    check_subject(&statement.subject, &predicate)?;
    check_binding(&predicate, expected)?;
    Ok(CheckedApproval {
        decision: predicate.decision,
        reason: predicate.reason,
        signed_at: predicate.signed_at,
    })
}

fn check_signature(
    approval: &Envelope,
    approver: &str,
    pinned: &PublicKey,
) -> Result<(), ApprovalRefused> {
    if approval.signatures.is_empty() {
        return Err(ApprovalRefused::NotSigned);
    }
    match approval.verify_with(pinned) {
        Ok(()) => Ok(()),
        Err(VerifyError::BadSignature { .. }) => Err(ApprovalRefused::BadSignature),
        Err(_) => Err(ApprovalRefused::WrongKey {
            approver: approver.to_owned(),
            expected_key_id: pinned.key_id(),
            found_key_ids: approval.key_ids(),
        }),
    }
}

/// The subject must name the same stage and evidence digest as the predicate.
fn check_subject(
    subject: &[Subject],
    predicate: &ApprovalPredicate,
) -> Result<(), ApprovalRefused> {
    let expected_name = format!("evidence:{}", predicate.stage);
    let hex = predicate
        .evidence_digest
        .strip_prefix("sha256:")
        .unwrap_or(&predicate.evidence_digest);
    let consistent = matches!(subject, [s] if s.name == expected_name
        && s.digest.get("sha256").map(String::as_str) == Some(hex));
    if consistent {
        Ok(())
    } else {
        Err(ApprovalRefused::Malformed {
            reason: format!(
                "subject does not match the predicate (expected one subject `{expected_name}` \
                 with sha256 {hex})"
            ),
        })
    }
}

fn check_binding(
    predicate: &ApprovalPredicate,
    expected: &Expected,
) -> Result<(), ApprovalRefused> {
    if predicate.plan_digest != expected.plan_digest {
        return Err(ApprovalRefused::WrongPlan {
            expected: expected.plan_digest.clone(),
            found: predicate.plan_digest.clone(),
        });
    }
    if predicate.stage != expected.stage {
        return Err(ApprovalRefused::WrongStage {
            expected: expected.stage.clone(),
            found: predicate.stage.clone(),
        });
    }
    if predicate.evidence_digest != expected.evidence_digest {
        return Err(ApprovalRefused::WrongEvidence {
            expected: expected.evidence_digest.clone(),
            found: predicate.evidence_digest.clone(),
        });
    }
    Ok(())
}
