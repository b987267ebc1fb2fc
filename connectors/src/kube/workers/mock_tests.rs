//! The worker Job's cluster calls against kube's scripted mock service: the paths, bodies
//! and answers a real API server gives, including its 409 and 404 `Status` replies.

use std::collections::BTreeSet;

use futures::StreamExt;
use http::Method;
use kube::client::Body;
use serde_json::{Value, json};

use super::spec_tests::worker;
use super::{
    JobFinished, JobProgress, build_job, check_worker_prerequisites, ensure_job, follow_pod_logs,
    job_pods, job_progress,
};
use crate::kube::KubeError;
use crate::kube::mock_tests::{Exchange, finished, mock, serve};

const JOBS: &str = "/apis/batch/v1/namespaces/relocate/jobs";
const JOB: &str = "/apis/batch/v1/namespaces/relocate/jobs/telemetry-europe-copy-1a2b3c4d5e";

fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "details": details, "code": code})
}

fn created(mut labels: Value) -> Value {
    let mut job = serde_json::to_value(build_job(&worker())).expect("job");
    if !labels.is_null() {
        job["metadata"]["labels"] = labels.take();
    }
    job["metadata"]["uid"] = json!("7d2f0a9e-1111-2222-3333-444455556666");
    job
}

fn already_exists() -> Value {
    status(
        409,
        "AlreadyExists",
        "jobs.batch \"telemetry-europe-copy-1a2b3c4d5e\" already exists",
        json!({"name": "telemetry-europe-copy-1a2b3c4d5e", "group": "batch", "kind": "jobs"}),
    )
}

#[tokio::test]
async fn ensure_job_posts_the_built_job() {
    let (client, handle) = mock();
    let expected = serde_json::to_value(build_job(&worker())).expect("job");
    let server = serve(
        handle,
        vec![
            Exchange::new(Method::POST, &format!("{JOBS}?"))
                .body_eq(expected)
                .ok(created(Value::Null)),
        ],
    );
    let job = ensure_job(client, &worker()).await.expect("created");
    assert_eq!(
        job.metadata.uid.as_deref(),
        Some("7d2f0a9e-1111-2222-3333-444455556666")
    );
    finished(server).await;
}

#[tokio::test]
async fn ensure_job_re_attaches_to_the_same_runs_job_and_creates_no_second() {
    let (client, handle) = mock();
    // Exactly one POST (answered 409) and one GET: nothing else is sent.
    let server = serve(
        handle,
        vec![
            Exchange::new(Method::POST, &format!("{JOBS}?")).fail(409, already_exists()),
            Exchange::get(JOB).ok(created(Value::Null)),
        ],
    );
    let job = ensure_job(client, &worker()).await.expect("re-attached");
    assert_eq!(
        job.metadata.name.as_deref(),
        Some("telemetry-europe-copy-1a2b3c4d5e")
    );
    finished(server).await;
}

#[tokio::test]
async fn ensure_job_refuses_a_job_of_another_run_naming_it() {
    let (client, handle) = mock();
    let other = json!({"app.kubernetes.io/name": "relocate-worker",
                       "app.kubernetes.io/managed-by": "relocate",
                       "relocate.dev/plan": "0000deadbeef", "relocate.dev/stage": "wave-1"});
    let server = serve(
        handle,
        vec![
            Exchange::new(Method::POST, &format!("{JOBS}?")).fail(409, already_exists()),
            Exchange::get(JOB).ok(created(other)),
        ],
    );
    let err = ensure_job(client, &worker())
        .await
        .expect_err("another run's Job");
    assert!(matches!(err, KubeError::JobTaken { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("Job relocate/telemetry-europe-copy-1a2b3c4d5e"),
        "{text}"
    );
    assert!(
        text.contains("relocate.dev/plan: expected 9f86d081884c, found 0000deadbeef"),
        "{text}"
    );
    finished(server).await;
}

#[tokio::test]
async fn ensure_job_in_a_missing_namespace_names_the_namespace() {
    let (client, handle) = mock();
    let server = serve(
        handle,
        vec![Exchange::new(Method::POST, &format!("{JOBS}?")).fail(
            404,
            status(
                404,
                "NotFound",
                "namespaces \"relocate\" not found",
                json!({"name": "relocate", "kind": "namespaces"}),
            ),
        )],
    );
    let err = ensure_job(client, &worker())
        .await
        .expect_err("no namespace");
    assert_eq!(
        err.to_string(),
        "namespace relocate not found: create it (kubectl create namespace relocate) or name another in `workers.kubernetes.namespace`"
    );
    finished(server).await;
}

#[tokio::test]
async fn job_progress_reads_indexes_active_and_conditions() {
    let (client, handle) = mock();
    let mut running = created(Value::Null);
    running["status"] = json!({"active": 2, "succeeded": 4, "failed": 1,
                               "completedIndexes": "0-2,5", "failedIndexes": "3"});
    let mut failed = created(Value::Null);
    failed["status"] = json!({"active": 0, "completedIndexes": "0-2,4-5", "failedIndexes": "3",
        "conditions": [{"type": "FailureTarget", "status": "True", "reason": "FailedIndexes"},
                       {"type": "Failed", "status": "True", "reason": "FailedIndexes",
                        "message": "Job has failed indexes"}]});
    let mut garbage = created(Value::Null);
    garbage["status"] = json!({"completedIndexes": "0-x"});
    let server = serve(
        handle,
        vec![
            Exchange::get(JOB).ok(running),
            Exchange::get(JOB).ok(failed),
            Exchange::get(JOB).ok(garbage),
        ],
    );
    let name = "telemetry-europe-copy-1a2b3c4d5e";
    let now = job_progress(client.clone(), "relocate", name)
        .await
        .expect("progress");
    assert_eq!(
        now,
        JobProgress {
            completed: BTreeSet::from([0, 1, 2, 5]),
            failed: BTreeSet::from([3]),
            active: 2,
            finished: None,
        }
    );
    let end = job_progress(client.clone(), "relocate", name)
        .await
        .expect("progress");
    assert_eq!(
        end.finished,
        Some(JobFinished::Failed {
            reason: "FailedIndexes".into(),
            message: "Job has failed indexes".into(),
        })
    );
    let err = job_progress(client, "relocate", name)
        .await
        .expect_err("garbage");
    assert!(matches!(err, KubeError::JobStatus { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("0-x")));
    finished(server).await;
}

fn meta(kind: &str, name: &str) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": {"name": name, "uid": format!("{kind}-{name}")}})
}

fn not_found(kind: &str, name: &str) -> Value {
    status(
        404,
        "NotFound",
        &format!("{kind} \"{name}\" not found"),
        json!({"name": name, "kind": kind}),
    )
}

#[tokio::test]
async fn prerequisites_read_only_metadata_and_name_what_is_missing() {
    let (client, handle) = mock();
    let server = serve(
        handle,
        vec![
            // all present
            Exchange::get("/api/v1/namespaces/relocate").ok(meta("namespaces", "relocate")),
            Exchange::get("/api/v1/namespaces/relocate/secrets/relocate-stores")
                .ok(meta("secrets", "relocate-stores")),
            Exchange::get("/api/v1/namespaces/relocate/serviceaccounts/relocate-worker")
                .ok(meta("serviceaccounts", "relocate-worker")),
            // no namespace
            Exchange::get("/api/v1/namespaces/relocate")
                .fail(404, not_found("namespaces", "relocate")),
            // no secret
            Exchange::get("/api/v1/namespaces/relocate").ok(meta("namespaces", "relocate")),
            Exchange::get("/api/v1/namespaces/relocate/secrets/relocate-stores")
                .fail(404, not_found("secrets", "relocate-stores")),
            // no service account
            Exchange::get("/api/v1/namespaces/relocate").ok(meta("namespaces", "relocate")),
            Exchange::get("/api/v1/namespaces/relocate/secrets/relocate-stores")
                .ok(meta("secrets", "relocate-stores")),
            Exchange::get("/api/v1/namespaces/relocate/serviceaccounts/relocate-worker")
                .fail(404, not_found("serviceaccounts", "relocate-worker")),
        ],
    );
    let check = || {
        check_worker_prerequisites(
            client.clone(),
            "relocate",
            Some("relocate-stores"),
            Some("relocate-worker"),
        )
    };
    check().await.expect("all there");
    let err = check().await.expect_err("no namespace").to_string();
    assert!(
        err.starts_with("namespace relocate not found: create it"),
        "{err}"
    );
    let err = check().await.expect_err("no secret").to_string();
    assert!(err.starts_with("secret relocate-stores not found in namespace relocate: create it with the store credentials (kubectl create secret generic relocate-stores"), "{err}");
    let err = check().await.expect_err("no account").to_string();
    assert!(err.starts_with("service account relocate-worker not found in namespace relocate: create it (kubectl create serviceaccount relocate-worker -n relocate)"), "{err}");
    finished(server).await;
}

fn pod(name: &str, index: Option<&str>, phase: &str) -> Value {
    let mut labels = json!({"batch.kubernetes.io/job-name": "copy-job"});
    if let Some(i) = index {
        labels["batch.kubernetes.io/job-completion-index"] = json!(i);
    }
    json!({"metadata": {"name": name, "namespace": "relocate", "labels": labels},
           "spec": {"containers": [{"name": "worker", "image": "x"}]}, "status": {"phase": phase}})
}

#[tokio::test]
async fn job_pods_select_by_job_name_and_read_the_index() {
    let (client, handle) = mock();
    let list = |items: Vec<Value>| json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items});
    let uri =
        "/api/v1/namespaces/relocate/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Dcopy-job";
    let server = serve(
        handle,
        vec![
            Exchange::get(uri).ok(list(vec![
                pod("copy-job-1-xk2p9", Some("1"), "Running"),
                pod("copy-job-0-ab1cd", Some("0"), "Failed"),
                pod("copy-job-0-zz9yy", Some("0"), "Succeeded"),
            ])),
            Exchange::get(uri).ok(list(vec![pod("stray", None, "Running")])),
        ],
    );
    let pods = job_pods(client.clone(), "relocate", "copy-job")
        .await
        .expect("pods");
    assert_eq!(
        pods,
        vec![
            (0, "copy-job-0-ab1cd".to_owned(), "Failed".to_owned()),
            (0, "copy-job-0-zz9yy".to_owned(), "Succeeded".to_owned()),
            (1, "copy-job-1-xk2p9".to_owned(), "Running".to_owned()),
        ]
    );
    let err = job_pods(client, "relocate", "copy-job")
        .await
        .expect_err("no index");
    assert!(err.to_string().contains("Pod relocate/stray"), "{err}");
    finished(server).await;
}

#[tokio::test]
async fn pod_logs_are_followed_line_by_line() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let (request, send) = handle.next_request().await.expect("a log request");
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().to_string(),
            "/api/v1/namespaces/relocate/pods/copy-job-0-ab1cd/log?&follow=true"
        );
        let body = "{\"event\":\"started\",\"shard\":0}\n{\"event\":\"copied\",\"objects\":3}\n{\"event\":\"done\"}";
        send.send_response(
            http::Response::builder()
                .status(200)
                .body(Body::from(body.as_bytes().to_vec()))
                .expect("response"),
        );
    });
    let lines: Vec<String> = follow_pod_logs(client, "relocate", "copy-job-0-ab1cd")
        .map(|line| line.expect("a line"))
        .collect()
        .await;
    assert_eq!(
        lines,
        [
            r#"{"event":"started","shard":0}"#,
            r#"{"event":"copied","objects":3}"#,
            r#"{"event":"done"}"#,
        ]
    );
    server.await.expect("server");
}

#[tokio::test]
async fn a_missing_pods_log_is_an_error_not_an_empty_stream() {
    let (client, handle) = mock();
    let server = serve(
        handle,
        vec![
            Exchange::get("/api/v1/namespaces/relocate/pods/gone/log?follow=true")
                .fail(404, not_found("pods", "gone")),
        ],
    );
    let items: Vec<_> = follow_pod_logs(client, "relocate", "gone").collect().await;
    assert_eq!(items.len(), 1);
    assert!(
        matches!(&items[0], Err(KubeError::NotFound { kind, name, .. }) if kind == "Pod" && name == "gone"),
        "{items:?}"
    );
    finished(server).await;
}

#[tokio::test]
async fn ensure_job_does_not_re_attach_to_a_job_being_deleted() {
    let (client, handle) = mock();
    let mut dying = created(Value::Null);
    dying["metadata"]["deletionTimestamp"] = json!("2026-11-30T10:00:00Z");
    let server = serve(
        handle,
        vec![
            Exchange::new(Method::POST, &format!("{JOBS}?")).fail(409, already_exists()),
            Exchange::get(JOB).ok(dying),
        ],
    );
    let err = ensure_job(client, &worker())
        .await
        .expect_err("being deleted");
    assert!(matches!(err, KubeError::JobDeleting { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("kubectl wait --for=delete job/telemetry-europe-copy-1a2b3c4d5e -n relocate"),
        "{err}"
    );
    finished(server).await;
}

#[tokio::test]
async fn stuck_pods_name_the_missing_image_or_secret() {
    let (client, handle) = mock();
    let waiting = |name: &str, index: &str, reason: &str, message: &str| {
        let mut p = pod(name, Some(index), "Pending");
        p["status"]["containerStatuses"] = json!([{"name": "worker", "image": "x", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}]);
        p
    };
    let uri =
        "/api/v1/namespaces/relocate/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Dcopy-job";
    let server = serve(handle, vec![Exchange::get(uri).ok(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
        waiting("copy-job-1-b", "1", "ImagePullBackOff", "Back-off pulling image \"registry.zrh.example.ch/relocate:0.2.0\""),
        waiting("copy-job-0-a", "0", "CreateContainerConfigError", "secret \"relocate-stores\" not found"),
        waiting("copy-job-2-c", "2", "ContainerCreating", ""),
        pod("copy-job-3-d", Some("3"), "Running"),
    ]}))]);
    let stuck = super::stuck_worker_pods(client, "relocate", "copy-job")
        .await
        .expect("pods");
    assert_eq!(
        stuck,
        vec![
            super::StuckPod {
                index: 0,
                pod: "copy-job-0-a".into(),
                reason: "CreateContainerConfigError".into(),
                message: "secret \"relocate-stores\" not found".into()
            },
            super::StuckPod {
                index: 1,
                pod: "copy-job-1-b".into(),
                reason: "ImagePullBackOff".into(),
                message: "Back-off pulling image \"registry.zrh.example.ch/relocate:0.2.0\"".into()
            },
        ]
    );
    finished(server).await;
}
