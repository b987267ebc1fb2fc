use std::time::Duration;

use serde_json::{Value, json};

use super::{Exchange, finished, mock, serve};
use crate::kube::{
    FrozenState, KubeError, ResourceId, WaitOptions, apply_freeze, fixtures, plan_freeze, restore,
    stop_target, wait_scaled_down,
};

const MERGE: &str = "application/merge-patch+json";
const NS: &str = "/namespaces/analysis";
const DEPLOY: &str = "/apis/apps/v1/namespaces/analysis/deployments/analyzer";
const STS: &str = "/apis/apps/v1/namespaces/analysis/statefulsets/db";
const CRON: &str = "/apis/batch/v1/namespaces/analysis/cronjobs/report";
const CRON_UID: &str = "c0c0c0c0-1111-2222-3333-444455556666";
const DEPLOY_UID: &str = "6f1a0c52-8f7e-4c1b-9b3e-0d2b1c5e7a10";

fn workload() -> plans::KubernetesWorkload {
    serde_json::from_value(json!({"from": "msk", "to": "zrh", "namespace": "analysis",
                                  "selector": {"app": "analyzer"}}))
    .expect("workload parses as the plan would")
}

fn owned_by(mut object: Value, kind: &str, name: &str, uid: &str) -> Value {
    object["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
        "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
    object
}

fn running_job(name: &str, uid: &str) -> Value {
    let mut job = fixtures::job("analysis", name);
    job["metadata"]["uid"] = json!(uid);
    job["status"] = json!({"active": 1, "startTime": "2025-03-02T09:15:00Z"});
    owned_by(job, "CronJob", "report", CRON_UID)
}

fn pod(name: &str, phase: &str, owner: Option<(&str, &str)>) -> Value {
    let pod = json!({"metadata": {"name": name, "namespace": "analysis", "uid": format!("pod-{name}"),
                                  "labels": {"app": "analyzer"}},
                     "spec": {"nodeName": "msk-node-3", "containers": [{"name": "c", "image": "x"}]},
                     "status": {"phase": phase}});
    match owner {
        Some((kind, uid)) => owned_by(pod, kind, "owner", uid),
        None => pod,
    }
}

fn list_uri(group_version: &str, plural: &str, selector: bool) -> String {
    let base = if group_version == "v1" {
        format!("/api/v1{NS}/{plural}")
    } else {
        format!("/apis/{group_version}{NS}/{plural}")
    };
    if selector {
        format!("{base}?labelSelector=app%3Danalyzer&limit=500")
    } else {
        format!("{base}?limit=500")
    }
}

fn list(kind: &str, group_version: &str, plural: &str, items: Vec<Value>) -> Exchange {
    Exchange::get(&list_uri(group_version, plural, true)).ok(fixtures::list(
        kind,
        group_version,
        items,
    ))
}

/// The freeze's reads: every writer kind with the selector, then the CronJob's Jobs by owner,
/// then KEDA (not installed).
fn freeze_reads(statefulset: Value, pods: Vec<Value>) -> Vec<Exchange> {
    let rs = owned_by(
        json!({"metadata": {"name": "analyzer-7d9f8b6c5", "namespace": "analysis", "uid": "rs-1",
                            "labels": {"app": "analyzer"}}, "spec": {"replicas": 3}}),
        "Deployment",
        "analyzer",
        DEPLOY_UID,
    );
    vec![
        list(
            "CronJob",
            "batch/v1",
            "cronjobs",
            vec![fixtures::cronjob("analysis", "report", false)],
        ),
        list(
            "Job",
            "batch/v1",
            "jobs",
            vec![fixtures::job("analysis", "seed")],
        ),
        list(
            "Deployment",
            "apps/v1",
            "deployments",
            vec![fixtures::deployment("analysis", "analyzer", 3)],
        ),
        list("ReplicaSet", "apps/v1", "replicasets", vec![rs]),
        list("StatefulSet", "apps/v1", "statefulsets", vec![statefulset]),
        list("DaemonSet", "apps/v1", "daemonsets", vec![]),
        list("Pod", "v1", "pods", pods),
        Exchange::get(&list_uri("batch/v1", "jobs", false)).ok(fixtures::list(
            "Job",
            "batch/v1",
            vec![
                running_job("report-29012340", "job-1"),
                fixtures::job("analysis", "seed"),
            ],
        )),
        Exchange::get(&list_uri("keda.sh/v1alpha1", "scaledobjects", false)).fail(
            404,
            fixtures::status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        ),
    ]
}

fn deleting_statefulset() -> Value {
    let mut sts = fixtures::statefulset("analysis", "db", 2);
    sts["metadata"]["labels"] = json!({"app": "analyzer"});
    sts["spec"]["persistentVolumeClaimRetentionPolicy"] =
        json!({"whenDeleted": "Retain", "whenScaled": "Delete"});
    sts
}

fn scale_patch(path: &str, name: &str, replicas: i64) -> Exchange {
    Exchange::patch(&format!("{path}/scale?fieldManager=relocate"))
        .content_type(MERGE)
        .body_eq(json!({"spec": {"replicas": replicas}}))
        .ok(json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": name, "namespace": "analysis"},
                   "spec": {"replicas": replicas}, "status": {"replicas": 3, "selector": "app=analyzer"}}))
}

fn merge_patch(path: &str, body: Value, reply: Value) -> Exchange {
    Exchange::patch(&format!("{path}?fieldManager=relocate"))
        .content_type(MERGE)
        .body_eq(body)
        .ok(reply)
}

fn retention(policy: &str) -> Value {
    json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": policy}}})
}

fn suspend(value: bool) -> Value {
    json!({"spec": {"suspend": value}})
}

#[tokio::test]
async fn k8s_finding_01_freeze_retains_statefulset_claims_before_scaling_to_zero() {
    let (client, handle) = mock();
    let mut script = freeze_reads(
        deleting_statefulset(),
        vec![
            pod(
                "analyzer-7d9f8b6c5-x2x9k",
                "Running",
                Some(("ReplicaSet", "rs-1")),
            ),
            pod("seed-abcde", "Succeeded", Some(("Job", "e3b0c442"))),
        ],
    );
    script.extend([
        merge_patch(
            CRON,
            suspend(true),
            fixtures::cronjob("analysis", "report", true),
        ),
        scale_patch(DEPLOY, "analyzer", 0),
        merge_patch(STS, retention("Retain"), deleting_statefulset()),
        scale_patch(STS, "db", 0),
        merge_patch(
            "/apis/batch/v1/namespaces/analysis/jobs/report-29012340",
            suspend(true),
            running_job("report-29012340", "job-1"),
        ),
    ]);
    let server = serve(handle, script);
    let state = plan_freeze(&client, &workload()).await.expect("plan reads");
    let frozen = apply_freeze(&client, &state).await;
    finished(server).await;
    frozen.expect("freeze succeeds");
    let recorded: Vec<String> = state
        .entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} {:?} {:?}",
                e.kind, e.name, e.replicas, e.suspended, e.when_scaled
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            "CronJob report None Some(false) None",
            "Deployment analyzer Some(3) None None",
            r#"StatefulSet db Some(2) None Some("Delete")"#,
            "Job report-29012340 None Some(false) None",
        ]
    );
}

#[tokio::test]
async fn k8s_finding_02_every_writer_that_cannot_be_stopped_is_named_before_anything_changes() {
    let (client, handle) = mock();
    let mut argo = fixtures::deployment("analysis", "analyzer", 3);
    argo["metadata"]["labels"]["argocd.argoproj.io/instance"] = json!("analysis-prod");
    let mut operated = deleting_statefulset();
    operated = owned_by(operated, "PostgresCluster", "db", "pg-1");
    let mut script = freeze_reads(operated, vec![pod("debug", "Running", None)]);
    script[2] = list("Deployment", "apps/v1", "deployments", vec![argo]);
    script[5] = list(
        "DaemonSet",
        "apps/v1",
        "daemonsets",
        vec![
            json!({"metadata": {"name": "log-shipper", "namespace": "analysis", "uid": "ds-1",
                                 "labels": {"app": "analyzer"}}, "spec": {}}),
        ],
    );
    script.pop(); // no scaled workload is left to pause, so KEDA is not asked
    let server = serve(handle, script);
    let result = plan_freeze(&client, &workload()).await;
    finished(server).await;
    let Err(KubeError::Unstoppable { writers, .. }) = result else {
        panic!("expected a refusal, got {result:?}");
    };
    assert_eq!(writers.len(), 4, "{writers:#?}");
    let all = writers.join("\n");
    for needle in [
        "Deployment analysis/analyzer: reconciled by Argo CD application `analysis-prod`",
        "StatefulSet analysis/db: controlled by PostgresCluster db",
        "DaemonSet analysis/log-shipper: DaemonSets cannot be scaled",
        "Pod analysis/debug: a bare Pod",
    ] {
        assert!(all.contains(needle), "{needle} not in {all}");
    }
}

#[tokio::test]
async fn k8s_finding_02_a_freeze_that_finds_nothing_fails() {
    let (client, handle) = mock();
    let empty = |kind: &str, gv: &str, plural: &str| list(kind, gv, plural, vec![]);
    let script = vec![
        empty("CronJob", "batch/v1", "cronjobs"),
        list(
            "Job",
            "batch/v1",
            "jobs",
            vec![fixtures::job("analysis", "seed")],
        ),
        empty("Deployment", "apps/v1", "deployments"),
        empty("ReplicaSet", "apps/v1", "replicasets"),
        empty("StatefulSet", "apps/v1", "statefulsets"),
        empty("DaemonSet", "apps/v1", "daemonsets"),
        empty("Pod", "v1", "pods"),
    ];
    let server = serve(handle, script);
    let result = plan_freeze(&client, &workload()).await;
    finished(server).await;
    assert!(
        matches!(&result, Err(KubeError::NothingToFreeze { selector, .. }) if selector == "app=analyzer"),
        "{result:?}"
    );
}

fn recorded_state() -> FrozenState {
    serde_json::from_value(json!({"entries": [
        {"apiVersion": "batch/v1", "kind": "CronJob", "namespace": "analysis", "name": "report", "suspended": false},
        {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "analysis", "name": "analyzer",
         "replicas": 3, "podSelector": "app=analyzer", "uid": DEPLOY_UID},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "namespace": "analysis", "name": "db",
         "replicas": 2, "podSelector": "app=db", "uid": "5555aaaa", "whenScaled": "Delete"}
    ]}))
    .expect("state")
}

#[tokio::test]
async fn k8s_finding_04_restore_goes_on_past_what_is_gone_and_what_fails() {
    let (client, handle) = mock();
    let script = vec![
        // Reverse order: the StatefulSet first, scaled up before its claim policy goes back.
        scale_patch(STS, "db", 2),
        merge_patch(STS, retention("Delete"), deleting_statefulset()),
        Exchange::patch(&format!("{DEPLOY}/scale?fieldManager=relocate")).fail(
            404,
            fixtures::status(404, "NotFound", "deployments.apps \"analyzer\" not found"),
        ),
        Exchange::patch(&format!("{CRON}?fieldManager=relocate")).fail(
            500,
            fixtures::status(500, "InternalError", "etcdserver: request timed out"),
        ),
    ];
    let server = serve(handle, script);
    let report = restore(&client, &recorded_state()).await;
    finished(server).await;
    assert_eq!(
        report.done,
        ["StatefulSet analysis/db: scaled back to 2, claim retention whenScaled back to Delete"]
    );
    assert_eq!(report.gone.len(), 1);
    assert_eq!(report.gone[0].name, "analyzer");
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(
        format!("{:?}", report.failed[0]).contains("etcdserver"),
        "{:?}",
        report.failed
    );
}

#[tokio::test]
async fn k8s_finding_04_the_target_is_stopped_claims_kept_and_what_serves_deleted() {
    let zrh = |path: &str| path.replace("/analysis/", "/analysis-zrh/");
    let id = |api_version: &str, kind: &str, name: &str| ResourceId {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: "analysis-zrh".into(),
        name: name.into(),
    };
    let ids = vec![
        id("v1", "ConfigMap", "analyzer-config"),
        id("v1", "Service", "analyzer"),
        id("apps/v1", "Deployment", "analyzer"),
        id("apps/v1", "StatefulSet", "db"),
        id("apps/v1", "DaemonSet", "log-shipper"),
        id("batch/v1", "Job", "seed"),
        id("networking.k8s.io/v1", "Ingress", "analyzer"),
    ];
    let svc = "/api/v1/namespaces/analysis-zrh/services/analyzer";
    let mut sts = deleting_statefulset();
    sts["metadata"]["namespace"] = json!("analysis-zrh");
    let script = vec![
        Exchange::get(svc).ok(fixtures::service("analysis-zrh", "analyzer")),
        Exchange::new(http::Method::DELETE, svc).ok(fixtures::service("analysis-zrh", "analyzer")),
        Exchange::patch(&format!("{}/scale?fieldManager=relocate", zrh(DEPLOY))).fail(
            404,
            fixtures::status(404, "NotFound", "deployments.apps \"analyzer\" not found"),
        ),
        Exchange::get(&zrh(STS)).ok(sts.clone()),
        merge_patch(&zrh(STS), retention("Retain"), sts),
        scale_patch(&zrh(STS), "db", 0),
        Exchange::new(
            http::Method::DELETE,
            "/apis/apps/v1/namespaces/analysis-zrh/daemonsets/log-shipper",
        )
        .ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})),
        merge_patch(
            "/apis/batch/v1/namespaces/analysis-zrh/jobs/seed",
            suspend(true),
            fixtures::job("analysis-zrh", "seed"),
        ),
        Exchange::new(
            http::Method::DELETE,
            "/apis/networking.k8s.io/v1/namespaces/analysis-zrh/ingresses/analyzer",
        )
        .ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})),
    ];
    let (client, handle) = mock();
    let server = serve(handle, script);
    let report = stop_target(&client, &ids).await;
    finished(server).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.gone.len(), 1);
    assert_eq!(report.done.len(), 5, "{:#?}", report.done);
}

#[tokio::test]
async fn k8s_finding_05_only_running_pods_the_frozen_workload_owns_are_waited_for() {
    let state: FrozenState = serde_json::from_value(json!({"entries": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "analysis", "name": "analyzer",
         "replicas": 3, "podSelector": "app=analyzer", "uid": DEPLOY_UID},
        {"apiVersion": "batch/v1", "kind": "CronJob", "namespace": "analysis", "name": "report", "suspended": false}
    ]}))
    .expect("state");
    let (client, handle) = mock();
    let rs_uri =
        "/apis/apps/v1/namespaces/analysis/replicasets?labelSelector=app%3Danalyzer&limit=500";
    let pods_uri = "/api/v1/namespaces/analysis/pods?labelSelector=app%3Danalyzer&limit=500";
    let replica_sets = fixtures::list(
        "ReplicaSet",
        "apps/v1",
        vec![
            owned_by(
                json!({"metadata": {"name": "analyzer-7d9f8b6c5", "uid": "rs-1"}}),
                "Deployment",
                "analyzer",
                DEPLOY_UID,
            ),
            owned_by(
                json!({"metadata": {"name": "other-55f", "uid": "rs-2"}}),
                "Deployment",
                "other",
                "other-uid",
            ),
        ],
    );
    // Pods the selector matches but the Deployment does not run: a finished Job's pods that
    // linger, another Deployment's pod. Only the Deployment's own running pod is waited for.
    let leftovers = || {
        vec![
            pod("seed-abcde", "Succeeded", Some(("Job", "e3b0c442"))),
            pod("report-29012340-x", "Failed", Some(("Job", "job-1"))),
            pod("other-55f-aaaaa", "Running", Some(("ReplicaSet", "rs-2"))),
        ]
    };
    let mut first = leftovers();
    first.push(pod(
        "analyzer-7d9f8b6c5-q8p4d",
        "Running",
        Some(("ReplicaSet", "rs-1")),
    ));
    let script = vec![
        Exchange::get(rs_uri).ok(replica_sets.clone()),
        Exchange::get(pods_uri).ok(fixtures::list("Pod", "v1", first)),
        Exchange::get(rs_uri).ok(replica_sets),
        Exchange::get(pods_uri).ok(fixtures::list("Pod", "v1", leftovers())),
    ];
    let server = serve(handle, script);
    let options = WaitOptions {
        timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(5),
    };
    let result = wait_scaled_down(&client, &state, options).await;
    finished(server).await;
    result.expect("the Deployment's pods are gone; the leftovers are not its own");
}
