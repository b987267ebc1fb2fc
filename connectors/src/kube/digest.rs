//! The digest that binds a deployed manifest to the stage's evidence.
//!
//! The digest is over canonical JSON as `plans::digest::canonical_json` writes it (keys
//! sorted at every depth, compact), never trusting `serde_json::Map`'s order, which
//! depends on whether some crate in the build enabled `preserve_order`. Secrets are digested with their data, so the auditor
//! signs exactly what was deployed, while only masked forms are ever shown.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the manifest's canonical JSON.
pub fn manifest_digest(object: &Value) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(canonical_json(object)))
    )
}

/// The manifest as canonical JSON text (sorted keys, compact): the same canonical form
/// the plan digest uses, so there is one definition of "canonical" in relocate.
pub fn canonical_json(object: &Value) -> String {
    plans::digest::canonical_json(object)
}

/// A copy of `value` whose object keys are inserted in sorted order, so that printing it
/// is stable whichever `Map` implementation serde_json was built with.
pub(crate) fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_digest() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":"x"}],"x":null}}"#)
            .expect("json");
        let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"p":"x","q":2}]},"b":1}"#)
            .expect("json");
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"p":"x","q":2}]},"b":1}"#
        );
        assert_eq!(manifest_digest(&a), manifest_digest(&b));
    }

    #[test]
    fn digest_is_sha256_of_canonical_text() {
        let v = json!({"kind": "ConfigMap", "data": {"k": "v\"\n"}});
        let text = canonical_json(&v);
        assert_eq!(text, r#"{"data":{"k":"v\"\n"},"kind":"ConfigMap"}"#);
        assert_eq!(
            manifest_digest(&v),
            format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
        );
    }

    #[test]
    fn secret_data_changes_the_digest() {
        let a = json!({"kind": "Secret", "data": {"password": "YQ=="}});
        let b = json!({"kind": "Secret", "data": {"password": "Yg=="}});
        assert_ne!(manifest_digest(&a), manifest_digest(&b));
    }
}
