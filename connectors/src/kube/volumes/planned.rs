//! Which claims hold a workload's data: every exported PersistentVolumeClaim, and the
//! claims a StatefulSet's `volumeClaimTemplates` make, one per template and ordinal
//! (`<template>-<statefulset>-<ordinal>`, the controller's naming), for the replicas
//! the set had before any freeze.
//!
//! The template claims are written out as manifests of their own: the target gets them
//! before its StatefulSet exists, so the restore can fill them and the controller,
//! finding claims of the names it would create, adopts them instead of making empty
//! ones. Their labels are the template's plus the set's selector, as the controller
//! sets them.

use serde_json::{Map, Value, json};

use std::collections::BTreeMap;

use super::super::{KubeError, Resource};
use super::claims::parse_quantity;
use super::placement::Scheduling;

/// A claim whose data moves.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedClaim {
    /// Its name (the same at the source and the target).
    pub name: String,
    /// Its manifest, as the target gets it.
    pub resource: Resource,
    /// The StatefulSet whose template makes it, if any.
    pub statefulset: Option<String>,
    /// Bytes it requests (`spec.resources.requests.storage`), when it says.
    pub request: Option<u64>,
    /// The node constraints of the first pod template mounting it (none if no template
    /// does): its mover must bind it where the workload can run.
    pub scheduling: Scheduling,
    /// A claim one pod mounts together with this one (the first of them by name): this
    /// claim's mover runs after that claim's and on its node, so both bind in one zone.
    /// `None` for the first claim of such a set, for a claim mounted alone, and for a
    /// `ReadWriteMany`/`ReadOnlyMany` claim (not bound to a node).
    pub colocated_with: Option<String>,
}

/// The claims of `resources` (exported, or transformed for the target), by name.
pub fn planned_claims(resources: &[Resource]) -> Result<Vec<PlannedClaim>, KubeError> {
    let mut claims: Vec<PlannedClaim> = Vec::new();
    for r in resources
        .iter()
        .filter(|r| r.kind == "PersistentVolumeClaim")
    {
        claims.push(PlannedClaim {
            name: r.name.clone(),
            request: request_of(&r.object),
            resource: r.clone(),
            statefulset: None,
            scheduling: Scheduling::default(),
            colocated_with: None,
        });
    }
    for set in resources.iter().filter(|r| r.kind == "StatefulSet") {
        let templates = set
            .object
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let replicas = set
            .object
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        // `spec.ordinals.start` (StatefulSetStartOrdinal, GA in 1.31) shifts the names.
        let start = set
            .object
            .pointer("/spec/ordinals/start")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let selector = set
            .object
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for template in &templates {
            let Some(base) = template.pointer("/metadata/name").and_then(Value::as_str) else {
                return Err(KubeError::Malformed {
                    resource: format!("StatefulSet {}", set.name),
                    message: "a volumeClaimTemplate has no metadata.name".into(),
                });
            };
            for ordinal in start..start + replicas {
                let name = format!("{base}-{}-{ordinal}", set.name);
                if claims.iter().any(|c| c.name == name) {
                    continue;
                }
                let object = template_claim(template, &name, &set.namespace, &selector);
                claims.push(PlannedClaim {
                    name,
                    request: request_of(&object),
                    resource: Resource::from_object(object, &set.namespace)?,
                    statefulset: Some(set.name.clone()),
                    scheduling: Scheduling::default(),
                    colocated_with: None,
                });
            }
        }
    }
    claims.sort_by(|a, b| a.name.cmp(&b.name));
    // A pod template mounting a claim the workload does not select would start at the
    // target on an empty claim, or on none: refused here, before anything moves.
    for r in resources {
        let template = match r.kind.as_str() {
            "CronJob" => r.object.pointer("/spec/jobTemplate/spec/template/spec"),
            _ => r.object.pointer("/spec/template/spec"),
        };
        let mounted = template
            .and_then(|t| t.get("volumes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName"))
            .filter_map(Value::as_str);
        for claim in mounted {
            if !claims.iter().any(|c| c.name == claim) {
                return Err(KubeError::Malformed {
                    resource: format!("{} {}", r.kind, r.name),
                    message: format!(
                        "its pods mount claim {claim}, which the workload does not select: add the claim's labels to the selector or list it in `resources`, so its data moves too"
                    ),
                });
            }
        }
    }
    place(resources, &mut claims)?;
    Ok(claims)
}

/// The claims each pod mounts: a StatefulSet's pod `i` its template claims of ordinal
/// `i` and the claims its template names; any other pod the claims its template names.
fn pods_claims(r: &Resource) -> Vec<Vec<String>> {
    let template = match r.kind.as_str() {
        "CronJob" => r.object.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => r.object.pointer("/spec/template/spec"),
    };
    let named: Vec<String> = template
        .and_then(|t| t.get("volumes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName"))
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if r.kind != "StatefulSet" {
        return vec![named];
    }
    let o = &r.object;
    let replicas = o
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let start = o
        .pointer("/spec/ordinals/start")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let templates: Vec<&str> = o
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    (start..start + replicas)
        .map(|ordinal| {
            let mut pod: Vec<String> = templates
                .iter()
                .map(|t| format!("{t}-{}-{ordinal}", r.name))
                .collect();
            pod.extend(named.iter().cloned());
            pod
        })
        .collect()
}

/// Each claim's scheduling (its first mounting template's) and the claim it must be
/// restored next to (see [`PlannedClaim::colocated_with`]).
fn place(resources: &[Resource], claims: &mut [PlannedClaim]) -> Result<(), KubeError> {
    let shared = |c: &PlannedClaim| {
        c.resource
            .object
            .pointer("/spec/accessModes")
            .and_then(Value::as_array)
            .is_some_and(|modes| {
                modes
                    .iter()
                    .any(|m| m == "ReadWriteMany" || m == "ReadOnlyMany")
            })
    };
    let node_bound: BTreeMap<String, bool> = claims
        .iter()
        .map(|c| (c.name.clone(), !shared(c)))
        .collect();
    // Union-find over the claims one pod mounts together; the root is the smallest name.
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    fn root(parent: &BTreeMap<String, String>, claim: &str) -> String {
        let mut at = claim.to_owned();
        while let Some(up) = parent.get(&at).filter(|up| **up != at) {
            at = up.clone();
        }
        at
    }
    let mut scheduled: BTreeMap<String, Scheduling> = BTreeMap::new();
    for r in resources {
        let template = match r.kind.as_str() {
            "CronJob" => r.object.pointer("/spec/jobTemplate/spec/template/spec"),
            _ => r.object.pointer("/spec/template/spec"),
        };
        let Some(template) = template else { continue };
        let pods = pods_claims(r);
        if pods.iter().all(Vec::is_empty) {
            continue;
        }
        let scheduling = Scheduling::of_pod_spec(template, &format!("{} {}", r.kind, r.name))?;
        for pod in pods {
            for claim in &pod {
                scheduled
                    .entry(claim.clone())
                    .or_insert_with(|| scheduling.clone());
            }
            let bound: Vec<&String> = pod
                .iter()
                .filter(|c| node_bound.get(*c) == Some(&true))
                .collect();
            for pair in bound.windows(2) {
                let (a, b) = (root(&parent, pair[0]), root(&parent, pair[1]));
                if a != b {
                    let (low, high) = if a < b { (a, b) } else { (b, a) };
                    parent.insert(high, low);
                }
            }
        }
    }
    for claim in claims.iter_mut() {
        if let Some(s) = scheduled.remove(&claim.name) {
            claim.scheduling = s;
        }
        let leader = root(&parent, &claim.name);
        claim.colocated_with = (leader != claim.name).then_some(leader);
    }
    Ok(())
}

fn template_claim(
    template: &Value,
    name: &str,
    namespace: &str,
    selector: &Map<String, Value>,
) -> Value {
    let mut labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.extend(selector.clone());
    let mut metadata = json!({"name": name, "namespace": namespace, "labels": labels});
    if let Some(annotations) = template.pointer("/metadata/annotations") {
        metadata["annotations"] = annotations.clone();
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

fn request_of(claim: &Value) -> Option<u64> {
    claim
        .pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(parse_quantity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(object: Value) -> Resource {
        Resource::from_object(object, "analysis").expect("manifest")
    }

    #[test]
    fn a_statefulset_makes_one_claim_per_template_and_ordinal() {
        let set = resource(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "analysis"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "analyzer"}},
                     "volumeClaimTemplates": [
                        {"metadata": {"name": "data", "labels": {"tier": "db"}},
                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "zrh-ssd",
                                  "resources": {"requests": {"storage": "1Gi"}}}},
                        {"metadata": {"name": "wal"}, "spec": {}}]}
        }));
        let cache = resource(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "cache", "namespace": "analysis"},
            "spec": {"resources": {"requests": {"storage": "500Mi"}}}
        }));
        let claims = planned_claims(&[set, cache]).expect("claims");
        let names: Vec<&str> = claims.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["cache", "data-db-0", "data-db-1", "wal-db-0", "wal-db-1"]
        );
        let data = &claims[1];
        assert_eq!(data.statefulset.as_deref(), Some("db"));
        assert_eq!(data.request, Some(1 << 30));
        assert_eq!(
            data.resource.object["metadata"]["labels"],
            json!({"tier": "db", "app": "analyzer"})
        );
        assert_eq!(data.resource.object["spec"]["storageClassName"], "zrh-ssd");
        assert_eq!(data.resource.namespace, "analysis");
        assert_eq!(claims[0].request, Some(500 << 20));
        assert_eq!(claims[0].statefulset, None);
    }

    #[test]
    fn an_exported_claim_of_a_template_name_is_not_planned_twice() {
        let set = resource(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "analysis"},
            "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}
        }));
        let exported = resource(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-db-0", "namespace": "analysis"}, "spec": {}
        }));
        let claims = planned_claims(&[set, exported]).expect("claims");
        assert_eq!(claims.len(), 1, "{claims:?}");
        assert_eq!(claims[0].statefulset, None, "the exported manifest is kept");
    }

    #[test]
    fn a_pod_mounting_an_unselected_claim_is_refused_naming_both() {
        let api = resource(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "analysis"},
            "spec": {"template": {"spec": {"volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "api-cache"}}]}}}
        }));
        let err = planned_claims(&[api]).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("Deployment api") && text.contains("claim api-cache"),
            "{text}"
        );
    }

    #[test]
    fn a_statefulset_with_a_start_ordinal_names_its_claims_from_it() {
        let set = resource(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "analysis"},
            "spec": {"replicas": 2, "ordinals": {"start": 5},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}
        }));
        let names: Vec<String> = planned_claims(&[set])
            .expect("claims")
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["data-db-5", "data-db-6"]);
    }

    #[test]
    fn a_template_without_a_name_is_an_error() {
        let set = resource(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "analysis"},
            "spec": {"volumeClaimTemplates": [{"spec": {}}]}
        }));
        let err = planned_claims(&[set]).expect_err("refused");
        assert!(err.to_string().contains("no metadata.name"), "{err}");
    }

    #[test]
    fn claims_one_pod_mounts_are_restored_together_with_the_workloads_node_constraints() {
        let set = resource(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "analysis"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                     "template": {"spec": {
                        "nodeSelector": {"pool": "db"},
                        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                        "containers": [{"name": "db", "image": "postgres"}],
                        "volumes": [{"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}]}},
                     "volumeClaimTemplates": [
                        {"metadata": {"name": "wal"}, "spec": {"accessModes": ["ReadWriteOnce"]}},
                        {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}
        }));
        let shared = resource(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "shared", "namespace": "analysis"},
            "spec": {"accessModes": ["ReadWriteMany"]}
        }));
        let cache = resource(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "cache", "namespace": "analysis"}, "spec": {}
        }));
        let claims = planned_claims(&[set, shared, cache]).expect("claims");
        let by = |name: &str| claims.iter().find(|c| c.name == name).expect(name);
        assert_eq!(by("data-db-0").colocated_with, None);
        assert_eq!(by("wal-db-0").colocated_with.as_deref(), Some("data-db-0"));
        assert_eq!(by("wal-db-1").colocated_with.as_deref(), Some("data-db-1"));
        // Mounted by every pod, but ReadWriteMany: no node to share.
        assert_eq!(by("shared").colocated_with, None);
        // Mounted by no pod: nothing to follow, no constraints.
        assert_eq!(by("cache").colocated_with, None);
        assert_eq!(by("cache").scheduling, Scheduling::default());
        for name in ["data-db-0", "wal-db-1", "shared"] {
            let s = &by(name).scheduling;
            assert_eq!(
                s.node_selector.get("pool").map(String::as_str),
                Some("db"),
                "{name}"
            );
            assert_eq!(s.tolerations.len(), 1, "{name}");
        }
    }
}
