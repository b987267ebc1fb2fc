//! What a human may read of a Secret: that a value exists and which one, never the value.
//!
//! Each `data` / `stringData` value becomes `<redacted sha256:XXXXXXXXXXXX>` over the
//! decoded bytes, so a reviewer can see that a value changed (or did not) between source and
//! target without seeing it. Note the short hash of a low-entropy value (`true`, a PIN) can
//! be guessed by brute force; it is a change detector, not a secure commitment.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A copy of `object` with every Secret value redacted; other kinds are returned unchanged.
pub fn mask_secrets(object: &Value) -> Value {
    let mut masked = object.clone();
    if object.get("kind").and_then(Value::as_str) != Some("Secret") {
        return masked;
    }
    for (field, base64_encoded) in [("data", true), ("stringData", false)] {
        if let Some(Value::Object(values)) = masked.get_mut(field) {
            for value in values.values_mut() {
                *value = Value::String(redact(value, base64_encoded));
            }
        }
    }
    // kubectl's last-applied annotation repeats the data in clear.
    if let Some(Value::Object(annotations)) = masked.pointer_mut("/metadata/annotations") {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    masked
}

fn redact(value: &Value, base64_encoded: bool) -> String {
    let text = value.as_str().unwrap_or_default();
    let bytes = if base64_encoded {
        STANDARD
            .decode(text)
            .unwrap_or_else(|_| text.as_bytes().to_vec())
    } else {
        text.as_bytes().to_vec()
    };
    let hash = hex::encode(Sha256::digest(&bytes));
    format!("<redacted sha256:{}>", &hash[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::fixtures;
    use serde_json::json;

    #[test]
    fn secret_values_are_replaced_by_short_hashes_of_the_decoded_bytes() {
        let mut secret = fixtures::opaque_secret("analysis", "db");
        secret["stringData"] = json!({"password": "hunter2-db-password"});
        let masked = mask_secrets(&secret);
        let expected = format!(
            "<redacted sha256:{}>",
            &hex::encode(Sha256::digest(b"hunter2-db-password"))[..12]
        );
        assert_eq!(masked["data"]["password"], expected.as_str());
        assert_eq!(masked["stringData"]["password"], expected.as_str());
        let text = masked.to_string();
        assert!(!text.contains("aHVudGVyMi1kYi1wYXNzd29yZA=="), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("YWRtaW4="), "{text}");
        assert_eq!(masked["metadata"], secret["metadata"]);
    }

    #[test]
    fn last_applied_annotation_of_a_secret_is_dropped() {
        let mut secret = fixtures::opaque_secret("analysis", "db");
        secret["metadata"]["annotations"] = json!({
            "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"aHVudGVy\"}}",
            "owner": "data-team"
        });
        let masked = mask_secrets(&secret);
        assert_eq!(
            masked["metadata"]["annotations"],
            json!({"owner": "data-team"})
        );
    }

    #[test]
    fn other_kinds_are_untouched() {
        let cm = fixtures::config_map("analysis", "cfg");
        assert_eq!(mask_secrets(&cm), cm);
    }
}
