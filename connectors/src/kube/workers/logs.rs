//! A worker pod's output: [`follow_pod_logs`] streams one pod's log line by line
//! (`follow=true`, ending when the container exits) so the coordinator can merge the
//! workers' NDJSON progress into one display. A client built by `connect` gives up on a
//! connection silent for its read timeout (30 s): the stream then ends with
//! [`KubeError::LogStream`], and the caller follows again (with `sinceTime`) if the pod runs on.

use futures::io::AsyncBufReadExt;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, LogParams};

use crate::kube::{KubeError, ResourceId};

pub(super) fn pod_id(namespace: &str, name: &str) -> ResourceId {
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
