//! Server-side apply of transformed manifests to the target cluster.
//!
//! Apply (not create/replace) makes `deploy` idempotent: running it twice converges to the
//! same objects. The field manager is `relocate` and conflicts are forced, because the
//! plan, once approved, is the authority over the fields it sets. Nothing is created but
//! the resources given; each result carries the digest of exactly the manifest sent, for
//! the stage's evidence.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde::{Deserialize, Serialize};

use super::kinds::resolve_manifest_kind;
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

/// Server-side apply each resource in order; stop at the first refusal.
pub async fn apply(client: &Client, resources: &[Resource]) -> Result<Vec<Applied>, KubeError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = Vec::with_capacity(resources.len());
    for resource in resources {
        let id = resource.id();
        let kind = resolve_manifest_kind(client, &resource.api_version, &resource.kind).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &resource.namespace, &kind);
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
