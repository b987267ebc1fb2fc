use serde_json::json;

use super::{Readiness, readiness};
use crate::kube::fixtures;

#[test]
fn rolled_out_deployment_is_ready() {
    assert_eq!(
        readiness("Deployment", &fixtures::deployment("a", "d", 3)),
        Readiness::Ready
    );
}

#[test]
fn deployment_mid_rollout_is_pending_with_counts() {
    let mut d = fixtures::deployment("a", "d", 3);
    d["status"]["updatedReplicas"] = json!(1);
    d["status"]["availableReplicas"] = json!(2);
    d["status"]["replicas"] = json!(4);
    assert_eq!(
        readiness("Deployment", &d),
        Readiness::Pending("1/3 updated, 2 available, 4 total".into())
    );
}

#[test]
fn unobserved_generation_is_pending_even_if_counts_match() {
    let mut d = fixtures::deployment("a", "d", 3);
    d["metadata"]["generation"] = json!(8);
    assert!(
        matches!(readiness("Deployment", &d), Readiness::Pending(m) if m.contains("generation 8"))
    );
}

#[test]
fn progress_deadline_exceeded_fails() {
    let mut d = fixtures::deployment("a", "d", 3);
    d["status"]["conditions"][1] = json!({"type": "Progressing", "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet \"d-66b\" has timed out progressing."});
    assert!(
        matches!(readiness("Deployment", &d), Readiness::Failed(m) if m.contains("timed out progressing"))
    );
}

#[test]
fn statefulset_waits_for_ready_replicas_and_revision() {
    let mut s = fixtures::statefulset("a", "db", 2);
    assert_eq!(readiness("StatefulSet", &s), Readiness::Ready);
    s["status"]["updateRevision"] = json!("db-6f8a1");
    assert!(
        matches!(readiness("StatefulSet", &s), Readiness::Pending(m) if m.contains("db-6f8a1"))
    );
    s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    assert_eq!(readiness("StatefulSet", &s), Readiness::Ready);
    s["status"]["readyReplicas"] = json!(1);
    assert_eq!(
        readiness("StatefulSet", &s),
        Readiness::Pending("1/2 ready".into())
    );
}

#[test]
fn daemonset_needs_every_node_updated_and_ready() {
    let ds = |updated: i64, ready: i64| {
        json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2,
            "desiredNumberScheduled": 3, "updatedNumberScheduled": updated, "numberReady": 3,
            "numberAvailable": ready}})
    };
    assert_eq!(readiness("DaemonSet", &ds(3, 3)), Readiness::Ready);
    assert_eq!(
        readiness("DaemonSet", &ds(2, 3)),
        Readiness::Pending("2/3 updated, 3 available".into())
    );
}

#[test]
fn job_succeeds_or_fails_by_condition() {
    let mut j = fixtures::job("a", "seed");
    assert_eq!(readiness("Job", &j), Readiness::Ready);
    j["status"] = json!({"active": 1});
    assert_eq!(
        readiness("Job", &j),
        Readiness::Pending("0/1 succeeded, 1 active".into())
    );
    j["status"] = json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True",
        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]});
    assert_eq!(
        readiness("Job", &j),
        Readiness::Failed(
            "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
        )
    );
}

#[test]
fn kinds_without_rollout_are_ready() {
    assert_eq!(
        readiness("ConfigMap", &fixtures::config_map("a", "c")),
        Readiness::Ready
    );
}

#[test]
fn k8s_finding_08_partitioned_statefulset_is_done_when_pods_above_the_partition_are_updated() {
    // A canary: 5 replicas, partition 3, so only ordinals 3 and 4 take the new revision and
    // the current revision never changes (the old rule waited for it forever).
    let mut s = fixtures::statefulset("a", "db", 5);
    s["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}});
    s["status"]["currentRevision"] = json!("db-5c7d9");
    s["status"]["updateRevision"] = json!("db-6f8a1");
    s["status"]["updatedReplicas"] = json!(1);
    assert_eq!(
        readiness("StatefulSet", &s),
        Readiness::Pending("partitioned rollout: 1/2 pods above partition 3 updated".into())
    );
    s["status"]["updatedReplicas"] = json!(2);
    assert_eq!(readiness("StatefulSet", &s), Readiness::Ready);
    // A StatefulSet whose controller has written no observedGeneration is not rolled out.
    s["status"]
        .as_object_mut()
        .expect("status")
        .remove("observedGeneration");
    assert!(
        matches!(readiness("StatefulSet", &s), Readiness::Pending(m) if m.contains("observed"))
    );
}

#[test]
fn k8s_finding_08_daemonset_waits_for_available_pods_not_ready_ones() {
    // minReadySeconds: 30 — all three pods are ready, only one has been ready long enough.
    let ds = json!({"metadata": {"generation": 4},
        "spec": {"minReadySeconds": 30, "updateStrategy": {"type": "RollingUpdate"}},
        "status": {"observedGeneration": 4, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                   "updatedNumberScheduled": 3, "numberReady": 3, "numberAvailable": 1,
                   "numberUnavailable": 2}});
    assert_eq!(
        readiness("DaemonSet", &ds),
        Readiness::Pending("3/3 updated, 1 available".into())
    );
}

#[test]
fn k8s_finding_08_work_queue_job_waits_for_its_complete_condition() {
    // No `completions`: workers drain a queue; one success means one worker finished.
    let mut j = fixtures::job("a", "drain");
    j["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("completions");
    j["spec"]["parallelism"] = json!(3);
    j["status"] = json!({"succeeded": 1, "active": 2, "startTime": "2025-03-02T09:00:00Z"});
    assert_eq!(
        readiness("Job", &j),
        Readiness::Pending(
            "work queue: 1 succeeded, 2 active, waiting for the Complete condition".into()
        )
    );
    j["status"] = json!({"succeeded": 3, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]});
    assert_eq!(readiness("Job", &j), Readiness::Ready);
}

#[test]
fn k8s_finding_08_deployment_with_old_replicas_terminating_is_pending() {
    let mut d = fixtures::deployment("a", "d", 3);
    d["status"]["replicas"] = json!(4);
    assert_eq!(
        readiness("Deployment", &d),
        Readiness::Pending("3/3 updated, 3 available, 4 total".into())
    );
}
