//! Where a mover may run so that the claim it binds is usable by the workload after it.
//!
//! A `WaitForFirstConsumer` claim binds in the zone of its first pod, and at the
//! target that pod is the restore's mover. A mover scheduled anywhere would bind the
//! claim where the workload may never run: on a node pool the workload's
//! `nodeSelector` excludes, or away from the tainted nodes it tolerates. So a mover
//! takes the scheduling constraints of the pod template that mounts its claim (node
//! selector, node affinity and tolerations; not pod affinity, which names the
//! workload's own pods), and claims one pod mounts together are restored on one node:
//! the first by itself, the others pinned to the node it ran on (a StatefulSet pod
//! whose `data` and `wal` claims bound in two zones can never be scheduled).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec,
    Toleration,
};
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::super::KubeError;
use super::super::resource::ResourceId;
use super::super::workers::JOB_NAME_LABEL;

/// The node constraints of the pod template that mounts a claim.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// `spec.affinity.nodeAffinity`.
    pub node_affinity: Option<NodeAffinity>,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
}

impl Scheduling {
    /// The constraints of a pod template's `spec` (as exported JSON).
    pub fn of_pod_spec(spec: &Value, resource: &str) -> Result<Self, KubeError> {
        let malformed = |what: &str, e: serde_json::Error| KubeError::Malformed {
            resource: resource.to_owned(),
            message: format!("its pod template's {what}: {e}"),
        };
        let node_selector = match spec.get("nodeSelector") {
            Some(v) if !v.is_null() => {
                serde_json::from_value(v.clone()).map_err(|e| malformed("nodeSelector", e))?
            }
            _ => BTreeMap::new(),
        };
        let node_affinity = match spec.pointer("/affinity/nodeAffinity") {
            Some(v) if !v.is_null() => Some(
                serde_json::from_value(v.clone())
                    .map_err(|e| malformed("affinity.nodeAffinity", e))?,
            ),
            _ => None,
        };
        let tolerations = match spec.get("tolerations") {
            Some(v) if !v.is_null() => {
                serde_json::from_value(v.clone()).map_err(|e| malformed("tolerations", e))?
            }
            _ => Vec::new(),
        };
        Ok(Scheduling {
            node_selector,
            node_affinity,
            tolerations,
        })
    }

    /// Set these constraints on a mover's pod, pinned to `node` when given: the pin is
    /// added to every required term (terms are ORed, a term's requirements ANDed), so
    /// the pod must be on that node *and* on one the workload may use.
    pub fn apply(&self, pod: &mut PodSpec, node: Option<&str>) {
        if !self.node_selector.is_empty() {
            pod.node_selector = Some(self.node_selector.clone());
        }
        if !self.tolerations.is_empty() {
            pod.tolerations = Some(self.tolerations.clone());
        }
        let mut affinity = self.node_affinity.clone();
        if let Some(node) = node {
            let pin = NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_owned()]),
            };
            let na = affinity.get_or_insert_with(NodeAffinity::default);
            let required = na
                .required_during_scheduling_ignored_during_execution
                .get_or_insert_with(|| NodeSelector {
                    node_selector_terms: Vec::new(),
                });
            if required.node_selector_terms.is_empty() {
                required
                    .node_selector_terms
                    .push(NodeSelectorTerm::default());
            }
            for term in &mut required.node_selector_terms {
                term.match_fields
                    .get_or_insert_with(Vec::new)
                    .push(pin.clone());
            }
        }
        if let Some(na) = affinity {
            pod.affinity = Some(Affinity {
                node_affinity: Some(na),
                ..Affinity::default()
            });
        }
    }
}

/// Why a Job's pod was never placed on a node (the scheduler's `PodScheduled=False`
/// message, e.g. `0/3 nodes are available: 3 node(s) didn't match Pod's node
/// affinity/selector`), when none of its pods was; `None` once one was.
pub async fn unscheduled_reason(
    client: Client,
    namespace: &str,
    job: &str,
) -> Result<Option<String>, KubeError> {
    let pods = job_pods(client, namespace, job).await?;
    if pods
        .iter()
        .any(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
    {
        return Ok(None);
    }
    Ok(pods.iter().find_map(|p| {
        p.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .map(|c| {
                c.message
                    .clone()
                    .or_else(|| c.reason.clone())
                    .unwrap_or_default()
            })
    }))
}

async fn job_pods(client: Client, namespace: &str, job: &str) -> Result<Vec<Pod>, KubeError> {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let id = ResourceId {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: namespace.into(),
        name: format!("<pods of job {job}>"),
    };
    Ok(api
        .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job}")))
        .await
        .map_err(|e| KubeError::from_api(&id, e))?
        .items)
}

/// The node a Job's pod ran on (its succeeded pod's, else any pod's that was scheduled).
pub async fn mover_node(
    client: Client,
    namespace: &str,
    job: &str,
) -> Result<Option<String>, KubeError> {
    let pods = job_pods(client, namespace, job).await?;
    let node_of = |pod: &Pod| pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let succeeded = pods.iter().find(|p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
            && node_of(p).is_some()
    });
    Ok(succeeded
        .or_else(|| pods.iter().find(|p| node_of(p).is_some()))
        .and_then(node_of))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn db_template() -> Value {
        json!({
            "nodeSelector": {"pool": "db"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zrh-a", "zrh-b"]}]},
                    {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}
                ]}},
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}
            }
        })
    }

    #[test]
    fn a_mover_gets_the_workloads_node_constraints_but_not_its_pod_affinity() {
        let s = Scheduling::of_pod_spec(&db_template(), "StatefulSet db").expect("parse");
        let mut pod = PodSpec::default();
        s.apply(&mut pod, None);
        let pod = serde_json::to_value(&pod).expect("json");
        assert_eq!(pod["nodeSelector"], json!({"pool": "db"}));
        assert_eq!(pod["tolerations"][0]["key"], "dedicated");
        assert_eq!(
            pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert!(pod["affinity"].get("podAntiAffinity").is_none());
    }

    #[test]
    fn a_pin_is_added_to_every_term_so_the_node_must_also_satisfy_the_workload() {
        let s = Scheduling::of_pod_spec(&db_template(), "StatefulSet db").expect("parse");
        let mut pod = PodSpec::default();
        s.apply(&mut pod, Some("zrh-b-1"));
        let pod = serde_json::to_value(&pod).expect("json");
        let terms = &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        for term in terms.as_array().expect("terms") {
            assert_eq!(
                term["matchFields"],
                json!([{"key": "metadata.name", "operator": "In", "values": ["zrh-b-1"]}])
            );
            assert!(term["matchExpressions"].is_array());
        }
    }

    #[test]
    fn a_pin_without_constraints_is_one_term_naming_the_node() {
        let mut pod = PodSpec::default();
        Scheduling::default().apply(&mut pod, Some("n1"));
        let pod = serde_json::to_value(&pod).expect("json");
        assert_eq!(
            pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]})
        );
        assert!(pod.get("nodeSelector").is_none());
    }

    #[test]
    fn a_malformed_toleration_is_refused_naming_the_workload() {
        let err = Scheduling::of_pod_spec(&json!({"tolerations": "all"}), "StatefulSet db")
            .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("StatefulSet db") && text.contains("tolerations"),
            "{text}"
        );
    }
}
