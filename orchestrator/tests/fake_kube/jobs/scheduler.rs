//! A scheduler for the Job pods of a fake cluster that has nodes (`FakeCluster::add_node`;
//! without nodes, pods run nowhere in particular, as before).
//!
//! It does what decides where a volume mover lands, as kube-scheduler does: a node must
//! match the pod's `nodeSelector` and its required node affinity (`matchExpressions` on
//! labels, `matchFields` on `metadata.name`), its `NoSchedule`/`NoExecute` taints must be
//! tolerated, and a claim already bound ties the pod to the zone of the node it was
//! provisioned for. Of the nodes left, the one with the fewest pods placed wins (ties by
//! name), so two unconstrained pods land on different nodes, as spreading makes them.
//! An unbound claim (`WaitForFirstConsumer`) gets `volume.kubernetes.io/selected-node`,
//! the annotation the scheduler sets, naming the node of its first pod. A pod no node
//! fits stays `Pending` with `PodScheduled=False`, reason `Unschedulable`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::FakeCluster;
use super::{Jobs, lock};

/// The annotation naming the node a `WaitForFirstConsumer` claim is provisioned for.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The zone label.
pub const ZONE: &str = "topology.kubernetes.io/zone";

/// A node of the fake cluster.
#[derive(Debug, Clone)]
pub struct Node {
    name: String,
    labels: BTreeMap<String, String>,
    /// `(key, value, effect)`.
    taints: Vec<(String, String, String)>,
    placed: u32,
}

impl FakeCluster {
    /// Add a node: Job pods are then scheduled (see the module comment).
    pub fn add_node(&self, name: &str, labels: &[(&str, &str)], taints: &[(&str, &str, &str)]) {
        let own = |(k, v): &(&str, &str)| ((*k).to_owned(), (*v).to_owned());
        lock(&self.api.jobs.state).nodes.push(Node {
            name: name.to_owned(),
            labels: labels.iter().map(own).collect(),
            taints: taints
                .iter()
                .map(|(k, v, e)| ((*k).to_owned(), (*v).to_owned(), (*e).to_owned()))
                .collect(),
            placed: 0,
        });
    }

    /// The node claim `namespace/name` was provisioned for (its selected-node annotation).
    pub fn claim_selected_node(&self, namespace: &str, name: &str) -> Option<String> {
        let key = (
            format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims"),
            name.to_owned(),
        );
        let objects = self.objects.lock().expect("lock");
        objects
            .get(&key)
            .and_then(|pvc| pvc["metadata"]["annotations"][SELECTED_NODE].as_str())
            .map(str::to_owned)
    }
}

impl Jobs {
    /// Place a pod of `pod_spec`: `Ok(None)` when the cluster has no nodes, `Ok(node)`
    /// (its unbound claims annotated with it), or `Err(message)` as the scheduler's
    /// `Unschedulable` condition says it.
    pub(super) fn schedule(
        &self,
        namespace: &str,
        pod_spec: &Value,
    ) -> Result<Option<String>, String> {
        let mut objects = self.objects.lock().expect("lock");
        let mut state = lock(&self.state);
        if state.nodes.is_empty() {
            return Ok(None);
        }
        let pvcs = format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims");
        let claims: Vec<String> = pod_spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .map(str::to_owned)
            .collect();
        let zone_of = |node: &str, nodes: &[Node]| {
            nodes
                .iter()
                .find(|n| n.name == node)
                .and_then(|n| n.labels.get(ZONE).cloned())
        };
        // Zones the pod's bound claims tie it to.
        let zones: Vec<String> = claims
            .iter()
            .filter_map(|c| objects.get(&(pvcs.clone(), c.clone())))
            .filter_map(|pvc| pvc["metadata"]["annotations"][SELECTED_NODE].as_str())
            .filter_map(|node| zone_of(node, &state.nodes))
            .collect();
        let mut reasons: BTreeMap<&str, u32> = BTreeMap::new();
        let mut fits: Vec<usize> = Vec::new();
        for (i, node) in state.nodes.iter().enumerate() {
            let why = if !selector_matches(pod_spec, node) {
                Some("didn't match Pod's node affinity/selector")
            } else if !tolerated(pod_spec, node) {
                Some("had untolerated taint")
            } else if zones.iter().any(|z| node.labels.get(ZONE) != Some(z)) {
                Some("had volume node affinity conflict")
            } else {
                None
            };
            match why {
                Some(why) => *reasons.entry(why).or_default() += 1,
                None => fits.push(i),
            }
        }
        let Some(&best) = fits
            .iter()
            .min_by_key(|i| (state.nodes[**i].placed, state.nodes[**i].name.clone()))
        else {
            let detail: Vec<String> = reasons
                .iter()
                .map(|(why, n)| format!("{n} node(s) {why}"))
                .collect();
            return Err(format!(
                "0/{} nodes are available: {}. preemption: 0/{} nodes are available: {} Preemption is not helpful for scheduling.",
                state.nodes.len(),
                detail.join(", "),
                state.nodes.len(),
                state.nodes.len()
            ));
        };
        state.nodes[best].placed += 1;
        let node = state.nodes[best].name.clone();
        for claim in &claims {
            if let Some(pvc) = objects.get_mut(&(pvcs.clone(), claim.clone()))
                && pvc["metadata"]["annotations"][SELECTED_NODE].is_null()
            {
                if !pvc["metadata"]["annotations"].is_object() {
                    pvc["metadata"]["annotations"] = json!({});
                }
                pvc["metadata"]["annotations"][SELECTED_NODE] = json!(node);
            }
        }
        Ok(Some(node))
    }
}

fn selector_matches(pod_spec: &Value, node: &Node) -> bool {
    let selector_ok = pod_spec["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| node.labels.get(k).map(String::as_str) == v.as_str());
    let terms = pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
        .as_array();
    let affinity_ok = match terms {
        None => true,
        Some(terms) => terms.iter().any(|term| {
            let labels = term["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|r| requirement(r, node.labels.get(r["key"].as_str().unwrap_or_default())));
            let fields = term["matchFields"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|r| r["key"] == "metadata.name" && requirement(r, Some(&node.name)));
            labels && fields
        }),
    };
    selector_ok && affinity_ok
}

fn requirement(r: &Value, value: Option<&String>) -> bool {
    let values: Vec<&str> = r["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match r["operator"].as_str() {
        Some("In") => value.is_some_and(|v| values.contains(&v.as_str())),
        Some("NotIn") => !value.is_some_and(|v| values.contains(&v.as_str())),
        Some("Exists") => value.is_some(),
        Some("DoesNotExist") => value.is_none(),
        _ => false,
    }
}

fn tolerated(pod_spec: &Value, node: &Node) -> bool {
    let tolerations = pod_spec["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    node.taints
        .iter()
        .filter(|(_, _, effect)| effect == "NoSchedule" || effect == "NoExecute")
        .all(|(key, value, effect)| {
            tolerations.iter().any(|t| {
                let key_ok = t["key"].as_str().is_none_or(|k| k.is_empty() || k == key);
                let value_ok = match t["operator"].as_str() {
                    Some("Exists") => true,
                    _ => t["value"].as_str().unwrap_or_default() == value,
                };
                let effect_ok = t["effect"]
                    .as_str()
                    .is_none_or(|e| e.is_empty() || e == effect);
                key_ok && value_ok && effect_ok
            })
        })
}
