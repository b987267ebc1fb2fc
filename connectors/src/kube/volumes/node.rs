//! Where a claim is in use: a `ReadWriteOnce` volume attaches to one node, so a mover
//! that reads it while the workload still runs (the seed) must run on that node too,
//! or it waits forever for an attachment the running pod holds.

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};

use super::super::KubeError;
use super::super::resource::ResourceId;

/// The pods of `namespace`, not finished, that mount `claim`.
async fn claim_pods(client: Client, namespace: &str, claim: &str) -> Result<Vec<Pod>, KubeError> {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let id = ResourceId {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: namespace.into(),
        name: String::new(),
    };
    let pods = api
        .list(&ListParams::default())
        .await
        .map_err(|e| KubeError::from_api(&id, e))?;
    Ok(pods
        .items
        .into_iter()
        .filter(|pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .filter(|pod| {
            pod.spec
                .as_ref()
                .and_then(|s| s.volumes.as_ref())
                .is_some_and(|vs| {
                    vs.iter().any(|v| {
                        v.persistent_volume_claim
                            .as_ref()
                            .is_some_and(|c| c.claim_name == claim)
                    })
                })
        })
        .collect())
}

/// The node of a running (or starting) pod of `namespace` that mounts `claim`, if any.
pub async fn claim_node(
    client: Client,
    namespace: &str,
    claim: &str,
) -> Result<Option<String>, KubeError> {
    Ok(claim_pods(client, namespace, claim)
        .await?
        .into_iter()
        .find_map(|pod| pod.spec.and_then(|s| s.node_name)))
}

/// The pods of `namespace` (not finished, not relocate's own movers) that mount
/// `claim`: a claim in use is not restored into (a workload may be writing it).
pub async fn claim_users(
    client: Client,
    namespace: &str,
    claim: &str,
) -> Result<Vec<String>, KubeError> {
    Ok(claim_pods(client, namespace, claim)
        .await?
        .into_iter()
        .filter(|pod| {
            !pod.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("relocate.io/volume-task"))
        })
        .filter_map(|pod| pod.metadata.name)
        .collect())
}
