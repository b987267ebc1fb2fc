//! A worker Job's pods, by index: [`job_pods`] finds them by the labels the Job controller
//! sets; [`stuck_worker_pods`] names those the kubelet cannot start and will not start by
//! waiting (an image that cannot be pulled, a Secret or key that is missing), so the
//! coordinator fails the step naming the cause instead of waiting for a Job that cannot
//! progress (its `active` count looks the same as running pods').

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};

use super::logs::pod_id;
use crate::kube::KubeError;

/// The label (and annotation) carrying an Indexed Job pod's index.
pub const INDEX_LABEL: &str = "batch.kubernetes.io/job-completion-index";
/// The label naming a pod's Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// Waiting reasons that no amount of waiting fixes.
const STUCK: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// A worker pod the kubelet cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckPod {
    /// The shard (completion index).
    pub index: u32,
    /// The pod's name.
    pub pod: String,
    /// The kubelet's reason, e.g. `CreateContainerConfigError`.
    pub reason: String,
    /// The kubelet's message, e.g. `secret "relocate-stores" not found`.
    pub message: String,
}

async fn list(client: Client, namespace: &str, job: &str) -> Result<Vec<(u32, Pod)>, KubeError> {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let selector = format!("{JOB_NAME_LABEL}={job}");
    let pods = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| KubeError::from_api(&pod_id(namespace, &format!("<pods of job {job}>")), e))?;
    let mut out = Vec::with_capacity(pods.items.len());
    for pod in pods.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let index = [&pod.metadata.labels, &pod.metadata.annotations]
            .into_iter()
            .flatten()
            .find_map(|map| map.get(INDEX_LABEL))
            .and_then(|text| text.parse::<u32>().ok())
            .ok_or_else(|| KubeError::Malformed {
                resource: pod_id(namespace, &name).to_string(),
                message: format!(
                    "no numeric {INDEX_LABEL} label or annotation: is Job {job} Indexed?"
                ),
            })?;
        out.push((index, pod));
    }
    Ok(out)
}

/// Job `job`'s pods as `(index, pod name, phase)`, ordered by index then name (an index
/// that was retried has several).
pub async fn job_pods(
    client: Client,
    namespace: &str,
    job: &str,
) -> Result<Vec<(u32, String, String)>, KubeError> {
    let mut out: Vec<_> = list(client, namespace, job)
        .await?
        .into_iter()
        .map(|(index, pod)| {
            let phase = pod
                .status
                .and_then(|s| s.phase)
                .unwrap_or_else(|| "Pending".into());
            (index, pod.metadata.name.unwrap_or_default(), phase)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Job `job`'s pods that cannot start, ordered by index then name.
pub async fn stuck_worker_pods(
    client: Client,
    namespace: &str,
    job: &str,
) -> Result<Vec<StuckPod>, KubeError> {
    let mut out = Vec::new();
    for (index, pod) in list(client, namespace, job).await? {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let statuses = pod
            .status
            .and_then(|s| s.container_statuses)
            .unwrap_or_default();
        for waiting in statuses
            .into_iter()
            .filter_map(|c| c.state.and_then(|s| s.waiting))
        {
            let reason = waiting.reason.unwrap_or_default();
            if STUCK.contains(&reason.as_str()) {
                out.push(StuckPod {
                    index,
                    pod: name.clone(),
                    reason,
                    message: waiting.message.unwrap_or_default(),
                });
            }
        }
    }
    out.sort_by(|a, b| (a.index, &a.pod).cmp(&(b.index, &b.pod)));
    Ok(out)
}
