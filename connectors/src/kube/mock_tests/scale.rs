use std::time::Duration;

use serde_json::{Value, json};

use super::{Exchange, finished, mock, serve};
use crate::kube::{
    FrozenState, KubeError, Resource, WaitOptions, apply_freeze, clean, fixtures, plan_freeze,
    restore, scale_target, wait_scaled_down,
};

const MERGE: &str = "application/merge-patch+json";
const DEPLOY: &str = "/apis/apps/v1/namespaces/analysis/deployments/analyzer";
const STS: &str = "/apis/apps/v1/namespaces/analysis/statefulsets/db";
const CRON: &str = "/apis/batch/v1/namespaces/analysis/cronjobs/report";

fn exported(object: Value) -> Resource {
    let mut object = object;
    clean(&mut object);
    Resource::from_object(object, "analysis").expect("valid manifest")
}

fn source() -> Vec<Resource> {
    vec![
        exported(fixtures::config_map("analysis", "analyzer-config")),
        exported(fixtures::deployment("analysis", "analyzer", 3)),
        exported(fixtures::statefulset("analysis", "db", 2)),
        exported(fixtures::cronjob("analysis", "report", false)),
    ]
}

/// The autoscaling/v1 Scale the API server answers to a scale patch.
fn scale(name: &str, replicas: i64, selector: &str) -> Value {
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": name, "namespace": "analysis", "uid": "6f1a0c52-8f7e-4c1b-9b3e-0d2b1c5e7a10",
                     "resourceVersion": "48213500", "creationTimestamp": "2024-11-18T08:02:44Z"},
        "spec": {"replicas": replicas},
        "status": {"replicas": 3, "selector": selector}
    })
}

fn scale_patch(path: &str, name: &str, replicas: i64) -> Exchange {
    Exchange::patch(&format!("{path}/scale?fieldManager=relocate"))
        .content_type(MERGE)
        .body_eq(json!({"spec": {"replicas": replicas}}))
        .ok(scale(name, replicas, "app=analyzer"))
}

fn suspend_patch(suspend: bool) -> Exchange {
    Exchange::patch(&format!("{CRON}?fieldManager=relocate"))
        .content_type(MERGE)
        .body_eq(json!({"spec": {"suspend": suspend}}))
        .ok(fixtures::cronjob("analysis", "report", suspend))
}

fn frozen_reads() -> Vec<Exchange> {
    vec![
        Exchange::get(DEPLOY).ok(fixtures::deployment("analysis", "analyzer", 3)),
        Exchange::get(STS).ok(fixtures::statefulset("analysis", "db", 2)),
        Exchange::get(CRON).ok(fixtures::cronjob("analysis", "report", false)),
    ]
}

#[tokio::test]
async fn freeze_records_then_scales_to_zero_and_suspends() {
    let (client, handle) = mock();
    let mut script = frozen_reads();
    script.push(scale_patch(DEPLOY, "analyzer", 0));
    script.push(scale_patch(STS, "db", 0));
    script.push(suspend_patch(true));
    let server = serve(handle, script);
    let state = plan_freeze(&client, &source()).await.expect("plan reads");
    let frozen = apply_freeze(&client, &state).await;
    finished(server).await;
    frozen.expect("freeze succeeds");
    let recorded: Vec<String> = state
        .entries
        .iter()
        .map(|e| {
            format!(
                "{} {:?} {:?} {:?}",
                e.name, e.replicas, e.suspended, e.pod_selector
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            r#"analyzer Some(3) None Some("app=analyzer")"#,
            r#"db Some(2) None Some("app=db")"#,
            "report None Some(false) None",
        ]
    );
}

#[tokio::test]
async fn restore_after_a_crash_puts_back_what_was_recorded_twice_over() {
    // The orchestrator persisted the plan before scaling, then the process died.
    let persisted = {
        let (client, handle) = mock();
        let server = serve(handle, frozen_reads());
        let state = plan_freeze(&client, &source()).await;
        finished(server).await;
        serde_json::to_string(&state.expect("plan reads")).expect("serialize")
    };
    let state: FrozenState = serde_json::from_str(&persisted).expect("read back");
    let (client, handle) = mock();
    let round = || {
        vec![
            scale_patch(DEPLOY, "analyzer", 3),
            scale_patch(STS, "db", 2),
            suspend_patch(false),
        ]
    };
    let server = serve(handle, round().into_iter().chain(round()).collect());
    let first = restore(&client, &state).await;
    let second = restore(&client, &state).await;
    finished(server).await;
    first.expect("restore succeeds");
    second.expect("restore is idempotent");
}

#[tokio::test]
async fn restore_of_a_vanished_workload_is_not_found() {
    let state: FrozenState = serde_json::from_value(json!({"entries": [{
        "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "analysis", "name": "analyzer",
        "replicas": 3, "podSelector": "app=analyzer"}]}))
    .expect("state");
    let (client, handle) = mock();
    let server = serve(
        handle,
        vec![
            Exchange::patch(&format!("{DEPLOY}/scale?fieldManager=relocate")).fail(
                404,
                fixtures::status(404, "NotFound", "deployments.apps \"analyzer\" not found"),
            ),
        ],
    );
    let result = restore(&client, &state).await;
    finished(server).await;
    assert!(
        matches!(result, Err(KubeError::NotFound { ref name, .. }) if name == "analyzer"),
        "{result:?}"
    );
}

#[tokio::test]
async fn scale_target_down_tolerates_what_was_never_deployed() {
    let target: Vec<Resource> = source()
        .into_iter()
        .map(|mut r| {
            r.namespace = "analysis-zrh".into();
            r
        })
        .collect();
    let zrh = |p: &str| p.replace("/analysis/", "/analysis-zrh/");
    let (client, handle) = mock();
    let script = vec![
        Exchange::patch(&format!("{}/scale?fieldManager=relocate", zrh(DEPLOY)))
            .content_type(MERGE)
            .body_eq(json!({"spec": {"replicas": 0}}))
            .ok(scale("analyzer", 0, "app=analyzer")),
        Exchange::patch(&format!("{}/scale?fieldManager=relocate", zrh(STS))).fail(
            404,
            fixtures::status(404, "NotFound", "statefulsets.apps \"db\" not found"),
        ),
        Exchange::patch(&format!("{}?fieldManager=relocate", zrh(CRON)))
            .body_eq(json!({"spec": {"suspend": true}}))
            .ok(fixtures::cronjob("analysis-zrh", "report", true)),
    ];
    let server = serve(handle, script);
    let result = scale_target(&client, &target, 0).await;
    finished(server).await;
    result.expect("rollback of the target succeeds");
}

fn pod_list(names: &[&str]) -> Value {
    let items: Vec<Value> = names
        .iter()
        .map(|n| json!({"metadata": {"name": n, "namespace": "analysis", "labels": {"app": "analyzer"},
                        "deletionTimestamp": "2025-03-02T09:20:00Z"},
                        "spec": {"nodeName": "msk-node-3", "containers": [{"name": "analyzer", "image": "x"}]},
                        "status": {"phase": "Running"}}))
        .collect();
    fixtures::list("Pod", "v1", items)
}

#[tokio::test]
async fn waits_until_the_frozen_workloads_pods_are_gone() {
    let state: FrozenState = serde_json::from_value(json!({"entries": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "analysis", "name": "analyzer",
         "replicas": 3, "podSelector": "app=analyzer"},
        {"apiVersion": "batch/v1", "kind": "CronJob", "namespace": "analysis", "name": "report", "suspended": false}
    ]}))
    .expect("state");
    let pods = "/api/v1/namespaces/analysis/pods?labelSelector=app%3Danalyzer";
    let (client, handle) = mock();
    let script = vec![
        Exchange::get(pods).ok(pod_list(&[
            "analyzer-7d9f8b6c5-x2x9k",
            "analyzer-7d9f8b6c5-q8p4d",
        ])),
        Exchange::get(pods).ok(pod_list(&["analyzer-7d9f8b6c5-q8p4d"])),
        Exchange::get(pods).ok(pod_list(&[])),
    ];
    let server = serve(handle, script);
    let options = WaitOptions {
        timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(5),
    };
    let result = wait_scaled_down(&client, &state, options).await;
    finished(server).await;
    result.expect("pods gone");
}
