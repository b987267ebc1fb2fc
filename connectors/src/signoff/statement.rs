//! in-toto statements, signed. The statement and predicate types, their parsing and
//! [`evidence_digest`] are the auditor's verifier's ([`relocate_verifier::statement`],
//! re-exported here so there is one definition); this module adds only signing.

pub use relocate_verifier::statement::*;

use super::dsse::{Envelope, SignEnvelope};
use super::keys::SecretKey;

/// Signing a [`Statement`] (import this trait to call `statement.sign(key)`).
pub trait SignStatement {
    /// Sign this statement into a DSSE envelope of type [`PAYLOAD_TYPE`].
    fn sign(&self, key: &SecretKey) -> Envelope;
}

impl SignStatement for Statement {
    fn sign(&self, key: &SecretKey) -> Envelope {
        Envelope::sign(PAYLOAD_TYPE, self.to_payload(), key)
    }
}

/// Sign a stage's evidence statement.
pub fn sign_evidence(statement: &Statement, key: &SecretKey) -> Envelope {
    statement.sign(key)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::signoff::dsse::SignEnvelope;
    use relocate_verifier::VerifyError as SignoffError;
    use sha2::{Digest, Sha256};

    /// Evidence for `stage` of plan `plan_digest`, attempt `attempt`, signed by `key`.
    pub(crate) fn evidence(
        plan_digest: &str,
        stage: &str,
        attempt: u32,
        key: &SecretKey,
    ) -> Envelope {
        let predicate = EvidencePredicate {
            plan: "move-eu".to_owned(),
            plan_digest: plan_digest.to_owned(),
            stage: stage.to_owned(),
            stage_index: 0,
            attempt,
            source_region: "eu-west-1".to_owned(),
            target_region: "eu-central-1".to_owned(),
            operator: "ops@example.com".to_owned(),
            started_at: "2025-01-01T00:00:00Z".to_owned(),
            finished_at: "2025-01-01T00:10:00Z".to_owned(),
            steps: vec![StepEvidence {
                kind: "verify".to_owned(),
                workload: Some("media".to_owned()),
                outcome: "succeeded".to_owned(),
                detail: serde_json::json!({"mismatched": 0}),
            }],
            workloads: vec![WorkloadEvidence {
                name: "media".to_owned(),
                kind: "objects".to_owned(),
                source: "old-bucket".to_owned(),
                target: "new-bucket".to_owned(),
                algorithm: Some("sha256".to_owned()),
                objects: 3,
                bytes: 42,
                manifest_root: Some("abc".to_owned()),
                manifest_digest: Some(format!("sha256:{}", "0".repeat(64))),
                resources: vec![],
                volumes: vec![],
            }],
            previous_evidence: None,
        };
        let subject = Subject::sha256("manifest:media", &"0".repeat(64));
        sign_evidence(
            &Statement::new(vec![subject], EVIDENCE_PREDICATE_TYPE, &predicate),
            key,
        )
    }

    #[test]
    fn evidence_roundtrips_with_in_toto_field_names() {
        let key = SecretKey::from_seed(&[3; 32]);
        let env = evidence("sha256:plan", "copy", 1, &key);
        let json: serde_json::Value = serde_json::from_slice(&env.payload).expect("json");
        assert_eq!(json["_type"], STATEMENT_TYPE);
        assert_eq!(json["predicateType"], EVIDENCE_PREDICATE_TYPE);
        assert_eq!(json["predicate"]["planDigest"], "sha256:plan");
        assert_eq!(json["predicate"]["workloads"][0]["manifestRoot"], "abc");
        assert_eq!(json["subject"][0]["digest"]["sha256"], "0".repeat(64));
        let (statement, predicate) = parse_evidence(&env).expect("parses");
        assert_eq!(statement.subject[0].name, "manifest:media");
        assert_eq!((predicate.stage.as_str(), predicate.attempt), ("copy", 1));
    }

    #[test]
    fn evidence_digest_ignores_signatures_and_formatting() {
        let env = evidence("sha256:plan", "copy", 1, &SecretKey::from_seed(&[3; 32]));
        let digest = evidence_digest(&env);
        assert_eq!(
            digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&env.payload)))
        );
        let mut cosigned = Envelope::from_json(&env.to_json_pretty()).expect("parses");
        cosigned.add_signature(&SecretKey::from_seed(&[4; 32]));
        assert_eq!(evidence_digest(&cosigned), digest);
        let other = evidence("sha256:plan", "copy", 2, &SecretKey::from_seed(&[3; 32]));
        assert_ne!(evidence_digest(&other), digest);
    }

    #[test]
    fn parse_evidence_checks_types() {
        let key = SecretKey::from_seed(&[3; 32]);
        let mut env = evidence("sha256:plan", "copy", 1, &key);
        env.payload_type = "application/json".to_owned();
        assert!(matches!(
            parse_evidence(&env),
            Err(SignoffError::WrongPayloadType { .. })
        ));

        let approval = ApprovalPredicate {
            plan_digest: "p".to_owned(),
            stage: "s".to_owned(),
            evidence_digest: "sha256:00".to_owned(),
            decision: Decision::Approve,
            reason: None,
            approver_key_id: "k".to_owned(),
            signed_at: "t".to_owned(),
        };
        let env = approval.to_statement().sign(&key);
        assert!(matches!(
            parse_evidence(&env),
            Err(SignoffError::WrongPredicateType { .. })
        ));
        let (statement, back) = parse_approval(&env).expect("approval parses");
        assert_eq!(back, approval);
        assert_eq!(statement.subject, vec![Subject::sha256("evidence:s", "00")]);

        let env = Envelope::sign(PAYLOAD_TYPE, b"{\"_type\": 1}".to_vec(), &key);
        assert!(matches!(
            parse_evidence(&env),
            Err(SignoffError::MalformedStatement { .. })
        ));
    }
}
