use serde_json::json;

use super::clean;
use crate::kube::fixtures;

#[test]
fn deployment_loses_server_state_and_keeps_its_spec() {
    let mut d = fixtures::deployment("analysis", "analyzer", 3);
    clean(&mut d);
    assert!(d.get("status").is_none());
    let meta = &d["metadata"];
    for gone in [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
    ] {
        assert!(meta.get(gone).is_none(), "{gone} kept: {meta}");
    }
    assert_eq!(meta["annotations"], json!({"team": "data"}));
    assert_eq!(
        meta["labels"],
        json!({"app": "analyzer", "tier": "backend"})
    );
    let pod = &d["spec"]["template"];
    assert!(pod["spec"].get("nodeName").is_none());
    assert!(pod["metadata"].get("creationTimestamp").is_none());
    assert_eq!(pod["spec"]["containers"][0]["name"], "analyzer");
    assert_eq!(d["spec"]["replicas"], 3);
}

#[test]
fn service_loses_allocated_addresses_but_keeps_ports() {
    let mut s = fixtures::service("analysis", "analyzer");
    clean(&mut s);
    let spec = &s["spec"];
    assert!(spec.get("clusterIP").is_none());
    assert!(spec.get("clusterIPs").is_none());
    assert!(spec.get("healthCheckNodePort").is_none());
    assert_eq!(spec["ports"][0]["port"], 80);
    assert!(s.get("status").is_none());
}

#[test]
fn headless_service_stays_headless() {
    let mut s = fixtures::service("analysis", "db");
    s["spec"]["clusterIP"] = json!("None");
    s["spec"]["clusterIPs"] = json!(["None"]);
    clean(&mut s);
    assert_eq!(s["spec"]["clusterIP"], "None");
    assert_eq!(s["spec"]["clusterIPs"], json!(["None"]));
}

#[test]
fn pvc_forgets_its_volume_binding() {
    let mut p = fixtures::pvc("analysis", "analyzer-data");
    clean(&mut p);
    assert!(p["spec"].get("volumeName").is_none());
    assert!(
        p["metadata"].get("annotations").is_none(),
        "{}",
        p["metadata"]
    );
    assert_eq!(p["spec"]["storageClassName"], "standard");
    assert_eq!(p["spec"]["resources"]["requests"]["storage"], "20Gi");
}

#[test]
fn job_loses_generated_selector_and_labels() {
    let mut j = fixtures::job("analysis", "seed");
    clean(&mut j);
    assert!(j["spec"].get("selector").is_none());
    assert_eq!(j["metadata"]["labels"], json!({"app": "analyzer"}));
    assert_eq!(
        j["spec"]["template"]["metadata"]["labels"],
        json!({"app": "analyzer"})
    );
}

#[test]
fn job_with_manual_selector_keeps_it() {
    let mut j = fixtures::job("analysis", "seed");
    j["spec"]["manualSelector"] = json!(true);
    j["spec"]["selector"] = json!({"matchLabels": {"app": "analyzer"}});
    clean(&mut j);
    assert_eq!(
        j["spec"]["selector"],
        json!({"matchLabels": {"app": "analyzer"}})
    );
}

#[test]
fn statefulset_claim_templates_lose_status() {
    let mut s = fixtures::statefulset("analysis", "db", 2);
    clean(&mut s);
    let claim = &s["spec"]["volumeClaimTemplates"][0];
    assert!(claim.get("status").is_none());
    assert!(claim["metadata"].get("creationTimestamp").is_none());
    assert!(
        s["spec"]["template"]["metadata"]
            .get("creationTimestamp")
            .is_none()
    );
}

#[test]
fn service_account_forgets_its_token_secret_reference() {
    let mut sa = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "analyzer", "namespace": "analysis", "uid": "x"},
        "secrets": [{"name": "analyzer-token-x7k2p"}, {"name": "registry-pull"}]
    });
    clean(&mut sa);
    assert_eq!(sa["secrets"], json!([{"name": "registry-pull"}]));
}

#[test]
fn owner_references_are_dropped_and_clean_is_idempotent() {
    let mut c = fixtures::config_map("analysis", "generated");
    c["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "X", "name": "y", "uid": "z"}]);
    clean(&mut c);
    assert!(c["metadata"].get("ownerReferences").is_none());
    let once = c.clone();
    clean(&mut c);
    assert_eq!(c, once);
}

#[test]
fn k8s_finding_06_auto_allocated_node_ports_are_stripped_explicit_ones_kept() {
    // Allocated by the source (kubectl client-side apply did not write it): stripped.
    let mut allocated = fixtures::service("analysis", "analyzer");
    clean(&mut allocated);
    assert!(
        allocated["spec"]["ports"][0].get("nodePort").is_none(),
        "{allocated}"
    );

    // Written by the author, as last-applied-configuration records: kept.
    let mut written = fixtures::service("analysis", "analyzer");
    written["spec"]["ports"] = json!([
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
        {"name": "metrics", "port": 9090, "protocol": "TCP", "nodePort": 31415}]);
    written["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration":
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{\"name\":\"http\",\"port\":80,\"nodePort\":30080}]}}"});
    clean(&mut written);
    assert_eq!(written["spec"]["ports"][0]["nodePort"], 30080);
    assert!(
        written["spec"]["ports"][1].get("nodePort").is_none(),
        "{written}"
    );

    // Owned by a server-side Apply manager: kept.
    let mut applied = fixtures::service("analysis", "analyzer");
    applied["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply",
        "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:ports": {
            "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:nodePort": {}, "f:port": {}}}}}}]);
    clean(&mut applied);
    assert_eq!(applied["spec"]["ports"][0]["nodePort"], 30080);

    // A ClusterIP Service can carry no node port at all (422 "may not be used when type is ClusterIP").
    let mut cluster_ip = written.clone();
    cluster_ip["spec"]["type"] = json!("ClusterIP");
    clean(&mut cluster_ip);
    assert!(cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
}

#[test]
fn k8s_finding_10_hand_made_token_secret_is_kept_without_its_token() {
    let mut secret = fixtures::token_secret("analysis");
    secret["metadata"]["name"] = json!("ci-deployer-token");
    secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] =
        json!("5a6b7c8d-0000-4000-8000-000000000042");
    assert!(!super::is_generated_token_secret(&secret));
    assert!(super::is_generated_token_secret(&fixtures::token_secret(
        "analysis"
    )));
    clean(&mut secret);
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    assert_eq!(
        secret["metadata"]["annotations"],
        json!({"kubernetes.io/service-account.name": "analyzer"})
    );
    assert!(
        secret
            .get("data")
            .is_none_or(|d| d.as_object().is_some_and(|d| d.is_empty())),
        "{secret}"
    );
}

#[test]
fn k8s_finding_10_operator_finalizers_and_source_network_fields_are_dropped() {
    let mut cm = fixtures::config_map("analysis", "analyzer-config");
    cm["metadata"]["finalizers"] = json!([
        "backup.example.com/snapshot",
        "kubernetes.io/pvc-protection",
        "foregroundDeletion"
    ]);
    clean(&mut cm);
    assert_eq!(
        cm["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection", "foregroundDeletion"])
    );

    let mut s = fixtures::service("analysis", "analyzer");
    s["spec"]["externalIPs"] = json!(["198.51.100.7"]);
    s["spec"]["ipFamilies"] = json!(["IPv6"]);
    clean(&mut s);
    for field in ["externalIPs", "ipFamilies", "ipFamilyPolicy"] {
        assert!(s["spec"].get(field).is_none(), "{field}: {s}");
    }
    let mut dual = fixtures::service("analysis", "analyzer");
    dual["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    clean(&mut dual);
    assert_eq!(dual["spec"]["ipFamilyPolicy"], "RequireDualStack");
}
