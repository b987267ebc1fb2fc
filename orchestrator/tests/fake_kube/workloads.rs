//! What the fake cluster's controllers do to workloads, as a real cluster's would, so the
//! fake cannot agree with a freeze or rollback that a real cluster would punish.
//!
//! Run before every request (and before a test reads an object), [`reconcile`] plays:
//! - the API server: every object gets a stable `uid`;
//! - the StatefulSet controller: a claim per volumeClaimTemplate and ordinal below
//!   `replicas`, and, with `persistentVolumeClaimRetentionPolicy.whenScaled: Delete`, the
//!   claims of every ordinal at or above it deleted (GA in 1.32);
//! - the CSI snapshot controller: a VolumeSnapshot of an existing claim is ready at
//!   once;
//! - KEDA: a ScaledObject without `autoscaling.keda.sh/paused-replicas` scales its target
//!   from zero back to `max(minReplicaCount, 1)` (its triggers are taken as active); with
//!   the annotation, it pins the target at that count.
//!
//! [`listed`] derives what the workload controllers would run: a ReplicaSet per scaled
//! Deployment, and pods with `ownerReferences` (Pod → ReplicaSet → Deployment, Pod →
//! StatefulSet, Pod → Job while the Job is neither suspended nor finished, Pod →
//! DaemonSet), plus the pods a test stored itself, such as a finished Job's `Succeeded`
//! pods that linger until garbage-collected.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

type Store = BTreeMap<(String, String), Value>;

/// A stable uid for an object, from its kind, namespace and name.
pub fn uid_for(kind: &str, namespace: &str, name: &str) -> String {
    format!("uid-{}-{namespace}-{name}", kind.to_lowercase())
}

fn object_uid(object: &Value) -> String {
    uid_for(
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

/// Give `object` a uid if it has none.
pub fn ensure_uid(object: &mut Value) {
    if object["metadata"]["uid"].is_null() {
        object["metadata"]["uid"] = json!(object_uid(object));
    }
}

/// Let the cluster's controllers act on what the last request changed.
pub fn reconcile(store: &mut Store) {
    for object in store.values_mut() {
        ensure_uid(object);
    }
    keda(store);
    statefulset_claims(store);
    snapshots(store);
}

/// The CSI snapshot controller: a new VolumeSnapshot of an existing claim is ready at
/// once, its restore size the claim's request.
fn snapshots(store: &mut Store) {
    let mut ready = Vec::new();
    for ((coll, name), snapshot) in store.iter() {
        if snapshot["kind"] != "VolumeSnapshot" || snapshot["status"]["readyToUse"] == true {
            continue;
        }
        let ns = namespace_of(coll);
        let claim = snapshot["spec"]["source"]["persistentVolumeClaimName"]
            .as_str()
            .unwrap_or_default();
        let source = store.get(&(
            format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
            claim.to_owned(),
        ));
        let status = match source {
            Some(pvc) => json!({"readyToUse": true,
                "restoreSize": pvc["spec"]["resources"]["requests"]["storage"].clone()}),
            None => json!({"readyToUse": false,
                "error": {"message": format!("claim {claim} not found")}}),
        };
        ready.push(((coll.clone(), name.clone()), status));
    }
    for (key, status) in ready {
        if let Some(snapshot) = store.get_mut(&key) {
            snapshot["status"] = status;
        }
    }
}

fn namespace_of(collection: &str) -> &str {
    collection
        .split("/namespaces/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
}

fn keda(store: &mut Store) {
    // (target's collection, its name, replicas, only when at zero)
    let mut wanted: Vec<(String, String, i64, bool)> = Vec::new();
    for ((coll, _), so) in store.iter() {
        if !coll.ends_with("/scaledobjects") {
            continue;
        }
        let target = &so["spec"]["scaleTargetRef"];
        let kind = target["kind"].as_str().unwrap_or("Deployment");
        let coll = format!(
            "/apis/apps/v1/namespaces/{}/{}s",
            namespace_of(coll),
            kind.to_lowercase()
        );
        let name = target["name"].as_str().unwrap_or_default().to_owned();
        let paused = so["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"]
            .as_str()
            .and_then(|n| n.parse::<i64>().ok());
        match paused {
            Some(n) => wanted.push((coll, name, n, false)),
            None => {
                let min = so["spec"]["minReplicaCount"].as_i64().unwrap_or(0).max(1);
                wanted.push((coll, name, min, true));
            }
        }
    }
    for (coll, name, replicas, only_from_zero) in wanted {
        if let Some(target) = store.get_mut(&(coll, name)) {
            let current = target["spec"]["replicas"].as_i64().unwrap_or(1);
            if !only_from_zero || current == 0 {
                target["spec"]["replicas"] = json!(replicas);
            }
        }
    }
}

fn statefulset_claims(store: &mut Store) {
    let mut create = Vec::new();
    let mut delete = Vec::new();
    for ((coll, name), sts) in store.iter() {
        if sts["kind"] != "StatefulSet" {
            continue;
        }
        let ns = namespace_of(coll);
        let claims = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims");
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
        let delete_on_scale =
            sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Delete";
        for template in sts["spec"]["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let prefix = format!(
                "{}-{name}-",
                template["metadata"]["name"].as_str().unwrap_or("data")
            );
            let existing = store
                .keys()
                .filter(|(c, n)| *c == claims && n.starts_with(&prefix));
            for (c, claim) in existing {
                if let Some(ordinal) = claim
                    .strip_prefix(&prefix)
                    .and_then(|o| o.parse::<i64>().ok())
                    && ordinal >= replicas
                    && delete_on_scale
                {
                    delete.push((c.clone(), claim.clone()));
                }
            }
            for ordinal in 0..replicas {
                let claim = format!("{prefix}{ordinal}");
                if !store.contains_key(&(claims.clone(), claim.clone())) {
                    let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim, "namespace": ns,
                                     "labels": sts["spec"]["selector"]["matchLabels"].clone()},
                        "spec": template["spec"].clone(), "status": {"phase": "Bound"}});
                    ensure_uid(&mut pvc);
                    create.push(((claims.clone(), claim), pvc));
                }
            }
        }
    }
    for key in delete {
        store.remove(&key);
    }
    for (key, pvc) in create {
        store.insert(key, pvc);
    }
}

/// The items a list of `collection` returns, before label selection.
pub fn listed(store: &Store, collection: &str) -> Vec<Value> {
    let ns = namespace_of(collection);
    let stored = store
        .iter()
        .filter(|((c, _), _)| c == collection)
        .map(|(_, o)| o.clone());
    let mut items: Vec<Value> = stored.collect();
    if collection.ends_with("/pods") {
        items.extend(pods(store, ns));
    } else if collection.ends_with("/replicasets") {
        items.extend(deployment_replica_sets(store, ns));
    }
    items
}

fn owner(object: &Value) -> Value {
    json!([{"apiVersion": object["apiVersion"], "kind": object["kind"],
            "name": object["metadata"]["name"], "uid": object["metadata"]["uid"],
            "controller": true, "blockOwnerDeletion": true}])
}

fn in_namespace<'a>(store: &'a Store, ns: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    store
        .iter()
        .filter(move |((c, _), _)| namespace_of(c) == ns)
        .map(|(_, o)| o)
}

fn deployment_replica_sets(store: &Store, ns: &str) -> Vec<Value> {
    in_namespace(store, ns)
        .filter(|d| d["kind"] == "Deployment")
        .map(|d| {
            let name = format!("{}-5d4f8c7b9", d["metadata"]["name"].as_str().unwrap_or_default());
            let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
            labels["pod-template-hash"] = json!("5d4f8c7b9");
            let mut rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner(d)},
                "spec": {"replicas": d["spec"]["replicas"].clone(),
                         "selector": {"matchLabels": {"pod-template-hash": "5d4f8c7b9"}},
                         "template": d["spec"]["template"].clone()}});
            rs["spec"]["template"]["metadata"]["labels"] = labels_of(&rs);
            ensure_uid(&mut rs);
            rs
        })
        .collect()
}

fn labels_of(object: &Value) -> Value {
    object["metadata"]["labels"].clone()
}

fn job_runs(job: &Value) -> bool {
    let status = &job["status"];
    let finished = status.get("completionTime").is_some()
        || status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True"
            })
        || status["succeeded"].as_i64().unwrap_or(0)
            >= job["spec"]["completions"].as_i64().unwrap_or(1);
    job["spec"]["suspend"] != true && !finished
}

fn pods(store: &Store, ns: &str) -> Vec<Value> {
    let mut controllers: Vec<(Value, i64)> = deployment_replica_sets(store, ns)
        .into_iter()
        .map(|rs| {
            let n = rs["spec"]["replicas"].as_i64().unwrap_or(1);
            (rs, n)
        })
        .collect();
    for object in in_namespace(store, ns) {
        let n = match object["kind"].as_str() {
            Some("StatefulSet" | "ReplicaSet") => object["spec"]["replicas"].as_i64().unwrap_or(1),
            Some("Job") if job_runs(object) => object["spec"]["parallelism"].as_i64().unwrap_or(1),
            Some("DaemonSet") => 1,
            _ => 0,
        };
        controllers.push((object.clone(), n));
    }
    let mut out = Vec::new();
    for (controller, n) in controllers {
        let name = controller["metadata"]["name"].as_str().unwrap_or_default();
        for i in 0..n {
            let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-{i}"), "namespace": ns,
                             "labels": controller["spec"]["template"]["metadata"]["labels"].clone(),
                             "ownerReferences": owner(&controller)},
                "spec": controller["spec"]["template"]["spec"].clone(),
                "status": {"phase": "Running"}});
            // A StatefulSet's pod mounts its ordinal's claim of each template.
            for template in controller["spec"]["volumeClaimTemplates"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let base = template["metadata"]["name"].as_str().unwrap_or("data");
                let volume = json!({"name": base,
                    "persistentVolumeClaim": {"claimName": format!("{base}-{name}-{i}")}});
                match pod["spec"]["volumes"].as_array_mut() {
                    Some(volumes) => volumes.push(volume),
                    None => pod["spec"]["volumes"] = json!([volume]),
                }
            }
            ensure_uid(&mut pod);
            out.push(pod);
        }
    }
    out
}

/// DELETE of one object: the object as it was, as the API server answers.
pub fn delete(store: &mut Store, collection: &str, name: &str) -> Response {
    match store.remove(&(collection.to_owned(), name.to_owned())) {
        Some(object) => axum::Json(object).into_response(),
        None => {
            let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": format!("{collection}/{name} not found"), "reason": "NotFound", "code": 404});
            (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
    }
}
