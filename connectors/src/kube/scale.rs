//! Stopping and restarting workloads around a cutover: freeze the source, restore it on
//! rollback, scale the target down.
//!
//! Freezing is split so intent is journaled before effect: [`plan_freeze`] only reads the
//! source's replica counts and CronJob suspension into a [`FrozenState`] that the
//! orchestrator persists, then [`apply_freeze`] scales to zero through the scale
//! subresource and suspends CronJobs. [`restore`] puts back exactly what was recorded, also
//! from a `FrozenState` read back after a crash. Every function here is idempotent.

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::apply::FIELD_MANAGER;
use super::kinds::resolve_manifest_kind;
use super::wait::WaitOptions;
use super::{KubeError, Resource, ResourceId};

/// Kinds scaled through the scale subresource.
const SCALED: &[&str] = &["Deployment", "StatefulSet"];

/// What the source looked like before the freeze; the orchestrator persists it before
/// [`apply_freeze`] runs, and rollback restores from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrozenState {
    /// One entry per frozen workload.
    pub entries: Vec<FrozenEntry>,
}

/// One workload's pre-freeze state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrozenEntry {
    /// `apps/v1`, `batch/v1`.
    pub api_version: String,
    /// Deployment, StatefulSet or CronJob.
    pub kind: String,
    /// Namespace at the source.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Replica count before the freeze (Deployments, StatefulSets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// `spec.suspend` before the freeze (CronJobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// Label selector of the workload's pods, to see them go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<String>,
}

impl FrozenEntry {
    fn id(&self) -> ResourceId {
        ResourceId {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// Read the live replica counts and CronJob suspension of the source's workloads. Reads
/// only. DaemonSets cannot be scaled and are left running (logged).
pub async fn plan_freeze(
    client: &Client,
    resources: &[Resource],
) -> Result<FrozenState, KubeError> {
    let mut entries = Vec::new();
    for resource in resources {
        let scaled = SCALED.contains(&resource.kind.as_str());
        if resource.kind == "DaemonSet" {
            tracing::warn!(resource = %resource.id(), "DaemonSets cannot be scaled to zero; left running");
        }
        if !scaled && resource.kind != "CronJob" {
            continue;
        }
        let live = get_live(client, &resource.id()).await?;
        let replicas = live.pointer("/spec/replicas").and_then(Value::as_i64);
        let suspend = live.pointer("/spec/suspend").and_then(Value::as_bool);
        entries.push(FrozenEntry {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
            namespace: resource.namespace.clone(),
            name: resource.name.clone(),
            replicas: scaled.then(|| replicas.and_then(|r| i32::try_from(r).ok()).unwrap_or(1)),
            suspended: (!scaled).then(|| suspend.unwrap_or(false)),
            pod_selector: live.pointer("/spec/selector").and_then(selector_string),
        });
    }
    Ok(FrozenState { entries })
}

/// Scale every recorded workload to zero and suspend every recorded CronJob.
pub async fn apply_freeze(client: &Client, state: &FrozenState) -> Result<(), KubeError> {
    for entry in &state.entries {
        set_entry(client, entry, Some(0), Some(true)).await?;
        tracing::info!(resource = %entry.id(), "frozen");
    }
    Ok(())
}

/// Put back the recorded replica counts and CronJob suspension.
pub async fn restore(client: &Client, state: &FrozenState) -> Result<(), KubeError> {
    for entry in &state.entries {
        set_entry(client, entry, entry.replicas, entry.suspended).await?;
        tracing::info!(resource = %entry.id(), replicas = ?entry.replicas, "restored");
    }
    Ok(())
}

/// Scale the target's Deployments and StatefulSets to `replicas` (0 on rollback, which also
/// suspends its CronJobs). Resources absent from the target are already down.
pub async fn scale_target(
    client: &Client,
    resources: &[Resource],
    replicas: i32,
) -> Result<(), KubeError> {
    for resource in resources {
        let id = resource.id();
        let result = if SCALED.contains(&resource.kind.as_str()) {
            patch_scale(client, &id, replicas).await
        } else if resource.kind == "CronJob" && replicas == 0 {
            patch_suspend(client, &id, true).await
        } else {
            continue;
        };
        match result {
            Err(e) if e.is_not_found() => tracing::info!(resource = %id, "absent at target"),
            other => other?,
        }
    }
    Ok(())
}

/// Wait until no pod of any frozen workload remains.
pub async fn wait_scaled_down(
    client: &Client,
    state: &FrozenState,
    options: WaitOptions,
) -> Result<(), KubeError> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    loop {
        let mut remaining = Vec::new();
        for entry in &state.entries {
            let Some(selector) = &entry.pod_selector else {
                continue;
            };
            let pods = list_pods(client, &entry.namespace, selector).await?;
            if !pods.is_empty() {
                remaining.push(format!("{}: pods {} remain", entry.id(), pods.join(", ")));
            }
        }
        if remaining.is_empty() {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(KubeError::Timeout {
                waited_secs: options.timeout.as_secs(),
                unready: remaining,
            });
        }
        tokio::time::sleep(options.poll_interval.min(deadline - now)).await;
    }
}

async fn set_entry(
    client: &Client,
    entry: &FrozenEntry,
    replicas: Option<i32>,
    suspend: Option<bool>,
) -> Result<(), KubeError> {
    let id = entry.id();
    if entry.replicas.is_some()
        && let Some(replicas) = replicas
    {
        patch_scale(client, &id, replicas).await?;
    }
    if entry.suspended.is_some()
        && let Some(suspend) = suspend
    {
        patch_suspend(client, &id, suspend).await?;
    }
    Ok(())
}

async fn api_for(client: &Client, id: &ResourceId) -> Result<Api<DynamicObject>, KubeError> {
    let kind: ApiResource = resolve_manifest_kind(client, &id.api_version, &id.kind).await?;
    Ok(Api::namespaced_with(client.clone(), &id.namespace, &kind))
}

async fn get_live(client: &Client, id: &ResourceId) -> Result<Value, KubeError> {
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

async fn patch_scale(client: &Client, id: &ResourceId, replicas: i32) -> Result<(), KubeError> {
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    api_for(client, id)
        .await?
        .patch_scale(&id.name, &PatchParams::apply(FIELD_MANAGER), &patch)
        .await
        .map_err(|e| KubeError::from_api(id, e))?;
    Ok(())
}

async fn patch_suspend(client: &Client, id: &ResourceId, suspend: bool) -> Result<(), KubeError> {
    let patch = Patch::Merge(json!({"spec": {"suspend": suspend}}));
    api_for(client, id)
        .await?
        .patch(&id.name, &PatchParams::apply(FIELD_MANAGER), &patch)
        .await
        .map_err(|e| KubeError::from_api(id, e))?;
    Ok(())
}

async fn list_pods(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<String>, KubeError> {
    let pods: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("", "v1", "Pod"),
            "pods",
        ),
    );
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|source| KubeError::Api {
            resource: format!("pods {selector} in {namespace}"),
            source,
        })?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect())
}

/// A `LabelSelector` object as the list API's selector string.
fn selector_string(selector: &Value) -> Option<String> {
    let mut terms: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    terms.sort();
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str)?;
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match expr.get("operator").and_then(Value::as_str)? {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        });
    }
    (!terms.is_empty()).then(|| terms.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_objects_become_selector_strings() {
        let s = json!({
            "matchLabels": {"tier": "backend", "app": "analyzer"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        });
        assert_eq!(
            selector_string(&s).as_deref(),
            Some("app=analyzer,tier=backend,env in (prod,staging),!canary")
        );
        assert_eq!(selector_string(&json!({})), None);
    }

    #[test]
    fn frozen_state_round_trips_through_json() {
        let state = FrozenState {
            entries: vec![FrozenEntry {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: "analysis".into(),
                name: "analyzer".into(),
                replicas: Some(3),
                suspended: None,
                pod_selector: Some("app=analyzer".into()),
            }],
        };
        let text = serde_json::to_string(&state).expect("serialize");
        assert!(!text.contains("suspended"), "{text}");
        let back: FrozenState = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, state);
    }
}
