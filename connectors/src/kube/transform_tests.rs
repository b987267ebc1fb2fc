use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::transform;
use crate::kube::{KubeError, Resource, clean, fixtures};

fn exported(objects: Vec<Value>) -> Vec<Resource> {
    objects
        .into_iter()
        .map(|mut o| {
            clean(&mut o);
            Resource::from_object(o, "analysis").expect("valid manifest")
        })
        .collect()
}

fn plan(transform: Value) -> plans::Transform {
    serde_json::from_value(transform).expect("transform parses as the plan would")
}

fn no_labels() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn run(objects: Vec<Value>, t: Value) -> Vec<Resource> {
    transform(&exported(objects), &plan(t), &no_labels()).expect("transform succeeds")
}

#[test]
fn empty_transform_changes_nothing() {
    let source = exported(vec![
        fixtures::deployment("analysis", "analyzer", 3),
        fixtures::service("analysis", "analyzer"),
    ]);
    let out = transform(&source, &plans::Transform::default(), &no_labels()).expect("ok");
    assert_eq!(out, source);
}

#[test]
fn namespace_remap_moves_every_resource_and_own_rolebinding_subjects() {
    let out = run(
        vec![
            fixtures::config_map("analysis", "cfg"),
            fixtures::role_binding("analysis", "analyzer"),
        ],
        json!({"namespace": "analysis-zrh"}),
    );
    for r in &out {
        assert_eq!(r.namespace, "analysis-zrh");
        assert_eq!(r.object["metadata"]["namespace"], "analysis-zrh");
    }
    let subjects = &out[1].object["subjects"];
    assert_eq!(subjects[0]["namespace"], "analysis-zrh");
    assert_eq!(
        subjects[1]["namespace"], "monitoring",
        "foreign namespace kept"
    );
    assert!(
        subjects[2].get("namespace").is_none(),
        "group subject untouched"
    );
}

#[test]
fn image_prefixes_rewrite_every_container_of_every_template() {
    let out = run(
        vec![
            fixtures::deployment("analysis", "analyzer", 3),
            fixtures::cronjob("analysis", "report", false),
            fixtures::statefulset("analysis", "db", 1),
        ],
        json!({"images": {
            "registry.msk.example/": "registry.zrh.example/",
            "registry.msk.example/pg/": "mirror.zrh.example/postgres/"
        }}),
    );
    let pod = &out[0].object["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.zrh.example/analyzer:1.4.2"
    );
    assert_eq!(
        pod["containers"][1]["image"],
        "docker.io/library/envoy:v1.31"
    );
    assert_eq!(
        pod["initContainers"][0]["image"],
        "registry.zrh.example/analyzer-migrate:1.4.2"
    );
    assert_eq!(
        out[1].object["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.zrh.example/report:2.0"
    );
    assert_eq!(
        out[2].object["spec"]["template"]["spec"]["containers"][0]["image"],
        "mirror.zrh.example/postgres/postgres:16.3",
        "longest prefix wins"
    );
}

#[test]
fn job_and_daemonset_templates_are_rewritten_too() {
    let mut ds = fixtures::deployment("analysis", "agent", 1);
    ds["kind"] = json!("DaemonSet");
    let out = run(
        vec![fixtures::job("analysis", "seed"), ds],
        json!({"images": {"registry.msk.example/": "registry.zrh.example/"}}),
    );
    assert_eq!(
        out[0].object["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.zrh.example/seed:1.0"
    );
    assert_eq!(
        out[1].object["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.zrh.example/analyzer:1.4.2"
    );
}

#[test]
fn storage_classes_remap_claims_and_claim_templates() {
    let mut legacy = fixtures::pvc("analysis", "legacy");
    legacy["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("storageClassName");
    legacy["metadata"]["annotations"] =
        json!({"volume.beta.kubernetes.io/storage-class": "standard"});
    let mut other = fixtures::pvc("analysis", "scratch");
    other["spec"]["storageClassName"] = json!("fast");
    let out = run(
        vec![
            fixtures::pvc("analysis", "analyzer-data"),
            fixtures::statefulset("analysis", "db", 1),
            legacy,
            other,
        ],
        json!({"storageClasses": {"standard": "zrh-ssd"}}),
    );
    assert_eq!(out[0].object["spec"]["storageClassName"], "zrh-ssd");
    assert_eq!(
        out[1].object["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
        "zrh-ssd"
    );
    assert_eq!(
        out[2].object["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"],
        "zrh-ssd"
    );
    assert_eq!(
        out[3].object["spec"]["storageClassName"], "fast",
        "unmapped class kept"
    );
}

#[test]
fn labels_and_annotations_are_added_to_every_resource() {
    let mut region = BTreeMap::new();
    region.insert("relocate.io/region".to_owned(), "zurich".to_owned());
    let mut bare = fixtures::config_map("analysis", "bare");
    bare["metadata"]
        .as_object_mut()
        .expect("meta")
        .remove("labels");
    let source = exported(vec![fixtures::deployment("analysis", "analyzer", 3), bare]);
    let t = plan(json!({
        "labels": {"tier": "frontend", "moved": "yes"},
        "annotations": {"relocate.io/plan": "zurich-relocation"}
    }));
    let out = transform(&source, &t, &region).expect("ok");
    assert_eq!(
        out[0].object["metadata"]["labels"],
        json!({"app": "analyzer", "tier": "frontend", "moved": "yes", "relocate.io/region": "zurich"})
    );
    assert_eq!(
        out[0].object["metadata"]["annotations"],
        json!({"team": "data", "relocate.io/plan": "zurich-relocation"})
    );
    assert_eq!(
        out[1].object["metadata"]["labels"],
        json!({"moved": "yes", "tier": "frontend", "relocate.io/region": "zurich"})
    );
    assert_eq!(
        out[0].object["spec"]["template"]["metadata"]["labels"],
        json!({"app": "analyzer"}),
        "pod template labels stay (selectors are immutable)"
    );
}

#[test]
fn replica_overrides_by_name() {
    let out = run(
        vec![
            fixtures::deployment("analysis", "analyzer", 3),
            fixtures::statefulset("analysis", "db", 2),
            fixtures::deployment("analysis", "worker", 5),
        ],
        json!({"replicas": {"analyzer": 1, "db": 0}}),
    );
    assert_eq!(out[0].object["spec"]["replicas"], 1);
    assert_eq!(out[1].object["spec"]["replicas"], 0);
    assert_eq!(out[2].object["spec"]["replicas"], 5);
}

#[test]
fn replica_override_for_an_unknown_name_is_refused() {
    let err = transform(
        &exported(vec![fixtures::deployment("analysis", "analyzer", 3)]),
        &plan(json!({"replicas": {"analyser": 1}})),
        &no_labels(),
    )
    .expect_err("typo");
    assert!(
        matches!(&err, KubeError::Transform { message } if message.contains("`analyser`")),
        "{err}"
    );
}

#[test]
fn json_patches_apply_by_kind_and_name_after_the_rest() {
    let out = run(
        vec![
            fixtures::deployment("analysis", "analyzer", 3),
            fixtures::deployment("analysis", "worker", 5),
            fixtures::service("analysis", "analyzer"),
        ],
        json!({
            "namespace": "analysis-zrh",
            "patches": [
                {"kind": "Deployment", "name": "analyzer", "patch": [
                    {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "500m"},
                    {"op": "add", "path": "/spec/template/spec/containers/0/env", "value": [{"name": "REGION", "value": "zurich"}]}
                ]},
                {"kind": "v1/Service", "patch": [
                    {"op": "replace", "path": "/spec/type", "value": "ClusterIP"},
                    {"op": "remove", "path": "/spec/externalTrafficPolicy"}
                ]}
            ]
        }),
    );
    let analyzer = &out[0].object["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(analyzer["resources"]["requests"]["cpu"], "500m");
    assert_eq!(analyzer["env"][0]["value"], "zurich");
    assert_eq!(
        out[1].object["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "250m"
    );
    assert_eq!(out[2].object["spec"]["type"], "ClusterIP");
    assert!(out[2].object["spec"].get("externalTrafficPolicy").is_none());
    assert_eq!(out[2].namespace, "analysis-zrh");
}

#[test]
fn failing_patch_names_the_rule_and_resource() {
    let err = transform(
        &exported(vec![fixtures::config_map("analysis", "cfg")]),
        &plan(json!({"patches": [{"kind": "ConfigMap", "patch": [
            {"op": "test", "path": "/data/LOG_LEVEL", "value": "debug"}
        ]}]})),
        &no_labels(),
    )
    .expect_err("test op fails");
    match err {
        KubeError::Patch { rule, resource, .. } => {
            assert_eq!(rule, 0);
            assert_eq!(resource, "ConfigMap analysis/cfg");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn malformed_or_unmatched_patch_rules_are_refused() {
    let source = exported(vec![fixtures::config_map("analysis", "cfg")]);
    let bad = plan(
        json!({"patches": [{"kind": "ConfigMap", "patch": [{"op": "frobnicate", "path": "/x"}]}]}),
    );
    assert!(matches!(
        transform(&source, &bad, &no_labels()),
        Err(KubeError::Patch { rule: 0, .. })
    ));
    let unmatched = plan(json!({"patches": [{"kind": "ConfigMap", "name": "cfgg", "patch": []}]}));
    assert!(matches!(
        transform(&source, &unmatched, &no_labels()),
        Err(KubeError::Transform { .. })
    ));
}

#[test]
fn k8s_finding_12_namespace_rename_follows_references_inside_objects() {
    let mut deployment = fixtures::deployment("analysis", "analyzer", 3);
    deployment["metadata"]["annotations"]["meta.helm.sh/release-namespace"] = json!("analysis");
    deployment["spec"]["template"]["spec"]["containers"][0]["env"] = json!([
        {"name": "DB_URL", "value": "postgres://db.analysis.svc.cluster.local:5432/analysis"},
        {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]);
    deployment["spec"]["template"]["spec"]["containers"][0]["args"] =
        json!(["--upstream=http://api.analysis.svc:8080"]);
    let mut config = fixtures::config_map("analysis", "analyzer-config");
    config["data"] = json!({"cache": "redis.analysis.svc:6379", "database": "analysis"});
    let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "from-own-namespace", "namespace": "analysis"},
        "spec": {"podSelector": {}, "ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "analysis"}}},
            {"namespaceSelector": {"matchLabels": {"team": "data"}}}]}]}});
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "dsn", "namespace": "analysis"},
        "data": {"url": "cG9zdGdyZXM6Ly9kYi5hbmFseXNpcy5zdmM6NTQzMi94"}});
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "analyzer", "namespace": "analysis"}});
    let out = run(
        vec![deployment, config, policy, secret, account],
        json!({"namespace": "analysis-zrh"}),
    );
    let d = &out[0].object;
    assert_eq!(
        d["metadata"]["annotations"]["meta.helm.sh/release-namespace"],
        "analysis-zrh"
    );
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["env"][0]["value"],
        "postgres://db.analysis-zrh.svc.cluster.local:5432/analysis"
    );
    assert_eq!(
        container["args"][0],
        "--upstream=http://api.analysis-zrh.svc:8080"
    );
    assert_eq!(
        out[1].object["data"]["cache"],
        "redis.analysis-zrh.svc:6379"
    );
    assert_eq!(
        out[1].object["data"]["database"], "analysis",
        "not an address: left alone"
    );
    let from = &out[2].object["spec"]["ingress"][0]["from"];
    assert_eq!(
        from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "analysis-zrh"
    );
    let warnings = crate::kube::namespace_rename_warnings(&out, "analysis", "analysis-zrh");
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].starts_with("NetworkPolicy analysis-zrh/from-own-namespace: a namespaceSelector matches labels other than"));
    assert!(
        warnings[1].contains("Secret analysis-zrh/dsn: data key `url` names a service in analysis")
    );
    assert!(
        warnings[2].contains("ClusterRoleBindings naming system:serviceaccount:analysis:analyzer")
    );
}
