//! The plan's digest: what every piece of evidence and every approval names the plan
//! by, and what an auditor pins.
//!
//! It must depend on what the plan *says*, never on how it is written, and anyone must
//! be able to recompute it without relocate. So it is SHA-256 over the **RFC 8785 (JCS)
//! canonical JSON** of the plan document as written: the YAML read as plain data
//! (comments, quoting, flow or block style and map order gone), written by
//! `serde_json_canonicalizer` (members sorted by UTF-16 code units, no whitespace,
//! ECMAScript number form). Nothing is added or dropped on the way: defaults the
//! model fills in are not part of the digest, so `yq -o=json plan.yaml | <any JCS
//! tool> | sha256sum` gives the same digest (see the README).
//!
//! A plan built in code has no text: its digest is over the model serialised to JSON.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Plan;

/// `sha256:<hex>` of the plan's canonical JSON form, so reformatting or reordering
/// maps in the YAML does not change it and an approval for one plan can never be
/// used for another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanDigest(String);

/// Why a plan document has no canonical JSON form.
#[derive(Debug, thiserror::Error)]
#[error("the plan cannot be read as JSON data for its digest: {reason}")]
pub struct DigestError {
    /// What is wrong (e.g. a map key that is not a string).
    pub reason: String,
}

impl PlanDigest {
    /// Digest of the plan document `text` (YAML) as written.
    pub fn of_document(text: &str) -> Result<Self, DigestError> {
        let value: Value = serde_saphyr::from_str(text).map_err(|e| DigestError {
            reason: e.to_string(),
        })?;
        Self::of_value(&value)
    }

    /// Digest of a plan built in code: its model as JSON.
    pub fn of(plan: &Plan) -> Self {
        let value = serde_json::to_value(plan)
            .expect("the plan model has string keys only and serialises to JSON infallibly");
        Self::of_value(&value).expect("a serialised plan model has no number JCS refuses")
    }

    fn of_value(value: &Value) -> Result<Self, DigestError> {
        let canonical = serde_json_canonicalizer::to_string(value).map_err(|e| DigestError {
            reason: e.to_string(),
        })?;
        Ok(Self(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        )))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PlanDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 8785 canonical JSON text of `value` (also what Kubernetes manifest digests use).
pub fn canonical_json(value: &Value) -> String {
    serde_json_canonicalizer::to_string(value).expect(
        "a serde_json Value holds only finite numbers and valid strings, which JCS always writes",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLAN: &str = "\
apiVersion: relocate/v1
kind: MigrationPlan
name: digest-demo
regions:
  a: { jurisdiction: RU }
  b: { jurisdiction: CH }
source: a
target: b
stores:
  src: { region: a, url: \"file:///src/\" }
  dst: { region: b, url: \"file:///dst/\", options: { region: x, endpoint: y } }
workloads:
  data: { objects: { from: src, to: dst } }
stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
";

    fn digest_of(text: &str) -> PlanDigest {
        PlanDigest::of_document(text).expect("digest")
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [true, null], "é": "x\n", "y": 2}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"y":2,"z":[true,null],"é":"x\n"},"b":1}"#
        );
    }

    /// RFC 8785's own examples: numbers in ECMAScript form, members by UTF-16 units.
    #[test]
    fn canonical_json_is_rfc_8785_on_its_test_vectors() {
        let numbers: Value = serde_json::from_str(
            "[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, 1e21, -0, 1.0]",
        )
        .expect("json");
        assert_eq!(
            canonical_json(&numbers),
            "[333333333.3333333,1e+30,4.5,0.002,1e-27,1e+21,0,1]"
        );
        let sorted = json!({"\u{20ac}": 1, "\r": 2, "\u{fb33}": 3, "1": 4, "\u{1f600}": 5, "\u{0080}": 6, "\u{00f6}": 7});
        assert_eq!(
            canonical_json(&sorted),
            "{\"\\r\":2,\"1\":4,\"\u{0080}\":6,\"\u{00f6}\":7,\"\u{20ac}\":1,\"\u{1f600}\":5,\"\u{fb33}\":3}",
            "members sorted by UTF-16 code units (the emoji's surrogates sort before U+FB33)"
        );
    }

    #[test]
    fn reordering_and_reformatting_keep_the_digest() {
        let reordered = "\
kind: MigrationPlan
apiVersion: relocate/v1
name: 'digest-demo'
target: b
source: a
regions:
  b:
    jurisdiction: CH
  a: { jurisdiction: RU }   # comment
stores:
  dst: { url: \"file:///dst/\", region: b, options: { endpoint: y, region: x } }
  src: { url: \"file:///src/\", region: a }
workloads:
  data:
    objects: { to: dst, from: src }
stages:
  - steps: [ { copy: data }, { verify: data } ]
    name: seed
";
        let d = digest_of(PLAN);
        assert!(d.as_str().starts_with("sha256:") && d.as_str().len() == 7 + 64);
        assert_eq!(d, digest_of(reordered));
    }

    #[test]
    fn changing_a_value_changes_the_digest() {
        assert_ne!(
            digest_of(PLAN),
            digest_of(&PLAN.replace("endpoint: y", "endpoint: z"))
        );
        assert_ne!(
            digest_of(PLAN),
            digest_of(&PLAN.replace("name: seed", "name: seed2"))
        );
    }

    /// The digest is sha256 over exactly the JCS bytes of the document's JSON: what the
    /// README's recipe recomputes with other tools.
    #[test]
    fn the_digest_is_sha256_of_the_documents_jcs_bytes() {
        let value: Value = serde_saphyr::from_str(PLAN).expect("yaml");
        let jcs = serde_json_canonicalizer::to_vec(&value).expect("jcs");
        assert_eq!(
            digest_of(PLAN).as_str(),
            format!("sha256:{}", hex::encode(Sha256::digest(&jcs)))
        );
        assert!(String::from_utf8(jcs).expect("utf8").starts_with(
            r#"{"apiVersion":"relocate/v1","kind":"MigrationPlan","name":"digest-demo","regions":"#
        ));
    }
}
