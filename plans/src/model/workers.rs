//! Scale-out: where a workload's sharded copy and verify run, and the state store
//! where the coordinator and its workers meet.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `state: { store: … }`: the object store where the coordinator writes work orders
/// and workers write checkpoints and results. It is written to, so it must satisfy
/// residency like any target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedState {
    /// A key of `stores`.
    pub store: String,
}

/// `workers:` of an object workload: exactly one executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workers {
    /// Workers as the pods of a Kubernetes Indexed Job in the target cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesWorkers>,
    /// Workers as child processes of the machine running `relocate run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalWorkers>,
}

/// `workers.local`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalWorkers {
    /// Worker processes at once (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
}

/// `workers.kubernetes`: the Indexed Job's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesWorkers {
    /// The cluster the Job runs in (a key of `clusters`), in an allowed jurisdiction.
    pub cluster: String,
    /// Its namespace (must exist).
    pub namespace: String,
    /// The relocate image (`relocate` is its entrypoint).
    pub image: String,
    /// Pods at once (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// The pods' service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Where the pods find the stores' credentials: a Secret, by reference only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<WorkerCredentials>,
    /// CPU and memory of each pod (requests = limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<WorkerResources>,
    /// Pod retries per shard before the shard fails (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit_per_index: Option<u32>,
}

/// `workers.kubernetes.credentials`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkerCredentials {
    /// The Secret whose keys become the pods' environment (and files under
    /// `/var/run/secrets/relocate/`), where the stores' `${env:…}`/`${file:…}` find them.
    pub secret_name: String,
}

/// `workers.kubernetes.resources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkerResources {
    /// CPU quantity, e.g. `"2"` or `500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory quantity, e.g. `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}
