//! Rewriting exported manifests for the target cluster, as the plan's `transform` says.
//!
//! Pure functions over JSON: namespace remap (with the references inside objects that a
//! rename must follow, see [`rename`](super::rename)), image registry prefixes in every container of every pod
//! template, storage classes of PVCs and StatefulSet claim templates, label and annotation
//! additions, replica overrides, and finally the plan's RFC 6902 patches. An override or
//! patch that names nothing exported is an error: a typo in a reviewed plan must not pass
//! silently.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::clean::pod_templates_mut;
use super::{KubeError, Resource};

/// Kinds whose `spec.replicas` a replica override sets.
const SCALABLE: &[&str] = &["Deployment", "StatefulSet", "ReplicaSet"];

/// Apply `plan` to every resource. `target_region_labels` are added to every resource
/// alongside the plan's own labels (e.g. `relocate.io/region: zurich`).
pub fn transform(
    resources: &[Resource],
    plan: &plans::Transform,
    target_region_labels: &BTreeMap<String, String>,
) -> Result<Vec<Resource>, KubeError> {
    let mut out = Vec::with_capacity(resources.len());
    let mut overridden = BTreeSet::new();
    let images = pairs(plan.images.iter());
    let storage_classes = pairs(plan.storage_classes.iter());
    for resource in resources {
        let mut object = resource.object.clone();
        let kind = resource.kind.as_str();
        if let Some(target) = &plan.namespace {
            remap_namespace(&mut object, kind, &resource.namespace, target);
        }
        rewrite_images(&mut object, kind, &images);
        remap_storage_classes(&mut object, kind, &storage_classes);
        let labels = plan.labels.iter().chain(target_region_labels);
        add_entries(&mut object, "labels", labels);
        add_entries(&mut object, "annotations", plan.annotations.iter());
        if SCALABLE.contains(&kind)
            && let Some(replicas) = plan.replicas.get(&resource.name)
        {
            set_replicas(&mut object, *replicas);
            overridden.insert(resource.name.clone());
        }
        let namespace = plan.namespace.as_deref().unwrap_or(&resource.namespace);
        out.push(Resource::from_object(object, namespace)?);
    }
    if let Some(missing) = plan.replicas.keys().find(|n| !overridden.contains(*n)) {
        return Err(KubeError::Transform {
            message: format!(
                "replica override for `{missing}` matches no exported Deployment or StatefulSet; \
                 check the name in transform.replicas"
            ),
        });
    }
    apply_patches(&mut out, &plan.patches)?;
    Ok(out)
}

fn remap_namespace(object: &mut Value, kind: &str, source: &str, target: &str) {
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        metadata.insert("namespace".to_owned(), Value::String(target.to_owned()));
    }
    if source != target {
        super::rename::rewrite(object, kind, source, target);
    }
}

/// Borrow a plan map as (from, to) pairs; the plan's maps are ordered but lookups here
/// never depend on order.
fn pairs<'a>(map: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<(&'a str, &'a str)> {
    map.map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Rewrite every container image that starts with a mapped registry prefix; the longest
/// matching prefix wins, so `registry.msk/ml/` can be mapped apart from `registry.msk/`.
fn rewrite_images(object: &mut Value, kind: &str, prefixes: &[(&str, &str)]) {
    if prefixes.is_empty() {
        return;
    }
    for template in pod_templates_mut(object, kind) {
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            let Some(Value::Array(containers)) = template.pointer_mut(&format!("/spec/{list}"))
            else {
                continue;
            };
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::String(image)) = container.get_mut("image")
                    && let Some(rewritten) = rewrite_image(image, prefixes)
                {
                    *image = rewritten;
                }
            }
        }
    }
}

fn rewrite_image(image: &str, prefixes: &[(&str, &str)]) -> Option<String> {
    prefixes
        .iter()
        .filter(|(from, _)| image.starts_with(from))
        .max_by_key(|(from, _)| from.len())
        .map(|(from, to)| format!("{to}{}", &image[from.len()..]))
}

fn remap_storage_classes(object: &mut Value, kind: &str, classes: &[(&str, &str)]) {
    if classes.is_empty() {
        return;
    }
    match kind {
        "PersistentVolumeClaim" => remap_claim(object, classes),
        "StatefulSet" => {
            if let Some(Value::Array(claims)) = object.pointer_mut("/spec/volumeClaimTemplates") {
                for claim in claims {
                    remap_claim(claim, classes);
                }
            }
        }
        _ => {}
    }
}

/// A claim names its class in `spec.storageClassName`, or on old manifests in the beta annotation.
fn remap_claim(claim: &mut Value, classes: &[(&str, &str)]) {
    let lookup = |current: &str| {
        classes
            .iter()
            .find(|(from, _)| *from == current)
            .map(|(_, to)| Value::String((*to).to_owned()))
    };
    if let Some(class) = claim.pointer_mut("/spec/storageClassName")
        && let Some(mapped) = class.as_str().and_then(lookup)
    {
        *class = mapped;
    }
    if let Some(class) =
        claim.pointer_mut("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        && let Some(mapped) = class.as_str().and_then(lookup)
    {
        *class = mapped;
    }
}

/// Add `entries` to `metadata.<field>` (labels or annotations), overwriting equal keys.
fn add_entries<'a>(
    object: &mut Value,
    field: &str,
    entries: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return;
    }
    let Some(Value::Object(metadata)) = object.get_mut("metadata") else {
        return;
    };
    let map = metadata
        .entry(field.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    if let Value::Object(map) = map {
        for (key, value) in entries {
            map.insert(key.clone(), Value::String(value.clone()));
        }
    }
}

fn set_replicas(object: &mut Value, replicas: i32) {
    if let Some(Value::Object(spec)) = object.get_mut("spec") {
        spec.insert("replicas".to_owned(), Value::from(replicas));
    }
}

/// Apply each rule to the resources it matches, in plan order.
fn apply_patches(
    resources: &mut [Resource],
    rules: &[plans::JsonPatchRule],
) -> Result<(), KubeError> {
    for (index, rule) in rules.iter().enumerate() {
        let operations: json_patch::Patch =
            serde_json::from_value(Value::Array(rule.patch.clone())).map_err(|e| {
                KubeError::Patch {
                    rule: index,
                    resource: rule_target(rule),
                    message: format!("not an RFC 6902 patch: {e}"),
                }
            })?;
        let mut matched = false;
        for resource in resources.iter_mut().filter(|r| rule_matches(rule, r)) {
            matched = true;
            let mut object = resource.object.clone();
            json_patch::patch(&mut object, &operations).map_err(|e| KubeError::Patch {
                rule: index,
                resource: resource.id().to_string(),
                message: e.to_string(),
            })?;
            *resource = Resource::from_object(object, &resource.namespace)?;
        }
        if !matched {
            return Err(KubeError::Transform {
                message: format!(
                    "patch rule #{index} ({}) matches no exported resource; check its kind and name",
                    rule_target(rule)
                ),
            });
        }
    }
    Ok(())
}

/// A rule's kind is the bare kind or `apiVersion/Kind` (`apps/v1/Deployment`).
fn rule_matches(rule: &plans::JsonPatchRule, resource: &Resource) -> bool {
    let kind_matches = rule.kind == resource.kind
        || rule.kind == format!("{}/{}", resource.api_version, resource.kind);
    kind_matches && rule.name.as_ref().is_none_or(|n| *n == resource.name)
}

fn rule_target(rule: &plans::JsonPatchRule) -> String {
    match &rule.name {
        Some(name) => format!("{} {name}", rule.kind),
        None => format!("every {}", rule.kind),
    }
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
