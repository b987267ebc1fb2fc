//! Seeding from a CSI snapshot (`volumes.snapshotClass`): while the source runs, a
//! claim's seed is read from a point-in-time copy instead of the live volume. A
//! `VolumeSnapshot` of the claim is taken, awaited until `readyToUse`, and a claim is
//! provisioned from it (`dataSource`), which the mover mounts read-only; both are
//! deleted once the pack is done. The clone needs no node pinning: nothing else
//! mounts it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::super::KubeError;
use super::super::resource::ResourceId;

/// How often a snapshot's status is read.
const POLL: Duration = Duration::from_millis(500);

/// A claim's snapshot and the claim provisioned from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotClone {
    /// The `VolumeSnapshot`'s name.
    pub snapshot: String,
    /// The claim made from it, which the mover mounts.
    pub claim: String,
}

fn snapshots(client: Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshot"),
        "volumesnapshots",
    );
    Api::namespaced_with(client, namespace, &resource)
}

fn id(kind: &str, namespace: &str, name: &str) -> ResourceId {
    ResourceId {
        api_version: if kind == "VolumeSnapshot" {
            "snapshot.storage.k8s.io/v1".into()
        } else {
            "v1".into()
        },
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// Snapshot `claim` with `class` as `name`, wait until it can be restored, and
/// provision claim `name` from it (same class and access modes as the source, at least
/// the snapshot's size). An object of that name left by an earlier run is reused.
pub async fn snapshot_claim(
    client: Client,
    namespace: &str,
    claim: &str,
    class: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<SnapshotClone, KubeError> {
    let snap_id = id("VolumeSnapshot", namespace, name);
    let api = snapshots(client.clone(), namespace);
    let snapshot: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"volumeSnapshotClassName": class, "source": {"persistentVolumeClaimName": claim}},
    }))
    .map_err(|e| KubeError::Malformed {
        resource: snap_id.to_string(),
        message: e.to_string(),
    })?;
    match api.create(&PostParams::default(), &snapshot).await {
        Ok(_) => tracing::info!(snapshot = %snap_id, claim, "took a VolumeSnapshot for the seed"),
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => return Err(KubeError::from_api(&snap_id, e)),
    }
    let deadline = Instant::now() + timeout;
    let size = loop {
        let current = api
            .get(name)
            .await
            .map_err(|e| KubeError::from_api(&snap_id, e))?;
        let status = current.data.get("status").cloned().unwrap_or(Value::Null);
        if let Some(message) = status.pointer("/error/message").and_then(Value::as_str) {
            return Err(KubeError::JobFailed {
                resource: snap_id.to_string(),
                message: format!("the snapshot of claim {claim} failed: {message}"),
            });
        }
        if status["readyToUse"] == true {
            break status["restoreSize"].as_str().map(str::to_owned);
        }
        if Instant::now() >= deadline {
            return Err(KubeError::Timeout {
                waited_secs: timeout.as_secs(),
                unready: vec![format!(
                    "{snap_id} of claim {claim} (class {class}) not readyToUse: {status}"
                )],
            });
        }
        tokio::time::sleep(POLL).await;
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, namespace);
    let source = claims
        .get(claim)
        .await
        .map_err(|e| KubeError::from_api(&id("PersistentVolumeClaim", namespace, claim), e))?;
    let spec = source.spec.unwrap_or_default();
    let requested = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone());
    let storage = match (size.as_deref(), requested.as_deref()) {
        (Some(s), Some(r)) => {
            let bigger = super::parse_quantity(s) >= super::parse_quantity(r);
            if bigger { s.to_owned() } else { r.to_owned() }
        }
        (Some(s), None) => s.to_owned(),
        (None, Some(r)) => r.to_owned(),
        (None, None) => "1Gi".to_owned(),
    };
    let clone_id = id("PersistentVolumeClaim", namespace, name);
    let clone: PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "storageClassName": spec.storage_class_name,
            "resources": {"requests": {"storage": storage}},
            "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": name},
        },
    }))
    .map_err(|e| KubeError::Malformed {
        resource: clone_id.to_string(),
        message: e.to_string(),
    })?;
    match claims.create(&PostParams::default(), &clone).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => return Err(KubeError::from_api(&clone_id, e)),
    }
    Ok(SnapshotClone {
        snapshot: name.to_owned(),
        claim: name.to_owned(),
    })
}

/// Delete a seed's clone claim and snapshot (what is already gone is fine).
pub async fn delete_snapshot_clone(
    client: Client,
    namespace: &str,
    clone: &SnapshotClone,
) -> Result<(), KubeError> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    match claims.delete(&clone.claim, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => {
            return Err(KubeError::from_api(
                &id("PersistentVolumeClaim", namespace, &clone.claim),
                e,
            ));
        }
    }
    match snapshots(client, namespace)
        .delete(&clone.snapshot, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(KubeError::from_api(
            &id("VolumeSnapshot", namespace, &clone.snapshot),
            e,
        )),
    }
}
