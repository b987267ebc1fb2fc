//! Server-side apply of transformed manifests to the target cluster.
//!
//! Apply (not create/replace) makes `deploy` idempotent: running it twice converges to the
//! same objects. The field manager is `relocate` and conflicts are forced, because the
//! plan, once approved, is the authority over the fields it sets — but only over objects
//! relocate made: an existing object of the same name that relocate never wrote is refused
//! unless the workload says `adopt: true` ([`ownership`](super::ownership)). A missing
//! target namespace is reported in the API server's words, or created first when the
//! workload says `createNamespace: true`. Each result carries the digest of exactly the
//! manifest sent, for the stage's evidence.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::kinds::resolve_manifest_kind;
use super::ownership::foreign_managers;
use super::{KubeError, Resource, ResourceId, manifest_digest};

/// The field manager relocate applies as.
pub const FIELD_MANAGER: &str = "relocate";

/// One manifest applied to the target, as evidence records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// What was applied.
    pub resource: ResourceId,
    /// `sha256:<hex>` of the canonical manifest that was sent (Secret data included).
    pub digest: String,
}

/// What the workload allows an apply to do beyond writing its own objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Take over existing objects relocate did not create (`adopt: true`).
    pub adopt: bool,
    /// Create a missing target namespace (`createNamespace: true`).
    pub create_namespace: bool,
}

impl From<&plans::KubernetesWorkload> for ApplyOptions {
    fn from(w: &plans::KubernetesWorkload) -> Self {
        ApplyOptions {
            adopt: w.adopt,
            create_namespace: w.create_namespace,
        }
    }
}

/// Server-side apply each resource in order; stop at the first refusal.
pub async fn apply(
    client: &Client,
    resources: &[Resource],
    options: ApplyOptions,
) -> Result<Vec<Applied>, KubeError> {
    if options.create_namespace {
        for namespace in namespaces(resources) {
            ensure_namespace(client, namespace, false).await?;
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = Vec::with_capacity(resources.len());
    for resource in resources {
        let id = resource.id();
        let kind = resolve_manifest_kind(client, &resource.api_version, &resource.kind).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &resource.namespace, &kind);
        if !options.adopt {
            refuse_foreign(&api, &id).await?;
        }
        let digest = manifest_digest(&resource.object);
        api.patch(&resource.name, &params, &Patch::Apply(&resource.object))
            .await
            .map_err(|e| KubeError::from_api(&id, e))?;
        tracing::info!(resource = %id, %digest, "applied");
        applied.push(Applied {
            resource: id,
            digest,
        });
    }
    Ok(applied)
}

/// The distinct namespaces of `resources`, in order of first appearance.
pub(crate) fn namespaces(resources: &[Resource]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in resources {
        if !out.contains(&r.namespace.as_str()) {
            out.push(&r.namespace);
        }
    }
    out
}

/// Apply a bare Namespace (a no-op when it exists); `dry_run` only asks whether it could.
pub(crate) async fn ensure_namespace(
    client: &Client,
    namespace: &str,
    dry_run: bool,
) -> Result<(), KubeError> {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
    );
    let manifest =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if dry_run {
        params = params.dry_run();
    }
    let id = ResourceId {
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        namespace: String::new(),
        name: namespace.to_owned(),
    };
    api.patch(namespace, &params, &Patch::Apply(&manifest))
        .await
        .map_err(|e| KubeError::from_api(&id, e))?;
    if !dry_run {
        tracing::info!(%namespace, "namespace applied");
    }
    Ok(())
}

/// Refuse when an object named like `id` exists and relocate did not write it.
pub(crate) async fn refuse_foreign(
    api: &Api<DynamicObject>,
    id: &ResourceId,
) -> Result<(), KubeError> {
    let existing = api
        .get_opt(&id.name)
        .await
        .map_err(|e| KubeError::from_api(id, e))?;
    let Some(existing) = existing else {
        return Ok(());
    };
    let live: Value = serde_json::to_value(existing).map_err(|e| KubeError::Malformed {
        resource: id.to_string(),
        message: e.to_string(),
    })?;
    match foreign_managers(&live) {
        None => Ok(()),
        Some(managers) => Err(KubeError::NotOurs {
            resource: id.to_string(),
            managers,
        }),
    }
}
