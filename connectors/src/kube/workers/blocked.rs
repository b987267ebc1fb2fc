//! Why a Job makes no progress though nothing in it failed: its pods cannot be created,
//! cannot be scheduled, or cannot attach or mount a volume. A Job in any of these states
//! looks healthy from its own status (no failed index, no condition; `active` may even
//! count the pending pod) and would otherwise be waited on until the caller's timeout.
//! [`blocked_job`] reads what a human would read with `kubectl describe`:
//!
//! - the pods' `PodScheduled=False` condition with reason `Unschedulable` (the
//!   scheduler's `0/3 nodes are available: …`);
//! - when the Job has no pod at all, its `FailedCreate` events (the Job controller's
//!   `Error creating: pods "…" is forbidden: exceeded quota …` or a Pod Security
//!   admission refusal);
//! - a pending pod's `FailedAttachVolume` and `FailedMount` events (a `ReadWriteOnce`
//!   volume still attached to another node, a CSI driver's error).
//!
//! Only the latest event of each kind is reported, and only for pods still `Pending`:
//! events outlive the condition they described. How long each may last before it is an
//! error is the caller's decision (mount and attach errors are often transient).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, ListParams};

use super::logs::pod_id;
use super::pods::JOB_NAME_LABEL;
use crate::kube::{KubeError, ResourceId};

/// What keeps a Job's pod from running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum BlockKind {
    /// The Job controller cannot create the pod (`FailedCreate`: quota, admission).
    CreateRefused,
    /// The scheduler finds no node for the pod (`PodScheduled=False`, `Unschedulable`).
    Unschedulable,
    /// The pod's volume cannot be attached or mounted (`FailedAttachVolume`,
    /// `FailedMount`).
    Mount,
}

impl BlockKind {
    /// In words, for an error: "cannot be created", …
    pub fn describe(self) -> &'static str {
        match self {
            BlockKind::CreateRefused => "cannot be created",
            BlockKind::Unschedulable => "cannot be scheduled",
            BlockKind::Mount => "cannot attach or mount its volume",
        }
    }
}

/// One reason a Job's pod does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// Which kind of obstacle.
    pub kind: BlockKind,
    /// The pod, when there is one (a refused creation has none).
    pub pod: Option<String>,
    /// Kubernetes' reason, e.g. `Unschedulable`, `FailedCreate`, `FailedMount`.
    pub reason: String,
    /// Kubernetes' message, e.g. `0/3 nodes are available: …`.
    pub message: String,
}

/// The obstacles of Job `namespace/job`'s pods, ordered by kind then pod; empty when
/// its pods run (or have run) or simply have not been looked at by the cluster yet.
pub async fn blocked_job(
    client: Client,
    namespace: &str,
    job: &str,
) -> Result<Vec<Blocked>, KubeError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let listed = pods
        .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job}")))
        .await
        .map_err(|e| KubeError::from_api(&pod_id(namespace, &format!("<pods of job {job}>")), e))?;
    let mut out = Vec::new();
    let mut pending = Vec::new();
    let mut unfinished = 0;
    for pod in &listed.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if matches!(phase, "Succeeded" | "Failed") || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        unfinished += 1;
        let unschedulable = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            });
        match unschedulable {
            Some(condition) => out.push(Blocked {
                kind: BlockKind::Unschedulable,
                pod: Some(name),
                reason: "Unschedulable".into(),
                message: condition.message.clone().unwrap_or_default(),
            }),
            None if phase == "Pending" => pending.push((name, pod.metadata.uid.clone())),
            None => {}
        }
    }
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    for (pod, uid) in pending {
        let object = (namespace, "Pod", pod.as_str(), uid.as_deref());
        let found = latest_event(&events, object, MOUNT_REASONS).await?;
        out.extend(found.map(|(reason, message)| Blocked {
            kind: BlockKind::Mount,
            pod: Some(pod.clone()),
            reason,
            message,
        }));
    }
    if unfinished == 0 {
        // By uid too: a deleted Job's events (kept an hour) are not this one's.
        let jobs: Api<Job> = Api::namespaced(client, namespace);
        let uid = jobs
            .get(job)
            .await
            .map_err(|e| KubeError::from_api(&super::job::job_id(namespace, job), e))?
            .metadata
            .uid;
        let object = (namespace, "Job", job, uid.as_deref());
        let found = latest_event(&events, object, &["FailedCreate"]).await?;
        out.extend(found.map(|(reason, message)| Blocked {
            kind: BlockKind::CreateRefused,
            pod: None,
            reason,
            message,
        }));
    }
    out.sort_by(|a, b| (a.kind, &a.pod).cmp(&(b.kind, &b.pod)));
    Ok(out)
}

/// The kubelet's and the attach/detach controller's reasons for a volume not ready.
const MOUNT_REASONS: &[&str] = &["FailedAttachVolume", "FailedMount"];

/// The latest `Warning` event about `object` (namespace, kind, name, uid) whose reason
/// is one of `reasons`.
async fn latest_event(
    events: &Api<Event>,
    (namespace, kind, name, uid): (&str, &str, &str, Option<&str>),
    reasons: &[&str],
) -> Result<Option<(String, String)>, KubeError> {
    let mut selector =
        format!("involvedObject.kind={kind},involvedObject.name={name},type=Warning");
    if let Some(uid) = uid {
        selector.push_str(&format!(",involvedObject.uid={uid}"));
    }
    let id = ResourceId {
        api_version: "v1".into(),
        kind: "Event".into(),
        namespace: namespace.into(),
        name: format!("<events of {kind} {name}>"),
    };
    let listed = events
        .list(&ListParams::default().fields(&selector))
        .await
        .map_err(|e| KubeError::from_api(&id, e))?;
    Ok(listed
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref().is_some_and(|r| reasons.contains(&r)))
        .max_by_key(|e| {
            // Either timestamp may be missing (core/v1 vs events.k8s.io writers); the
            // count breaks ties between repetitions of one event.
            let at = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0));
            (at, e.count.unwrap_or(0))
        })
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default())))
}
