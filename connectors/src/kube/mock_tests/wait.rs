use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Exchange, finished, mock, respond, serve};
use crate::kube::{KubeError, ReadyProgress, Resource, WaitOptions, clean, fixtures, wait_ready};

fn applied(object: Value) -> Resource {
    let mut object = object;
    clean(&mut object);
    Resource::from_object(object, "analysis-zrh").expect("valid manifest")
}

fn options(timeout_ms: u64) -> WaitOptions {
    WaitOptions {
        timeout: Duration::from_millis(timeout_ms),
        poll_interval: Duration::from_millis(10),
    }
}

fn rolling(mut deployment: Value) -> Value {
    deployment["metadata"]["generation"] = json!(1);
    deployment["status"] = json!({
        "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 1,
        "availableReplicas": 1, "unavailableReplicas": 2,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
             "message": "ReplicaSet \"analyzer-7d9f8b6c5\" is progressing."}
        ]
    });
    deployment
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/analysis-zrh/deployments/analyzer";

#[tokio::test]
async fn waits_across_polls_until_the_rollout_completes() {
    let live = fixtures::deployment("analysis-zrh", "analyzer", 3);
    let resources = [
        applied(fixtures::config_map("analysis-zrh", "analyzer-config")),
        applied(live.clone()),
        applied(fixtures::job("analysis-zrh", "seed")),
    ];
    let (client, handle) = mock();
    let mut job_running = fixtures::job("analysis-zrh", "seed");
    job_running["status"] = json!({"active": 1, "startTime": "2025-03-02T09:00:00Z"});
    let script = vec![
        Exchange::get(DEPLOYMENT).ok(rolling(live.clone())),
        Exchange::get("/apis/batch/v1/namespaces/analysis-zrh/jobs/seed").ok(job_running),
        Exchange::get(DEPLOYMENT).ok(rolling(live.clone())),
        Exchange::get("/apis/batch/v1/namespaces/analysis-zrh/jobs/seed")
            .ok(fixtures::job("analysis-zrh", "seed")),
        Exchange::get(DEPLOYMENT).ok(live),
    ];
    let server = serve(handle, script);
    let seen = Mutex::new(Vec::<ReadyProgress>::new());
    let result = wait_ready(&client, &resources, options(5_000), |p| {
        seen.lock().expect("progress lock").push(p.clone());
    })
    .await;
    finished(server).await;
    result.expect("ready");
    let seen = seen.into_inner().expect("progress lock");
    let counts: Vec<(usize, usize)> = seen.iter().map(|p| (p.ready, p.total)).collect();
    assert_eq!(counts, [(0, 2), (1, 2), (2, 2)]);
    assert_eq!(
        seen[1].waiting,
        [
            "Deployment analysis-zrh/analyzer: 3/3 updated, 1 available, 3 total \
          [Available=False MinimumReplicasUnavailable: Deployment does not have minimum availability.; \
          Progressing=True ReplicaSetUpdated: ReplicaSet \"analyzer-7d9f8b6c5\" is progressing.]"
        ]
    );
}

#[tokio::test]
async fn failed_job_fails_the_wait_with_its_condition() {
    let resources = [applied(fixtures::job("analysis-zrh", "seed"))];
    let mut failed = fixtures::job("analysis-zrh", "seed");
    failed["status"] = json!({"failed": 3, "conditions": [{
        "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
        "lastTransitionTime": "2025-03-02T09:05:00Z", "lastProbeTime": "2025-03-02T09:05:00Z"}]});
    let (client, handle) = mock();
    let server = serve(
        handle,
        vec![Exchange::get("/apis/batch/v1/namespaces/analysis-zrh/jobs/seed").ok(failed)],
    );
    let result = wait_ready(&client, &resources, options(5_000), |_| {}).await;
    finished(server).await;
    match result {
        Err(KubeError::JobFailed { resource, message }) => {
            assert_eq!(resource, "Job analysis-zrh/seed");
            assert_eq!(
                message,
                "BackoffLimitExceeded: Job has reached the specified backoff limit"
            );
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn timeout_names_each_unready_resource_and_its_conditions() {
    let live = fixtures::deployment("analysis-zrh", "analyzer", 3);
    let resources = [applied(live.clone())];
    let (client, mut handle) = mock();
    // Answer "still rolling" for as long as the client keeps asking.
    let server = tokio::spawn(async move {
        let mut polls = 0;
        while let Some((request, send)) = handle.next_request().await {
            assert_eq!(request.uri().path(), DEPLOYMENT);
            polls += 1;
            send.send_response(respond(200, &rolling(live.clone())));
        }
        assert!(polls >= 2, "polled {polls} times");
    });
    let result = wait_ready(&client, &resources, options(60), |_| {}).await;
    drop(client);
    finished(server).await;
    match result {
        Err(KubeError::Timeout { unready, .. }) => {
            assert_eq!(unready.len(), 1);
            assert!(
                unready[0]
                    .starts_with("Deployment analysis-zrh/analyzer: 3/3 updated, 1 available"),
                "{unready:?}"
            );
            assert!(
                unready[0].contains("MinimumReplicasUnavailable"),
                "{unready:?}"
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}
