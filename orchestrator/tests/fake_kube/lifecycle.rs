//! Namespaces and cluster-scoped classes in the fake API server: a namespace is 404
//! `namespaces "x" not found` until created (by apply, or by the test), and StorageClasses,
//! PriorityClasses and IngressClasses exist only when the test put them there.

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::apiserver::{ApiServer, namespace_missing, status};

/// `GET` / `PATCH` (apply) `/api/v1/namespaces/{name}`.
pub fn namespace(
    server: &ApiServer,
    method: &Method,
    name: &str,
    query: &BTreeMap<String, String>,
) -> Response {
    let object = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": format!("ns-{name}"),
                     "labels": {"kubernetes.io/metadata.name": name},
                     "managedFields": [{"manager": query.get("fieldManager").cloned().unwrap_or_default(),
                                        "operation": "Apply", "apiVersion": "v1"}]},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
    match *method {
        Method::GET if server.namespaces_mut(|n| n.contains(name)) => {
            axum::Json(object).into_response()
        }
        Method::GET => namespace_missing(name),
        Method::PATCH => {
            if query.get("dryRun").map(String::as_str) != Some("All") {
                server.namespaces_mut(|n| n.insert(name.to_owned()));
            }
            axum::Json(object).into_response()
        }
        _ => status(
            405,
            "MethodNotAllowed",
            format!("{method} namespace"),
            json!({}),
        ),
    }
}

/// `GET /apis/{group}/v1/{plural}/{name}` for cluster-scoped classes.
/// `GET /apis/{group}/v1/{plural}`: every class of `plural`.
pub fn cluster_scoped_list(server: &ApiServer, plural: &str) -> Response {
    let kind = match plural {
        "storageclasses" => "StorageClassList",
        "priorityclasses" => "PriorityClassList",
        "ingressclasses" => "IngressClassList",
        _ => {
            return status(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({plural})"),
                json!({}),
            );
        }
    };
    axum::Json(
        json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "5000"},
                      "items": server.classes(plural)}),
    )
    .into_response()
}

pub fn cluster_scoped(server: &ApiServer, method: &Method, plural: &str, name: &str) -> Response {
    if *method != Method::GET {
        return status(
            405,
            "MethodNotAllowed",
            format!("{method} {plural}"),
            json!({}),
        );
    }
    let group = match plural {
        "storageclasses" => "storage.k8s.io",
        "priorityclasses" => "scheduling.k8s.io",
        "ingressclasses" => "networking.k8s.io",
        _ => {
            return status(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({plural})"),
                json!({}),
            );
        }
    };
    match server.class(plural, name) {
        Some(object) => axum::Json(object).into_response(),
        None => status(
            404,
            "NotFound",
            format!("{plural}.{group} \"{name}\" not found"),
            json!({"name": name, "group": group, "kind": plural}),
        ),
    }
}
