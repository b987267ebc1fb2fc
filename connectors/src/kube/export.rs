//! Reading a workload's manifests from the source cluster.
//!
//! Every configured kind is listed in the workload's namespace with its label selector (in
//! pages, so a namespace with thousands of ConfigMaps does not arrive in one answer), the
//! plan's explicit resources are fetched by name, and what belongs to the cluster rather
//! than to the workload is skipped: service-account token Secrets, the `kube-root-ca.crt`
//! ConfigMap, the `default` ServiceAccount, finished Jobs (applied at the target they would
//! run again), and objects another object controls (a CronJob's Jobs), since the controller
//! is exported instead and recreates them. A controlled object whose controller is not
//! exported is skipped with a warning: nothing would recreate it at the target.

use std::collections::BTreeSet;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::kinds::{DEFAULT_KINDS, resolve_kind};
use super::{KubeError, Resource, ResourceId, clean};

/// Page size for list calls.
const PAGE: u32 = 500;

/// Export the workload's resources from the source cluster, cleaned of cluster state and
/// ordered for apply (configuration before the workloads that use it). With neither a
/// selector nor explicit resources, every resource of the configured kinds in the namespace
/// is exported; with only explicit resources, only those.
pub async fn export(
    client: &Client,
    workload: &plans::KubernetesWorkload,
) -> Result<Vec<Resource>, KubeError> {
    let namespace = workload.namespace.as_str();
    let mut exported: Vec<Resource> = Vec::new();
    if !workload.selector.is_empty() || workload.resources.is_empty() {
        let selector = label_selector(workload.selector.iter());
        let mut listed = Vec::new();
        for kind in kinds(client, &workload.kinds).await? {
            listed.extend(list_all(client, namespace, &kind, &selector).await?);
        }
        let uids: BTreeSet<&str> = listed
            .iter()
            .filter_map(|o| o.pointer("/metadata/uid").and_then(Value::as_str))
            .collect();
        let mut kept = Vec::new();
        for object in &listed {
            let kind = object["kind"].as_str().unwrap_or_default();
            match skip_reason(object, true) {
                Some(reason) if reason == CONTROLLED && !controller_listed(object, &uids) => {
                    tracing::warn!(kind, name = %object_name(object), "not exported: its controller is not part of this workload, so nothing will recreate it at the target");
                }
                Some(reason) => {
                    tracing::info!(kind, name = %object_name(object), reason, "not exported");
                }
                None => kept.push(object.clone()),
            }
        }
        for object in kept {
            exported.push(Resource::from_object(object, namespace)?);
        }
    }
    for wanted in &workload.resources {
        let kind = resolve_kind(client, &wanted.kind).await?;
        if exported.iter().any(|r| {
            r.kind == kind.kind && r.api_version == kind.api_version && r.name == wanted.name
        }) {
            continue;
        }
        let object = get_named(client, namespace, &kind, &wanted.name).await?;
        if let Some(reason) = skip_reason(&object, false) {
            tracing::warn!(kind = %kind.kind, name = %wanted.name, reason, "explicit resource not exported");
            continue;
        }
        exported.push(Resource::from_object(object, namespace)?);
    }
    for resource in &mut exported {
        clean(&mut resource.object);
    }
    exported.sort_by_key(|r| (apply_rank(r), r.name.clone()));
    Ok(exported)
}

/// `k1=v1,k2=v2`, the label selector syntax of the list API.
pub(crate) fn label_selector<'a>(labels: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    labels
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn kinds(client: &Client, configured: &[String]) -> Result<Vec<ApiResource>, KubeError> {
    if configured.is_empty() {
        return Ok(DEFAULT_KINDS.iter().map(|k| k.api_resource()).collect());
    }
    let mut resolved = Vec::with_capacity(configured.len());
    for kind in configured {
        resolved.push(resolve_kind(client, kind).await?);
    }
    Ok(resolved)
}

pub(crate) async fn list_all(
    client: &Client,
    namespace: &str,
    kind: &ApiResource,
    selector: &str,
) -> Result<Vec<Value>, KubeError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, kind);
    let mut params = ListParams::default().limit(PAGE);
    if !selector.is_empty() {
        params = params.labels(selector);
    }
    let mut objects = Vec::new();
    loop {
        let page = api.list(&params).await.map_err(|source| KubeError::Api {
            resource: format!("{} list in {namespace}", kind.plural),
            source,
        })?;
        for item in page.items {
            objects.push(to_manifest(item, kind)?);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(objects),
        }
    }
}

pub(crate) async fn get_named(
    client: &Client,
    namespace: &str,
    kind: &ApiResource,
    name: &str,
) -> Result<Value, KubeError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, kind);
    let id = ResourceId {
        api_version: kind.api_version.clone(),
        kind: kind.kind.clone(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    };
    let object = api
        .get(name)
        .await
        .map_err(|e| KubeError::from_api(&id, e))?;
    to_manifest(object, kind)
}

/// List items carry no `apiVersion`/`kind`; a manifest must.
fn to_manifest(object: DynamicObject, kind: &ApiResource) -> Result<Value, KubeError> {
    let name = object.name_any();
    let mut value = serde_json::to_value(object).map_err(|e| KubeError::Malformed {
        resource: format!("{} {name}", kind.kind),
        message: e.to_string(),
    })?;
    if let Value::Object(map) = &mut value {
        map.insert(
            "apiVersion".to_owned(),
            Value::String(kind.api_version.clone()),
        );
        map.insert("kind".to_owned(), Value::String(kind.kind.clone()));
    }
    Ok(value)
}

/// Why an object is not part of the workload, if it is not.
fn skip_reason(object: &Value, listed: bool) -> Option<&'static str> {
    let kind = object.get("kind").and_then(Value::as_str);
    let name = object_name(object);
    match (kind, name) {
        (Some("Secret"), _) if super::clean::is_generated_token_secret(object) => {
            Some("generated service-account token Secret (the target cluster issues its own)")
        }
        (Some("ConfigMap"), "kube-root-ca.crt") => Some("cluster CA bundle, published per cluster"),
        (Some("ServiceAccount"), "default") => {
            Some("default ServiceAccount, created per namespace")
        }
        (Some("Job"), _) if job_finished(object) => {
            Some("finished Job (applied at the target it would run again)")
        }
        _ if listed && has_controller(object) => Some(CONTROLLED),
        _ => None,
    }
}

const CONTROLLED: &str = "controlled by another exported object, which recreates it";

/// Whether the object's controller is among the listed objects (by uid).
fn controller_listed(object: &Value, uids: &BTreeSet<&str>) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .any(|o| {
            o.get("uid")
                .and_then(Value::as_str)
                .is_some_and(|u| uids.contains(u))
        })
}

/// Whether a Job has finished (succeeded or failed): it runs nothing any more, and applied
/// elsewhere it would run again. Follows the Job controller: a `Complete` or `Failed`
/// condition, a `completionTime`, or as many successes as `completions` with none active.
pub(crate) fn job_finished(job: &Value) -> bool {
    let status = &job["status"];
    let terminal = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True"
        });
    let succeeded = status["succeeded"].as_i64().unwrap_or(0);
    let wanted = job["spec"]["completions"].as_i64().unwrap_or(1);
    let active = status["active"].as_i64().unwrap_or(0);
    terminal || status.get("completionTime").is_some() || (succeeded >= wanted && active == 0)
}

/// Whether a Pod has stopped for good (`Succeeded` or `Failed`): such pods linger until
/// garbage-collected but write nothing.
pub(crate) fn pod_finished(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

fn has_controller(object: &Value) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|owners| {
            owners
                .iter()
                .any(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

fn object_name(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Position in apply order: built-ins in `DEFAULT_KINDS` order, everything else after.
fn apply_rank(resource: &Resource) -> usize {
    DEFAULT_KINDS
        .iter()
        .position(|k| {
            k.kind == resource.kind && k.api_resource().api_version == resource.api_version
        })
        .unwrap_or(DEFAULT_KINDS.len())
}
