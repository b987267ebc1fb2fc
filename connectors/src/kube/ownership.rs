//! Whether an object already at the target is relocate's to overwrite.
//!
//! Server-side apply with `force` takes over every field another manager owns, so applying
//! blindly would silently replace an unrelated object that happens to share a name (a Helm
//! release, a colleague's test Deployment). An existing object is relocate's when relocate's
//! field manager wrote it before (its `managedFields` name `relocate`); anything else is
//! refused unless the workload says `adopt: true`.

use serde_json::Value;

use super::FIELD_MANAGER;

/// The managers (`helm (Update)`, `kubectl (Apply)`) that wrote `live`, when relocate never
/// did; `None` when relocate wrote it (or nothing records who did, as with objects made
/// before managed fields existed — those are listed as `unknown`).
pub(crate) fn foreign_managers(live: &Value) -> Option<String> {
    let entries: Vec<&Value> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let manager = |e: &Value| {
        e.get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if entries.iter().any(|e| manager(e) == FIELD_MANAGER) {
        return None;
    }
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| {
            let op = e.get("operation").and_then(Value::as_str).unwrap_or("?");
            format!("{} ({op})", manager(e))
        })
        .collect();
    names.dedup();
    if names.is_empty() {
        names.push("unknown".to_owned());
    }
    Some(names.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn relocate_written_objects_are_ours_others_are_named() {
        let ours = json!({"metadata": {"managedFields": [
            {"manager": "relocate", "operation": "Apply"},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status"}]}});
        assert_eq!(foreign_managers(&ours), None);
        let helm =
            json!({"metadata": {"managedFields": [{"manager": "helm", "operation": "Update"}]}});
        assert_eq!(foreign_managers(&helm).as_deref(), Some("helm (Update)"));
        assert_eq!(
            foreign_managers(&json!({"metadata": {}})).as_deref(),
            Some("unknown")
        );
    }
}
