//! A claim as a mover needs to see it: bound or not, how large, which class.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, ListParams};

use super::super::KubeError;
use super::super::resource::ResourceId;

/// Where a claim stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimStatus {
    /// `Pending`, `Bound` or `Lost`.
    pub phase: String,
    /// Bytes of the bound volume (`status.capacity.storage`), else the request.
    pub capacity: Option<u64>,
    /// Its storage class.
    pub storage_class: Option<String>,
    /// The node a `WaitForFirstConsumer` claim was provisioned for (the scheduler's
    /// `volume.kubernetes.io/selected-node` annotation), once its first pod was placed.
    pub selected_node: Option<String>,
}

/// Why a target claim cannot take a volume's data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimRefused {
    /// The claim is still `Pending` after its restore pod was scheduled: no volume will
    /// bind (no provisioner for the class, no capacity in the zone).
    #[error(
        "claim {namespace}/{claim} is still Pending after its restore pod was scheduled (storage class {class}): check `kubectl describe pvc -n {namespace} {claim}` and the class mapping in `transform.storageClasses`"
    )]
    Pending {
        /// Namespace.
        namespace: String,
        /// Claim.
        claim: String,
        /// Its storage class, or `(default)`.
        class: String,
    },
    /// The claim is smaller than the data staged for it.
    #[error(
        "claim {namespace}/{claim} holds {capacity} bytes, the staged volume has {needed}: request more storage at the target"
    )]
    TooSmall {
        /// Namespace.
        namespace: String,
        /// Claim.
        claim: String,
        /// Its capacity in bytes.
        capacity: u64,
        /// Bytes staged.
        needed: u64,
    },
}

impl ClaimStatus {
    /// Whether this claim, once its restore pod is scheduled, can take `needed` bytes.
    pub fn accepts(&self, namespace: &str, claim: &str, needed: u64) -> Result<(), ClaimRefused> {
        if self.phase == "Pending" {
            return Err(ClaimRefused::Pending {
                namespace: namespace.into(),
                claim: claim.into(),
                class: self
                    .storage_class
                    .clone()
                    .unwrap_or_else(|| "(default)".into()),
            });
        }
        match self.capacity {
            Some(capacity) if capacity < needed => Err(ClaimRefused::TooSmall {
                namespace: namespace.into(),
                claim: claim.into(),
                capacity,
                needed,
            }),
            _ => Ok(()),
        }
    }
}

/// Read claim `namespace/name`.
pub async fn claim_status(
    client: Client,
    namespace: &str,
    name: &str,
) -> Result<ClaimStatus, KubeError> {
    let id = ResourceId {
        api_version: "v1".into(),
        kind: "PersistentVolumeClaim".into(),
        namespace: namespace.into(),
        name: name.into(),
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client, namespace);
    let claim = api
        .get(name)
        .await
        .map_err(|e| KubeError::from_api(&id, e))?;
    let selected_node = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("volume.kubernetes.io/selected-node"))
        .cloned();
    let status = claim.status.unwrap_or_default();
    let spec = claim.spec.unwrap_or_default();
    let bound = status
        .capacity
        .as_ref()
        .and_then(|c| c.get("storage"))
        .and_then(|q| parse_quantity(&q.0));
    let requested = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| parse_quantity(&q.0));
    Ok(ClaimStatus {
        phase: status.phase.unwrap_or_else(|| "Pending".into()),
        capacity: bound.or(requested),
        storage_class: spec.storage_class_name,
        selected_node,
    })
}

/// The annotations marking a cluster's default StorageClass: the GA one and the beta
/// one, which the `DefaultStorageClass` admission plugin still honours (older clusters
/// and some installers set only it).
const DEFAULT_CLASS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// Whether `class` is marked as its cluster's default.
fn is_default_class(class: &StorageClass) -> bool {
    class.metadata.annotations.as_ref().is_some_and(|a| {
        DEFAULT_CLASS
            .iter()
            .any(|key| a.get(*key).is_some_and(|v| v == "true"))
    })
}

/// The cluster's default StorageClass, `None` when it has none: a claim that names no
/// class would then stay `Pending` for ever.
pub async fn default_storage_class(client: Client) -> Result<Option<String>, KubeError> {
    let id = ResourceId {
        api_version: "storage.k8s.io/v1".into(),
        kind: "StorageClass".into(),
        namespace: String::new(),
        name: "<all>".into(),
    };
    let classes = Api::<StorageClass>::all(client)
        .list(&ListParams::default())
        .await
        .map_err(|e| KubeError::from_api(&id, e))?;
    Ok(classes
        .items
        .into_iter()
        .find(is_default_class)
        .and_then(|c| c.metadata.name))
}

/// Bytes of a storage quantity (`10Gi`, `500M`, `1e9`, `1073741824`); `None` when it
/// does not parse.
pub fn parse_quantity(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let factor: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        s if s.starts_with('e') || s.starts_with('E') => {
            return format!("{number}{s}").parse::<f64>().ok().map(|v| v as u64);
        }
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    (value >= 0.0).then_some((value * factor) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(annotation: &str, value: &str) -> StorageClass {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "standard", "annotations": {annotation: value}},
            "provisioner": "rancher.io/local-path"
        }))
        .expect("class")
    }

    #[test]
    fn a_class_marked_default_by_the_beta_annotation_is_the_default() {
        assert!(is_default_class(&class(
            "storageclass.beta.kubernetes.io/is-default-class",
            "true"
        )));
        assert!(is_default_class(&class(
            "storageclass.kubernetes.io/is-default-class",
            "true"
        )));
        assert!(!is_default_class(&class(
            "storageclass.kubernetes.io/is-default-class",
            "false"
        )));
    }
}
