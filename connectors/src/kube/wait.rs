//! Waiting for applied workloads to finish rolling out.
//!
//! Readiness is read from each object's status with the same rules as `kubectl rollout
//! status` ([`readiness`], a pure function); [`wait_ready`] polls with plain GETs at a short
//! interval, which survives API-server restarts without watch bookkeeping and is simple to
//! test. Kinds without a rollout (ConfigMap, Service, …) are ready once applied.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject};
use serde_json::Value;
use tokio::time::Instant;

use super::kinds::resolve_manifest_kind;
use super::{KubeError, Resource, ResourceId};

/// Kinds that have a rollout to wait for.
const ROLLOUT_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Job"];

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// Pause between polls.
    pub poll_interval: Duration,
}

impl WaitOptions {
    /// Wait up to `timeout`, polling every two seconds.
    pub fn with_timeout(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            poll_interval: Duration::from_secs(2),
        }
    }
}

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

/// Progress after each poll, for the orchestrator's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyProgress {
    /// Workloads rolled out so far.
    pub ready: usize,
    /// Workloads waited for.
    pub total: usize,
    /// `Kind ns/name: detail` for each one still pending.
    pub waiting: Vec<String>,
}

/// Wait until every rollout-bearing resource is ready. A failed Job or a Deployment past its
/// progress deadline fails at once; the timeout names each unready resource and its conditions.
pub async fn wait_ready(
    client: &Client,
    resources: &[Resource],
    options: WaitOptions,
    on_progress: impl Fn(&ReadyProgress),
) -> Result<(), KubeError> {
    let deadline = Instant::now() + options.timeout;
    let mut pending: Vec<&Resource> = resources
        .iter()
        .filter(|r| ROLLOUT_KINDS.contains(&r.kind.as_str()))
        .collect();
    let total = pending.len();
    loop {
        let mut waiting = Vec::new();
        let mut still = Vec::new();
        for resource in pending {
            let live = get_live(client, resource).await?;
            match readiness(&resource.kind, &live) {
                Readiness::Ready => tracing::info!(resource = %resource.id(), "ready"),
                Readiness::Pending(detail) => {
                    waiting.push(describe(&resource.id(), &detail, &live));
                    still.push(resource);
                }
                Readiness::Failed(message) => return Err(failure(resource.id(), message)),
            }
        }
        on_progress(&ReadyProgress {
            ready: total - still.len(),
            total,
            waiting: waiting.clone(),
        });
        if still.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(KubeError::Timeout {
                waited_secs: options.timeout.as_secs(),
                unready: waiting,
            });
        }
        tokio::time::sleep(options.poll_interval.min(deadline - now)).await;
        pending = still;
    }
}

async fn get_live(client: &Client, resource: &Resource) -> Result<Value, KubeError> {
    let kind = resolve_manifest_kind(client, &resource.api_version, &resource.kind).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &resource.namespace, &kind);
    let object = api
        .get(&resource.name)
        .await
        .map_err(|e| KubeError::from_api(&resource.id(), e))?;
    serde_json::to_value(object).map_err(|e| KubeError::Malformed {
        resource: resource.id().to_string(),
        message: e.to_string(),
    })
}

fn failure(id: ResourceId, message: String) -> KubeError {
    if id.kind == "Job" {
        KubeError::JobFailed {
            resource: id.to_string(),
            message,
        }
    } else {
        KubeError::RolloutFailed {
            resource: id.to_string(),
            message,
        }
    }
}

/// `Kind ns/name: detail [Type=Status Reason: message; …]`.
fn describe(id: &ResourceId, detail: &str, live: &Value) -> String {
    let conditions: Vec<String> = conditions(live)
        .map(|c| {
            let field = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or_default();
            let mut text = format!("{}={}", field("type"), field("status"));
            if !field("reason").is_empty() {
                text.push_str(&format!(" {}", field("reason")));
            }
            if !field("message").is_empty() {
                text.push_str(&format!(": {}", field("message")));
            }
            text
        })
        .collect();
    if conditions.is_empty() {
        format!("{id}: {detail}")
    } else {
        format!("{id}: {detail} [{}]", conditions.join("; "))
    }
}

fn conditions(live: &Value) -> impl Iterator<Item = &Value> {
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

/// Whether the live object's rollout is complete, by its kind's rules.
pub fn readiness(kind: &str, live: &Value) -> Readiness {
    let generation = int(live, "/metadata/generation");
    let observed = int(live, "/status/observedGeneration");
    if ["Deployment", "StatefulSet", "DaemonSet"].contains(&kind) && observed < generation {
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
    let wanted = live
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let replicas = int(live, "/status/replicas");
    let updated = int(live, "/status/updatedReplicas");
    let available = int(live, "/status/availableReplicas");
    if updated == wanted && replicas == wanted && available == wanted {
        Readiness::Ready
    } else {
        Readiness::Pending(format!(
            "{updated}/{wanted} updated, {available} available, {replicas} total"
        ))
    }
}

fn statefulset(live: &Value) -> Readiness {
    let wanted = live
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let ready = int(live, "/status/readyReplicas");
    let current = live
        .pointer("/status/currentRevision")
        .and_then(Value::as_str);
    let update = live
        .pointer("/status/updateRevision")
        .and_then(Value::as_str);
    let on_delete = live
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("OnDelete");
    if ready != wanted {
        Readiness::Pending(format!("{ready}/{wanted} ready"))
    } else if !on_delete && current != update {
        Readiness::Pending(format!(
            "revision {} rolling out (current {})",
            update.unwrap_or("?"),
            current.unwrap_or("?")
        ))
    } else {
        Readiness::Ready
    }
}

fn daemonset(live: &Value) -> Readiness {
    let desired = int(live, "/status/desiredNumberScheduled");
    let updated = int(live, "/status/updatedNumberScheduled");
    let ready = int(live, "/status/numberReady");
    if updated == desired && ready == desired {
        Readiness::Ready
    } else {
        Readiness::Pending(format!("{updated}/{desired} updated, {ready} ready"))
    }
}

fn job(live: &Value) -> Readiness {
    let is_true = |c: &Value| c.get("status").and_then(Value::as_str) == Some("True");
    if let Some(failed) = condition(live, "Failed").filter(|c| is_true(c)) {
        let field = |f: &str| failed.get(f).and_then(Value::as_str).unwrap_or_default();
        return Readiness::Failed(format!("{}: {}", field("reason"), field("message")));
    }
    let completions = live
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let succeeded = int(live, "/status/succeeded");
    if condition(live, "Complete").is_some_and(is_true) || succeeded >= completions.max(1) {
        Readiness::Ready
    } else {
        Readiness::Pending(format!(
            "{succeeded}/{completions} succeeded, {} active",
            int(live, "/status/active")
        ))
    }
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
