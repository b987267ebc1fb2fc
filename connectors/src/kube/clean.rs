//! Stripping what belongs to the source cluster from an exported manifest.
//!
//! What remains is what a person would have written: the API server's bookkeeping (uid,
//! resourceVersion, managedFields, status…), allocations that the target must make afresh
//! (clusterIP, PVC volume binding, node placement) and labels the Job controller generated
//! would all make the apply fail or pin the copy to the old cluster. Finalizers of operators
//! (anything outside `kubernetes.io`) are dropped with a warning: an operator the target does
//! not run would leave the copy undeletable. A hand-made service-account token Secret (the
//! only kind since 1.24) is kept without `token`, `ca.crt`, `namespace` and the account's uid,
//! which the target's token controller fills in for its own account.

use serde_json::{Map, Value};

use super::clean_service::{ExplicitNodePorts, clean_service};

/// Server-set metadata fields dropped from every manifest.
const METADATA_FIELDS: &[&str] = &[
    "uid",
    "resourceVersion",
    "managedFields",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
    "ownerReferences",
];

/// Annotations written by controllers or kubectl, never by the author.
const ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
    "autoscaling.alpha.kubernetes.io/conditions",
    "autoscaling.alpha.kubernetes.io/current-metrics",
];

/// Labels the Job controller adds to its pods and selector.
const JOB_LABELS: &[&str] = &[
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "job-name",
    "batch.kubernetes.io/job-name",
];

/// Remove the source cluster's state from `object`, in place. Idempotent.
pub fn clean(object: &mut Value) {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let explicit_node_ports = ExplicitNodePorts::of(object);
    if let Some(root) = object.as_object_mut() {
        root.remove("status");
        if let Some(metadata) = root.get_mut("metadata") {
            clean_metadata(metadata);
        }
    }
    match kind.as_str() {
        "Service" => clean_service(object, &explicit_node_ports),
        "Secret" => clean_token_secret(object),
        "PersistentVolumeClaim" => remove(object, "/spec", "volumeName"),
        "Job" => clean_job(object),
        "ServiceAccount" => clean_service_account(object),
        _ => {}
    }
    for template in pod_templates_mut(object, &kind) {
        remove(template, "/spec", "nodeName");
        remove_null(template, "/metadata", "creationTimestamp");
    }
    if kind == "CronJob"
        && let Some(job) = object.pointer_mut("/spec/jobTemplate")
    {
        remove_null(job, "/metadata", "creationTimestamp");
    }
    if kind == "StatefulSet"
        && let Some(Value::Array(claims)) = object.pointer_mut("/spec/volumeClaimTemplates")
    {
        for claim in claims {
            if let Some(claim) = claim.as_object_mut() {
                claim.remove("status");
            }
            remove_null(claim, "/metadata", "creationTimestamp");
        }
    }
}

fn clean_metadata(metadata: &mut Value) {
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    for field in METADATA_FIELDS {
        metadata.remove(*field);
    }
    if let Some(Value::Array(finalizers)) = metadata.get_mut("finalizers") {
        finalizers.retain(|f| {
            let name = f.as_str().unwrap_or_default();
            let keep = is_kubernetes_finalizer(name);
            if !keep {
                tracing::warn!(finalizer = name, "finalizer dropped: an operator the target may not run would block deletion there");
            }
            keep
        });
        if finalizers.is_empty() {
            metadata.remove("finalizers");
        }
    }
    if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
        for annotation in ANNOTATIONS {
            annotations.remove(*annotation);
        }
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
}

/// Finalizers Kubernetes itself owns: `kubernetes.io/…`, `*.kubernetes.io/…`, and the
/// unprefixed built-ins (`foregroundDeletion`, `orphan`, `kubernetes`).
fn is_kubernetes_finalizer(name: &str) -> bool {
    match name.split_once('/') {
        None => true,
        Some((domain, _)) => domain == "kubernetes.io" || domain.ends_with(".kubernetes.io"),
    }
}

/// The data and annotations the token controller writes into a token Secret.
const TOKEN_DATA: &[&str] = &["token", "ca.crt", "namespace"];
const TOKEN_ANNOTATIONS: &[&str] = &["kubernetes.io/service-account.uid"];

fn clean_token_secret(secret: &mut Value) {
    if secret.get("type").and_then(Value::as_str) != Some("kubernetes.io/service-account-token") {
        return;
    }
    for (pointer, fields) in [
        ("/data", TOKEN_DATA),
        ("/metadata/annotations", TOKEN_ANNOTATIONS),
    ] {
        if let Some(Value::Object(map)) = secret.pointer_mut(pointer) {
            for field in fields {
                map.remove(*field);
            }
        }
    }
}

/// Whether `secret` is a token Secret the token controller generated itself (clusters before
/// 1.24: `<account>-token-<5 chars>`), as opposed to one made by hand. Generated ones are not
/// exported: the target makes its own; hand-made ones are, cleaned of their token.
pub(crate) fn is_generated_token_secret(secret: &Value) -> bool {
    let text = |p: &str| secret.pointer(p).and_then(Value::as_str);
    if text("/type") != Some("kubernetes.io/service-account-token") {
        return false;
    }
    let account =
        text("/metadata/annotations/kubernetes.io~1service-account.name").unwrap_or_default();
    let name = text("/metadata/name").unwrap_or_default();
    name.strip_prefix(&format!("{account}-token-"))
        .is_some_and(|suffix| {
            suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

fn clean_job(job: &mut Value) {
    // With manualSelector the author wrote the selector; otherwise the controller generated it.
    let manual = job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true);
    if manual {
        return;
    }
    remove(job, "/spec", "selector");
    for labels in ["/metadata/labels", "/spec/template/metadata/labels"] {
        if let Some(Value::Object(labels)) = job.pointer_mut(labels) {
            for label in JOB_LABELS {
                labels.remove(*label);
            }
        }
    }
}

fn clean_service_account(account: &mut Value) {
    // Older clusters list the auto-created token Secret here; it is not exported.
    let prefix = format!(
        "{}-token-",
        account
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    if let Some(Value::Array(secrets)) = account.get_mut("secrets") {
        secrets.retain(|s| {
            !s.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(&prefix))
        });
        if secrets.is_empty()
            && let Some(account) = account.as_object_mut()
        {
            account.remove("secrets");
        }
    }
}

/// The pod templates inside a workload manifest (a Pod's own spec counts as one).
pub(crate) fn pod_templates_mut<'a>(object: &'a mut Value, kind: &str) -> Vec<&'a mut Value> {
    let pointer = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet" => "/spec/template",
        "CronJob" => "/spec/jobTemplate/spec/template",
        "Pod" => "",
        _ => return Vec::new(),
    };
    object.pointer_mut(pointer).into_iter().collect()
}

fn remove(object: &mut Value, pointer: &str, field: &str) {
    if let Some(Value::Object(map)) = object.pointer_mut(pointer) {
        map.remove(field);
    }
}

fn remove_null(object: &mut Value, pointer: &str, field: &str) {
    if let Some(Value::Object(map)) = object.pointer_mut(pointer) {
        remove_if_null(map, field);
    }
}

fn remove_if_null(map: &mut Map<String, Value>, field: &str) {
    if map.get(field).is_some_and(Value::is_null) {
        map.remove(field);
    }
}

#[cfg(test)]
#[path = "clean_tests.rs"]
mod tests;
