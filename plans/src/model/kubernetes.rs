//! Kubernetes clusters and workloads.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Kubernetes cluster reached through a kubeconfig context (or in-cluster config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    /// Region the cluster is in (a key of `regions`).
    pub region: String,
    /// kubeconfig context; the current context when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// kubeconfig path; `$KUBECONFIG` or `~/.kube/config` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Use the pod's service account (when relocate runs inside the cluster).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_cluster: bool,
}

/// Kubernetes resources moved from one cluster to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesWorkload {
    /// Source cluster (a key of `clusters`).
    pub from: String,
    /// Target cluster (a key of `clusters`).
    pub to: String,
    /// Namespace at the source.
    pub namespace: String,
    /// Label selector: resources carrying all these labels are exported.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub selector: IndexMap<String, String>,
    /// Explicit resources to export in addition to the selector's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceRef>,
    /// Kinds to export (default: the built-in workload, config and network kinds).
    /// CRD instances as `group/version/Kind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// How resources change on the way.
    #[serde(default)]
    pub transform: Transform,
    /// How long `deploy` waits for readiness, e.g. `10m` (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout: Option<String>,
    /// Writers `freeze` cannot stop but may leave running at the source, as `Kind/name`
    /// (e.g. `DaemonSet/log-shipper`); any other writer it cannot stop makes it refuse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leave_running: Vec<String>,
    /// Argo CD or Flux no longer reconciles these workloads (auto-sync off, `flux suspend`),
    /// so `freeze` may scale them although they carry the GitOps owner's labels.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gitops_paused: bool,
    /// Take over objects of the same name at the target that relocate did not create
    /// (default: refuse them, naming who manages them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// Create the target namespace when it is missing (default: report it missing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_namespace: bool,
    /// Move the data of the selected PersistentVolumeClaims through a staging store
    /// (default: claims are recreated empty at the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Volumes>,
}

impl KubernetesWorkload {
    /// The namespace at the target: `transform.namespace`, else the source's.
    pub fn target_namespace(&self) -> &str {
        self.transform
            .namespace
            .as_deref()
            .unwrap_or(&self.namespace)
    }
}

/// `volumes:` of a Kubernetes workload: how its claims' data moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volumes {
    /// Move the files of every selected PVC (and claim templates).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copy: bool,
    /// The object store (a key of `stores`) the files pass through, in an allowed
    /// jurisdiction and not in the source region.
    pub staging: String,
    /// Seed from a CSI VolumeSnapshot of this class while the source runs (default:
    /// read-only from the live volume, not point-in-time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_class: Option<String>,
    /// The relocate image the mover pods run (default: `relocate:<version of this
    /// binary>`, the tag the README's `docker build` gives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The Secret, in the source and the target namespace, whose keys become the
    /// movers' environment (the staging store's `${env:…}` credentials). Without it the
    /// movers use what the pods' identity gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<super::workers::WorkerCredentials>,
    /// CPU and memory of each mover pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<super::workers::WorkerResources>,
    /// How long one claim's mover may run before the step fails naming it (default
    /// `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Run the movers as this user instead of root (with no added capabilities), for
    /// volumes whose files one user owns (a database's) and namespaces whose
    /// PodSecurity level is `restricted`. A file that user cannot read fails the pack
    /// naming it; an owner it cannot restore fails the deploy's re-read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// The movers' group with `runAsUser` (default: the same number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
}

/// One named resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRef {
    /// `Kind` for built-ins, `group/version/Kind` for others.
    pub kind: String,
    /// Resource name.
    pub name: String,
}

/// Transformations applied to exported resources before they reach the target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transform {
    /// Namespace at the target (default: same as the source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Image registry prefix map: `{ "registry.msk.example/": "registry.zrh.example/" }`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub images: IndexMap<String, String>,
    /// Storage class map for PVCs and StatefulSet volume claim templates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub storage_classes: IndexMap<String, String>,
    /// Labels added to every resource.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Annotations added to every resource.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
    /// Replica counts at the target by workload resource name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub replicas: IndexMap<String, i32>,
    /// RFC 6902 JSON patches for everything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<JsonPatchRule>,
}

/// A JSON patch applied to matching resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonPatchRule {
    /// Kind the patch applies to.
    pub kind: String,
    /// Resource name; every resource of the kind when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// RFC 6902 operations.
    pub patch: Vec<serde_json::Value>,
}
