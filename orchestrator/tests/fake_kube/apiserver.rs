//! What a real API server does on `deploy` that the basic fake did not: a middleware in
//! front of the fake's handler (see `mod.rs`) that answers as kube-apiserver v1.30+ does.
//!
//! - namespace lifecycle: `default` and `kube-system` exist, others only once created (or
//!   once an object was put there by the test); a write into a missing namespace is a 404
//!   `namespaces "x" not found`;
//! - server-side apply (`application/apply-patch+yaml`): creates or replaces the object,
//!   records the manager's `Apply` entry in `managedFields` next to the other managers',
//!   and answers 409 listing the conflicting fields when another manager owns a field the
//!   patch changes and `force` is not set; `dryRun=All` validates and answers without
//!   storing anything;
//! - Services: node ports are allocated cluster-wide, so a port another Service holds is a
//!   422 "provided port is already allocated", and a node port on a ClusterIP Service is a
//!   422 "may not be used when `type` is 'ClusterIP'"; missing ones are allocated;
//! - rollouts: an apply that changes a workload's spec bumps `metadata.generation`, and the
//!   status then progresses over several polls (unobserved, partly available, done);
//! - cluster-scoped StorageClasses, PriorityClasses and IngressClasses, served by name;
//! - faults a test arms: a GET that never answers, or one that answers 5xx.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Objects;

/// A fault the server injects into matching requests.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Accept the request and never answer.
    Hang,
    /// Answer with this status code and an API `Status` body.
    Status(u16),
}

#[derive(Default)]
struct Behaviour {
    namespaces: BTreeSet<String>,
    cluster: BTreeMap<(String, String), Value>,
    faults: Vec<(Method, String, Fault, usize)>,
    rollout_polls: i64,
    progress: BTreeMap<(String, String), i64>,
    next_node_port: i64,
    requests: Vec<String>,
}

/// Handle on the realistic behaviour of one fake cluster.
#[derive(Clone)]
pub struct ApiServer {
    objects: Objects,
    inner: Arc<Mutex<Behaviour>>,
    /// The Job controller (see `jobs`).
    pub jobs: super::jobs::Jobs,
}

impl ApiServer {
    pub fn new(objects: Objects) -> Self {
        let inner = Behaviour {
            namespaces: ["default", "kube-system"].map(str::to_owned).into(),
            rollout_polls: 3,
            next_node_port: 30000,
            ..Behaviour::default()
        };
        Self {
            jobs: super::jobs::Jobs::new(objects.clone()),
            objects,
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Behaviour) -> T) -> T {
        f(&mut self.inner.lock().expect("behaviour lock"))
    }

    /// Create a namespace.
    pub fn create_namespace(&self, name: &str) {
        self.with(|b| b.namespaces.insert(name.to_owned()));
    }

    /// Put a cluster-scoped object (`storageclasses`, `priorityclasses`, `ingressclasses`).
    pub fn insert_cluster_scoped(&self, plural: &str, object: Value) {
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        self.with(|b| b.cluster.insert((plural.to_owned(), name), object));
    }

    /// How many polls a rollout takes after an apply (0: done at once).
    pub fn rollout_polls(&self, polls: i64) {
        self.with(|b| b.rollout_polls = polls);
    }

    /// Inject `fault` into the next `times` requests of `method` whose path ends with `path`,
    /// once the object at that path exists (so a wait's polls get it, not the checks before
    /// the apply).
    pub fn fault(&self, method: Method, path: &str, fault: Fault, times: usize) {
        self.with(|b| b.faults.push((method, path.to_owned(), fault, times)));
    }

    /// Every request seen, as `METHOD path?query`, in order.
    pub fn requests(&self) -> Vec<String> {
        self.with(|b| b.requests.clone())
    }

    fn namespace_exists(&self, namespace: &str) -> bool {
        self.with(|b| b.namespaces.contains(namespace))
            || self
                .objects
                .lock()
                .expect("lock")
                .keys()
                .any(|(c, _)| c.contains(&format!("/namespaces/{namespace}/")))
    }
}

pub fn status(code: u16, reason: &str, message: String, details: Value) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "details": details, "code": code});
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

fn query_map(query: Option<&str>) -> BTreeMap<String, String> {
    url_pairs(query.unwrap_or_default())
}

fn url_pairs(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.replace("%3D", "=").replace("%2C", ",")))
        .collect()
}

/// The middleware: faults first, then what the basic handler does not know.
pub async fn middleware(State(server): State<ApiServer>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let query = query_map(request.uri().query());
    let line = match request.uri().query() {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    };
    server.with(|b| b.requests.push(line));
    if server.stored(&path)
        && let Some(fault) = server.take_fault(&method, &path)
    {
        match fault {
            Fault::Hang => std::future::pending::<()>().await,
            Fault::Status(code) => {
                return status(code, "InternalError", format!("injected {code}"), json!({}));
            }
        }
    }
    let parts: Vec<String> = path.split('/').map(str::to_owned).collect();
    let apply = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
    // `/api/v1/namespaces/{ns}`: the namespace itself.
    if parts.len() == 5 && parts[3] == "namespaces" {
        return super::lifecycle::namespace(&server, &method, &parts[4], &query);
    }
    // `/apis/{group}/v1/{plural}`: the cluster-scoped classes.
    if parts.len() == 5
        && parts[1] == "apis"
        && !path.contains("/namespaces/")
        && method == Method::GET
    {
        return super::lifecycle::cluster_scoped_list(&server, &parts[4]);
    }
    // `/apis/{group}/v1/{plural}/{name}`: a cluster-scoped class.
    if parts.len() == 6 && parts[1] == "apis" && !path.contains("/namespaces/") {
        return super::lifecycle::cluster_scoped(&server, &method, &parts[4], &parts[5]);
    }
    let Some(ns_at) = parts.iter().position(|p| p == "namespaces") else {
        return next.run(request).await;
    };
    let namespace = parts.get(ns_at + 1).cloned().unwrap_or_default();
    let collection = parts[..(ns_at + 3).min(parts.len())].join("/");
    let name = parts.get(ns_at + 3).cloned();
    let sub = parts.get(ns_at + 4).cloned();
    if server
        .jobs
        .serves(&method, &collection, name.as_deref(), sub.as_deref())
    {
        if method == Method::POST && !server.namespace_exists(&namespace) {
            return namespace_missing(&namespace);
        }
        return server
            .jobs
            .serve(method, collection, name, query, request)
            .await;
    }
    match (&method, name, sub) {
        (&Method::PATCH, Some(name), None) if apply => {
            if !server.namespace_exists(&namespace) {
                return namespace_missing(&namespace);
            }
            let Ok(body) = to_bytes(request.into_body(), 16 << 20).await else {
                return status(400, "BadRequest", "unreadable body".into(), json!({}));
            };
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "body is not JSON".into(), json!({}));
            };
            super::ssa::apply(&server, &collection, &name, patch, &query)
        }
        (&Method::POST, None, None) if !server.namespace_exists(&namespace) => {
            namespace_missing(&namespace)
        }
        (&Method::GET, Some(name), None) => {
            let response = next.run(request).await;
            if response.status() != StatusCode::OK {
                return response;
            }
            match super::rollout::advance(&server, &collection, &name) {
                Some(object) => axum::Json(object).into_response(),
                None => response,
            }
        }
        _ => next.run(request).await,
    }
}

pub fn namespace_missing(namespace: &str) -> Response {
    status(
        404,
        "NotFound",
        format!("namespaces \"{namespace}\" not found"),
        json!({"name": namespace, "kind": "namespaces"}),
    )
}

impl ApiServer {
    fn take_fault(&self, method: &Method, path: &str) -> Option<Fault> {
        self.with(|b| {
            let hit = b
                .faults
                .iter_mut()
                .find(|(m, p, _, left)| m == method && path.ends_with(p.as_str()) && *left > 0)?;
            hit.3 -= 1;
            Some(hit.2.clone())
        })
    }

    /// Whether `path` names a stored object.
    fn stored(&self, path: &str) -> bool {
        let Some((collection, name)) = path.rsplit_once('/') else {
            return false;
        };
        let key = (collection.to_owned(), name.to_owned());
        self.objects.lock().expect("lock").contains_key(&key)
    }

    pub(super) fn objects(&self) -> &Objects {
        &self.objects
    }

    pub(super) fn namespaces_mut<T>(&self, f: impl FnOnce(&mut BTreeSet<String>) -> T) -> T {
        self.with(|b| f(&mut b.namespaces))
    }

    pub(super) fn class(&self, plural: &str, name: &str) -> Option<Value> {
        self.with(|b| {
            b.cluster
                .get(&(plural.to_owned(), name.to_owned()))
                .cloned()
        })
    }

    pub(super) fn classes(&self, plural: &str) -> Vec<Value> {
        self.with(|b| {
            b.cluster
                .iter()
                .filter(|((p, _), _)| p == plural)
                .map(|(_, o)| o.clone())
                .collect()
        })
    }

    pub(super) fn start_rollout(&self, key: (String, String)) -> i64 {
        self.with(|b| {
            let polls = b.rollout_polls;
            b.progress.insert(key, polls);
            polls
        })
    }

    /// Take one poll off a rollout in progress; `Some(remaining)` when one was in progress.
    pub(super) fn tick(&self, key: &(String, String)) -> Option<(i64, i64)> {
        self.with(|b| {
            let total = b.rollout_polls;
            let left = b.progress.get_mut(key)?;
            *left -= 1;
            let now = *left;
            if now <= 0 {
                b.progress.remove(key);
            }
            Some((now.max(0), total))
        })
    }

    pub(super) fn allocate_node_port(&self, taken: &BTreeSet<i64>) -> i64 {
        self.with(|b| {
            while taken.contains(&b.next_node_port) {
                b.next_node_port += 1;
            }
            b.next_node_port += 1;
            b.next_node_port - 1
        })
    }
}
