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
            "desiredNumberScheduled": 3, "updatedNumberScheduled": updated, "numberReady": ready}})
    };
    assert_eq!(readiness("DaemonSet", &ds(3, 3)), Readiness::Ready);
    assert_eq!(
        readiness("DaemonSet", &ds(2, 3)),
        Readiness::Pending("2/3 updated, 3 ready".into())
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
