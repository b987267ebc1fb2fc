//! Why a workload's pods are not ready, in the words the kubelet and the scheduler use.
//!
//! A rollout's counters say *that* it is stuck; its pods say *why*: `ImagePullBackOff` on a
//! registry the target cannot reach, `CrashLoopBackOff` with the last exit, or `Pending`
//! with the scheduler's message ("0/3 nodes are available: 3 Insufficient cpu"). These are
//! read from the pods the workload's own selector matches and shown while waiting and when
//! a wait fails. Reading them is best effort: a failure here never fails the wait.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;

/// At most this many distinct reasons per workload, so one message stays readable.
const MAX_REASONS: usize = 3;

/// Waiting reasons that are a normal step of starting, not a problem.
const ROUTINE: &[&str] = &["ContainerCreating", "PodInitializing"];

/// The label selector string of a live workload's `spec.selector`, or `None` when it
/// has none (see [`selector_string`]).
pub(crate) fn selector_of(live: &Value) -> Option<String> {
    live.pointer("/spec/selector").and_then(selector_string)
}

/// A `LabelSelector` object as the list API's selector string: match labels sorted by
/// key, then match expressions in the set-based syntax; `None` when it selects
/// nothing or uses an operator the list API does not know. Used both to read a
/// workload's pods here and to record the pods a frozen workload owns (`scale`).
pub(crate) fn selector_string(selector: &Value) -> Option<String> {
    let mut terms: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    terms.sort();
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str)?;
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match expr.get("operator").and_then(Value::as_str)? {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        });
    }
    (!terms.is_empty()).then(|| terms.join(","))
}

/// What is wrong with the pods of `live` in `namespace`, e.g.
/// `2 pod(s) ImagePullBackOff: Back-off pulling image "registry.zrh.example/api:1.4"`.
pub(crate) async fn pod_reasons(client: &Client, namespace: &str, live: &Value) -> Vec<String> {
    let Some(selector) = selector_of(live) else {
        return Vec::new();
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match api.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => summarize(
            list.items
                .iter()
                .filter_map(|p| serde_json::to_value(p).ok()),
        ),
        Err(e) => {
            tracing::debug!(%selector, error = %e, "pods not listed; no reasons shown");
            Vec::new()
        }
    }
}

/// Count each distinct problem across `pods` (JSON as the API returns them).
pub(crate) fn summarize(pods: impl Iterator<Item = Value>) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for pod in pods {
        if let Some(reason) = pod_problem(&pod) {
            *seen.entry(reason).or_default() += 1;
        }
    }
    let mut out: Vec<String> = seen
        .into_iter()
        .map(|(reason, n)| format!("{n} pod(s) {reason}"))
        .collect();
    out.truncate(MAX_REASONS);
    out
}

/// The first problem a pod shows: an unscheduled pod's scheduler message, else a container
/// stuck waiting (with the last termination for crash loops), else a failed pod.
fn pod_problem(pod: &Value) -> Option<String> {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if phase == Some("Succeeded") {
        return None;
    }
    let unscheduled = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| {
            c.get("type").and_then(Value::as_str) == Some("PodScheduled")
                && c.get("status").and_then(Value::as_str) == Some("False")
        });
    if let Some(c) = unscheduled {
        let field = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or_default();
        return Some(format!(
            "Pending ({}): {}",
            field("reason"),
            field("message")
        ));
    }
    for list in ["initContainerStatuses", "containerStatuses"] {
        for status in pod
            .pointer(&format!("/status/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(problem) = container_problem(status) {
                return Some(problem);
            }
        }
    }
    if phase == Some("Failed") {
        let reason = pod.pointer("/status/reason").and_then(Value::as_str);
        let message = pod.pointer("/status/message").and_then(Value::as_str);
        return Some(format!(
            "Failed: {}{}",
            reason.unwrap_or("pod failed"),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ));
    }
    None
}

fn container_problem(status: &Value) -> Option<String> {
    let waiting = status.pointer("/state/waiting")?;
    let reason = waiting.get("reason").and_then(Value::as_str)?;
    if ROUTINE.contains(&reason) {
        return None;
    }
    let mut text = reason.to_owned();
    if let Some(message) = waiting.get("message").and_then(Value::as_str) {
        text.push_str(&format!(": {message}"));
    }
    if let Some(last) = status.pointer("/lastState/terminated") {
        let why = last
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("exited");
        let code = last.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
        text.push_str(&format!(" (last exit: {why}, code {code})"));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn selector_with_expressions_uses_set_based_syntax() {
        let live = json!({"spec": {"selector": {"matchLabels": {"app": "api"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "edge"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]}}});
        assert_eq!(
            selector_of(&live).as_deref(),
            Some("app=api,tier in (web,edge),!canary")
        );
    }

    #[test]
    fn selector_objects_become_selector_strings() {
        let s = json!({
            "matchLabels": {"tier": "backend", "app": "analyzer"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        });
        assert_eq!(
            selector_string(&s).as_deref(),
            Some("app=analyzer,tier=backend,env in (prod,staging),!canary")
        );
        assert_eq!(selector_string(&json!({})), None);
    }

    #[test]
    fn routine_waits_are_not_problems() {
        let pod = json!({"status": {"phase": "Pending", "containerStatuses": [
            {"name": "api", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert!(summarize(std::iter::once(pod)).is_empty());
    }
}
