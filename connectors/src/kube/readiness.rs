//! Whether a live workload has finished rolling out, by the rules of `kubectl rollout status`.
//!
//! The rules are kubectl's (`k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go`), so
//! relocate and an operator watching with kubectl agree on when a deploy is done:
//! - every controller must first have observed the object's current `metadata.generation`;
//! - Deployment: updated replicas reach `spec.replicas`, no old replicas remain, every updated
//!   replica is available; `ProgressDeadlineExceeded` fails at once;
//! - StatefulSet: ready replicas reach `spec.replicas`; with a `partition`, only the pods above
//!   it must be updated (`updatedReplicas >= replicas - partition`); otherwise the update
//!   revision must have become the current one;
//! - DaemonSet: every scheduled node runs an updated pod, and each is *available*
//!   (`numberAvailable`, which honours `minReadySeconds`), not merely ready;
//! - Job (kubectl has no rollout for it; `kubectl wait --for=condition=complete`): a Job with
//!   `completions` is done at that many successes; a work-queue Job (no `completions`) only at
//!   its `Complete` condition, since one success there does not mean the queue is drained. A
//!   suspended Job is not waited for: it will not run until someone resumes it.

use serde_json::Value;

/// Kinds that have a rollout to wait for.
pub(crate) const ROLLOUT_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Job"];

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Rolled out (or nothing to roll out).
    Ready,
    /// Still progressing; the text says how far.
    Pending(String),
    /// Will not become ready without intervention; the text says why.
    Failed(String),
}

pub(crate) fn conditions(live: &Value) -> impl Iterator<Item = &Value> {
    live.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn condition<'a>(live: &'a Value, kind: &str) -> Option<&'a Value> {
    conditions(live).find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn int(live: &Value, pointer: &str) -> i64 {
    live.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(live: &'a Value, pointer: &str) -> Option<&'a str> {
    live.pointer(pointer).and_then(Value::as_str)
}

/// `spec.replicas`, which the API server defaults to 1.
fn wanted(live: &Value) -> i64 {
    live.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// Whether the live object's rollout is complete, by its kind's rules.
pub fn readiness(kind: &str, live: &Value) -> Readiness {
    let generation = int(live, "/metadata/generation");
    let observed = int(live, "/status/observedGeneration");
    // kubectl also treats a StatefulSet whose controller never wrote observedGeneration as unobserved.
    let unobserved_sts = kind == "StatefulSet" && observed == 0 && generation > 0;
    if ["Deployment", "StatefulSet", "DaemonSet"].contains(&kind)
        && (observed < generation || unobserved_sts)
    {
        return Readiness::Pending(format!(
            "controller has not observed generation {generation} yet"
        ));
    }
    match kind {
        "Deployment" => deployment(live),
        "StatefulSet" => statefulset(live),
        "DaemonSet" => daemonset(live),
        "Job" => job(live),
        _ => Readiness::Ready,
    }
}

fn deployment(live: &Value) -> Readiness {
    if let Some(progressing) = condition(live, "Progressing")
        && progressing.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    {
        let message = progressing.get("message").and_then(Value::as_str);
        return Readiness::Failed(format!(
            "ProgressDeadlineExceeded: {}",
            message.unwrap_or("no progress")
        ));
    }
    let wanted = wanted(live);
    let replicas = int(live, "/status/replicas");
    let updated = int(live, "/status/updatedReplicas");
    let available = int(live, "/status/availableReplicas");
    // kubectl: all updated, no old replicas pending termination, every updated one available.
    if updated >= wanted && replicas <= updated && available >= updated {
        Readiness::Ready
    } else {
        Readiness::Pending(format!(
            "{updated}/{wanted} updated, {available} available, {replicas} total"
        ))
    }
}

fn statefulset(live: &Value) -> Readiness {
    let wanted = wanted(live);
    let ready = int(live, "/status/readyReplicas");
    if ready < wanted {
        return Readiness::Pending(format!("{ready}/{wanted} ready"));
    }
    if text(live, "/spec/updateStrategy/type") == Some("OnDelete") {
        // kubectl has no rollout status for OnDelete: pods change only when deleted.
        return Readiness::Ready;
    }
    if let Some(partition) = live
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
    {
        let updated = int(live, "/status/updatedReplicas");
        let needed = (wanted - partition).max(0);
        return if updated >= needed {
            Readiness::Ready
        } else {
            Readiness::Pending(format!(
                "partitioned rollout: {updated}/{needed} pods above partition {partition} updated"
            ))
        };
    }
    let current = text(live, "/status/currentRevision");
    let update = text(live, "/status/updateRevision");
    if current != update {
        Readiness::Pending(format!(
            "revision {} rolling out (current {}, {} updated)",
            update.unwrap_or("?"),
            current.unwrap_or("?"),
            int(live, "/status/updatedReplicas")
        ))
    } else {
        Readiness::Ready
    }
}

fn daemonset(live: &Value) -> Readiness {
    let desired = int(live, "/status/desiredNumberScheduled");
    let updated = int(live, "/status/updatedNumberScheduled");
    let available = int(live, "/status/numberAvailable");
    let on_delete = text(live, "/spec/updateStrategy/type") == Some("OnDelete");
    if (on_delete || updated >= desired) && available >= desired {
        Readiness::Ready
    } else {
        Readiness::Pending(format!(
            "{updated}/{desired} updated, {available} available"
        ))
    }
}

fn job(live: &Value) -> Readiness {
    let is_true = |c: &&Value| c.get("status").and_then(Value::as_str) == Some("True");
    if let Some(failed) = condition(live, "Failed").filter(is_true) {
        let field = |f: &str| failed.get(f).and_then(Value::as_str).unwrap_or_default();
        return Readiness::Failed(format!("{}: {}", field("reason"), field("message")));
    }
    if condition(live, "Complete").filter(is_true).is_some() {
        return Readiness::Ready;
    }
    if live.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        tracing::info!("suspended Job: not waited for");
        return Readiness::Ready;
    }
    let succeeded = int(live, "/status/succeeded");
    let active = int(live, "/status/active");
    match live.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(completions) if succeeded >= completions => Readiness::Ready,
        Some(completions) => Readiness::Pending(format!(
            "{succeeded}/{completions} succeeded, {active} active"
        )),
        None => Readiness::Pending(format!(
            "work queue: {succeeded} succeeded, {active} active, waiting for the Complete condition"
        )),
    }
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
