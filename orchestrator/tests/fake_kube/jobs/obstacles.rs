//! What keeps a fake Job's pod from running, shown as a real cluster shows it, so the
//! coordinator's diagnosis is tested against real payloads:
//!
//! - pods refused at creation (a ResourceQuota, Pod Security admission): no Pod object,
//!   a `Warning` `FailedCreate` event on the Job from `job-controller`
//!   (`Error creating: pods "…" is forbidden: …`);
//! - an unschedulable pod: `Pending`, no `nodeName`, condition `PodScheduled=False`
//!   reason `Unschedulable` with the scheduler's `0/N nodes are available: …`, and a
//!   `FailedScheduling` event from `default-scheduler`;
//! - a volume that will not attach or mount: scheduled (`nodeName`, `PodScheduled=True`),
//!   `Pending` in `ContainerCreating`, with a `FailedAttachVolume` event from
//!   `attachdetach-controller` or `FailedMount` from the `kubelet`.
//!
//! Events are stored as core/v1 `Event` objects under `/api/v1/namespaces/{ns}/events`
//! and listed with a `fieldSelector` on `involvedObject.*` by the fake's list handler.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::super::FakeCluster;
use super::{Jobs, lock};

/// The node every fake pod is scheduled on.
pub const NODE: &str = "zrh-worker-1";

/// A test's obstacle for pods mounting one claim.
#[derive(Debug, Clone)]
pub(super) enum ClaimBlock {
    /// The scheduler's message.
    Unschedulable(String),
    /// `FailedAttachVolume` or `FailedMount`, and the message.
    Mount(String, String),
}

/// What becomes of a pod about to start.
pub(super) enum Obstacle {
    /// Not scheduled: the scheduler's message.
    Unschedulable(String),
    /// Scheduled, its volume not attached or mounted: reason, message, component.
    Mount(String, String, &'static str),
}

static EVENTS: AtomicU64 = AtomicU64::new(1);

impl FakeCluster {
    /// Pods mounting claim `namespace/claim` cannot be scheduled; `message` is the
    /// scheduler's, e.g. `0/3 nodes are available: 3 node(s) had volume node affinity
    /// conflict. preemption: …`.
    pub fn set_claim_unschedulable(&self, namespace: &str, claim: &str, message: &str) {
        lock(&self.api.jobs.state).blocks.insert(
            (namespace.to_owned(), claim.to_owned()),
            ClaimBlock::Unschedulable(message.to_owned()),
        );
    }
    /// Pods mounting claim `namespace/claim` are scheduled but its volume fails with
    /// `reason` (`FailedAttachVolume` or `FailedMount`) and `message`.
    pub fn set_claim_mount_failing(
        &self,
        namespace: &str,
        claim: &str,
        reason: &str,
        message: &str,
    ) {
        lock(&self.api.jobs.state).blocks.insert(
            (namespace.to_owned(), claim.to_owned()),
            ClaimBlock::Mount(reason.to_owned(), message.to_owned()),
        );
    }
    /// Pods mounting claim `namespace/claim` start again (a node was added, the other
    /// pod let go of the volume); pods already blocked stay so, as a real pod that
    /// was not retried would.
    pub fn clear_claim_block(&self, namespace: &str, claim: &str) {
        lock(&self.api.jobs.state)
            .blocks
            .remove(&(namespace.to_owned(), claim.to_owned()));
    }
    /// The API server refuses every pod of `namespace` with `why`, e.g. `exceeded quota:
    /// compute, requested: limits.memory=2Gi, used: limits.memory=8Gi, limited:
    /// limits.memory=8Gi` (a Job's pods are then never created).
    pub fn refuse_pods(&self, namespace: &str, why: &str) {
        lock(&self.api.jobs.state)
            .refused
            .insert(namespace.to_owned(), why.to_owned());
    }
    /// The events of `namespace`, in the order recorded.
    pub fn events(&self, namespace: &str) -> Vec<Value> {
        let collection = format!("/api/v1/namespaces/{namespace}/events");
        let mut events: Vec<Value> = self
            .objects
            .lock()
            .expect("lock")
            .iter()
            .filter(|((c, _), _)| *c == collection)
            .map(|(_, e)| e.clone())
            .collect();
        events.sort_by_key(|e| {
            e["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok())
        });
        events
    }
}

impl Jobs {
    /// Why the API server refuses pods of `namespace`, if it does.
    pub(super) fn refusal(&self, namespace: &str) -> Option<String> {
        lock(&self.state).refused.get(namespace).cloned()
    }

    /// What keeps a pod of `pod_spec` from starting, from the claims it mounts.
    pub(super) fn obstacle(&self, namespace: &str, pod_spec: &Value) -> Option<Obstacle> {
        let state = lock(&self.state);
        pod_spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .find_map(|claim| {
                let key = (namespace.to_owned(), claim.to_owned());
                if state.unbindable.contains(&key) {
                    return Some(Obstacle::Unschedulable(
                        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.".into(),
                    ));
                }
                match state.blocks.get(&key)? {
                    ClaimBlock::Unschedulable(message) => {
                        Some(Obstacle::Unschedulable(message.clone()))
                    }
                    ClaimBlock::Mount(reason, message) => {
                        let component = if reason == "FailedAttachVolume" {
                            "attachdetach-controller"
                        } else {
                            "kubelet"
                        };
                        Some(Obstacle::Mount(reason.clone(), message.clone(), component))
                    }
                }
            })
    }

    /// Record a `Warning` event about `object` (a Job or Pod as stored).
    pub(super) fn warn(&self, object: &Value, reason: &str, message: &str, component: &str) {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let n = EVENTS.fetch_add(1, Ordering::SeqCst);
        let event_name = format!("{name}.{:016x}", 0x187c_0000_0000_0000u64 + n);
        let host = (component == "kubelet").then_some(NODE);
        let event = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": event_name, "namespace": namespace, "resourceVersion": n.to_string(),
                         "creationTimestamp": "2026-11-30T10:00:02Z"},
            "involvedObject": {"apiVersion": object["apiVersion"], "kind": object["kind"], "namespace": namespace,
                               "name": name, "uid": object["metadata"]["uid"], "resourceVersion": "1"},
            "reason": reason, "message": message, "type": "Warning", "count": 1,
            "source": {"component": component, "host": host},
            "firstTimestamp": "2026-11-30T10:00:02Z", "lastTimestamp": "2026-11-30T10:00:02Z",
            "reportingComponent": component, "reportingInstance": host.unwrap_or_default()});
        self.objects.lock().expect("lock").insert(
            (format!("/api/v1/namespaces/{namespace}/events"), event_name),
            event,
        );
    }
}

/// A pod the scheduler cannot place.
pub(super) fn unschedulable(mut pod: Value, message: &str) -> Value {
    pod["status"] = json!({"phase": "Pending", "qosClass": "BestEffort", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
         "lastProbeTime": null, "lastTransitionTime": "2026-11-30T10:00:01Z"}]});
    pod
}

/// A pod scheduled on [`NODE`] whose volumes are not ready.
pub(super) fn mounting(mut pod: Value) -> Value {
    pod["spec"]["nodeName"] = json!(NODE);
    pod["status"] = json!({"phase": "Pending", "hostIP": "10.0.3.17", "qosClass": "BestEffort",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                        "lastTransitionTime": "2026-11-30T10:00:01Z"}],
        "containerStatuses": [{"name": "worker", "ready": false, "restartCount": 0, "started": false,
                               "image": pod["spec"]["containers"][0]["image"], "imageID": "",
                               "state": {"waiting": {"reason": "ContainerCreating"}}}]});
    pod
}
