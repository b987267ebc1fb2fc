//! Waiting until a freeze has taken effect: no pod of a frozen workload still running.
//!
//! Labels are only a first filter: a finished Job's pods carry the same labels as the
//! workload and linger until garbage-collected, and other workloads' pods may match too.
//! A pod counts only while it has not finished (`Succeeded`/`Failed`) and its controller is
//! the frozen workload, or, for a Deployment, one of the Deployment's ReplicaSets (the
//! ownerReferences chain Pod → ReplicaSet → Deployment). A record written before uids were
//! kept falls back to every unfinished pod the selector matches.

use std::collections::BTreeSet;

use kube::Client;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::{FrozenEntry, FrozenState};
use crate::kube::export::{list_all, pod_finished};
use crate::kube::{KubeError, WaitOptions};

/// Wait until no pod of any frozen workload is running.
pub async fn wait_scaled_down(
    client: &Client,
    state: &FrozenState,
    options: WaitOptions,
) -> Result<(), KubeError> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    loop {
        let mut remaining = Vec::new();
        for entry in &state.entries {
            let pods = running_pods(client, entry).await?;
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

/// Names of the unfinished pods `entry` owns.
async fn running_pods(client: &Client, entry: &FrozenEntry) -> Result<Vec<String>, KubeError> {
    let Some(selector) = entry.pod_selector.as_deref() else {
        return Ok(Vec::new());
    };
    let owners: Option<BTreeSet<String>> = match (&entry.uid, entry.kind.as_str()) {
        (None, _) => None,
        (Some(uid), "Deployment") => Some(
            list_all(
                client,
                &entry.namespace,
                &core("apps", "ReplicaSet", "replicasets"),
                selector,
            )
            .await?
            .iter()
            .filter(|rs| controller_uid(rs) == Some(uid.as_str()))
            .filter_map(|rs| rs["metadata"]["uid"].as_str().map(str::to_owned))
            .collect(),
        ),
        (Some(uid), _) => Some(BTreeSet::from([uid.clone()])),
    };
    let pods = list_all(client, &entry.namespace, &core("", "Pod", "pods"), selector).await?;
    Ok(pods
        .iter()
        .filter(|pod| !pod_finished(pod))
        .filter(|pod| match &owners {
            None => true,
            Some(owners) => controller_uid(pod).is_some_and(|uid| owners.contains(uid)),
        })
        .filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_owned))
        .collect())
}

fn core(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

fn controller_uid(object: &Value) -> Option<&str> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"].as_bool() == Some(true))?
        .get("uid")?
        .as_str()
}
