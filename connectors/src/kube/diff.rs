//! The reviewer's view of a transform: a unified diff of the source manifest against what
//! will be applied, as YAML with sorted keys, Secret values masked.

use serde_json::Value;
use similar::TextDiff;

use super::Resource;
use super::digest::sorted;
use super::mask::mask_secrets;

/// Unified diff (3 lines of context) between the masked source and transformed manifests;
/// empty when the transform changed nothing.
pub fn render_diff(source: &Resource, transformed: &Resource) -> String {
    let before = to_yaml(&source.object);
    let after = to_yaml(&transformed.object);
    if before == after {
        return String::new();
    }
    let from = format!("source: {}", source.id());
    let to = format!("target: {}", transformed.id());
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string()
}

fn to_yaml(object: &Value) -> String {
    let shown = sorted(&mask_secrets(object));
    serde_saphyr::to_string(&shown).unwrap_or_else(|_| {
        // A JSON value always serialises; pretty JSON is the fallback should YAML refuse.
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::fixtures;

    fn resource(object: Value) -> Resource {
        Resource::from_object(object, "analysis").expect("valid manifest")
    }

    #[test]
    fn diff_shows_changed_lines_only() {
        let source = resource(fixtures::config_map("analysis", "cfg"));
        let mut changed = source.clone();
        changed.object["data"]["LOG_LEVEL"] = "debug".into();
        let diff = render_diff(&source, &changed);
        assert!(
            diff.contains("--- source: ConfigMap analysis/cfg"),
            "{diff}"
        );
        assert!(diff.contains("-  LOG_LEVEL: info"), "{diff}");
        assert!(diff.contains("+  LOG_LEVEL: debug"), "{diff}");
        assert!(!diff.contains("-  BUCKET"), "{diff}");
        assert_eq!(render_diff(&source, &source), "");
    }

    #[test]
    fn secret_diff_never_shows_values() {
        let source = resource(fixtures::opaque_secret("analysis", "db"));
        let mut changed = source.clone();
        changed.object["data"]["password"] = "bmV3LXBhc3N3b3Jk".into();
        let diff = render_diff(&source, &changed);
        assert!(diff.contains("-  password: <redacted sha256:"), "{diff}");
        assert!(diff.contains("+  password: <redacted sha256:"), "{diff}");
        assert!(!diff.contains("aHVudGVy"), "{diff}");
        assert!(!diff.contains("bmV3LXBhc3N3b3Jk"), "{diff}");
    }
}
