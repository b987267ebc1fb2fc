//! Cleaning a Service of what the source cluster allocated for it.
//!
//! A Service's cluster IPs, health-check port and most node ports are allocations: the
//! source's API server picked them, and the target must pick its own (an allocated
//! `nodePort` copied over is "already allocated" at the target, or "may not be used when
//! `type` is 'ClusterIP'" once a transform changes the type). A node port is kept only when
//! its author set it, which the object itself records (Velero's rule): in kubectl's
//! `last-applied-configuration` annotation, or as a field a server-side `Apply` manager
//! owns. IP families and `externalIPs` describe the source's network: families are
//! re-derived by the target from `ipFamilyPolicy`, and external IPs (addresses routed to
//! the source's nodes) are dropped with a warning.

use std::collections::BTreeSet;

use serde_json::Value;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Node ports the author set, as (port name, port number, protocol) keys; read before the
/// metadata (annotation, managed fields) is cleaned away.
#[derive(Debug, Default)]
pub(crate) struct ExplicitNodePorts {
    /// Named ports whose node port was written in last-applied-configuration.
    names: BTreeSet<String>,
    /// Unnamed ports, by the node port value written.
    values: BTreeSet<i64>,
    /// (port, protocol) pairs whose `nodePort` an `Apply` manager owns.
    applied: BTreeSet<(i64, String)>,
}

impl ExplicitNodePorts {
    /// Read what the author of `service` wrote.
    pub(crate) fn of(service: &Value) -> Self {
        let mut explicit = ExplicitNodePorts::default();
        let last_applied = service
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str::<Value>(text).ok());
        for port in last_applied
            .as_ref()
            .and_then(|v| v.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(node_port) = port.get("nodePort").and_then(Value::as_i64) else {
                continue;
            };
            match port.get("name").and_then(Value::as_str) {
                Some(name) => explicit.names.insert(name.to_owned()),
                None => explicit.values.insert(node_port),
            };
        }
        for entry in service
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.get("operation").and_then(Value::as_str) == Some("Apply"))
        {
            let ports = entry
                .pointer("/fieldsV1/f:spec/f:ports")
                .and_then(Value::as_object);
            for (key, fields) in ports.into_iter().flatten() {
                // Keys look like `k:{"port":80,"protocol":"TCP"}`.
                let Some(id) = key.strip_prefix("k:") else {
                    continue;
                };
                let Ok(id) = serde_json::from_str::<Value>(id) else {
                    continue;
                };
                if fields.get("f:nodePort").is_some()
                    && let Some(port) = id.get("port").and_then(Value::as_i64)
                {
                    let protocol = id.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    explicit.applied.insert((port, protocol.to_owned()));
                }
            }
        }
        explicit
    }

    fn keeps(&self, port: &Value) -> bool {
        let node_port = port.get("nodePort").and_then(Value::as_i64);
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP");
        let by_last_applied = match port.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => self.names.contains(name),
            _ => node_port.is_some_and(|n| self.values.contains(&n)),
        };
        by_last_applied || self.applied.contains(&(number, protocol.to_owned()))
    }
}

/// Clean `service` (its metadata already read into `explicit`).
pub(crate) fn clean_service(service: &mut Value, explicit: &ExplicitNodePorts) {
    let name = service
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    // A headless Service (clusterIP: None) says so on purpose; any address is an allocation.
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    if !headless {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    spec.remove("healthCheckNodePort");
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            let value = Value::Object(port.clone());
            let keep = kind != "ClusterIP" && kind != "ExternalName" && explicit.keeps(&value);
            if port.contains_key("nodePort") && !keep {
                port.remove("nodePort");
            }
        }
    }
    // The target derives the families from the policy and its own network.
    spec.remove("ipFamilies");
    if spec.get("ipFamilyPolicy").and_then(Value::as_str) == Some("SingleStack") {
        spec.remove("ipFamilyPolicy");
    }
    if let Some(ips) = spec.remove("externalIPs") {
        tracing::warn!(service = %name, externalIPs = %ips,
            "externalIPs dropped: they route to the source cluster's nodes; set the target's in a transform patch");
    }
}
