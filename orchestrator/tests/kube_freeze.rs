//! Freeze and rollback against fake API servers that behave as a real cluster does where it
//! matters (see `fake_kube::workloads`): StatefulSet claims deleted on scale-down under
//! `whenScaled: Delete`, KEDA scaling a workload back from zero, pods owned through
//! ReplicaSets, a finished Job's pods that linger, Jobs that stop when suspended. One test
//! per finding of issue 18 (1 to 5), each through the `relocate` binary.

mod fake_kube;
mod util;

use fake_kube::plan::{CutoverPlan, FREEZE_AND_DEPLOY};
use fake_kube::workloads::uid_for;
use fake_kube::{FakeCluster, kubeconfig, kubeconfig_for};
use serde_json::{Value, json};
use util::{Workspace, stderr, stdout};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/analysis/deployments";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/analysis/statefulsets";
const DAEMONSETS: &str = "/apis/apps/v1/namespaces/analysis/daemonsets";
const CRONJOBS: &str = "/apis/batch/v1/namespaces/analysis/cronjobs";
const JOBS: &str = "/apis/batch/v1/namespaces/analysis/jobs";
const PODS: &str = "/api/v1/namespaces/analysis/pods";
const CLAIMS: &str = "/api/v1/namespaces/analysis/persistentvolumeclaims";
const SERVICES: &str = "/api/v1/namespaces/analysis/services";
const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/analysis/ingresses";
const SCALED_OBJECTS: &str = "/apis/keda.sh/v1alpha1/namespaces/analysis/scaledobjects";

/// The same collection at the target namespace.
fn zrh(collection: &str) -> String {
    collection.replace("/analysis/", "/analysis-zrh/")
}

fn deployment(name: &str, replicas: i64, extra_labels: Value) -> Value {
    let mut labels = json!({"app": "analyzer"});
    if let (Some(l), Some(extra)) = (labels.as_object_mut(), extra_labels.as_object()) {
        l.extend(extra.clone());
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": "analysis", "labels": labels},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "analyzer", "component": name}},
                    "template": {"metadata": {"labels": {"app": "analyzer", "component": name}},
                                 "spec": {"containers": [{"name": name, "image": "registry.msk.example/analyzer/api:1.4"}]}}}})
}

/// A database StatefulSet whose claims the controller deletes when it is scaled down.
fn database() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "analysis", "labels": {"app": "analyzer"}},
           "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "db", "image": "registry.msk.example/pg:16.3"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
}

/// A workspace whose plan has one stage `cutover` with `steps`, its workload `analyzer`
/// extended by `extra` (YAML lines indented for the workload's keys).
fn setup(src: &FakeCluster, dst: &FakeCluster, extra: &str, steps: &str) -> Workspace {
    // The fake refuses writes into a namespace that does not exist, as a real server does.
    dst.api.create_namespace("analysis-zrh");
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", kubeconfig(src, dst));
    let workload = format!("      waitTimeout: 8s\n{extra}");
    let plan = CutoverPlan {
        workload: &workload,
        ..CutoverPlan::new("kube", steps)
    };
    ws.write("plan.yaml", plan.render());
    ws
}

const FREEZE: &str = "{ freeze: analyzer }";
const CUTOVER: &str = FREEZE_AND_DEPLOY;

fn rollback(ws: &Workspace, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "rollback",
        "plan.yaml",
        "--stage",
        "cutover",
        "--state-dir",
        "state",
        "--output",
        "plain",
    ];
    args.extend_from_slice(extra);
    ws.relocate(&args)
}

fn both(out: &std::process::Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

fn replicas(cluster: &FakeCluster, collection: &str, name: &str) -> Value {
    cluster.get(collection, name).expect("object exists")["spec"]["replicas"].clone()
}

fn claims(cluster: &FakeCluster, collection: &str) -> Vec<String> {
    let mut store = cluster.objects.lock().expect("lock");
    fake_kube::workloads::reconcile(&mut store);
    store
        .keys()
        .filter(|(c, _)| c == collection)
        .map(|(_, n)| n.clone())
        .collect()
}

#[test]
fn k8s_finding_01_freeze_and_rollback_never_delete_a_statefulsets_claims() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(STATEFULSETS, database());
    assert_eq!(
        claims(&src, CLAIMS),
        ["data-db-0", "data-db-1"],
        "the controller made the claims"
    );
    let ws = setup(&src, &dst, "", CUTOVER);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));

    assert_eq!(
        claims(&src, CLAIMS),
        ["data-db-0", "data-db-1"],
        "freeze kept the source's volumes"
    );
    let frozen = src.get(STATEFULSETS, "db").expect("db");
    assert_eq!(frozen["spec"]["replicas"], 0);
    assert_eq!(
        frozen["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
        "Retain"
    );
    let deployed = dst.get(&zrh(STATEFULSETS), "db").expect("deployed");
    assert_eq!(deployed["spec"]["replicas"], 2);
    assert_eq!(
        deployed["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"], "Delete",
        "the target gets the source's policy as it was before the freeze"
    );
    assert_eq!(claims(&dst, &zrh(CLAIMS)), ["data-db-0", "data-db-1"]);

    let back = rollback(&ws, &[]);
    assert!(back.status.success(), "{}", both(&back));
    let restored = src.get(STATEFULSETS, "db").expect("db");
    assert_eq!(restored["spec"]["replicas"], 2);
    assert_eq!(
        restored["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
        "Delete"
    );
    assert_eq!(claims(&src, CLAIMS), ["data-db-0", "data-db-1"]);
    assert_eq!(
        replicas(&dst, &zrh(STATEFULSETS), "db"),
        0,
        "target stopped"
    );
    assert_eq!(
        claims(&dst, &zrh(CLAIMS)),
        ["data-db-0", "data-db-1"],
        "rollback kept the target's volumes too"
    );
}

#[test]
fn k8s_finding_02_jobs_a_cronjob_started_are_suspended_and_resumed() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(
        CRONJOBS,
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
               "metadata": {"name": "report", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "spec": {"schedule": "*/15 * * * *", "suspend": false,
                        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                            "containers": [{"name": "report", "image": "registry.msk.example/report:2.0"}]}}}}}}),
    );
    let job_uid = uid_for("Job", "analysis", "report-29012340");
    src.insert(
        JOBS,
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "report-29012340", "namespace": "analysis",
                            "labels": {"batch.kubernetes.io/job-name": "report-29012340"},
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "report",
                                                 "uid": uid_for("CronJob", "analysis", "report"),
                                                 "controller": true, "blockOwnerDeletion": true}]},
               "spec": {"suspend": false, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}},
                        "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": job_uid}},
                                     "spec": {"restartPolicy": "Never",
                                              "containers": [{"name": "report", "image": "registry.msk.example/report:2.0"}]}}},
               "status": {"active": 1, "startTime": "2025-03-02T09:15:00Z"}}),
    );
    let ws = setup(&src, &dst, "", FREEZE);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        src.get(CRONJOBS, "report").expect("cron")["spec"]["suspend"],
        true
    );
    assert_eq!(
        src.get(JOBS, "report-29012340").expect("job")["spec"]["suspend"],
        true,
        "the execution already started is stopped too"
    );
    let back = rollback(&ws, &[]);
    assert!(back.status.success(), "{}", both(&back));
    assert_eq!(
        src.get(JOBS, "report-29012340").expect("job")["spec"]["suspend"],
        false
    );
    assert_eq!(
        src.get(CRONJOBS, "report").expect("cron")["spec"]["suspend"],
        false
    );
}

#[test]
fn k8s_finding_02_a_keda_scaled_object_is_paused_at_zero_and_resumed() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(DEPLOYMENTS, deployment("api", 3, json!({})));
    src.insert(
        SCALED_OBJECTS,
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
               "metadata": {"name": "api", "namespace": "analysis"},
               "spec": {"scaleTargetRef": {"name": "api"}, "minReplicaCount": 1, "maxReplicaCount": 10,
                        "triggers": [{"type": "kafka", "metadata": {"topic": "events", "lagThreshold": "50"}}]}}),
    );
    let ws = setup(&src, &dst, "", FREEZE);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        replicas(&src, DEPLOYMENTS, "api"),
        0,
        "KEDA did not bring it back"
    );
    let so = src.get(SCALED_OBJECTS, "api").expect("scaled object");
    assert_eq!(
        so["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"],
        "0"
    );

    let back = rollback(&ws, &[]);
    assert!(back.status.success(), "{}", both(&back));
    assert_eq!(replicas(&src, DEPLOYMENTS, "api"), 3);
    let so = src.get(SCALED_OBJECTS, "api").expect("scaled object");
    assert!(
        so["metadata"]["annotations"]
            .get("autoscaling.keda.sh/paused-replicas")
            .is_none(),
        "{so}"
    );
}

#[test]
fn k8s_finding_02_writers_it_cannot_stop_are_named_before_anything_is_scaled() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(DEPLOYMENTS, deployment("api", 3, json!({})));
    src.insert(
        DEPLOYMENTS,
        deployment(
            "web",
            2,
            json!({"argocd.argoproj.io/instance": "analysis-prod"}),
        ),
    );
    src.insert(
        DAEMONSETS,
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "log-shipper", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "spec": {"selector": {"matchLabels": {"app": "log-shipper"}},
                        "template": {"metadata": {"labels": {"app": "log-shipper"}},
                                     "spec": {"containers": [{"name": "fluent-bit", "image": "fluent/fluent-bit:3.1"}]}}}}),
    );
    let mut operated = database();
    operated["metadata"]["ownerReferences"] = json!([{"apiVersion": "postgres.example.com/v1", "kind": "PostgresCluster",
        "name": "db", "uid": "pg-1", "controller": true, "blockOwnerDeletion": true}]);
    src.insert(STATEFULSETS, operated);
    let ws = setup(&src, &dst, "", FREEZE);
    let out = ws.run_plan("plain");
    assert!(!out.status.success(), "{}", both(&out));
    let text = both(&out);
    for needle in [
        "Deployment analysis/web: reconciled by Argo CD application `analysis-prod`",
        "DaemonSet analysis/log-shipper: DaemonSets cannot be scaled to zero",
        "StatefulSet analysis/db: controlled by PostgresCluster db",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert_eq!(replicas(&src, DEPLOYMENTS, "api"), 3, "nothing was scaled");
    assert_eq!(replicas(&src, DEPLOYMENTS, "web"), 2);
    assert_eq!(replicas(&src, STATEFULSETS, "db"), 2);

    // The operator takes responsibility for each, and the freeze goes ahead.
    let extra =
        "      gitopsPaused: true\n      leaveRunning: [DaemonSet/log-shipper, StatefulSet/db]\n";
    let ws = setup(&src, &dst, extra, FREEZE);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(replicas(&src, DEPLOYMENTS, "api"), 0);
    assert_eq!(replicas(&src, DEPLOYMENTS, "web"), 0);
    assert_eq!(
        replicas(&src, STATEFULSETS, "db"),
        2,
        "left running, as the plan says"
    );
}

#[test]
fn k8s_finding_02_kinds_choose_what_moves_not_what_freeze_stops() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(DEPLOYMENTS, deployment("api", 3, json!({})));
    let ws = setup(&src, &dst, "      kinds: [ConfigMap]\n", FREEZE);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        replicas(&src, DEPLOYMENTS, "api"),
        0,
        "the selected writer is stopped"
    );
}

#[test]
fn k8s_finding_02_a_freeze_that_finds_nothing_to_stop_fails() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(
        "/api/v1/namespaces/analysis/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "api-config", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "data": {"region": "moscow"}}),
    );
    let ws = setup(&src, &dst, "", FREEZE);
    let out = ws.run_plan("plain");
    assert!(!out.status.success(), "{}", both(&out));
    assert!(
        both(&out).contains("freeze found nothing to stop in analysis (selector `app=analyzer`)"),
        "{}",
        both(&out)
    );
}

fn finished_job(src: &FakeCluster) {
    src.insert(
        JOBS,
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "seed", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "spec": {"completions": 1, "selector": {"matchLabels": {"job-name": "seed"}},
                        "template": {"metadata": {"labels": {"app": "analyzer", "job-name": "seed"}},
                                     "spec": {"restartPolicy": "Never",
                                              "containers": [{"name": "seed", "image": "registry.msk.example/seed:1.0"}]}}},
               "status": {"succeeded": 1, "completionTime": "2025-03-02T09:01:00Z",
                          "conditions": [{"type": "Complete", "status": "True"}]}}),
    );
}

/// A finished Job whose `Succeeded` pod lingers, matching the api Deployment's selector.
fn finished_job_with_lingering_pod(src: &FakeCluster) {
    finished_job(src);
    src.insert(
        PODS,
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "seed-x7k2p", "namespace": "analysis",
                            "labels": {"app": "analyzer", "component": "api", "job-name": "seed"},
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "seed",
                                                 "uid": uid_for("Job", "analysis", "seed"), "controller": true}]},
               "spec": {"containers": [{"name": "seed", "image": "registry.msk.example/seed:1.0"}]},
               "status": {"phase": "Succeeded"}}),
    );
}

#[test]
fn k8s_finding_03_a_finished_job_is_not_run_again_at_the_target() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(DEPLOYMENTS, deployment("api", 1, json!({})));
    finished_job(&src);
    let ws = setup(&src, &dst, "", CUTOVER);
    let out = ws.run_plan("plain");
    assert!(
        dst.get(&zrh(JOBS), "seed").is_none(),
        "the finished Job was applied at the target, where it runs again"
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(dst.get(&zrh(DEPLOYMENTS), "api").is_some());
}

#[test]
fn k8s_finding_04_an_unreachable_target_does_not_keep_the_source_down() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(DEPLOYMENTS, deployment("api", 3, json!({})));
    let ws = setup(&src, &dst, "", CUTOVER);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(replicas(&src, DEPLOYMENTS, "api"), 0);

    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    ws.write("kubeconfig.yaml", kubeconfig_for(&src.url, &dead));
    let back = rollback(&ws, &[]);
    assert!(
        !back.status.success(),
        "the target was not stopped: {}",
        both(&back)
    );
    assert!(
        both(&back).contains("target: Kubernetes API call for Deployment analysis-zrh/api failed")
            && both(&back).contains("Connection refused")
            && both(&back).contains("--source-only"),
        "{}",
        both(&back)
    );
    assert_eq!(
        replicas(&src, DEPLOYMENTS, "api"),
        3,
        "the source is back although the target is down"
    );

    let source_only = rollback(&ws, &["--source-only"]);
    assert!(source_only.status.success(), "{}", both(&source_only));
    assert!(
        stdout(&source_only).contains("left as it is (--source-only)"),
        "{}",
        both(&source_only)
    );
}

#[test]
fn k8s_finding_04_rollback_goes_past_a_vanished_workload() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(DEPLOYMENTS, deployment("api", 3, json!({})));
    src.insert(DEPLOYMENTS, deployment("worker", 2, json!({})));
    let ws = setup(&src, &dst, "", FREEZE);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    src.objects
        .lock()
        .expect("lock")
        .remove(&(DEPLOYMENTS.to_owned(), "api".to_owned()));
    for attempt in 0..2 {
        let back = rollback(&ws, &[]);
        assert!(back.status.success(), "attempt {attempt}: {}", both(&back));
        assert_eq!(
            replicas(&src, DEPLOYMENTS, "worker"),
            2,
            "attempt {attempt}"
        );
    }
}

#[test]
fn k8s_finding_04_rollback_takes_the_target_off_the_air() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(DEPLOYMENTS, deployment("api", 3, json!({})));
    src.insert(
        SERVICES,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "api", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "spec": {"type": "LoadBalancer", "selector": {"app": "analyzer"},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
    );
    src.insert(
        SERVICES,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "api-internal", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "spec": {"type": "ClusterIP", "selector": {"app": "analyzer"},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
    );
    src.insert(
        INGRESSES,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "api", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "spec": {"rules": [{"host": "api.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                   "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}}),
    );
    let ws = setup(&src, &dst, "", CUTOVER);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    assert!(dst.get(&zrh(SERVICES), "api").is_some() && dst.get(&zrh(INGRESSES), "api").is_some());

    let back = rollback(&ws, &[]);
    assert!(back.status.success(), "{}", both(&back));
    assert!(
        dst.get(&zrh(SERVICES), "api").is_none(),
        "the target's load balancer is still up"
    );
    assert!(
        dst.get(&zrh(INGRESSES), "api").is_none(),
        "the target's ingress still routes"
    );
    assert!(
        dst.get(&zrh(SERVICES), "api-internal").is_some(),
        "a ClusterIP Service serves no one outside"
    );
    assert_eq!(replicas(&dst, &zrh(DEPLOYMENTS), "api"), 0);
    assert_eq!(replicas(&src, DEPLOYMENTS, "api"), 3);
}

#[test]
fn k8s_finding_05_a_finished_jobs_lingering_pod_does_not_hold_up_the_freeze() {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.insert(DEPLOYMENTS, deployment("api", 3, json!({})));
    finished_job_with_lingering_pod(&src);
    let ws = setup(&src, &dst, "", FREEZE);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(replicas(&src, DEPLOYMENTS, "api"), 0);
    assert!(
        src.get(PODS, "seed-x7k2p").is_some(),
        "the pod lingers, as on a real cluster"
    );
}
