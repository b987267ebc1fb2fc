//! Stopping and restarting workloads around a cutover: freeze the source, restore it on
//! rollback, stop the target.
//!
//! Freezing is split so intent is journaled before effect: [`plan_freeze`] only reads the
//! source and returns a [`FrozenState`] naming every writer and how it was before (or
//! refuses, naming every writer it cannot stop, before anything changes); the orchestrator
//! persists it, then [`apply_freeze`] stops each writer: KEDA ScaledObjects paused,
//! CronJobs and running Jobs suspended, Deployments, ReplicaSets and StatefulSets scaled to
//! zero. [`restore`] puts back exactly what was recorded, source first, best effort per
//! entry; [`stop_target`] stops what a deploy started at the target. Every function here is
//! idempotent.
//!
//! A StatefulSet whose `persistentVolumeClaimRetentionPolicy.whenScaled` is `Delete` loses
//! the claims of every pod above its replica count, so at zero all of them. It is switched
//! to `Retain` before any scale-down here (the original recorded, and put back only after
//! scaling up again), so no scale-down by relocate ever deletes a volume.

mod pods;
mod target;
mod writers;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::apply::FIELD_MANAGER;
use super::kinds::resolve_manifest_kind;
use super::{KubeError, ResourceId};

pub use pods::wait_scaled_down;
pub use target::stop_target;
pub use writers::{late_jobs, plan_freeze};

/// Kinds scaled through the scale subresource.
const SCALED: &[&str] = &["Deployment", "StatefulSet", "ReplicaSet"];
/// KEDA's annotation that pins a ScaledObject's target at a replica count.
pub(crate) const KEDA_PAUSED: &str = "autoscaling.keda.sh/paused-replicas";
const KEDA_API_VERSION: &str = "keda.sh/v1alpha1";

/// What the source looked like before the freeze; the orchestrator persists it before
/// [`apply_freeze`] runs, and rollback restores from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrozenState {
    /// One entry per stopped writer, in the order they are stopped.
    pub entries: Vec<FrozenEntry>,
}

/// One writer's pre-freeze state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrozenEntry {
    /// `apps/v1`, `batch/v1`, `keda.sh/v1alpha1`.
    pub api_version: String,
    /// Deployment, StatefulSet, ReplicaSet, CronJob, Job or ScaledObject.
    pub kind: String,
    /// Namespace at the source.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Replica count before the freeze (Deployments, StatefulSets, ReplicaSets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// `spec.suspend` before the freeze (CronJobs, Jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// Label selector of the workload's pods, to see them go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<String>,
    /// The workload's uid: only pods it owns are waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// A StatefulSet's `persistentVolumeClaimRetentionPolicy.whenScaled` when it was not
    /// `Retain`: set to `Retain` before scaling down, put back after scaling up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_scaled: Option<String>,
    /// A ScaledObject's `autoscaling.keda.sh/paused-replicas` annotation before the freeze
    /// (absent when it had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_replicas: Option<String>,
}

impl FrozenEntry {
    /// This entry's identity.
    pub fn id(&self) -> ResourceId {
        ResourceId {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    fn is_scaled(&self) -> bool {
        SCALED.contains(&self.kind.as_str())
    }
}

/// What a best-effort undo did: every entry is attempted even when one fails.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct UndoReport {
    /// What was done, one line per resource.
    pub done: Vec<String>,
    /// Resources that no longer exist, so there was nothing to undo.
    pub gone: Vec<ResourceId>,
    /// What failed; everything else was still attempted.
    pub failed: Vec<KubeError>,
}

impl UndoReport {
    fn record(&mut self, id: ResourceId, result: Result<Option<String>, KubeError>) {
        match result {
            Ok(Some(line)) => self.done.push(format!("{id}: {line}")),
            Ok(None) => {}
            Err(e) if e.is_not_found() => {
                tracing::info!(resource = %id, "gone; nothing to undo");
                self.gone.push(id);
            }
            Err(e) => {
                tracing::warn!(resource = %id, error = %e, "undo failed; continuing");
                self.failed.push(e);
            }
        }
    }
}

/// Stop every recorded writer, in the recorded order: autoscalers paused first, CronJobs
/// suspended before their Jobs, StatefulSet claims protected before any scale-down.
pub async fn apply_freeze(client: &Client, state: &FrozenState) -> Result<(), KubeError> {
    for entry in &state.entries {
        let id = entry.id();
        if entry.kind == "ScaledObject" {
            patch_annotation(client, &id, KEDA_PAUSED, Some("0")).await?;
        }
        if entry.suspended.is_some() {
            patch_suspend(client, &id, true).await?;
        }
        if entry.when_scaled.is_some() {
            patch_when_scaled(client, &id, "Retain").await?;
        }
        if entry.is_scaled() && entry.replicas.is_some() {
            patch_scale(client, &id, 0).await?;
        }
        tracing::info!(resource = %id, "frozen");
    }
    Ok(())
}

/// Put back the recorded state: KEDA released first (paused, it would hold its target at
/// zero against the scale-up), then the rest in reverse order, each StatefulSet scaled up
/// before its claim policy goes back. Best effort: an entry that is gone is skipped, one
/// that fails is reported, and the others are still restored.
pub async fn restore(client: &Client, state: &FrozenState) -> UndoReport {
    let mut report = UndoReport::default();
    let (autoscalers, rest): (Vec<&FrozenEntry>, Vec<&FrozenEntry>) =
        state.entries.iter().partition(|e| e.kind == "ScaledObject");
    for entry in autoscalers.into_iter().chain(rest.into_iter().rev()) {
        let result = restore_entry(client, entry).await;
        report.record(entry.id(), result);
    }
    report
}

async fn restore_entry(client: &Client, entry: &FrozenEntry) -> Result<Option<String>, KubeError> {
    let id = entry.id();
    let mut did = Vec::new();
    if let (true, Some(replicas)) = (entry.is_scaled(), entry.replicas) {
        patch_scale(client, &id, replicas).await?;
        did.push(format!("scaled back to {replicas}"));
    }
    if let Some(policy) = &entry.when_scaled {
        patch_when_scaled(client, &id, policy).await?;
        did.push(format!("claim retention whenScaled back to {policy}"));
    }
    if let Some(suspended) = entry.suspended {
        patch_suspend(client, &id, suspended).await?;
        did.push(format!("suspend back to {suspended}"));
    }
    if entry.kind == "ScaledObject" {
        patch_annotation(client, &id, KEDA_PAUSED, entry.paused_replicas.as_deref()).await?;
        did.push("autoscaling resumed".to_owned());
    }
    Ok((!did.is_empty()).then(|| did.join(", ")))
}

/// Where the API serves `id`'s kind; KEDA's ScaledObject without a discovery call.
pub(crate) async fn api_for(
    client: &Client,
    id: &ResourceId,
) -> Result<Api<DynamicObject>, KubeError> {
    let kind = if id.api_version == KEDA_API_VERSION && id.kind == "ScaledObject" {
        keda_scaled_objects()
    } else {
        resolve_manifest_kind(client, &id.api_version, &id.kind).await?
    };
    Ok(Api::namespaced_with(client.clone(), &id.namespace, &kind))
}

pub(crate) fn keda_scaled_objects() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    )
}

pub(crate) async fn get_live(client: &Client, id: &ResourceId) -> Result<Value, KubeError> {
    let object = api_for(client, id)
        .await?
        .get(&id.name)
        .await
        .map_err(|e| KubeError::from_api(id, e))?;
    serde_json::to_value(object).map_err(|e| KubeError::Malformed {
        resource: id.to_string(),
        message: e.to_string(),
    })
}

pub(crate) async fn patch_scale(
    client: &Client,
    id: &ResourceId,
    replicas: i32,
) -> Result<(), KubeError> {
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    api_for(client, id)
        .await?
        .patch_scale(&id.name, &PatchParams::apply(FIELD_MANAGER), &patch)
        .await
        .map_err(|e| KubeError::from_api(id, e))?;
    Ok(())
}

pub(crate) async fn patch_merge(
    client: &Client,
    id: &ResourceId,
    patch: Value,
) -> Result<(), KubeError> {
    api_for(client, id)
        .await?
        .patch(
            &id.name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(patch),
        )
        .await
        .map_err(|e| KubeError::from_api(id, e))?;
    Ok(())
}

pub(crate) async fn patch_suspend(
    client: &Client,
    id: &ResourceId,
    suspend: bool,
) -> Result<(), KubeError> {
    patch_merge(client, id, json!({"spec": {"suspend": suspend}})).await
}

pub(crate) async fn patch_when_scaled(
    client: &Client,
    id: &ResourceId,
    policy: &str,
) -> Result<(), KubeError> {
    let patch = json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": policy}}});
    patch_merge(client, id, patch).await
}

/// Set (or, with `None`, remove) one annotation.
pub(crate) async fn patch_annotation(
    client: &Client,
    id: &ResourceId,
    key: &str,
    value: Option<&str>,
) -> Result<(), KubeError> {
    patch_merge(
        client,
        id,
        json!({"metadata": {"annotations": {key: value}}}),
    )
    .await
}

pub(crate) async fn delete(client: &Client, id: &ResourceId) -> Result<(), KubeError> {
    api_for(client, id)
        .await?
        .delete(&id.name, &DeleteParams::background())
        .await
        .map_err(|e| KubeError::from_api(id, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_state_round_trips_through_json_and_reads_old_records() {
        let state = FrozenState {
            entries: vec![FrozenEntry {
                api_version: "apps/v1".into(),
                kind: "StatefulSet".into(),
                namespace: "analysis".into(),
                name: "db".into(),
                replicas: Some(3),
                pod_selector: Some("app=db".into()),
                uid: Some("5555aaaa".into()),
                when_scaled: Some("Delete".into()),
                ..FrozenEntry::default()
            }],
        };
        let text = serde_json::to_string(&state).expect("serialize");
        assert!(!text.contains("suspended"), "{text}");
        let back: FrozenState = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, state);
        // A record written before uids and claim policies were kept still reads.
        let old = r#"{"entries":[{"apiVersion":"apps/v1","kind":"Deployment","namespace":"analysis","name":"analyzer","replicas":3,"podSelector":"app=analyzer"}]}"#;
        let old: FrozenState = serde_json::from_str(old).expect("old record");
        assert_eq!(
            (old.entries[0].uid.as_deref(), old.entries[0].replicas),
            (None, Some(3))
        );
    }
}
