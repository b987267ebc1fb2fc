//! The Kubernetes connector's one error type, named by what went wrong for the operator.
//!
//! Every variant names the resource it concerns as `Kind namespace/name`; none carries
//! credentials (kubeconfig contents and tokens never reach a message) or Secret values.

use std::path::PathBuf;

/// What can go wrong talking to a cluster or rewriting its manifests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeError {
    /// The kubeconfig could not be read, the context is unknown, or the client could not be built.
    #[error("cannot connect to cluster ({what}): {message}")]
    Connect {
        /// Which configuration was tried: a kubeconfig path and context, in-cluster, or inferred.
        what: String,
        /// The loader's explanation (never the credentials themselves).
        message: String,
    },
    /// The kubeconfig file named in the plan could not be read.
    #[error("cannot read kubeconfig {path}: {message}")]
    Kubeconfig {
        /// Path that was read.
        path: PathBuf,
        /// Why it could not be used.
        message: String,
    },
    /// A kind in the plan is neither a built-in nor `group/version/Kind`, or discovery does not know it.
    #[error("unknown kind `{kind}`: {message}")]
    UnknownKind {
        /// The kind as written.
        kind: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The resource does not exist in the cluster.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        /// Kind of the missing resource.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The API server refused a write because another field manager owns the fields (409).
    #[error("conflict applying {resource}: {message}")]
    Conflict {
        /// `Kind namespace/name`.
        resource: String,
        /// The API server's message.
        message: String,
    },
    /// The API server rejected the manifest as invalid (422).
    #[error("{resource} is invalid: {message}")]
    Invalid {
        /// `Kind namespace/name`.
        resource: String,
        /// The API server's message, naming the offending fields.
        message: String,
    },
    /// The namespace itself is missing at the cluster (the API server's own message is kept).
    #[error(
        "{resource}: {message} (create it first, or set `createNamespace: true` on the workload)"
    )]
    NamespaceNotFound {
        /// `Kind namespace/name` that was being written or read.
        resource: String,
        /// The missing namespace.
        namespace: String,
        /// The API server's message, e.g. `namespaces "analysis-zrh" not found`.
        message: String,
    },
    /// An object of the same name exists at the target and relocate did not create it.
    #[error(
        "{resource} already exists at the target and was not created by relocate (managed by {managers}); \
         refusing to take it over: remove it, rename it with a transform, or set `adopt: true` on the workload"
    )]
    NotOurs {
        /// `Kind namespace/name`.
        resource: String,
        /// The field managers that wrote it, e.g. `helm (Update)`.
        managers: String,
    },
    /// The server-side dry run found problems; nothing was applied.
    #[error("dry run at the target found {} problem(s): {}", problems.len(), problems.join("; "))]
    DryRunFailed {
        /// Each problem, naming its resource.
        problems: Vec<String>,
    },
    /// Resources did not become ready (or pods did not go away) within the timeout.
    #[error("timed out after {waited_secs}s waiting for: {}", unready.join("; "))]
    Timeout {
        /// Seconds waited.
        waited_secs: u64,
        /// Each unready resource with its status and conditions.
        unready: Vec<String>,
    },
    /// A Job reached its Failed condition.
    #[error("{resource} failed: {message}")]
    JobFailed {
        /// `Job namespace/name`.
        resource: String,
        /// The Failed condition's reason and message.
        message: String,
    },
    /// A Deployment exceeded its progress deadline.
    #[error("{resource} rollout failed: {message}")]
    RolloutFailed {
        /// `Deployment namespace/name`.
        resource: String,
        /// The Progressing condition's reason and message.
        message: String,
    },
    /// Any other API failure for a resource.
    #[error("Kubernetes API call for {resource} failed")]
    Api {
        /// `Kind namespace/name`, or the listing that failed.
        resource: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// `freeze` found writers it cannot stop (DaemonSets, workloads an operator or a GitOps
    /// tool would put back, bare Pods); nothing was scaled.
    #[error("freeze refused, nothing was scaled: {} cannot be stopped by relocate in {namespace} ({}); stop them yourself, list them in `leaveRunning`, or narrow the selector", writers.len(), writers.join("; "))]
    Unstoppable {
        /// Namespace at the source.
        namespace: String,
        /// Each writer as `Kind namespace/name: why`.
        writers: Vec<String>,
    },
    /// `freeze` found no workload to stop: a freeze that stops nothing protects nothing.
    #[error(
        "freeze found nothing to stop in {namespace} (selector `{selector}`): no Deployment, StatefulSet, ReplicaSet, CronJob or running Job is selected"
    )]
    NothingToFreeze {
        /// Namespace at the source.
        namespace: String,
        /// The label selector used, empty for the whole namespace.
        selector: String,
    },
    /// A JSON patch rule from the plan could not be applied.
    #[error("patch rule #{rule} for {resource} failed: {message}")]
    Patch {
        /// Index of the rule in `transform.patches`.
        rule: usize,
        /// `Kind namespace/name` it was applied to.
        resource: String,
        /// What the patch engine reported.
        message: String,
    },
    /// The transform in the plan does not fit the exported resources.
    #[error("transform: {message}")]
    Transform {
        /// What does not fit, and how to fix it.
        message: String,
    },
    /// A worker Job of the same name exists but belongs to another run (its labels differ):
    /// relocate neither re-attaches to it nor creates a second one.
    #[error(
        "{resource} already exists and belongs to another run ({differences}); refusing to re-attach: \
         delete it (kubectl delete job -n {namespace} {name}) if no run needs it"
    )]
    JobTaken {
        /// `Job namespace/name`.
        resource: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Each differing label as `key: expected … found …`.
        differences: String,
    },
    /// The worker Job of this run is being deleted: re-attaching to it would follow a Job
    /// about to vanish, and a new one cannot be made until it is gone.
    #[error(
        "{resource} is being deleted; rerun once it is gone (kubectl wait --for=delete job/{name} -n {namespace})"
    )]
    JobDeleting {
        /// `Job namespace/name`.
        resource: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Something the workers need is missing at the cluster (checked before any Job is made).
    #[error("{kind} {name} not found{}: {hint}", namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default())]
    MissingPrerequisite {
        /// `namespace`, `secret` or `service account`.
        kind: String,
        /// Its name.
        name: String,
        /// Where it was looked for (none for a namespace itself).
        namespace: Option<String>,
        /// How to create it.
        hint: String,
    },
    /// A Job's status carries an index list that does not parse.
    #[error("status of {resource} is unreadable")]
    JobStatus {
        /// `Job namespace/name`.
        resource: String,
        /// The malformed list.
        #[source]
        source: super::workers::IndexListError,
    },
    /// Following a pod's log broke off.
    #[error("reading the log of {resource} failed")]
    LogStream {
        /// `Pod namespace/name`.
        resource: String,
        /// What the connection reported.
        #[source]
        source: std::io::Error,
    },
    /// A manifest lacks what every Kubernetes object has (kind, apiVersion, metadata.name).
    #[error("malformed manifest {resource}: {message}")]
    Malformed {
        /// Whatever identifies the manifest.
        resource: String,
        /// What is missing.
        message: String,
    },
}

impl KubeError {
    /// Map a client error for `resource` to the variant that says what it means.
    pub(crate) fn from_api(resource: &super::ResourceId, err: kube::Error) -> Self {
        let code = match &err {
            kube::Error::Api(status) => Some((status.code, status.message.clone())),
            _ => None,
        };
        match code {
            Some((404, message)) if namespace_missing(&err, &resource.namespace) => {
                KubeError::NamespaceNotFound {
                    resource: resource.to_string(),
                    namespace: resource.namespace.clone(),
                    message,
                }
            }
            Some((404, _)) => KubeError::NotFound {
                kind: resource.kind.clone(),
                namespace: resource.namespace.clone(),
                name: resource.name.clone(),
            },
            Some((409, message)) => KubeError::Conflict {
                resource: resource.to_string(),
                message,
            },
            Some((422, message)) => KubeError::Invalid {
                resource: resource.to_string(),
                message,
            },
            _ => KubeError::Api {
                resource: resource.to_string(),
                source: err,
            },
        }
    }

    /// Whether the cluster could not answer (5xx, 429, a dropped or refused connection, a
    /// timeout) rather than refusing: worth asking again while a wait has time left.
    pub fn is_transient(&self) -> bool {
        match self {
            KubeError::Api { source, .. } => transient(source),
            _ => false,
        }
    }

    /// What went wrong for a transient error, in one line (no credentials in it).
    pub(crate) fn transient_cause(&self) -> String {
        match self {
            KubeError::Api {
                source: kube::Error::Api(status),
                ..
            } => format!("{} {}", status.code, status.message),
            KubeError::Api { source, .. } => {
                let mut text = source.to_string();
                let mut cause = std::error::Error::source(source);
                while let Some(c) = cause {
                    text.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                text
            }
            other => other.to_string(),
        }
    }

    /// Whether this error means the resource is absent (rollback treats that as done).
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::NotFound { .. })
    }
}

/// 5xx and 429 answers and failures to reach or hear from the server; not a refusal.
fn transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// A 404 about the namespace rather than the object: `namespaces "x" not found`.
fn namespace_missing(err: &kube::Error, namespace: &str) -> bool {
    let kube::Error::Api(status) = err else {
        return false;
    };
    let by_details = status
        .details
        .as_ref()
        .is_some_and(|d| d.kind == "namespaces" && d.name == namespace);
    by_details || status.message == format!("namespaces \"{namespace}\" not found")
}
