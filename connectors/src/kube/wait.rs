//! Waiting for applied workloads to finish rolling out.
//!
//! Readiness is read from each object's status with the rules of `kubectl rollout status`
//! ([`readiness`](super::readiness), a pure function); [`wait_ready`] polls with plain GETs,
//! which survives API-server restarts without watch bookkeeping and is simple to test.
//! Kinds without a rollout (ConfigMap, Service, …) are ready once applied.
//!
//! A wait runs with the source frozen, so it must neither hang nor give up early:
//! - every call is time-boxed ([`CALL_TIMEOUT`], and never past the wait's deadline), so a
//!   connection that drops silently cannot hold the wait beyond `waitTimeout`;
//! - an answer that says nothing about the workload (5xx, 429, a reset or refused connection,
//!   a call that timed out) counts as "still pending" until the deadline, never as a failure
//!   that would roll the cutover back; only what the workload itself says (a failed Job, a
//!   Deployment past its progress deadline) or a definite refusal (404, 403) ends it early;
//! - while a workload is pending its pods' reasons are shown (`ImagePullBackOff`, …).

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject};
use serde_json::Value;
use tokio::time::Instant;

use super::kinds::resolve_manifest_kind;
use super::pod_reasons::pod_reasons;
use super::readiness::{ROLLOUT_KINDS, conditions};
use super::{KubeError, Readiness, Resource, ResourceId, readiness};

/// Longest a single API call may take during a wait.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// First pause between polls; doubled up to [`WaitOptions::poll_interval`].
const FIRST_POLL: Duration = Duration::from_millis(250);

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// Longest pause between polls (the first polls come sooner).
    pub poll_interval: Duration,
}

impl WaitOptions {
    /// Wait up to `timeout`, polling at most every two seconds.
    pub fn with_timeout(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            poll_interval: Duration::from_secs(2),
        }
    }
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

/// What one poll of one resource found.
enum Poll {
    Live(Value),
    /// The API server could not say; try again until the deadline.
    Unanswered(String),
}

/// Wait until every rollout-bearing resource is ready. A failed Job or a Deployment past its
/// progress deadline fails at once; the timeout names each unready resource, its conditions
/// and its pods' problems.
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
    let mut pause = FIRST_POLL.min(options.poll_interval);
    loop {
        let mut waiting = Vec::new();
        let mut still = Vec::new();
        for resource in pending {
            let id = resource.id();
            let live = match poll(client, resource, deadline).await? {
                Poll::Live(live) => live,
                Poll::Unanswered(why) => {
                    tracing::warn!(resource = %id, %why, "no answer; still waiting");
                    waiting.push(format!("{id}: no answer from the API server ({why})"));
                    still.push(resource);
                    continue;
                }
            };
            match readiness(&resource.kind, &live) {
                Readiness::Ready => tracing::info!(resource = %id, "ready"),
                Readiness::Pending(detail) => {
                    let pods = timeboxed(deadline, pod_reasons(client, &resource.namespace, &live))
                        .await
                        .unwrap_or_default();
                    waiting.push(describe(&id, &detail, &live, &pods));
                    still.push(resource);
                }
                Readiness::Failed(message) => {
                    let pods = timeboxed(deadline, pod_reasons(client, &resource.namespace, &live))
                        .await
                        .unwrap_or_default();
                    return Err(failure(id, with_pods(message, &pods)));
                }
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
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(options.poll_interval);
        pending = still;
    }
}

/// Run `call` for at most [`CALL_TIMEOUT`] and never past `deadline`.
async fn timeboxed<T>(deadline: Instant, call: impl Future<Output = T>) -> Option<T> {
    let limit = CALL_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
    tokio::time::timeout(limit.max(Duration::from_millis(1)), call)
        .await
        .ok()
}

async fn poll(client: &Client, resource: &Resource, deadline: Instant) -> Result<Poll, KubeError> {
    let id = resource.id();
    let call = async {
        let kind = resolve_manifest_kind(client, &resource.api_version, &resource.kind).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &resource.namespace, &kind);
        api.get(&resource.name)
            .await
            .map_err(|e| KubeError::from_api(&id, e))
    };
    let object = match timeboxed(deadline, call).await {
        None => return Ok(Poll::Unanswered("the call timed out".to_owned())),
        Some(Err(e)) if e.is_transient() => return Ok(Poll::Unanswered(e.transient_cause())),
        Some(result) => result?,
    };
    serde_json::to_value(object)
        .map(Poll::Live)
        .map_err(|e| KubeError::Malformed {
            resource: id.to_string(),
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

fn with_pods(message: String, pods: &[String]) -> String {
    if pods.is_empty() {
        message
    } else {
        format!("{message}; pods: {}", pods.join("; "))
    }
}

/// `Kind ns/name: detail [Type=Status Reason: message; …]; pods: …`.
fn describe(id: &ResourceId, detail: &str, live: &Value, pods: &[String]) -> String {
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
    let text = if conditions.is_empty() {
        format!("{id}: {detail}")
    } else {
        format!("{id}: {detail} [{}]", conditions.join("; "))
    };
    with_pods(text, pods)
}
