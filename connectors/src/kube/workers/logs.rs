//! The worker pods of a Job and their output: [`job_pods`] finds each index's pods by the
//! labels the Job controller sets, [`follow_pod_logs`] streams one pod's log line by line
//! (`follow=true`, ending when the container exits) so the coordinator can merge the
//! workers' NDJSON progress into one display.

use futures::io::AsyncBufReadExt;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, LogParams};

use crate::kube::{KubeError, ResourceId};

/// The label (and annotation) carrying an Indexed Job pod's index.
pub const INDEX_LABEL: &str = "batch.kubernetes.io/job-completion-index";
/// The label naming a pod's Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

fn pod_id(namespace: &str, name: &str) -> ResourceId {
    ResourceId {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The lines of `pod`'s log as they are written, until its container exits.
pub fn follow_pod_logs(
    client: Client,
    namespace: &str,
    pod: &str,
) -> impl Stream<Item = Result<String, KubeError>> + Send + 'static {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let id = pod_id(namespace, pod);
    let params = LogParams {
        follow: true,
        ..LogParams::default()
    };
    futures::stream::once(async move {
        match api.log_stream(&id.name, &params).await {
            Ok(reader) => {
                let resource = id.to_string();
                reader
                    .lines()
                    .map_err(move |source| KubeError::LogStream {
                        resource: resource.clone(),
                        source,
                    })
                    .boxed()
            }
            Err(e) => futures::stream::iter([Err(KubeError::from_api(&id, e))]).boxed(),
        }
    })
    .flatten()
}

/// Job `job`'s pods as `(index, pod name, phase)`, ordered by index then name (an index
/// that was retried has several).
pub async fn job_pods(
    client: Client,
    namespace: &str,
    job: &str,
) -> Result<Vec<(u32, String, String)>, KubeError> {
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
        let phase = pod
            .status
            .and_then(|s| s.phase)
            .unwrap_or_else(|| "Pending".into());
        out.push((index, name, phase));
    }
    out.sort();
    Ok(out)
}
