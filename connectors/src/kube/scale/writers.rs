//! Finding every writer a freeze must stop, before anything is stopped.
//!
//! The workload's selector (or its explicit `resources`) picks writers of every kind that
//! can write: Deployments, StatefulSets, ReplicaSets, DaemonSets, CronJobs, Jobs and bare
//! Pods, whatever the plan's `kinds` list says (`kinds` chooses what is moved, not what
//! keeps writing). Jobs a selected CronJob already started are found by owner, and KEDA
//! ScaledObjects that would scale a frozen workload back up are paused. A writer is
//! stoppable, and recorded with its state before the freeze, or it is not: a DaemonSet, a
//! workload whose controller is not itself frozen (an operator would put it back), one that
//! Argo CD or Flux reconciles (unless the plan says `gitopsPaused`), a bare Pod. All of
//! those are named in one error unless the plan lists them in `leaveRunning`; a freeze
//! that would stop nothing is an error too. Finished Jobs and Pods write nothing.

use std::collections::BTreeSet;

use kube::Client;
use kube::core::ApiResource;
use serde_json::Value;

use super::{FrozenEntry, FrozenState, KEDA_PAUSED, keda_scaled_objects};
use crate::kube::export::{get_named, job_finished, label_selector, list_all, pod_finished};
use crate::kube::kinds::{KindSpec, resolve_kind};
use crate::kube::pod_reasons::selector_string;
use crate::kube::{KubeError, ResourceId};

const fn kind(kind: &'static str, group: &'static str, plural: &'static str) -> KindSpec {
    KindSpec {
        kind,
        group,
        version: "v1",
        plural,
    }
}

/// Every kind whose objects run containers, in the order their entries are stopped.
const WRITERS: [KindSpec; 7] = [
    kind("CronJob", "batch", "cronjobs"),
    kind("Job", "batch", "jobs"),
    kind("Deployment", "apps", "deployments"),
    kind("ReplicaSet", "apps", "replicasets"),
    kind("StatefulSet", "apps", "statefulsets"),
    kind("DaemonSet", "apps", "daemonsets"),
    kind("Pod", "", "pods"),
];

/// Read the source's writers and how they stand; reads only. Fails, naming every writer
/// that cannot be stopped, or when there is nothing to stop.
pub async fn plan_freeze(
    client: &Client,
    workload: &plans::KubernetesWorkload,
) -> Result<FrozenState, KubeError> {
    let namespace = workload.namespace.as_str();
    let objects = selected_writers(client, workload).await?;
    let uids: BTreeSet<&str> = objects.iter().filter_map(uid).collect();
    let mut entries = Vec::new();
    let mut cannot = Vec::new();
    let mut left_running = BTreeSet::new();
    for object in &objects {
        match verdict(object, &uids, workload.gitops_paused) {
            Verdict::Stop => entries.push(entry(object, namespace)),
            Verdict::Skip(why) => {
                tracing::debug!(resource = %describe(object, namespace), why, "not frozen");
            }
            Verdict::Cannot(why) => {
                let id = describe(object, namespace);
                let listed = format!("{}/{}", id.kind, id.name);
                if workload.leave_running.contains(&listed) {
                    tracing::warn!(resource = %id, why, "left running, as the plan says (leaveRunning)");
                    left_running.insert(listed);
                } else {
                    cannot.push(format!("{id}: {why}"));
                }
            }
        }
    }
    for unused in workload
        .leave_running
        .iter()
        .filter(|w| !left_running.contains(*w))
    {
        tracing::warn!(entry = %unused, "leaveRunning names no writer that freeze cannot stop (expected Kind/name)");
    }
    entries.extend(started_jobs(client, namespace, &entries).await?);
    let paused = scaled_objects(client, namespace, &entries).await?;
    entries.splice(0..0, paused);
    if !cannot.is_empty() {
        return Err(KubeError::Unstoppable {
            namespace: namespace.to_owned(),
            writers: cannot,
        });
    }
    if entries.is_empty() {
        return Err(KubeError::NothingToFreeze {
            namespace: namespace.to_owned(),
            selector: label_selector(workload.selector.iter()),
        });
    }
    Ok(FrozenState { entries })
}

/// The writers the workload selects, each kind in [`WRITERS`] order, explicit resources last.
async fn selected_writers(
    client: &Client,
    workload: &plans::KubernetesWorkload,
) -> Result<Vec<Value>, KubeError> {
    let namespace = workload.namespace.as_str();
    let mut objects = Vec::new();
    if !workload.selector.is_empty() || workload.resources.is_empty() {
        let selector = label_selector(workload.selector.iter());
        for spec in &WRITERS {
            objects.extend(list_all(client, namespace, &spec.api_resource(), &selector).await?);
        }
    }
    for wanted in &workload.resources {
        let written = wanted.kind.rsplit('/').next().unwrap_or_default();
        if !WRITERS.iter().any(|w| w.kind == written) {
            continue;
        }
        let kind: ApiResource = resolve_kind(client, &wanted.kind).await?;
        let already = objects
            .iter()
            .any(|o| o["kind"] == kind.kind.as_str() && name(o) == wanted.name);
        if !already {
            objects.push(get_named(client, namespace, &kind, &wanted.name).await?);
        }
    }
    Ok(objects)
}

enum Verdict {
    Stop,
    Skip(&'static str),
    Cannot(String),
}

fn verdict(object: &Value, selected: &BTreeSet<&str>, gitops_paused: bool) -> Verdict {
    let kind = object["kind"].as_str().unwrap_or_default();
    if kind == "Pod" {
        return match controller(object) {
            _ if pod_finished(object) => Verdict::Skip("finished pod"),
            Some(_) => Verdict::Skip("its controller is checked instead"),
            None => Verdict::Cannot("a bare Pod, which relocate does not delete".into()),
        };
    }
    if kind == "Job" && job_finished(object) {
        return Verdict::Skip("finished Job");
    }
    if let Some(owner) = gitops_owner(object).filter(|_| !gitops_paused) {
        return Verdict::Cannot(format!(
            "reconciled by {owner}, which would scale it back up (pause it there, then set `gitopsPaused: true`)"
        ));
    }
    match controller(object) {
        Some((_, _, Some(uid))) if selected.contains(uid) => {
            return Verdict::Skip("its controller is frozen instead");
        }
        Some(("CronJob", _, _)) if kind == "Job" => {}
        Some((owner_kind, owner_name, _)) => {
            return Verdict::Cannot(format!(
                "controlled by {owner_kind} {owner_name}, which is not frozen and would undo the freeze"
            ));
        }
        None => {}
    }
    if kind == "DaemonSet" {
        return Verdict::Cannot("DaemonSets cannot be scaled to zero".into());
    }
    Verdict::Stop
}

fn entry(object: &Value, namespace: &str) -> FrozenEntry {
    let id = describe(object, namespace);
    let spec = &object["spec"];
    let scaled = matches!(
        id.kind.as_str(),
        "Deployment" | "StatefulSet" | "ReplicaSet"
    );
    let when_scaled = spec
        .pointer("/persistentVolumeClaimRetentionPolicy/whenScaled")
        .and_then(Value::as_str)
        .filter(|policy| *policy != "Retain");
    FrozenEntry {
        replicas: scaled.then(|| {
            spec["replicas"]
                .as_i64()
                .and_then(|r| i32::try_from(r).ok())
                .unwrap_or(1)
        }),
        suspended: (!scaled).then(|| spec["suspend"].as_bool().unwrap_or(false)),
        pod_selector: spec.get("selector").and_then(selector_string),
        uid: uid(object).map(str::to_owned),
        when_scaled: when_scaled
            .filter(|_| id.kind == "StatefulSet")
            .map(str::to_owned),
        paused_replicas: None,
        api_version: id.api_version,
        kind: id.kind,
        namespace: id.namespace,
        name: id.name,
    }
}

/// Jobs a frozen CronJob started after [`plan_freeze`] read the source but before the
/// CronJob was suspended; call after [`super::apply_freeze`], record, and freeze them too.
pub async fn late_jobs(
    client: &Client,
    state: &FrozenState,
) -> Result<Vec<FrozenEntry>, KubeError> {
    let Some(namespace) = state
        .entries
        .iter()
        .find(|e| e.kind == "CronJob")
        .map(|e| e.namespace.clone())
    else {
        return Ok(Vec::new());
    };
    started_jobs(client, &namespace, &state.entries).await
}

/// Running Jobs that a frozen CronJob started: their labels come from the CronJob's job
/// template, not its own, so they are found by owner.
async fn started_jobs(
    client: &Client,
    namespace: &str,
    entries: &[FrozenEntry],
) -> Result<Vec<FrozenEntry>, KubeError> {
    let cron_uids: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.kind == "CronJob")
        .filter_map(|e| e.uid.as_deref())
        .collect();
    if cron_uids.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = list_all(client, namespace, &WRITERS[1].api_resource(), "").await?;
    Ok(jobs
        .iter()
        .filter(|job| !job_finished(job))
        .filter(
            |job| matches!(controller(job), Some((_, _, Some(owner))) if cron_uids.contains(owner)),
        )
        .filter(|job| {
            !entries
                .iter()
                .any(|e| e.kind == "Job" && e.name == name(job))
        })
        .map(|job| entry(job, namespace))
        .collect())
}

/// KEDA ScaledObjects whose target is frozen: KEDA would scale it back from zero, so they
/// are paused at zero first. A cluster without KEDA answers 404 and has none.
async fn scaled_objects(
    client: &Client,
    namespace: &str,
    entries: &[FrozenEntry],
) -> Result<Vec<FrozenEntry>, KubeError> {
    if !entries.iter().any(FrozenEntry::is_scaled) {
        return Ok(Vec::new());
    }
    let objects = match list_all(client, namespace, &keda_scaled_objects(), "").await {
        Ok(objects) => objects,
        Err(KubeError::Api {
            source: kube::Error::Api(status),
            ..
        }) if status.code == 404 => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(objects
        .iter()
        .filter(|so| {
            let target = &so["spec"]["scaleTargetRef"];
            let kind = target["kind"].as_str().unwrap_or("Deployment");
            let name = target["name"].as_str().unwrap_or_default();
            entries
                .iter()
                .any(|e| e.is_scaled() && e.kind == kind && e.name == name)
        })
        .map(|so| {
            let id = describe(so, namespace);
            FrozenEntry {
                paused_replicas: so["metadata"]["annotations"][KEDA_PAUSED]
                    .as_str()
                    .map(str::to_owned),
                uid: uid(so).map(str::to_owned),
                api_version: id.api_version,
                kind: id.kind,
                namespace: id.namespace,
                name: id.name,
                ..FrozenEntry::default()
            }
        })
        .collect())
}

/// The Argo CD application or Flux object that reconciles `object`, from the labels and
/// annotations they stamp on what they apply.
pub(crate) fn gitops_owner(object: &Value) -> Option<String> {
    let meta = &object["metadata"];
    let label = |key: &str| meta["labels"][key].as_str();
    let annotation = |key: &str| meta["annotations"][key].as_str();
    if let Some(app) = label("argocd.argoproj.io/instance") {
        return Some(format!("Argo CD application `{app}`"));
    }
    if let Some(tracking) = annotation("argocd.argoproj.io/tracking-id") {
        let app = tracking.split(':').next().unwrap_or(tracking);
        return Some(format!("Argo CD application `{app}`"));
    }
    for (tool, key) in [
        ("Flux Kustomization", "kustomize.toolkit.fluxcd.io"),
        ("Flux HelmRelease", "helm.toolkit.fluxcd.io"),
    ] {
        if let Some(name) = label(&format!("{key}/name")) {
            let ns = label(&format!("{key}/namespace")).unwrap_or("?");
            return Some(format!("{tool} `{ns}/{name}`"));
        }
    }
    None
}

/// The controlling owner reference: (kind, name, uid).
fn controller(object: &Value) -> Option<(&str, &str, Option<&str>)> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"].as_bool() == Some(true))
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default(),
                o["name"].as_str().unwrap_or_default(),
                o["uid"].as_str(),
            )
        })
}

fn uid(object: &Value) -> Option<&str> {
    object["metadata"]["uid"].as_str()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn describe(object: &Value, namespace: &str) -> ResourceId {
    ResourceId {
        api_version: object["apiVersion"].as_str().unwrap_or_default().to_owned(),
        kind: object["kind"].as_str().unwrap_or_default().to_owned(),
        namespace: object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace)
            .to_owned(),
        name: name(object).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn gitops_owners_are_named_from_their_labels() {
        let with = |meta: Value| json!({"metadata": meta});
        assert_eq!(
            gitops_owner(&with(
                json!({"labels": {"argocd.argoproj.io/instance": "analysis-prod"}})
            )),
            Some("Argo CD application `analysis-prod`".into())
        );
        assert_eq!(
            gitops_owner(&with(
                json!({"labels": {"app.kubernetes.io/instance": "analyzer"},
                "annotations": {"argocd.argoproj.io/tracking-id": "analysis-prod:apps/Deployment:analysis/api"}})
            )),
            Some("Argo CD application `analysis-prod`".into())
        );
        assert_eq!(
            gitops_owner(&with(
                json!({"labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}})
            )),
            Some("Flux Kustomization `flux-system/apps`".into())
        );
        assert_eq!(
            gitops_owner(&with(
                json!({"labels": {"helm.toolkit.fluxcd.io/name": "db",
                "helm.toolkit.fluxcd.io/namespace": "analysis"}})
            )),
            Some("Flux HelmRelease `analysis/db`".into())
        );
        // A Helm release alone (no Argo tracking) is not a reconciler.
        assert_eq!(
            gitops_owner(&with(
                json!({"labels": {"app.kubernetes.io/instance": "analyzer",
                "app.kubernetes.io/managed-by": "Helm"}})
            )),
            None
        );
    }
}
