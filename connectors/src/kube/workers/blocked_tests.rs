//! [`blocked_job`] against kube's scripted mock service, with the payloads a real
//! cluster gives: the scheduler's condition, the kubelet's and the attach/detach
//! controller's events, the Job controller's `FailedCreate`.

use serde_json::{Value, json};

use super::{BlockKind, Blocked, blocked_job};
use crate::kube::mock_tests::{Exchange, finished, mock, serve};

const PODS: &str =
    "/api/v1/namespaces/analysis/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Dmover";

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
}

fn events_of(kind: &str, name: &str, uid: &str) -> String {
    format!(
        "/api/v1/namespaces/analysis/events?fieldSelector=involvedObject.kind%3D{kind}%2CinvolvedObject.name%3D{name}%2Ctype%3DWarning%2CinvolvedObject.uid%3D{uid}"
    )
}

fn event(kind: &str, name: &str, reason: &str, message: &str, at: &str, count: i32) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
           "metadata": {"name": format!("{name}.187c"), "namespace": "analysis"},
           "involvedObject": {"kind": kind, "name": name, "namespace": "analysis"},
           "reason": reason, "message": message, "type": "Warning", "count": count,
           "firstTimestamp": at, "lastTimestamp": at,
           "source": {"component": "kubelet", "host": "zrh-worker-1"}})
}

fn pod(name: &str, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "analysis", "uid": format!("uid-{name}"),
                        "labels": {"batch.kubernetes.io/job-name": "mover"}},
           "spec": {"containers": [{"name": "worker", "image": "relocate"}]}, "status": status})
}

#[tokio::test]
async fn an_unschedulable_pod_and_a_volume_that_will_not_mount_are_named() {
    let (client, handle) = mock();
    let scheduler = "0/3 nodes are available: 3 node(s) had volume node affinity conflict. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    let server = serve(
        handle,
        vec![
            Exchange::get(PODS).ok(list(
                "PodList",
                vec![
                    pod(
                        "mover-0-aaaaa",
                        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                               "reason": "Unschedulable", "message": scheduler}]}),
                    ),
                    pod(
                        "mover-0-bbbbb",
                        json!({"phase": "Pending", "containerStatuses": [{"name": "worker", "ready": false,
                               "restartCount": 0, "image": "relocate", "imageID": "",
                               "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
                    ),
                    pod("mover-0-ccccc", json!({"phase": "Failed"})),
                ],
            )),
            Exchange::get(&events_of("Pod", "mover-0-bbbbb", "uid-mover-0-bbbbb")).ok(list(
                "EventList",
                vec![
                    event("Pod", "mover-0-bbbbb", "FailedMount", "older", "2026-11-30T10:00:00Z", 1),
                    event("Pod", "mover-0-bbbbb", "FailedAttachVolume", "Multi-Attach error for volume \"pvc-1\" Volume is already exclusively attached to one node and can't be attached to another", "2026-11-30T10:02:00Z", 3),
                    event("Pod", "mover-0-bbbbb", "BackOff", "not a volume", "2026-11-30T10:03:00Z", 1),
                ],
            )),
        ],
    );
    let blocked = blocked_job(client, "analysis", "mover")
        .await
        .expect("read");
    finished(server).await;
    assert_eq!(
        blocked,
        vec![
            Blocked {
                kind: BlockKind::Unschedulable,
                pod: Some("mover-0-aaaaa".into()),
                reason: "Unschedulable".into(),
                message: scheduler.into(),
            },
            Blocked {
                kind: BlockKind::Mount,
                pod: Some("mover-0-bbbbb".into()),
                reason: "FailedAttachVolume".into(),
                message: "Multi-Attach error for volume \"pvc-1\" Volume is already exclusively attached to one node and can't be attached to another".into(),
            },
        ]
    );
}

#[tokio::test]
async fn a_job_without_pods_is_blocked_only_by_a_failed_create() {
    let (client, handle) = mock();
    let refused = "Error creating: pods \"mover-0-x7k2p\" is forbidden: exceeded quota: compute, requested: limits.memory=1Gi, used: limits.memory=8Gi, limited: limits.memory=8Gi";
    let server = serve(
        handle,
        vec![
            Exchange::get(PODS).ok(list("PodList", vec![])),
            Exchange::get("/apis/batch/v1/namespaces/analysis/jobs/mover").ok(json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "mover", "namespace": "analysis", "uid": "uid-job-mover"},
                "spec": {"template": {"spec": {"containers": []}}}})),
            Exchange::get(&events_of("Job", "mover", "uid-job-mover")).ok(list(
                "EventList",
                vec![event(
                    "Job",
                    "mover",
                    "FailedCreate",
                    refused,
                    "2026-11-30T10:00:00Z",
                    4,
                )],
            )),
            // Pods created and running: nothing blocks, and no event is read.
            Exchange::get(PODS).ok(list(
                "PodList",
                vec![pod("mover-0-x7k2p", json!({"phase": "Running"}))],
            )),
        ],
    );
    let blocked = blocked_job(client.clone(), "analysis", "mover")
        .await
        .expect("read");
    assert_eq!(
        blocked,
        vec![Blocked {
            kind: BlockKind::CreateRefused,
            pod: None,
            reason: "FailedCreate".into(),
            message: refused.into(),
        }]
    );
    let running = blocked_job(client, "analysis", "mover")
        .await
        .expect("read");
    assert!(running.is_empty(), "{running:?}");
    finished(server).await;
}
