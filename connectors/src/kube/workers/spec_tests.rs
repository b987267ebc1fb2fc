//! Every field of the worker Job, read back from the JSON the API server receives.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{MAX_JOB_NAME, WorkerJob, WorkerResources, build_job, job_name};

pub(super) fn worker() -> WorkerJob {
    WorkerJob {
        name: "telemetry-europe-copy-1a2b3c4d5e".into(),
        namespace: "relocate".into(),
        image: "registry.zrh.example.ch/relocate:0.2.0".into(),
        completions: 64,
        parallelism: 16,
        service_account: Some("relocate-worker".into()),
        secret_name: Some("relocate-stores".into()),
        resources: WorkerResources {
            cpu: Some("2".into()),
            memory: Some("1Gi".into()),
        },
        args: vec![
            "worker".into(),
            "--order".into(),
            "s3://state/order.json".into(),
        ],
        env: vec![("RUST_LOG".into(), "info".into())],
        labels: BTreeMap::from([
            ("relocate.dev/plan".into(), "9f86d081884c".into()),
            ("relocate.dev/stage".into(), "wave-1".into()),
        ]),
        backoff_limit_per_index: 3,
        ttl_seconds_after_finished: 86400,
    }
}

fn json_of(worker: &WorkerJob) -> Value {
    serde_json::to_value(build_job(worker)).expect("a Job serializes")
}

#[test]
fn the_job_is_indexed_with_per_index_retries_and_every_index_runs() {
    let job = json_of(&worker());
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], "telemetry-europe-copy-1a2b3c4d5e");
    assert_eq!(job["metadata"]["namespace"], "relocate");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 64);
    assert_eq!(spec["parallelism"], 16);
    assert_eq!(spec["backoffLimitPerIndex"], 3);
    assert_eq!(spec["ttlSecondsAfterFinished"], 86400);
    assert!(spec.get("maxFailedIndexes").is_none(), "{spec}");
    assert!(spec.get("backoffLimit").is_none(), "{spec}");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
}

#[test]
fn permanent_exit_codes_fail_the_index_and_disruptions_are_ignored() {
    let job = json_of(&worker());
    assert_eq!(
        job["spec"]["podFailurePolicy"],
        json!({"rules": [
            {"action": "FailIndex",
             "onExitCodes": {"containerName": "worker", "operator": "In", "values": [3, 4, 7]}},
            {"action": "Ignore",
             "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        ]})
    );
}

#[test]
fn pods_run_restricted_with_a_writable_tmp_only() {
    let job = json_of(&worker());
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
               "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["serviceAccountName"], "relocate-worker");
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["name"], "worker");
    assert_eq!(c["image"], "registry.zrh.example.ch/relocate:0.2.0");
    assert_eq!(
        c["args"],
        json!(["worker", "--order", "s3://state/order.json"])
    );
    assert!(
        c.get("command").is_none(),
        "the image's entrypoint is relocate"
    );
    assert_eq!(
        c["securityContext"],
        json!({"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
               "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}})
    );
    assert!(
        pod["volumes"]
            .as_array()
            .expect("volumes")
            .contains(&json!({"name": "tmp", "emptyDir": {}}))
    );
    assert!(
        c["volumeMounts"]
            .as_array()
            .expect("mounts")
            .contains(&json!({"name": "tmp", "mountPath": "/tmp"}))
    );
    assert!(
        c["env"]
            .as_array()
            .expect("env")
            .contains(&json!({"name": "TMPDIR", "value": "/tmp"}))
    );
}

#[test]
fn requests_equal_limits_when_given_and_are_absent_otherwise() {
    let job = json_of(&worker());
    let resources = &job["spec"]["template"]["spec"]["containers"][0]["resources"];
    let amounts = json!({"cpu": "2", "memory": "1Gi"});
    assert_eq!(resources, &json!({"requests": amounts, "limits": amounts}));

    let only_memory = WorkerJob {
        resources: WorkerResources {
            cpu: None,
            memory: Some("512Mi".into()),
        },
        ..worker()
    };
    let job = json_of(&only_memory);
    let resources = &job["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(
        resources,
        &json!({"requests": {"memory": "512Mi"}, "limits": {"memory": "512Mi"}})
    );

    let none = WorkerJob {
        resources: WorkerResources::default(),
        ..worker()
    };
    let job = json_of(&none);
    assert!(
        job["spec"]["template"]["spec"]["containers"][0]
            .get("resources")
            .is_none()
    );
}

#[test]
fn credentials_reach_the_pod_only_by_reference() {
    let job = json_of(&worker());
    let pod = &job["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["envFrom"],
        json!([{"secretRef": {"name": "relocate-stores", "optional": false}}])
    );
    assert!(c["volumeMounts"].as_array().expect("mounts").contains(
        &json!({"name": "credentials", "mountPath": "/var/run/secrets/relocate", "readOnly": true})
    ));
    assert!(pod["volumes"].as_array().expect("volumes").contains(
        &json!({"name": "credentials", "secret": {"secretName": "relocate-stores", "defaultMode": 0o440}})
    ));
    // Every env entry is a plain, non-secret literal the caller gave, or a reference.
    for var in c["env"].as_array().expect("env") {
        let name = var["name"].as_str().expect("name");
        assert!(
            ["TMPDIR", "RUST_LOG"].contains(&name),
            "unexpected env {var}"
        );
        if let Some(from) = var.get("valueFrom") {
            assert!(from.get("secretKeyRef").is_some(), "{var}");
        }
    }
    // No Secret data anywhere in the object.
    let text = job.to_string();
    for needle in ["stringData", "\"data\"", "AWS_SECRET", "secretAccessKey"] {
        assert!(!text.contains(needle), "{needle} in {text}");
    }
}

#[test]
fn without_a_secret_nothing_is_mounted_or_referenced() {
    let job = json_of(&WorkerJob {
        secret_name: None,
        service_account: None,
        ..worker()
    });
    let pod = &job["spec"]["template"]["spec"];
    assert!(pod["containers"][0].get("envFrom").is_none());
    assert_eq!(pod["volumes"], json!([{"name": "tmp", "emptyDir": {}}]));
    assert!(pod.get("serviceAccountName").is_none());
}

#[test]
fn job_and_pods_carry_relocates_labels_and_the_runs() {
    let job = json_of(&worker());
    let expected = json!({"app.kubernetes.io/name": "relocate-worker",
                          "app.kubernetes.io/managed-by": "relocate",
                          "relocate.dev/plan": "9f86d081884c", "relocate.dev/stage": "wave-1"});
    assert_eq!(job["metadata"]["labels"], expected);
    assert_eq!(job["spec"]["template"]["metadata"]["labels"], expected);
    // The caller cannot pass itself off as another app.
    let mut labels = worker().labels;
    labels.insert("app.kubernetes.io/managed-by".into(), "helm".into());
    let job = json_of(&WorkerJob { labels, ..worker() });
    assert_eq!(
        job["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "relocate"
    );
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[test]
fn job_names_are_valid_stable_and_distinct() {
    let name = job_name("telemetry-europe", "wave-1", 2, "copy");
    assert!(
        name.starts_with("telemetry-europe-wave-1-2-copy-"),
        "{name}"
    );
    assert_eq!(name, job_name("telemetry-europe", "wave-1", 2, "copy"));
    assert_ne!(name, job_name("telemetry-europe", "wave-1", 3, "copy"));
    assert_ne!(name, job_name("telemetry-europe", "wave-1", 2, "verify"));
    // Characters Kubernetes forbids do not make two workloads collide.
    assert_ne!(
        job_name("a_b", "s", 1, "copy"),
        job_name("a.b", "s", 1, "copy")
    );
    let long = "Ünïcode Workload ".repeat(20);
    for name in [
        job_name(&long, "stage", 1, "copy"),
        job_name("___", "", 0, ""),
        job_name("X", "Y", u32::MAX, "VERIFY"),
        job_name(&"a-".repeat(40), "-", 1, "-"),
    ] {
        assert!(is_dns_label(&name), "{name}");
        assert!(name.len() <= MAX_JOB_NAME, "{name}");
    }
}
