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
    assert_eq!(spec["ports"][0]["nodePort"], 30080);
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
