//! Stopping what a deploy started at the target, when a cutover is rolled back.
//!
//! Best effort per resource, from the ids the deploy recorded before applying: KEDA
//! ScaledObjects are paused at zero first (else they scale back up), Deployments,
//! ReplicaSets and StatefulSets scaled to zero (a StatefulSet's claims switched to `Retain`
//! first, so its volumes survive), CronJobs and Jobs suspended, and what serves or runs
//! without replicas deleted: DaemonSets, Ingresses and LoadBalancer Services. Config,
//! claims and ClusterIP Services stay: they run nothing and keep the target ready for the
//! next attempt. What is gone is skipped; what fails is reported and the rest still done.

use kube::Client;
use serde_json::Value;

use super::{
    KEDA_PAUSED, UndoReport, delete, get_live, patch_annotation, patch_scale, patch_suspend,
    patch_when_scaled,
};
use crate::kube::{KubeError, ResourceId};

/// Stop everything `ids` names at the target; see the module comment for what that means
/// per kind.
pub async fn stop_target(client: &Client, ids: &[ResourceId]) -> UndoReport {
    let mut report = UndoReport::default();
    let (autoscalers, rest): (Vec<&ResourceId>, Vec<&ResourceId>) =
        ids.iter().partition(|id| id.kind == "ScaledObject");
    for id in autoscalers.into_iter().chain(rest) {
        let result = stop(client, id).await;
        report.record(id.clone(), result);
    }
    report
}

async fn stop(client: &Client, id: &ResourceId) -> Result<Option<String>, KubeError> {
    let line = match id.kind.as_str() {
        "ScaledObject" => {
            patch_annotation(client, id, KEDA_PAUSED, Some("0")).await?;
            "autoscaling paused at zero"
        }
        "Deployment" | "ReplicaSet" => {
            patch_scale(client, id, 0).await?;
            "scaled to zero"
        }
        "StatefulSet" => {
            let live = get_live(client, id).await?;
            let policy = live
                .pointer("/spec/persistentVolumeClaimRetentionPolicy/whenScaled")
                .and_then(Value::as_str);
            if policy.is_some_and(|p| p != "Retain") {
                patch_when_scaled(client, id, "Retain").await?;
            }
            patch_scale(client, id, 0).await?;
            "scaled to zero (claims retained)"
        }
        "CronJob" | "Job" => {
            patch_suspend(client, id, true).await?;
            "suspended"
        }
        "DaemonSet" | "Ingress" => {
            delete(client, id).await?;
            "deleted"
        }
        "Service" => {
            let live = get_live(client, id).await?;
            if live.pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer") {
                return Ok(None);
            }
            delete(client, id).await?;
            "LoadBalancer deleted"
        }
        _ => return Ok(None),
    };
    Ok(Some(line.to_owned()))
}
