//! A server-side dry run of a deploy, before the point of no return.
//!
//! `freeze` stops the source; everything that can make the later `deploy` fail should show
//! up before that, so `plan show` and the pre-flight of a stage with `deploy` call
//! [`dry_run`], which changes nothing at the target and reports every problem at once:
//! - each manifest goes through a forced server-side apply with `dryRun=All`, so admission,
//!   schema validation, immutable fields and node-port allocation answer as for real;
//! - the cluster-scoped objects the manifests name must exist: the StorageClass of each
//!   claim, the PriorityClass of each pod template, the IngressClass of each Ingress, and
//!   the CRD of each custom kind (its kind must be served);
//! - an existing object relocate did not create is refused unless the workload says
//!   `adopt: true`;
//! - a missing namespace is reported in the server's words, or, with
//!   `createNamespace: true`, its creation is dry-run and the objects inside it are checked
//!   only as far as the server can without it (the API cannot dry-run into a namespace that
//!   does not exist yet).

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::apply::{ensure_namespace, namespaces, refuse_foreign};
use super::clean::pod_templates_mut;
use super::kinds::resolve_manifest_kind;
use super::{ApplyOptions, FIELD_MANAGER, KubeError, Resource};

/// PriorityClasses every cluster has.
const BUILTIN_PRIORITY_CLASSES: &[&str] = &["system-cluster-critical", "system-node-critical"];

/// What a clean dry run checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRunReport {
    /// Manifests the server accepted in the dry run.
    pub accepted: usize,
    /// Cluster-scoped objects found (`StorageClass fast-zrh`, …).
    pub found: Vec<String>,
    /// What could not be checked, and why.
    pub notices: Vec<String>,
}

/// A cluster-scoped object a manifest depends on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ClusterRef {
    kind: &'static str,
    group: &'static str,
    plural: &'static str,
    name: String,
    used_by: String,
}

/// Dry-run `resources` at the target; `Err(DryRunFailed)` lists every problem found.
pub async fn dry_run(
    client: &Client,
    resources: &[Resource],
    options: ApplyOptions,
) -> Result<DryRunReport, KubeError> {
    let mut report = DryRunReport::default();
    let mut problems = Vec::new();
    let mut absent_namespaces = Vec::new();
    for namespace in namespaces(resources) {
        if !namespace_exists(client, namespace, &mut report).await {
            if options.create_namespace {
                match ensure_namespace(client, namespace, true).await {
                    Ok(()) => report.notices.push(format!(
                        "namespace {namespace} will be created; the objects in it cannot be dry-run before it exists"
                    )),
                    Err(e) => problems.push(e.to_string()),
                }
            } else {
                problems.push(format!(
                    "namespaces \"{namespace}\" not found (create it first, or set `createNamespace: true` on the workload)"
                ));
            }
            absent_namespaces.push(namespace.to_owned());
        }
    }
    for reference in cluster_refs(resources) {
        check_ref(client, &reference, &mut report, &mut problems).await;
    }
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    for resource in resources {
        let id = resource.id();
        let kind = match resolve_manifest_kind(client, &resource.api_version, &resource.kind).await
        {
            Ok(kind) => kind,
            Err(e) => {
                problems.push(format!(
                    "{id}: {e} (is its CustomResourceDefinition installed at the target?)"
                ));
                continue;
            }
        };
        if absent_namespaces.contains(&resource.namespace) {
            continue;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &resource.namespace, &kind);
        if !options.adopt
            && let Err(e) = refuse_foreign(&api, &id).await
        {
            problems.push(e.to_string());
            continue;
        }
        match api
            .patch(&resource.name, &params, &Patch::Apply(&resource.object))
            .await
        {
            Ok(_) => report.accepted += 1,
            Err(e) => problems.push(KubeError::from_api(&id, e).to_string()),
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(KubeError::DryRunFailed { problems })
    }
}

/// Whether `namespace` exists; an answer other than 200 or 404 (e.g. 403: no right to read
/// namespaces) is noted and treated as existing, and the dry-run applies will tell.
async fn namespace_exists(client: &Client, namespace: &str, report: &mut DryRunReport) -> bool {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
    );
    match api.get_opt(namespace).await {
        Ok(found) => found.is_some(),
        Err(e) => {
            report
                .notices
                .push(format!("namespace {namespace} not checked: {e}"));
            true
        }
    }
}

async fn check_ref(
    client: &Client,
    reference: &ClusterRef,
    report: &mut DryRunReport,
    problems: &mut Vec<String>,
) {
    let gvk = GroupVersionKind::gvk(reference.group, "v1", reference.kind);
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, reference.plural),
    );
    let what = format!("{} {}", reference.kind, reference.name);
    match api.get_opt(&reference.name).await {
        Ok(Some(_)) => report.found.push(what),
        Ok(None) => problems.push(format!(
            "{what} (used by {}) does not exist at the target; create it or map it in the transform",
            reference.used_by
        )),
        Err(e) => report.notices.push(format!("{what} not checked: {e}")),
    }
}

/// Every cluster-scoped object `resources` name, once each.
pub(crate) fn cluster_refs(resources: &[Resource]) -> Vec<ClusterRef> {
    let mut refs: Vec<ClusterRef> = Vec::new();
    let mut add = |kind, group, plural, name: Option<&str>, used_by: &Resource| {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return;
        };
        if refs.iter().any(|r| r.kind == kind && r.name == name) {
            return;
        }
        refs.push(ClusterRef {
            kind,
            group,
            plural,
            name: name.to_owned(),
            used_by: used_by.id().to_string(),
        });
    };
    for resource in resources {
        let object = &resource.object;
        let claims: Vec<&Value> = match resource.kind.as_str() {
            "PersistentVolumeClaim" => vec![object],
            "StatefulSet" => object
                .pointer("/spec/volumeClaimTemplates")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for claim in claims {
            let class = claim
                .pointer("/spec/storageClassName")
                .or_else(|| {
                    claim.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                })
                .and_then(Value::as_str);
            add(
                "StorageClass",
                "storage.k8s.io",
                "storageclasses",
                class,
                resource,
            );
        }
        if resource.kind == "Ingress" {
            let class = object
                .pointer("/spec/ingressClassName")
                .and_then(Value::as_str);
            add(
                "IngressClass",
                "networking.k8s.io",
                "ingressclasses",
                class,
                resource,
            );
        }
        let mut copy = object.clone();
        for template in pod_templates_mut(&mut copy, &resource.kind) {
            let class = template
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .filter(|c| !BUILTIN_PRIORITY_CLASSES.contains(c));
            add(
                "PriorityClass",
                "scheduling.k8s.io",
                "priorityclasses",
                class,
                resource,
            );
        }
    }
    refs
}
