//! One Kubernetes manifest as relocate carries it between clusters, and its identity.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::KubeError;

/// An exported (and possibly transformed) manifest with its identity pulled out, so callers
/// never dig in JSON to name it. `object` is the full manifest as it will be applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `Deployment`, `ConfigMap`, or a CRD's kind.
    pub kind: String,
    /// `apps/v1`, `v1`, `example.com/v1alpha1`.
    pub api_version: String,
    /// Namespace the manifest lives in.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The manifest itself.
    pub object: Value,
}

/// The identity of a resource in a cluster, as evidence and errors name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceId {
    /// API group and version.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

impl Resource {
    /// Build a resource from a manifest, reading its identity from the manifest; `namespace`
    /// fills in when the manifest has none (list items always have one).
    pub fn from_object(object: Value, namespace: &str) -> Result<Self, KubeError> {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        let missing = |what: &str| KubeError::Malformed {
            resource: text("/metadata/name").unwrap_or("<unnamed>").to_owned(),
            message: format!("no {what}"),
        };
        let kind = text("/kind").ok_or_else(|| missing("kind"))?.to_owned();
        let api_version = text("/apiVersion")
            .ok_or_else(|| missing("apiVersion"))?
            .to_owned();
        let name = text("/metadata/name")
            .ok_or_else(|| missing("metadata.name"))?
            .to_owned();
        let namespace = text("/metadata/namespace").unwrap_or(namespace).to_owned();
        Ok(Resource {
            kind,
            api_version,
            namespace,
            name,
            object,
        })
    }

    /// This resource's identity.
    pub fn id(&self) -> ResourceId {
        ResourceId {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}
