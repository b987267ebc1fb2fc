//! `deploy` against a fake API server that behaves like a real one (issue 18, findings
//! 6–13): the dry run before the freeze, waits that survive a 500 and end on a hanging
//! call, rollouts that take several polls, namespaces that must exist, objects at the
//! target that relocate did not make, and clusters reached through `HTTPS_PROXY`.

mod fake_kube;
mod util;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::Method;
use fake_kube::analyzer::{DEPLOYMENTS, TARGET_DEPLOYMENTS, source_cluster, target_cluster};
use fake_kube::apiserver::Fault;
use fake_kube::plan::{CutoverPlan, FREEZE_AND_DEPLOY};
use fake_kube::{FakeCluster, kubeconfig};
use serde_json::json;
use util::{Workspace, stderr, stdout};

const TARGET_CONFIGMAPS: &str = "/api/v1/namespaces/analysis-zrh/configmaps";

/// A plan with one freeze + deploy stage; `extra` goes into the workload (indented 6).
fn plan(ws: &Workspace, src: &FakeCluster, dst: &FakeCluster, extra: &str) {
    plan_with(ws, src, dst, extra, "");
}

/// As [`plan`], with `transform` lines (indented 8).
fn plan_with(ws: &Workspace, src: &FakeCluster, dst: &FakeCluster, extra: &str, transform: &str) {
    ws.write("kubeconfig.yaml", kubeconfig(src, dst));
    let plan = CutoverPlan {
        workload: extra,
        transform,
        ..CutoverPlan::new("kube-apply", FREEZE_AND_DEPLOY)
    };
    ws.write("plan.yaml", plan.render());
}

fn run(ws: &Workspace) -> std::process::Output {
    run_in(ws, "state")
}

/// Run with its own state directory (a changed plan cannot reuse another plan's state).
fn run_in(ws: &Workspace, state: &str) -> std::process::Output {
    assert_cmd::Command::cargo_bin("relocate")
        .expect("binary")
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            state,
            "--output",
            "plain",
        ])
        .timeout(Duration::from_secs(90))
        .output()
        .expect("run relocate")
}

fn both(out: &std::process::Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

fn source_replicas(src: &FakeCluster) -> serde_json::Value {
    src.get(DEPLOYMENTS, "api").expect("source deployment")["spec"]["replicas"].clone()
}

#[test]
fn k8s_finding_06_a_missing_storage_class_stops_the_run_before_the_freeze() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), target_cluster());
    src.insert(
        "/api/v1/namespaces/analysis/persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "api-data", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "ssd-msk",
                        "resources": {"requests": {"storage": "10Gi"}}}}),
    );
    plan_with(
        &ws,
        &src,
        &dst,
        "",
        "        storageClasses: { ssd-msk: ssd-zrh }\n",
    );

    let show = ws.relocate(&["plan", "show", "plan.yaml"]);
    let shown = both(&show);
    assert!(shown.contains("dry run at zrh FAILED"), "{shown}");
    assert!(
        shown.contains("StorageClass ssd-zrh (used by PersistentVolumeClaim analysis-zrh/api-data) does not exist"),
        "{shown}"
    );

    let out = run(&ws);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("pre-flight of deploy analyzer"), "{text}");
    assert!(text.contains("StorageClass ssd-zrh"), "{text}");
    assert_eq!(source_replicas(&src), 3, "the source must not be frozen");
    assert!(
        dst.get(TARGET_CONFIGMAPS, "api-config").is_none(),
        "nothing applied"
    );

    dst.api.insert_cluster_scoped(
        "storageclasses",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "ssd-zrh"}, "provisioner": "pd.csi.storage.gke.io"}),
    );
    let out = run(&ws);
    assert!(out.status.success(), "{}", both(&out));
}

#[test]
fn k8s_finding_06_an_auto_allocated_node_port_is_not_carried_to_the_target() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), target_cluster());
    let service = |ns: &str, name: &str, node_port: i64| {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": ns, "labels": {"app": "analyzer"},
                            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}]},
               "spec": {"type": "NodePort", "clusterIP": "10.96.4.7", "clusterIPs": ["10.96.4.7"],
                        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                        "selector": {"app": "analyzer"},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": node_port}]}})
    };
    src.insert(
        "/api/v1/namespaces/analysis/services",
        service("analysis", "api", 30080),
    );
    // Another team's Service at the target already holds 30080.
    dst.insert(
        "/api/v1/namespaces/payments/services",
        service("payments", "gateway", 30080),
    );
    plan(&ws, &src, &dst, "");

    let out = run(&ws);
    assert!(out.status.success(), "{}", both(&out));
    let applied = dst
        .get("/api/v1/namespaces/analysis-zrh/services", "api")
        .expect("service applied");
    let port = &applied["spec"]["ports"][0];
    assert_eq!(port["port"], 80);
    assert_ne!(port["nodePort"], 30080, "{applied}");
    assert!(
        port["nodePort"].as_i64().is_some(),
        "the target allocated its own: {applied}"
    );
    assert!(
        dst.api.requests().iter().any(|r| r.contains("dryRun=All")),
        "a dry run came first"
    );
}

#[test]
fn k8s_finding_07_a_500_during_the_wait_does_not_end_the_deploy() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), target_cluster());
    dst.api.fault(
        Method::GET,
        "/namespaces/analysis-zrh/deployments/api",
        Fault::Status(500),
        1,
    );
    plan(&ws, &src, &dst, "      waitTimeout: 30s\n");
    let out = run(&ws);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no answer from the API server (500 injected 500)"),
        "{text}"
    );
    // The fake's rollout takes several polls: the first answers show it unobserved.
    assert!(
        text.contains("controller has not observed generation"),
        "{text}"
    );
    assert_eq!(
        dst.get(TARGET_DEPLOYMENTS, "api").expect("deployed")["status"]["readyReplicas"],
        3
    );
}

#[test]
fn k8s_finding_07_a_get_that_never_answers_ends_at_the_wait_timeout() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), target_cluster());
    dst.api.fault(
        Method::GET,
        "/namespaces/analysis-zrh/deployments/api",
        Fault::Hang,
        1_000,
    );
    plan(&ws, &src, &dst, "      waitTimeout: 3s\n");
    let started = std::time::Instant::now();
    let out = run(&ws);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(text.contains("timed out after 3s"), "{text}");
    assert!(
        text.contains("no answer from the API server (the call timed out)"),
        "{text}"
    );
}

#[test]
fn k8s_finding_11_a_missing_target_namespace_is_named_or_created() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), FakeCluster::start());
    plan(&ws, &src, &dst, "");
    let out = run(&ws);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("namespaces \"analysis-zrh\" not found"),
        "{text}"
    );
    assert!(
        !text.contains("ConfigMap analysis-zrh/api-config not found"),
        "{text}"
    );
    assert_eq!(source_replicas(&src), 3, "the source must not be frozen");

    plan(&ws, &src, &dst, "      createNamespace: true\n");
    let out = run_in(&ws, "state-create");
    assert!(out.status.success(), "{}", both(&out));
    assert!(dst.get(TARGET_CONFIGMAPS, "api-config").is_some());
    assert!(
        dst.api
            .requests()
            .iter()
            .any(|r| r.starts_with("PATCH /api/v1/namespaces/analysis-zrh?"))
    );
}

#[test]
fn k8s_finding_13_an_unrelated_object_at_the_target_is_not_taken_over() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), target_cluster());
    dst.insert(
        TARGET_CONFIGMAPS,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "api-config", "namespace": "analysis-zrh",
                            "labels": {"app.kubernetes.io/managed-by": "Helm"},
                            "annotations": {"meta.helm.sh/release-name": "billing"},
                            "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": "v1"}]},
               "data": {"region": "zurich", "owner": "billing"}}),
    );
    plan(&ws, &src, &dst, "");
    let out = run(&ws);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("ConfigMap analysis-zrh/api-config already exists at the target and was not created by relocate (managed by helm (Update))"),
        "{text}"
    );
    assert_eq!(source_replicas(&src), 3, "the source must not be frozen");
    assert_eq!(
        dst.get(TARGET_CONFIGMAPS, "api-config").expect("kept")["data"]["owner"],
        "billing"
    );

    plan(&ws, &src, &dst, "      adopt: true\n");
    let out = run_in(&ws, "state-adopt");
    assert!(out.status.success(), "{}", both(&out));
    let adopted = dst.get(TARGET_CONFIGMAPS, "api-config").expect("adopted");
    assert_eq!(adopted["data"]["region"], "moscow");
    let managers: Vec<&str> = adopted["metadata"]["managedFields"]
        .as_array()
        .expect("managed fields")
        .iter()
        .map(|e| e["manager"].as_str().unwrap_or_default())
        .collect();
    assert!(
        managers.contains(&"relocate") && managers.contains(&"helm"),
        "{managers:?}"
    );
    let entry = adopted["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == "relocate"))
        .expect("relocate's entry");
    assert_eq!(entry["operation"], "Apply");
}

#[test]
fn k8s_finding_09_clusters_are_reached_through_https_proxy() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), target_cluster());
    plan(&ws, &src, &dst, "");
    let (proxy, tunnels) = fake_kube::proxy::connect_proxy();
    let out = assert_cmd::Command::cargo_bin("relocate")
        .expect("binary")
        .current_dir(ws.path())
        .args(["plan", "show", "plan.yaml"])
        .env("HTTPS_PROXY", &proxy)
        .env_remove("https_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run relocate");
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("ProxyProtocolDisabled") && !text.contains("kube/http-proxy"),
        "{text}"
    );
    assert!(text.contains("2 resource(s) exported from msk"), "{text}");
    assert!(
        text.contains("dry run at zrh: 2 manifest(s) accepted"),
        "{text}"
    );
    assert!(
        tunnels.load(Ordering::SeqCst) >= 2,
        "both clusters through the proxy"
    );
}
