//! The plan's canonical digest.
//!
//! Every piece of evidence and every approval names the plan it belongs to by this
//! digest, so it must depend on what the plan *says*, never on how it is written:
//! the plan is serialised from the model (so defaults are filled in and YAML
//! formatting, comments, quoting and map order are gone), then written as canonical
//! JSON in the manner of RFC 8785 (object members sorted by their UTF-16 code units
//! at every level, no whitespace, serde_json's minimal string escaping, integers
//! only) and hashed with SHA-256. The sorting is done here, not left to
//! `serde_json::Map`, whose order depends on whether some crate in the build enables
//! `preserve_order`.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Plan;

/// `sha256:<hex>` of the plan's canonical JSON form, so reformatting or reordering
/// maps in the YAML does not change it and an approval for one plan can never be
/// used for another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanDigest(String);

impl PlanDigest {
    /// Digest of a plan.
    pub fn of(plan: &Plan) -> Self {
        let value = serde_json::to_value(plan)
            .expect("the plan model has string keys only and serialises to JSON infallibly");
        Self(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical_json(&value)))
        ))
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

/// RFC 8785-style canonical JSON text of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(member, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
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
        let plan: Plan = serde_saphyr::from_str(text).expect("parses");
        PlanDigest::of(&plan)
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [true, null], "é": "x\n", "y": 2}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"y":2,"z":[true,null],"é":"x\n"},"b":1}"#
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
    objects: { to: dst, from: src, include: [\"**\"], checksum: sha256 }
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
}
