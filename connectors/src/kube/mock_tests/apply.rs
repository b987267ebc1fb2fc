use serde_json::{Value, json};

use super::{Exchange, finished, mock, serve};
use crate::kube::{ApplyOptions, KubeError, Resource, apply, clean, fixtures, manifest_digest};

const APPLY: &str = "application/apply-patch+yaml";

/// The lookup before each apply: nothing of that name exists yet.
fn absent(uri: &str, kind: &str, name: &str) -> Exchange {
    Exchange::get(uri).fail(
        404,
        fixtures::status(404, "NotFound", &format!("{kind} \"{name}\" not found")),
    )
}

fn target(object: Value) -> Resource {
    let mut object = object;
    clean(&mut object);
    Resource::from_object(object, "analysis-zrh").expect("valid manifest")
}

/// What the API server answers to an apply: the object with server fields filled in.
fn applied_answer(sent: &Value) -> Value {
    let mut answer = sent.clone();
    answer["metadata"]["uid"] = json!("2d8e4c1a-0000-4000-8000-000000000001");
    answer["metadata"]["resourceVersion"] = json!("1021");
    answer["metadata"]["managedFields"] = fixtures::managed_fields("relocate");
    answer
}

#[tokio::test]
async fn apply_is_a_forced_server_side_apply_per_resource() {
    let config = target(fixtures::config_map("analysis-zrh", "analyzer-config"));
    let deployment = target(fixtures::deployment("analysis-zrh", "analyzer", 3));
    let (client, handle) = mock();
    let script = vec![
        absent("/api/v1/namespaces/analysis-zrh/configmaps/analyzer-config", "configmaps", "analyzer-config"),
        Exchange::patch("/api/v1/namespaces/analysis-zrh/configmaps/analyzer-config?fieldManager=relocate&force=true")
            .content_type(APPLY)
            .body_eq(config.object.clone())
            .ok(applied_answer(&config.object)),
        absent("/apis/apps/v1/namespaces/analysis-zrh/deployments/analyzer", "deployments.apps", "analyzer"),
        Exchange::patch("/apis/apps/v1/namespaces/analysis-zrh/deployments/analyzer?fieldManager=relocate&force=true")
            .content_type(APPLY)
            .body_eq(deployment.object.clone())
            .ok(applied_answer(&deployment.object)),
    ];
    let server = serve(handle, script);
    let result = apply(
        &client,
        &[config.clone(), deployment.clone()],
        ApplyOptions::default(),
    )
    .await;
    finished(server).await;
    let applied = result.expect("apply succeeds");
    assert_eq!(applied.len(), 2);
    assert_eq!(applied[0].resource, config.id());
    assert_eq!(applied[0].digest, manifest_digest(&config.object));
    assert_eq!(
        applied[1].resource.to_string(),
        "Deployment analysis-zrh/analyzer"
    );
    assert_eq!(applied[1].digest, manifest_digest(&deployment.object));
    assert!(applied[1].digest.starts_with("sha256:") && applied[1].digest.len() == 71);
}

#[tokio::test]
async fn conflict_names_the_resource_and_the_api_message() {
    let service = target(fixtures::service("analysis-zrh", "analyzer"));
    let (client, handle) = mock();
    let message = "Apply failed with 1 conflict: conflict with \"helm\" using v1: .spec.ports";
    let script =
        vec![
        absent("/api/v1/namespaces/analysis-zrh/services/analyzer", "services", "analyzer"),
        Exchange::patch(
            "/api/v1/namespaces/analysis-zrh/services/analyzer?fieldManager=relocate&force=true",
        )
        .fail(409, fixtures::status(409, "Conflict", message)),
    ];
    let server = serve(handle, script);
    let result = apply(
        &client,
        std::slice::from_ref(&service),
        ApplyOptions::default(),
    )
    .await;
    finished(server).await;
    match result {
        Err(KubeError::Conflict {
            resource,
            message: m,
        }) => {
            assert_eq!(resource, "Service analysis-zrh/analyzer");
            assert_eq!(m, message);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_manifest_stops_the_apply_with_the_fields() {
    let bad = target(fixtures::pvc("analysis-zrh", "analyzer-data"));
    let after = target(fixtures::config_map("analysis-zrh", "never-sent"));
    let (client, handle) = mock();
    let message = "PersistentVolumeClaim \"analyzer-data\" is invalid: spec.storageClassName: \
                   Invalid value: \"zrh ssd\": a lowercase RFC 1123 subdomain must consist of ...";
    let script = vec![
        absent(
            "/api/v1/namespaces/analysis-zrh/persistentvolumeclaims/analyzer-data",
            "persistentvolumeclaims",
            "analyzer-data",
        ),
        Exchange::patch(
            "/api/v1/namespaces/analysis-zrh/persistentvolumeclaims/analyzer-data?fieldManager=relocate&force=true",
        )
        .fail(422, fixtures::status(422, "Invalid", message)),
    ];
    let server = serve(handle, script);
    let result = apply(&client, &[bad, after], ApplyOptions::default()).await;
    finished(server).await;
    let err = result.expect_err("422");
    assert!(
        matches!(&err, KubeError::Invalid { resource, .. } if resource == "PersistentVolumeClaim analysis-zrh/analyzer-data"),
        "{err:?}"
    );
    assert!(err.to_string().contains("spec.storageClassName"), "{err}");
}

#[tokio::test]
async fn k8s_finding_11_a_missing_namespace_keeps_the_servers_message() {
    let config = target(fixtures::config_map("analysis-zrh", "analyzer-config"));
    let (client, handle) = mock();
    let mut missing = fixtures::status(404, "NotFound", "namespaces \"analysis-zrh\" not found");
    missing["details"] = json!({"name": "analysis-zrh", "kind": "namespaces"});
    let script = vec![
        absent("/api/v1/namespaces/analysis-zrh/configmaps/analyzer-config", "configmaps", "analyzer-config"),
        Exchange::patch("/api/v1/namespaces/analysis-zrh/configmaps/analyzer-config?fieldManager=relocate&force=true")
            .fail(404, missing),
    ];
    let server = serve(handle, script);
    let result = apply(
        &client,
        std::slice::from_ref(&config),
        ApplyOptions::default(),
    )
    .await;
    finished(server).await;
    let err = result.expect_err("404");
    assert!(
        matches!(err, KubeError::NamespaceNotFound { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "ConfigMap analysis-zrh/analyzer-config: namespaces \"analysis-zrh\" not found \
         (create it first, or set `createNamespace: true` on the workload)"
    );
}

#[tokio::test]
async fn k8s_finding_11_create_namespace_applies_it_first() {
    let config = target(fixtures::config_map("analysis-zrh", "analyzer-config"));
    let (client, handle) = mock();
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "analysis-zrh"}});
    let script = vec![
        Exchange::patch("/api/v1/namespaces/analysis-zrh?fieldManager=relocate")
            .content_type(APPLY)
            .body_eq(namespace.clone())
            .ok(namespace),
        absent("/api/v1/namespaces/analysis-zrh/configmaps/analyzer-config", "configmaps", "analyzer-config"),
        Exchange::patch("/api/v1/namespaces/analysis-zrh/configmaps/analyzer-config?fieldManager=relocate&force=true")
            .ok(applied_answer(&config.object)),
    ];
    let server = serve(handle, script);
    let options = ApplyOptions {
        create_namespace: true,
        ..ApplyOptions::default()
    };
    let result = apply(&client, std::slice::from_ref(&config), options).await;
    finished(server).await;
    assert_eq!(result.expect("applied").len(), 1);
}

#[tokio::test]
async fn k8s_finding_13_an_existing_object_relocate_did_not_make_is_refused_unless_adopted() {
    let deployment = target(fixtures::deployment("analysis-zrh", "analyzer", 3));
    let uri = "/apis/apps/v1/namespaces/analysis-zrh/deployments/analyzer";
    let mut theirs = fixtures::deployment("analysis-zrh", "analyzer", 1);
    theirs["metadata"]["managedFields"] = fixtures::managed_fields("helm");
    let (client, handle) = mock();
    let server = serve(handle, vec![Exchange::get(uri).ok(theirs.clone())]);
    let result = apply(
        &client,
        std::slice::from_ref(&deployment),
        ApplyOptions::default(),
    )
    .await;
    finished(server).await;
    let err = result.expect_err("refused");
    assert!(
        matches!(&err, KubeError::NotOurs { managers, .. } if managers == "helm (Update)"),
        "{err:?}"
    );

    let (client, handle) = mock();
    let server = serve(
        handle,
        vec![
            Exchange::patch(&format!("{uri}?fieldManager=relocate&force=true"))
                .ok(applied_answer(&deployment.object)),
        ],
    );
    let options = ApplyOptions {
        adopt: true,
        ..ApplyOptions::default()
    };
    let result = apply(&client, std::slice::from_ref(&deployment), options).await;
    finished(server).await;
    assert_eq!(result.expect("adopted").len(), 1);

    // An object relocate applied before is its own: applied again without `adopt`.
    let mut ours = theirs;
    ours["metadata"]["managedFields"] = fixtures::managed_fields("relocate");
    let (client, handle) = mock();
    let server = serve(
        handle,
        vec![
            Exchange::get(uri).ok(ours),
            Exchange::patch(&format!("{uri}?fieldManager=relocate&force=true"))
                .ok(applied_answer(&deployment.object)),
        ],
    );
    let result = apply(
        &client,
        std::slice::from_ref(&deployment),
        ApplyOptions::default(),
    )
    .await;
    finished(server).await;
    assert_eq!(result.expect("re-applied").len(), 1);
}
