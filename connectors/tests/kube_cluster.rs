//! The whole Kubernetes flow against a real cluster: export → transform → apply →
//! wait_ready → freeze → restore, between two fresh namespaces.
//!
//! No API server can be installed on the CI machines, so this test is ignored by default.
//! To run it, point `KUBECONFIG` at any disposable cluster (kind, k3d, minikube) whose
//! current context may create and delete namespaces, and whose nodes can pull
//! `registry.k8s.io/pause:3.9`:
//!
//! ```sh
//! kind create cluster --name relocate-e2e
//! KUBECONFIG=~/.kube/config cargo test -p connectors --test kube_cluster -- --ignored --nocapture
//! ```
//!
//! It creates `relocate-e2e-src-<id>` and `relocate-e2e-dst-<id>`, and deletes both at the end,
//! whether the flow passed or not.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use connectors::kube::{
    ApplyOptions, Resource, WaitOptions, apply, apply_freeze, export, plan_freeze, restore,
    stop_target, transform, wait_ready, wait_scaled_down,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

type Failure = Box<dyn std::error::Error>;

fn source_manifests(ns: &str) -> Vec<Value> {
    let labels = json!({"app": "relocate-e2e"});
    vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "e2e-config", "namespace": ns, "labels": labels},
               "data": {"GREETING": "hello"}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "e2e", "namespace": ns, "labels": labels},
               "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "e2e", "namespace": ns, "labels": labels},
               "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels},
                                     "spec": {"containers": [{"name": "pause",
                                              "image": "registry.k8s.io/pause:3.9"}]}}}}),
    ]
}

async fn create_namespace(client: &Client, name: &str) -> Result<(), Failure> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

async fn replicas(client: &Client, ns: &str, name: &str) -> Result<Option<i32>, Failure> {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    Ok(d.spec.replicas)
}

async fn flow(client: &Client, src: &str, dst: &str) -> Result<(), Failure> {
    create_namespace(client, src).await?;
    create_namespace(client, dst).await?;
    let seeded: Vec<Resource> = source_manifests(src)
        .into_iter()
        .map(|o| Resource::from_object(o, src))
        .collect::<Result<_, _>>()?;
    apply(client, &seeded, ApplyOptions::default()).await?;
    let wait = WaitOptions::with_timeout(Duration::from_secs(180));
    wait_ready(client, &seeded, wait, |p| {
        eprintln!("source: {}/{} ready", p.ready, p.total)
    })
    .await?;

    let workload: plans::KubernetesWorkload = serde_json::from_value(json!({
        "from": "src", "to": "dst", "namespace": src, "selector": {"app": "relocate-e2e"}
    }))?;
    let exported = export(client, &workload).await?;
    let kinds: Vec<&str> = exported.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["ConfigMap", "Service", "Deployment"]);
    let plan: plans::Transform =
        serde_json::from_value(json!({"namespace": dst, "replicas": {"e2e": 1}}))?;
    let mut region = BTreeMap::new();
    region.insert("relocate.io/region".to_owned(), "target".to_owned());
    let target = transform(&exported, &plan, &region)?;
    let applied = apply(client, &target, ApplyOptions::default()).await?;
    assert_eq!(applied.len(), 3);
    wait_ready(client, &target, wait, |p| {
        eprintln!("target: {}/{} ready", p.ready, p.total)
    })
    .await?;
    assert_eq!(replicas(client, dst, "e2e").await?, Some(1));

    let state = plan_freeze(client, &workload).await?;
    let persisted = serde_json::to_string(&state)?;
    apply_freeze(client, &state).await?;
    apply_freeze(client, &state).await?; // idempotent
    wait_scaled_down(client, &state, wait).await?;
    assert_eq!(replicas(client, src, "e2e").await?, Some(0));

    let restored = restore(client, &serde_json::from_str(&persisted)?).await;
    assert!(restored.failed.is_empty(), "{:?}", restored.failed);
    assert_eq!(replicas(client, src, "e2e").await?, Some(2));
    let ids: Vec<_> = target.iter().map(Resource::id).collect();
    let stopped = stop_target(client, &ids).await;
    assert!(stopped.failed.is_empty(), "{:?}", stopped.failed);
    assert_eq!(replicas(client, dst, "e2e").await?, Some(0));
    Ok(())
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn export_transform_apply_wait_freeze_restore_between_namespaces() {
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG points at a cluster");
    let id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000)
        .unwrap_or_default();
    let (src, dst) = (
        format!("relocate-e2e-src-{id}"),
        format!("relocate-e2e-dst-{id}"),
    );
    let outcome = flow(&client, &src, &dst).await;
    let namespaces = Api::<Namespace>::all(client.clone());
    for ns in [&src, &dst] {
        if let Err(e) = namespaces.delete(ns, &DeleteParams::default()).await {
            eprintln!("cleanup of {ns} failed: {e}");
        }
    }
    if let Err(e) = outcome {
        panic!("flow failed: {e}");
    }
}
