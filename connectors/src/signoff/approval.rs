//! The approver's side of an approval (`relocate approve`: sign a decision over a
//! stage's evidence). Checking evidence and approvals is the auditor's verifier's
//! ([`relocate_verifier::approval`], re-exported here so a gate and an auditor run the
//! very same checks).

pub use relocate_verifier::approval::{
    ApprovalRefused, CheckedApproval, EvidenceRefused, Expected, check_approval, check_evidence,
};

use super::SignoffError;
use super::dsse::Envelope;
use super::keys::SecretKey;
use super::statement::{
    ApprovalPredicate, Decision, SignStatement, evidence_digest, parse_evidence,
};

/// Sign `decision` over `evidence`: reads the plan digest and stage from the evidence
/// and binds the approval to the evidence's digest. The evidence's own signatures are
/// not checked here: callers check them first ([`check_evidence`]).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signoff::dsse::SignEnvelope;
    use crate::signoff::statement::tests::evidence;
    use relocate_verifier::VerifyError;

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
    fn finding_17_edited_unsigned_or_foreign_evidence_is_refused() {
        let ev = evidence(PLAN, "copy", 1, &operator());
        let op = operator().public();
        check_evidence(&ev, Some(&op)).expect("the operator's own evidence passes");

        let mut edited = ev.clone();
        let text = String::from_utf8(edited.payload.clone()).expect("utf8");
        edited.payload = text
            .replace("\"objects\":3", "\"objects\":999999")
            .into_bytes();
        assert_ne!(edited.payload, ev.payload, "the edit applies");
        assert_eq!(
            check_evidence(&edited, Some(&op)),
            Err(EvidenceRefused::Edited {
                key_id: op.key_id()
            })
        );

        let mut unsigned = ev.clone();
        unsigned.signatures.clear();
        assert_eq!(
            check_evidence(&unsigned, None),
            Err(EvidenceRefused::Unsigned)
        );

        let foreign = evidence(PLAN, "copy", 1, &auditor());
        assert!(matches!(
            check_evidence(&foreign, Some(&op)),
            Err(EvidenceRefused::NotByOperator { .. })
        ));
    }

    #[test]
    fn approve_refuses_non_evidence() {
        let not_evidence = Envelope::sign("text/plain", b"hi".to_vec(), &operator());
        let err = approve(&auditor(), &not_evidence, Decision::Approve, None).expect_err("refused");
        assert!(matches!(
            err,
            SignoffError::Verify(VerifyError::WrongPayloadType { .. })
        ));
    }
}
