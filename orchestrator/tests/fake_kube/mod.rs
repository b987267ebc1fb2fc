//! A tiny in-memory Kubernetes API server over real HTTP, for testing the engine's
//! `freeze` / `deploy` / `rollback` wiring end to end through the `relocate` binary.
//!
//! No kube-apiserver can be installed on these machines; the connector's own tests
//! check request shapes with kube's mock-service verifier. This fake answers the few
//! calls those steps make (list with label selectors, get, server-side apply, merge
//! patch, the scale subresource, pods derived from Deployments' replicas) so the
//! engine's ordering, state records, evidence and rollback can be observed.

#![allow(dead_code)]

pub mod analyzer;
pub mod apiserver;
pub mod jobs;
mod lifecycle;
pub mod plan;
pub mod proxy;
mod rollout;
mod ssa;
pub mod workloads;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Objects by (collection path, name); a collection path is e.g.
/// `/apis/apps/v1/namespaces/analysis/deployments`.
pub type Objects = Arc<Mutex<BTreeMap<(String, String), Value>>>;

/// A running fake cluster.
pub struct FakeCluster {
    pub url: String,
    pub objects: Objects,
    /// Namespaces, server-side apply, rollouts, classes and faults (see `apiserver`).
    pub api: apiserver::ApiServer,
}

impl FakeCluster {
    /// Start on a free loopback port, in a thread with its own runtime.
    pub fn start() -> Self {
        let objects: Objects = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = objects.clone();
        let api = apiserver::ApiServer::new(objects.clone());
        let layer = axum::middleware::from_fn_with_state(api.clone(), apiserver::middleware);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = Router::new()
                    .fallback(handle)
                    .with_state(state)
                    .layer(layer);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        Self { url, objects, api }
    }

    /// Put an object into the cluster (as if created there).
    pub fn insert(&self, collection: &str, mut object: Value) {
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        settle(&mut object);
        self.objects
            .lock()
            .expect("lock")
            .insert((collection.to_owned(), name), object);
    }

    /// An object, if present (after the cluster's controllers have acted).
    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        let mut store = self.objects.lock().expect("lock");
        workloads::reconcile(&mut store);
        store
            .get(&(collection.to_owned(), name.to_owned()))
            .cloned()
    }
}

/// Make a workload's status say it is fully rolled out at its current spec.
fn settle(object: &mut Value) {
    if object["kind"] == "Deployment" || object["kind"] == "StatefulSet" {
        let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
        object["metadata"]["generation"] = json!(1);
        workloads::ensure_uid(object);
        object["metadata"]["resourceVersion"] = json!("4711");
        object["status"] = json!({
            "observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "currentRevision": "r1", "updateRevision": "r1"
        });
    }
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    (code, axum::Json(body)).into_response()
}

fn matches(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => object["metadata"]["labels"][k] == v,
        None => false,
    })
}

/// A field selector (`involvedObject.name=x,type!=Normal`): `=`, `==` and `!=` on
/// dotted paths, compared as the API server does, as strings.
fn fields_match(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| {
        let (path, want, equal) = match term.split_once("!=") {
            Some((p, v)) => (p, v, false),
            None => match term.split_once('=') {
                Some((p, v)) => (p, v.trim_start_matches('='), true),
                None => return false,
            },
        };
        let found = path.split('.').fold(object, |o, key| &o[key]);
        let found = match found {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        (found == want) == equal
    })
}

/// Pods that a Deployment/StatefulSet with `replicas > 0` would run in `collection`'s namespace.
fn pods(objects: &BTreeMap<(String, String), Value>, namespace: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for ((coll, name), obj) in objects {
        if !coll.contains(&format!("/namespaces/{namespace}/"))
            || !(obj["kind"] == "Deployment" || obj["kind"] == "StatefulSet")
        {
            continue;
        }
        for i in 0..obj["spec"]["replicas"].as_i64().unwrap_or(0) {
            out.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-{i}"), "namespace": namespace,
                             "labels": obj["spec"]["template"]["metadata"]["labels"].clone()}}));
        }
    }
    out
}

async fn handle(
    State(objects): State<Objects>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    let parts: Vec<&str> = path.split('/').collect();
    let ns_at = parts.iter().position(|p| *p == "namespaces");
    let Some(ns_at) = ns_at else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no route {path}"),
        );
    };
    let namespace = parts.get(ns_at + 1).copied().unwrap_or_default().to_owned();
    let collection = parts[..(ns_at + 3).min(parts.len())].join("/");
    let name = parts.get(ns_at + 3).map(|s| (*s).to_owned());
    let sub = parts.get(ns_at + 4).copied();
    let mut store = objects.lock().expect("lock");
    workloads::reconcile(&mut store);
    match (method, name, sub) {
        (Method::DELETE, Some(name), None) => workloads::delete(&mut store, &collection, &name),
        (Method::GET, None, None) => {
            let items: Vec<Value> = workloads::listed(&store, &collection)
                .into_iter()
                .filter(|o| matches(o, query.get("labelSelector")))
                .filter(|o| fields_match(o, query.get("fieldSelector")))
                .collect();
            axum::Json(json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "4711"}, "items": items})).into_response()
        }
        (Method::GET, Some(name), None) => match store.get(&(collection.clone(), name.clone())) {
            Some(o) => axum::Json(o.clone()).into_response(),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{collection}/{name} not found"),
            ),
        },
        (Method::PATCH, Some(name), None) => {
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "body is not JSON".into(),
                );
            };
            let key = (collection.clone(), name.clone());
            let mut object = if query.contains_key("force") {
                patch
            } else {
                let Some(mut existing) = store.get(&key).cloned() else {
                    return status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("{name} not found"),
                    );
                };
                merge(&mut existing, &patch);
                existing
            };
            settle(&mut object);
            store.insert(key, object.clone());
            axum::Json(object).into_response()
        }
        (Method::PATCH, Some(name), Some("scale")) => {
            let key = (collection.clone(), name.clone());
            let Some(object) = store.get_mut(&key) else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{name} not found"),
                );
            };
            let replicas = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|p| p["spec"]["replicas"].as_i64())
                .unwrap_or(0);
            object["spec"]["replicas"] = json!(replicas);
            settle(object);
            axum::Json(json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": name, "namespace": namespace},
                              "spec": {"replicas": replicas}, "status": {"replicas": replicas}})).into_response()
        }
        (Method::POST, None, None) => {
            let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "body is not JSON".into(),
                );
            };
            let Some(name) = object["metadata"]["name"].as_str().map(str::to_owned) else {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "metadata.name: Required value".into(),
                );
            };
            let key = (collection.clone(), name.clone());
            if store.contains_key(&key) {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{collection}/{name} already exists"),
                );
            }
            object["metadata"]["namespace"] = json!(namespace);
            workloads::ensure_uid(&mut object);
            store.insert(key, object.clone());
            workloads::reconcile(&mut store);
            (StatusCode::CREATED, axum::Json(object)).into_response()
        }
        (m, n, s) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{m} {path} ({n:?}, {s:?}) not supported by the fake"),
        ),
    }
}

/// RFC 7386 merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// A kubeconfig with contexts `src` and `dst` pointing at two fake clusters.
pub fn kubeconfig(src: &FakeCluster, dst: &FakeCluster) -> String {
    kubeconfig_for(&src.url, &dst.url)
}

/// A kubeconfig with contexts `src` and `dst` pointing at two servers (one of them
/// perhaps not a fake cluster at all, e.g. an address nothing listens on).
pub fn kubeconfig_for(src: &str, dst: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
clusters:
  - name: src
    cluster: {{ server: "{src}" }}
  - name: dst
    cluster: {{ server: "{dst}" }}
users:
  - name: operator
    user: {{ token: "not-a-real-token" }}
contexts:
  - name: src
    context: {{ cluster: src, user: operator }}
  - name: dst
    context: {{ cluster: dst, user: operator }}
current-context: src
"#
    )
}
