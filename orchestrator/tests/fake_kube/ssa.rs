//! Server-side apply in the fake API server, as kube-apiserver does it: field ownership
//! (409 without `force` when another manager owns a changed field), `Apply` entries in
//! `managedFields`, dry runs that store nothing, generation bumps, and the Service
//! node-port rules (cluster-wide allocation; none on a ClusterIP Service).

use std::collections::{BTreeMap, BTreeSet};

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::apiserver::{ApiServer, status};

const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Job"];

/// Apply `patch` as `fieldManager` to `collection`/`name`.
pub fn apply(
    server: &ApiServer,
    collection: &str,
    name: &str,
    mut patch: Value,
    query: &BTreeMap<String, String>,
) -> Response {
    let manager = query.get("fieldManager").cloned().unwrap_or_default();
    let force = query.get("force").map(String::as_str) == Some("true");
    let dry_run = query.get("dryRun").map(String::as_str) == Some("All");
    let key = (collection.to_owned(), name.to_owned());
    let existing = server.objects().lock().expect("lock").get(&key).cloned();
    let kind = patch["kind"].as_str().unwrap_or_default().to_owned();
    if let Some(existing) = &existing
        && !force
    {
        let others = other_managers(existing, &manager);
        let mut changed = Vec::new();
        changed_fields(&patch, existing, "", &mut changed);
        changed.retain(|f| !f.starts_with(".metadata.managedFields") && !f.starts_with(".status"));
        if let (Some(owner), false) = (others.first(), changed.is_empty()) {
            let api_version = patch["apiVersion"].as_str().unwrap_or_default();
            let list: Vec<String> = changed
                .iter()
                .map(|f| format!("- conflict with \"{owner}\" using {api_version}: {f}"))
                .collect();
            return status(
                409,
                "Conflict",
                format!(
                    "Apply failed with {} conflict(s): {}",
                    changed.len(),
                    list.join("\n")
                ),
                json!({"name": name, "kind": kind.to_lowercase() + "s"}),
            );
        }
    }
    if kind == "Service"
        && let Err(response) = node_ports(server, &key, &mut patch)
    {
        return *response;
    }
    let object = merge_server_fields(server, &key, existing.as_ref(), patch, &manager, &kind);
    if !dry_run {
        let spec_changed = existing
            .as_ref()
            .is_none_or(|e| e["spec"] != object["spec"]);
        server
            .objects()
            .lock()
            .expect("lock")
            .insert(key.clone(), object.clone());
        if WORKLOADS.contains(&kind.as_str()) && spec_changed {
            // The controller has not seen the new spec yet; the status catches up over polls.
            return axum::Json(super::rollout::begin(server, &key)).into_response();
        }
    }
    axum::Json(object).into_response()
}

/// Managers other than `manager` that own fields of `object`.
fn other_managers(object: &Value, manager: &str) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["manager"].as_str())
        .filter(|m| *m != manager && *m != "kube-controller-manager")
        .map(str::to_owned)
        .collect()
}

/// Leaf paths (`.spec.replicas`) that `patch` sets to a value different from `existing`.
fn changed_fields(patch: &Value, existing: &Value, at: &str, out: &mut Vec<String>) {
    match (patch, existing) {
        (Value::Object(p), Value::Object(e)) => {
            for (k, v) in p {
                let path = format!("{at}.{k}");
                if let Some(old) = e.get(k) {
                    changed_fields(v, old, &path, out);
                }
            }
        }
        (p, e) if p != e => out.push(at.to_owned()),
        _ => {}
    }
}

/// Check and allocate a Service's node ports; `Err` is the 422 a real server answers.
fn node_ports(
    server: &ApiServer,
    key: &(String, String),
    service: &mut Value,
) -> Result<(), Box<Response>> {
    let name = key.1.clone();
    let kind = service["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_owned();
    let taken: BTreeSet<i64> = server
        .objects()
        .lock()
        .expect("lock")
        .iter()
        .filter(|(k, o)| *k != key && o["kind"] == "Service")
        .flat_map(|(_, o)| {
            o["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["nodePort"].as_i64())
                .collect::<Vec<_>>()
        })
        .collect();
    let Some(ports) = service["spec"]["ports"].as_array_mut() else {
        return Ok(());
    };
    for (i, port) in ports.iter_mut().enumerate() {
        match port["nodePort"].as_i64() {
            Some(n) if kind == "ClusterIP" => {
                return Err(Box::new(invalid(
                    &name,
                    &format!(
                        "spec.ports[{i}].nodePort: Forbidden: may not be used when `type` is 'ClusterIP' ({n})"
                    ),
                )));
            }
            Some(n) if taken.contains(&n) => {
                return Err(Box::new(invalid(
                    &name,
                    &format!(
                        "spec.ports[{i}].nodePort: Invalid value: {n}: provided port is already allocated"
                    ),
                )));
            }
            None if kind == "NodePort" || kind == "LoadBalancer" => {
                port["nodePort"] = json!(server.allocate_node_port(&taken));
            }
            _ => {}
        }
    }
    Ok(())
}

fn invalid(name: &str, cause: &str) -> Response {
    status(
        422,
        "Invalid",
        format!("Service \"{name}\" is invalid: {cause}"),
        json!({"name": name, "kind": "Service"}),
    )
}

/// The applied object with what the server keeps or sets: uid, creation time, generation,
/// status, and the managers' entries.
fn merge_server_fields(
    server: &ApiServer,
    key: &(String, String),
    existing: Option<&Value>,
    mut object: Value,
    manager: &str,
    kind: &str,
) -> Value {
    let _ = server;
    let old_meta = existing.map(|e| e["metadata"].clone()).unwrap_or(json!({}));
    let generation = match existing {
        Some(e) if e["spec"] == object["spec"] => old_meta["generation"].as_i64().unwrap_or(1),
        Some(_) => old_meta["generation"].as_i64().unwrap_or(1) + 1,
        None => 1,
    };
    let mut managers: Vec<Value> = old_meta["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["manager"] != manager)
        .collect();
    managers.push(json!({"manager": manager, "operation": "Apply",
        "apiVersion": object["apiVersion"].clone(), "time": "2026-11-30T09:00:00Z",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}));
    let meta = &mut object["metadata"];
    meta["uid"] = old_meta
        .get("uid")
        .cloned()
        .unwrap_or_else(|| json!(format!("uid-{}-{}", kind.to_lowercase(), key.1)));
    meta["creationTimestamp"] = old_meta
        .get("creationTimestamp")
        .cloned()
        .unwrap_or(json!("2026-11-30T09:00:00Z"));
    meta["resourceVersion"] = json!("5000");
    meta["generation"] = json!(generation);
    // Annotations other managers set (the scheduler's selected-node on a claim) stay:
    // an apply owns only the fields it sends.
    if let Some(old) = old_meta["annotations"].as_object() {
        for (k, v) in old {
            if meta["annotations"].get(k).is_none() {
                if !meta["annotations"].is_object() {
                    meta["annotations"] = json!({});
                }
                meta["annotations"][k] = v.clone();
            }
        }
    }
    meta["managedFields"] = Value::Array(managers);
    if let Some(status) = existing.and_then(|e| e.get("status")) {
        object["status"] = status.clone();
    }
    object
}
