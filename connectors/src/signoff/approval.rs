//! The approver's side (`relocate approve`: sign a decision over a stage's evidence)
//! and the gate's side (check that an approval is by the pinned key and binds exactly
//! this plan, this stage and this evidence). Every refusal names its reason, because an
//! operator must be able to tell a replayed approval from a tampered one.

use super::SignoffError;
use super::dsse::Envelope;
use super::keys::{PublicKey, SecretKey};
use super::statement::{
    ApprovalPredicate, Decision, PAYLOAD_TYPE, evidence_digest, parse_approval, parse_evidence,
};

/// Sign `decision` over `evidence`: reads the plan digest and stage from the evidence
/// and binds the approval to the evidence's digest. The evidence's own signatures are
/// not checked here: the approver decides whose evidence to trust (`Envelope::verify_with`).
pub fn approve(
    key: &SecretKey,
    evidence: &Envelope,
    decision: Decision,
    reason: Option<String>,
) -> Result<Envelope, SignoffError> {
    let (_, predicate) = parse_evidence(evidence)?;
    let approval = ApprovalPredicate {
        plan_digest: predicate.plan_digest,
        stage: predicate.stage,
        evidence_digest: evidence_digest(evidence),
        decision,
        reason,
        approver_key_id: key.public().key_id(),
        signed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    Ok(approval.to_statement().sign(key))
}

/// What the gate expects an approval to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `sha256:<hex>` of the plan being run.
    pub plan_digest: String,
    /// The stage at the gate.
    pub stage: String,
    /// `sha256:<hex>` of the evidence just written ([`evidence_digest`]).
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
        SignoffError::WrongPayloadType { .. } => ApprovalRefused::WrongPayloadType,
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
        Err(SignoffError::BadSignature { .. }) => Err(ApprovalRefused::BadSignature),
        Err(_) => Err(ApprovalRefused::WrongKey {
            approver: approver.to_owned(),
            expected_key_id: pinned.key_id(),
            found_key_ids: approval.key_ids(),
        }),
    }
}

/// The subject must name the same stage and evidence digest as the predicate.
fn check_subject(
    subject: &[super::statement::Subject],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signoff::statement::tests::evidence;

    const PLAN: &str = "sha256:1111";

    fn operator() -> SecretKey {
        SecretKey::from_seed(&[1; 32])
    }
    fn auditor() -> SecretKey {
        SecretKey::from_seed(&[2; 32])
    }

    fn expected_for(evidence: &Envelope, stage: &str) -> Expected {
        Expected {
            plan_digest: PLAN.to_owned(),
            stage: stage.to_owned(),
            evidence_digest: evidence_digest(evidence),
        }
    }

    fn check(approval: &Envelope, expected: &Expected) -> Result<CheckedApproval, ApprovalRefused> {
        check_approval(approval, expected, "auditor", &auditor().public())
    }

    #[test]
    fn approval_roundtrips_through_json() {
        let ev = evidence(PLAN, "copy", 1, &operator());
        let approval = approve(&auditor(), &ev, Decision::Approve, None).expect("approve");
        let approval = Envelope::from_json(&approval.to_json_pretty()).expect("parses");
        let checked = check(&approval, &expected_for(&ev, "copy")).expect("accepted");
        assert_eq!(checked.decision, Decision::Approve);
        assert_eq!(checked.reason, None);
        assert!(chrono::DateTime::parse_from_rfc3339(&checked.signed_at).is_ok());
    }

    #[test]
    fn rejection_carries_its_reason() {
        let ev = evidence(PLAN, "copy", 1, &operator());
        let reason = Some("3 objects missing in target".to_owned());
        let approval = approve(&auditor(), &ev, Decision::Reject, reason.clone()).expect("sign");
        let checked = check(&approval, &expected_for(&ev, "copy")).expect("a valid rejection");
        assert_eq!(
            (checked.decision, checked.reason),
            (Decision::Reject, reason)
        );
    }

    #[test]
    fn other_key_is_wrong_key() {
        let ev = evidence(PLAN, "copy", 1, &operator());
        let approval = approve(&operator(), &ev, Decision::Approve, None).expect("sign");
        let err = check(&approval, &expected_for(&ev, "copy")).expect_err("refused");
        assert_eq!(
            err,
            ApprovalRefused::WrongKey {
                approver: "auditor".to_owned(),
                expected_key_id: auditor().public().key_id(),
                found_key_ids: vec![operator().public().key_id()],
            }
        );
        assert!(err.to_string().contains("another key"));
    }

    #[test]
    fn edited_approval_is_bad_signature() {
        let ev = evidence(PLAN, "copy", 1, &operator());
        let mut approval = approve(&auditor(), &ev, Decision::Reject, None).expect("sign");
        let text = String::from_utf8(approval.payload.clone()).expect("utf8");
        approval.payload = text.replace("\"reject\"", "\"approve\"").into_bytes();
        let err = check(&approval, &expected_for(&ev, "copy")).expect_err("refused");
        assert_eq!(err, ApprovalRefused::BadSignature);
    }

    #[test]
    fn unsigned_is_not_signed() {
        let ev = evidence(PLAN, "copy", 1, &operator());
        let mut approval = approve(&auditor(), &ev, Decision::Approve, None).expect("sign");
        approval.signatures.clear();
        let err = check(&approval, &expected_for(&ev, "copy")).expect_err("refused");
        assert_eq!(err, ApprovalRefused::NotSigned);
    }

    #[test]
    fn approval_for_another_stage_plan_or_attempt_is_refused() {
        let copy = evidence(PLAN, "copy", 1, &operator());
        let approval = approve(&auditor(), &copy, Decision::Approve, None).expect("sign");

        let err = check(&approval, &expected_for(&copy, "cutover")).expect_err("stage");
        assert!(matches!(err, ApprovalRefused::WrongStage { ref found, .. } if found == "copy"));

        let mut other_plan = expected_for(&copy, "copy");
        other_plan.plan_digest = "sha256:2222".to_owned();
        let err = check(&approval, &other_plan).expect_err("plan");
        assert!(matches!(err, ApprovalRefused::WrongPlan { ref found, .. } if found == PLAN));

        let attempt2 = evidence(PLAN, "copy", 2, &operator());
        let err = check(&approval, &expected_for(&attempt2, "copy")).expect_err("replay");
        assert_eq!(
            err,
            ApprovalRefused::WrongEvidence {
                expected: evidence_digest(&attempt2),
                found: evidence_digest(&copy),
            }
        );
    }

    #[test]
    fn signed_evidence_instead_of_approval_is_malformed_and_wrong_type_is_named() {
        let ev = evidence(PLAN, "copy", 1, &auditor());
        let err = check(&ev, &expected_for(&ev, "copy")).expect_err("not an approval");
        assert!(matches!(err, ApprovalRefused::Malformed { .. }), "{err:?}");

        let other = Envelope::sign("application/json", b"{}".to_vec(), &auditor());
        let err = check(&other, &expected_for(&ev, "copy")).expect_err("wrong type");
        assert_eq!(err, ApprovalRefused::WrongPayloadType);
    }

    #[test]
    fn approve_refuses_non_evidence() {
        let not_evidence = Envelope::sign("text/plain", b"hi".to_vec(), &operator());
        let err = approve(&auditor(), &not_evidence, Decision::Approve, None).expect_err("refused");
        assert!(matches!(err, SignoffError::WrongPayloadType { .. }));
    }
}
