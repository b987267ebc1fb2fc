use serde_json::{Value, json};

use super::{Exchange, finished, mock, serve};
use crate::kube::{DEFAULT_KINDS, KubeError, export, fixtures};

fn workload(spec: Value) -> plans::KubernetesWorkload {
    let mut base = json!({"from": "moscow-k8s", "to": "zurich-k8s", "namespace": "analysis"});
    if let (Some(base), Some(spec)) = (base.as_object_mut(), spec.as_object()) {
        base.extend(spec.clone());
    }
    serde_json::from_value(base).expect("workload parses as the plan would")
}

fn collection(group: &str, version: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}/namespaces/analysis/{plural}")
    } else {
        format!("/apis/{group}/{version}/namespaces/analysis/{plural}")
    }
}

/// What the source namespace holds, per kind, as list answers.
fn source_lists(kind: &str) -> Vec<Value> {
    let ns = "analysis";
    let owned_job = {
        let mut j = fixtures::job(ns, "report-29012340");
        j["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "CronJob",
            "name": "report", "uid": "c0c0c0c0-1111-2222-3333-444455556666",
            "controller": true, "blockOwnerDeletion": true}]);
        j
    };
    let default_sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": ns, "uid": "d", "resourceVersion": "1"}});
    let analyzer_sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "analyzer", "namespace": ns, "uid": "e", "resourceVersion": "2",
                     "labels": {"app": "analyzer"}}});
    let mut root_ca = fixtures::config_map(ns, "kube-root-ca.crt");
    root_ca["data"] =
        json!({"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"});
    match kind {
        "ServiceAccount" => vec![default_sa, analyzer_sa],
        "Secret" => vec![
            fixtures::token_secret(ns),
            fixtures::opaque_secret(ns, "analyzer-db"),
        ],
        "ConfigMap" => vec![root_ca, fixtures::config_map(ns, "analyzer-config")],
        "PersistentVolumeClaim" => vec![fixtures::pvc(ns, "analyzer-data")],
        "Service" => vec![fixtures::service(ns, "analyzer")],
        "CronJob" => vec![fixtures::cronjob(ns, "report", false)],
        "Job" => vec![owned_job, fixtures::job(ns, "seed")],
        _ => vec![],
    }
}

fn list_step(uri: &str, extra: &[(&str, &str)]) -> Exchange {
    let mut query = vec![
        "labelSelector=app%3Danalyzer".to_owned(),
        "limit=500".to_owned(),
    ];
    query.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
    Exchange::get(&format!("{uri}?{}", query.join("&")))
}

#[tokio::test]
async fn export_lists_every_kind_skips_cluster_objects_and_cleans() {
    let (client, handle) = mock();
    let mut script = Vec::new();
    for kind in DEFAULT_KINDS {
        let uri = collection(kind.group, kind.version, kind.plural);
        let api_version = kind.api_resource().api_version;
        if kind.kind == "Deployment" {
            // Two pages: the continue token must be sent back.
            let mut first = fixtures::list(
                "Deployment",
                &api_version,
                vec![fixtures::deployment("analysis", "analyzer", 3)],
            );
            first["metadata"]["continue"] =
                json!("eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgyMTM0MDB9");
            script.push(list_step(&uri, &[]).ok(first));
            script.push(
                list_step(
                    &uri,
                    &[(
                        "continue",
                        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgyMTM0MDB9",
                    )],
                )
                .ok(fixtures::list(
                    "Deployment",
                    &api_version,
                    vec![fixtures::deployment("analysis", "worker", 2)],
                )),
            );
            continue;
        }
        let items = source_lists(kind.kind);
        script.push(list_step(&uri, &[]).ok(fixtures::list(kind.kind, &api_version, items)));
    }
    let server = serve(handle, script);
    let result = export(&client, &workload(json!({"selector": {"app": "analyzer"}}))).await;
    finished(server).await;
    let exported = result.expect("export succeeds");

    let names: Vec<String> = exported
        .iter()
        .map(|r| format!("{} {}", r.kind, r.name))
        .collect();
    assert_eq!(
        names,
        [
            "ServiceAccount analyzer",
            "Secret analyzer-db",
            "ConfigMap analyzer-config",
            "PersistentVolumeClaim analyzer-data",
            "Service analyzer",
            "Deployment analyzer",
            "Deployment worker",
            "CronJob report",
        ]
    );
    for r in &exported {
        assert_eq!(r.namespace, "analysis");
        assert!(r.object.get("status").is_none(), "{} kept status", r.name);
        assert!(
            r.object["metadata"].get("uid").is_none(),
            "{} kept uid",
            r.name
        );
        assert!(r.object["metadata"].get("resourceVersion").is_none());
        assert!(r.object["metadata"].get("managedFields").is_none());
    }
    let deployment = &exported[5];
    assert_eq!(
        deployment.api_version, "apps/v1",
        "list items get their apiVersion back"
    );
    assert_eq!(deployment.object["kind"], "Deployment");
    let service = &exported[4].object["spec"];
    assert!(service.get("clusterIP").is_none() && service.get("clusterIPs").is_none());
    assert!(exported[3].object["spec"].get("volumeName").is_none());
    assert_eq!(
        exported[1].object["data"]["password"],
        "aHVudGVyMi1kYi1wYXNzd29yZA=="
    );
}

#[tokio::test]
async fn explicit_resources_and_custom_kinds_are_fetched_by_name() {
    let (client, handle) = mock();
    let backup = json!({
        "apiVersion": "backup.example.com/v1alpha1", "kind": "BackupSchedule",
        "metadata": {"name": "nightly", "namespace": "analysis", "uid": "f00",
                     "resourceVersion": "77", "generation": 2, "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"schedule": "0 2 * * *", "retention": "30d"},
        "status": {"lastRun": "2025-03-02T02:00:00Z"}
    });
    let discovery = json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "backup.example.com/v1alpha1",
        "resources": [
            {"name": "backupschedules", "singularName": "backupschedule", "namespaced": true,
             "kind": "BackupSchedule", "verbs": ["get", "list", "patch", "create", "delete", "watch", "update"]},
            {"name": "backupschedules/status", "singularName": "", "namespaced": true,
             "kind": "BackupSchedule", "verbs": ["get", "patch", "update"]}
        ]
    });
    let script = vec![
        Exchange::get("/api/v1/namespaces/analysis/configmaps/shared-config")
            .ok(fixtures::config_map("analysis", "shared-config")),
        Exchange::get("/apis/backup.example.com/v1alpha1").ok(discovery),
        Exchange::get(
            "/apis/backup.example.com/v1alpha1/namespaces/analysis/backupschedules/nightly",
        )
        .ok(backup),
    ];
    let server = serve(handle, script);
    let result = export(
        &client,
        &workload(json!({"resources": [
            {"kind": "ConfigMap", "name": "shared-config"},
            {"kind": "backup.example.com/v1alpha1/BackupSchedule", "name": "nightly"}
        ]})),
    )
    .await;
    finished(server).await;
    let exported = result.expect("export succeeds");
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0].name, "shared-config");
    let custom = &exported[1];
    assert_eq!(
        (custom.kind.as_str(), custom.api_version.as_str()),
        ("BackupSchedule", "backup.example.com/v1alpha1")
    );
    assert_eq!(
        custom.object,
        json!({"apiVersion": "backup.example.com/v1alpha1", "kind": "BackupSchedule",
               "metadata": {"name": "nightly", "namespace": "analysis"},
               "spec": {"schedule": "0 2 * * *", "retention": "30d"}})
    );
}

#[tokio::test]
async fn missing_explicit_resource_is_named() {
    let (client, handle) = mock();
    let script = vec![
        Exchange::get("/apis/apps/v1/namespaces/analysis/deployments/ghost").fail(
            404,
            fixtures::status(404, "NotFound", "deployments.apps \"ghost\" not found"),
        ),
    ];
    let server = serve(handle, script);
    let result = export(
        &client,
        &workload(json!({"resources": [{"kind": "Deployment", "name": "ghost"}]})),
    )
    .await;
    finished(server).await;
    match result {
        Err(KubeError::NotFound {
            kind,
            namespace,
            name,
        }) => {
            assert_eq!(
                (kind.as_str(), namespace.as_str(), name.as_str()),
                ("Deployment", "analysis", "ghost")
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_custom_kind_is_refused_with_the_kind() {
    let (client, handle) = mock();
    let script = vec![Exchange::get("/apis/nope.example.com/v1").fail(
        404,
        fixtures::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    )];
    let server = serve(handle, script);
    let result = export(
        &client,
        &workload(
            json!({"selector": {"app": "analyzer"}, "kinds": ["nope.example.com/v1/Widget"]}),
        ),
    )
    .await;
    finished(server).await;
    assert!(
        matches!(&result, Err(KubeError::UnknownKind { kind, .. }) if kind == "nope.example.com/v1/Widget"),
        "{result:?}"
    );
}

#[tokio::test]
async fn k8s_finding_03_finished_jobs_are_not_exported_running_ones_are() {
    let ns = "analysis";
    let succeeded = fixtures::job(ns, "seed");
    let mut failed = fixtures::job(ns, "backfill");
    failed["status"] = json!({"failed": 3, "conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]});
    let mut complete = fixtures::job(ns, "warmup");
    complete["status"] = json!({"succeeded": 1, "completionTime": "2025-03-02T09:01:00Z",
        "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]});
    let mut running = fixtures::job(ns, "migrate");
    running["status"] = json!({"active": 1, "startTime": "2025-03-02T09:00:00Z"});
    let (client, handle) = mock();
    let uri = collection("batch", "v1", "jobs");
    let script = vec![list_step(&uri, &[]).ok(fixtures::list(
        "Job",
        "batch/v1",
        vec![succeeded, failed, complete, running],
    ))];
    let server = serve(handle, script);
    let result = export(
        &client,
        &workload(json!({"selector": {"app": "analyzer"}, "kinds": ["Job"]})),
    )
    .await;
    finished(server).await;
    let names: Vec<String> = result
        .expect("export succeeds")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        names,
        ["migrate"],
        "a finished Job applied at the target runs again"
    );
}
