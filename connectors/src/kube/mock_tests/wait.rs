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
const ANALYZER_PODS: &str = "/api/v1/namespaces/analysis-zrh/pods?labelSelector=app%3Danalyzer";

fn pods(items: Vec<Value>) -> Value {
    fixtures::list("Pod", "v1", items)
}

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
    let job_pods = "/api/v1/namespaces/analysis-zrh/pods?labelSelector=\
                    batch.kubernetes.io%2Fcontroller-uid%3De3b0c442-98fc-4c14-9afb-f4c8996fb924";
    let script = vec![
        Exchange::get(DEPLOYMENT).ok(rolling(live.clone())),
        Exchange::get(ANALYZER_PODS).ok(pods(vec![])),
        Exchange::get("/apis/batch/v1/namespaces/analysis-zrh/jobs/seed").ok(job_running),
        Exchange::get(job_pods).ok(pods(vec![])),
        Exchange::get(DEPLOYMENT).ok(rolling(live.clone())),
        Exchange::get(ANALYZER_PODS).ok(pods(vec![])),
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
            if request.uri().path().ends_with("/pods") {
                send.send_response(respond(200, &pods(vec![])));
                continue;
            }
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

#[tokio::test]
async fn k8s_finding_07_a_single_500_during_a_wait_is_still_pending() {
    let live = fixtures::deployment("analysis-zrh", "analyzer", 3);
    let resources = [applied(live.clone())];
    let (client, handle) = mock();
    let script = vec![
        Exchange::get(DEPLOYMENT).ok(rolling(live.clone())),
        Exchange::get(ANALYZER_PODS).ok(pods(vec![])),
        Exchange::get(DEPLOYMENT).fail(
            500,
            fixtures::status(500, "InternalError", "etcdserver: request timed out"),
        ),
        Exchange::get(DEPLOYMENT).fail(
            503,
            fixtures::status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
        ),
        Exchange::get(DEPLOYMENT).ok(live),
    ];
    let server = serve(handle, script);
    let seen = Mutex::new(Vec::<ReadyProgress>::new());
    let result = wait_ready(&client, &resources, options(5_000), |p| {
        seen.lock().expect("progress lock").push(p.clone());
    })
    .await;
    finished(server).await;
    result.expect("a 500 and a 503 are not the end of the rollout");
    let seen = seen.into_inner().expect("progress lock");
    assert_eq!(seen.len(), 4);
    assert_eq!(
        seen[1].waiting,
        [
            "Deployment analysis-zrh/analyzer: no answer from the API server \
          (500 etcdserver: request timed out)"
        ]
    );
}

#[tokio::test]
async fn k8s_finding_07_a_get_that_never_answers_ends_at_the_wait_timeout() {
    let live = fixtures::deployment("analysis-zrh", "analyzer", 3);
    let resources = [applied(live)];
    let (client, mut handle) = mock();
    // Accept every request and never answer, as a connection that dropped silently does.
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(pending) = handle.next_request().await {
            held.push(pending);
        }
        assert!(!held.is_empty());
    });
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        wait_ready(&client, &resources, options(400), |_| {}),
    )
    .await
    .expect("the wait must end by itself at its timeout, not hang");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(client);
    finished(server).await;
    match result {
        Err(KubeError::Timeout { unready, .. }) => assert_eq!(
            unready,
            [
                "Deployment analysis-zrh/analyzer: no answer from the API server (the call timed out)"
            ]
        ),
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn k8s_finding_08_pod_reasons_are_shown_while_waiting_and_when_the_wait_fails() {
    let live = fixtures::deployment("analysis-zrh", "analyzer", 3);
    let resources = [applied(live.clone())];
    let pull = json!({"metadata": {"name": "analyzer-7d9f8b6c5-x2k8q", "namespace": "analysis-zrh",
                                   "labels": {"app": "analyzer"}},
        "spec": {"containers": [{"name": "analyzer", "image": "registry.zrh.example/analyzer:1.4.2"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "analyzer", "ready": false, "restartCount": 0,
                "image": "registry.zrh.example/analyzer:1.4.2", "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff",
                    "message": "Back-off pulling image \"registry.zrh.example/analyzer:1.4.2\""}}}]}});
    let mut pull2 = pull.clone();
    pull2["metadata"]["name"] = json!("analyzer-7d9f8b6c5-p9z4m");
    let unschedulable = json!({"metadata": {"name": "analyzer-7d9f8b6c5-qq7wn", "namespace": "analysis-zrh",
                                            "labels": {"app": "analyzer"}},
        "spec": {"containers": [{"name": "analyzer", "image": "registry.zrh.example/analyzer:1.4.2"}]},
        "status": {"phase": "Pending", "qosClass": "Burstable", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "lastTransitionTime": "2025-03-02T09:01:00Z",
            "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."}]}});
    let (client, mut handle) = mock();
    let answer = pods(vec![pull, pull2, unschedulable]);
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let reply = if request.uri().path().ends_with("/pods") {
                assert!(
                    request
                        .uri()
                        .query()
                        .is_some_and(|q| q.contains("labelSelector=app%3Danalyzer")),
                    "{}",
                    request.uri()
                );
                answer.clone()
            } else {
                rolling(live.clone())
            };
            send.send_response(respond(200, &reply));
        }
    });
    let seen = Mutex::new(Vec::<ReadyProgress>::new());
    let result = wait_ready(&client, &resources, options(60), |p| {
        seen.lock().expect("progress lock").push(p.clone());
    })
    .await;
    drop(client);
    finished(server).await;
    let first = &seen.into_inner().expect("progress lock")[0].waiting[0];
    let err = result.expect_err("never ready").to_string();
    for text in [first.as_str(), err.as_str()] {
        assert!(
            text.contains("2 pod(s) ImagePullBackOff: Back-off pulling image \"registry.zrh.example/analyzer:1.4.2\""),
            "{text}"
        );
        assert!(
            text.contains(
                "1 pod(s) Pending (Unschedulable): 0/3 nodes are available: 3 Insufficient cpu."
            ),
            "{text}"
        );
    }
}
