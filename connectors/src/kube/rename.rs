//! What a namespace rename must change inside objects, beyond `metadata.namespace`.
//!
//! Moving `analysis` to `analysis-zrh` breaks every in-cluster address that names the old
//! namespace (`db.analysis.svc`, `db.analysis.svc.cluster.local`), every NetworkPolicy that
//! admits traffic from it by `kubernetes.io/metadata.name`, RoleBinding subjects, and Helm's
//! `meta.helm.sh/release-namespace`. [`rewrite`] changes what is unambiguous (service
//! addresses in env values, args, commands and ConfigMap data; the well-known namespace
//! label in selectors; RoleBinding subjects; Helm's annotation); [`unrewritten`] lists the
//! rest for `plan show`: addresses inside Secrets, selectors on other labels, and the
//! ClusterRoleBindings (cluster-scoped, never exported) that name the moved ServiceAccounts.

use base64::Engine;
use serde_json::Value;

use super::Resource;
use super::clean::pod_templates_mut;

const NAMESPACE_LABEL: &str = "kubernetes.io/metadata.name";
const HELM_NAMESPACE: &str = "meta.helm.sh/release-namespace";

/// Rewrite the references to `source` inside `object` (a `kind`) to `target`.
pub(crate) fn rewrite(object: &mut Value, kind: &str, source: &str, target: &str) {
    if let Some(Value::String(ns)) = object
        .pointer_mut("/metadata/annotations")
        .and_then(|a| a.get_mut(HELM_NAMESPACE))
        && ns == source
    {
        *ns = target.to_owned();
    }
    if kind == "RoleBinding"
        && let Some(Value::Array(subjects)) = object.get_mut("subjects")
    {
        for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
            if subject.get("namespace").and_then(Value::as_str) == Some(source) {
                subject.insert("namespace".to_owned(), Value::String(target.to_owned()));
            }
        }
    }
    if kind == "ConfigMap"
        && let Some(Value::Object(data)) = object.get_mut("data")
    {
        for value in data.values_mut() {
            rewrite_string(value, source, target);
        }
    }
    if kind == "NetworkPolicy" {
        for_each_namespace_selector(object, |labels| {
            if let Some(Value::String(name)) = labels.get_mut(NAMESPACE_LABEL)
                && name == source
            {
                *name = target.to_owned();
            }
        });
    }
    for template in pod_templates_mut(object, kind) {
        for list in ["containers", "initContainers"] {
            let Some(Value::Array(containers)) = template.pointer_mut(&format!("/spec/{list}"))
            else {
                continue;
            };
            for container in containers {
                for field in ["args", "command"] {
                    if let Some(Value::Array(items)) = container.get_mut(field) {
                        items
                            .iter_mut()
                            .for_each(|v| rewrite_string(v, source, target));
                    }
                }
                if let Some(Value::Array(env)) = container.get_mut("env") {
                    for var in env {
                        if let Some(value) = var.get_mut("value") {
                            rewrite_string(value, source, target);
                        }
                    }
                }
            }
        }
    }
}

/// What still names `source` after [`rewrite`], one line each, for `plan show`.
pub fn unrewritten(resources: &[Resource], source: &str, target: &str) -> Vec<String> {
    let mut out = Vec::new();
    let needle = format!(".{source}.svc");
    for r in resources {
        let id = r.id();
        if r.kind == "Secret" {
            for (key, value) in r
                .object
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let decoded = value
                    .as_str()
                    .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                if decoded.contains(&needle) {
                    out.push(format!("{id}: data key `{key}` names a service in {source} (`*{needle}`); Secrets are not rewritten"));
                }
            }
        }
        if r.kind == "NetworkPolicy" {
            let mut copy = r.object.clone();
            for_each_namespace_selector(&mut copy, |labels| {
                let other = labels.keys().any(|k| k != NAMESPACE_LABEL);
                if other {
                    out.push(format!(
                        "{id}: a namespaceSelector matches labels other than {NAMESPACE_LABEL}; check that {target} carries them"
                    ));
                }
            });
        }
        if r.kind == "ServiceAccount" {
            out.push(format!(
                "{id}: ClusterRoleBindings naming system:serviceaccount:{source}:{} are not exported; bind system:serviceaccount:{target}:{} at the target",
                r.name, r.name
            ));
        }
    }
    out
}

/// Call `f` on the `matchLabels` of every namespaceSelector in a NetworkPolicy's rules.
fn for_each_namespace_selector(
    policy: &mut Value,
    mut f: impl FnMut(&mut serde_json::Map<String, Value>),
) {
    for (rules, peers) in [("ingress", "from"), ("egress", "to")] {
        let Some(Value::Array(rules)) = policy.pointer_mut(&format!("/spec/{rules}")) else {
            continue;
        };
        for rule in rules {
            let Some(Value::Array(peers)) = rule.get_mut(peers) else {
                continue;
            };
            for peer in peers {
                if let Some(Value::Object(labels)) =
                    peer.pointer_mut("/namespaceSelector/matchLabels")
                {
                    f(labels);
                }
            }
        }
    }
}

/// Replace `<label>.<source>.svc` with `<label>.<target>.svc` where `.svc` ends the word
/// or continues as `.svc.cluster.local`, `:port` or `/path`.
fn rewrite_string(value: &mut Value, source: &str, target: &str) {
    let Value::String(text) = value else {
        return;
    };
    let needle = format!(".{source}.svc");
    if !text.contains(&needle) {
        return;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + needle.len()..].chars().next();
        let label_before = before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
        let word_ends = after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'));
        out.push_str(&rest[..at]);
        if label_before && word_ends {
            out.push_str(&format!(".{target}.svc"));
        } else {
            out.push_str(&needle);
        }
        rest = &rest[at + needle.len()..];
    }
    out.push_str(rest);
    *text = out;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_whole_service_addresses_are_rewritten() {
        let mut v = json!(
            "postgres://db.analysis.svc.cluster.local:5432/x, http://api.analysis.svc/ , x.analysis.svcfoo, .analysis.svc"
        );
        rewrite_string(&mut v, "analysis", "analysis-zrh");
        assert_eq!(
            v,
            "postgres://db.analysis-zrh.svc.cluster.local:5432/x, http://api.analysis-zrh.svc/ , x.analysis.svcfoo, .analysis.svc"
        );
    }
}
