//! Which API endpoint serves which kind.
//!
//! Built-in kinds come from a static table (their plurals are irregular: `ingresses`,
//! `horizontalpodautoscalers`, `endpoints`), so the common path needs no discovery call. CRD
//! instances, written `group/version/Kind` in the plan, are resolved against the cluster's
//! discovery API (`kube::discovery::pinned_kind`), which also tells us their real plural and
//! whether they are namespaced.

use kube::Client;
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{Scope, pinned_kind};

use super::KubeError;

/// A built-in kind and where the API serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    /// PascalCase kind.
    pub kind: &'static str,
    /// API group, empty for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// URL plural.
    pub plural: &'static str,
}

impl KindSpec {
    /// The `ApiResource` kube's dynamic API needs.
    pub fn api_resource(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, self.version, self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }
}

const fn spec(
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
) -> KindSpec {
    KindSpec {
        kind,
        group,
        version,
        plural,
    }
}

/// The kinds exported when the plan lists none, in the order they are applied: identities
/// and configuration before the workloads that mount them, autoscalers and ingress last.
pub const DEFAULT_KINDS: &[KindSpec] = &[
    spec("ServiceAccount", "", "v1", "serviceaccounts"),
    spec("Secret", "", "v1", "secrets"),
    spec("ConfigMap", "", "v1", "configmaps"),
    spec("Role", "rbac.authorization.k8s.io", "v1", "roles"),
    spec(
        "RoleBinding",
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
    ),
    spec("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims"),
    spec("Service", "", "v1", "services"),
    spec("Deployment", "apps", "v1", "deployments"),
    spec("StatefulSet", "apps", "v1", "statefulsets"),
    spec("DaemonSet", "apps", "v1", "daemonsets"),
    spec("CronJob", "batch", "v1", "cronjobs"),
    spec("Job", "batch", "v1", "jobs"),
    spec(
        "HorizontalPodAutoscaler",
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
    ),
    spec("Ingress", "networking.k8s.io", "v1", "ingresses"),
];

/// Built-ins a plan may name although they are not exported by default.
const OTHER_BUILTINS: &[KindSpec] = &[
    spec(
        "NetworkPolicy",
        "networking.k8s.io",
        "v1",
        "networkpolicies",
    ),
    spec(
        "PodDisruptionBudget",
        "policy",
        "v1",
        "poddisruptionbudgets",
    ),
    spec("Endpoints", "", "v1", "endpoints"),
    spec("ReplicaSet", "apps", "v1", "replicasets"),
    spec("Pod", "", "v1", "pods"),
    spec("LimitRange", "", "v1", "limitranges"),
    spec("ResourceQuota", "", "v1", "resourcequotas"),
];

fn builtins() -> impl Iterator<Item = &'static KindSpec> {
    DEFAULT_KINDS.iter().chain(OTHER_BUILTINS)
}

/// Split `api_version` into (group, version); the core group's `v1` has no group.
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// Resolve a kind as the plan writes it: `Deployment` (a built-in), or `group/version/Kind`
/// (`v1/Kind` for the core group). Only namespaced kinds can be moved with a workload.
pub async fn resolve_kind(client: &Client, kind: &str) -> Result<ApiResource, KubeError> {
    let parts: Vec<&str> = kind.split('/').collect();
    let (group, version, name) = match parts.as_slice() {
        [name] => {
            return builtins()
                .find(|k| k.kind == *name)
                .map(KindSpec::api_resource)
                .ok_or_else(|| KubeError::UnknownKind {
                    kind: kind.to_owned(),
                    message: "not a built-in kind; write a custom resource as group/version/Kind"
                        .to_owned(),
                });
        }
        [version, name] => ("", *version, *name),
        [group, version, name] => (*group, *version, *name),
        _ => {
            return Err(KubeError::UnknownKind {
                kind: kind.to_owned(),
                message: "expected Kind or group/version/Kind".to_owned(),
            });
        }
    };
    resolve_gvk(client, group, version, name).await
}

/// Resolve the endpoint of a manifest's `apiVersion` + `kind`.
pub(crate) async fn resolve_manifest_kind(
    client: &Client,
    api_version: &str,
    kind: &str,
) -> Result<ApiResource, KubeError> {
    let (group, version) = split_api_version(api_version);
    resolve_gvk(client, group, version, kind).await
}

async fn resolve_gvk(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<ApiResource, KubeError> {
    if let Some(builtin) =
        builtins().find(|k| k.group == group && k.version == version && k.kind == kind)
    {
        return Ok(builtin.api_resource());
    }
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let written = format!("{}/{kind}", gvk.api_version());
    let (resource, caps) = pinned_kind(client, &gvk)
        .await
        .map_err(|e| KubeError::UnknownKind {
            kind: written.clone(),
            message: format!("the cluster's discovery API does not serve it ({e})"),
        })?;
    if caps.scope != Scope::Namespaced {
        return Err(KubeError::UnknownKind {
            kind: written,
            message: "cluster-scoped kinds cannot be moved with a namespaced workload".to_owned(),
        });
    }
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irregular_plurals_come_from_the_table() {
        let plural = |kind: &str| {
            builtins()
                .find(|k| k.kind == kind)
                .map(|k| k.api_resource().plural)
        };
        assert_eq!(plural("Ingress").as_deref(), Some("ingresses"));
        assert_eq!(
            plural("HorizontalPodAutoscaler").as_deref(),
            Some("horizontalpodautoscalers")
        );
        assert_eq!(plural("Endpoints").as_deref(), Some("endpoints"));
        assert_eq!(plural("NetworkPolicy").as_deref(), Some("networkpolicies"));
    }

    #[test]
    fn api_version_of_core_and_grouped_kinds() {
        let find = |kind: &str| {
            builtins()
                .find(|k| k.kind == kind)
                .map(|k| k.api_resource())
        };
        assert_eq!(
            find("ConfigMap").map(|r| r.api_version).as_deref(),
            Some("v1")
        );
        assert_eq!(
            find("RoleBinding").map(|r| r.api_version).as_deref(),
            Some("rbac.authorization.k8s.io/v1")
        );
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }
}
