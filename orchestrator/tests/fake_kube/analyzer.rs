//! The `analyzer` workload the Kubernetes CLI tests move (see [`super::plan`]): a
//! Deployment `api` of three replicas, last written by `kubectl apply`, and its
//! ConfigMap in namespace `analysis` of the source; an empty target with namespace
//! `analysis-zrh` created. Written once so the tests differ only in what they check.

use serde_json::json;

use super::FakeCluster;

/// The source's Deployments.
pub const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/analysis/deployments";
/// The target's Deployments.
pub const TARGET_DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/analysis-zrh/deployments";

/// The source cluster with the workload's Deployment and ConfigMap.
pub fn source_cluster() -> FakeCluster {
    let src = FakeCluster::start();
    src.insert(
        DEPLOYMENTS,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "analysis", "labels": {"app": "analyzer"},
                         "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}],
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "analyzer"}},
                     "template": {"metadata": {"labels": {"app": "analyzer"}},
                                  "spec": {"containers": [{"name": "api", "image": "registry.msk.example/analyzer/api:1.4"}]}}}
        }),
    );
    src.insert(
        "/api/v1/namespaces/analysis/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "api-config", "namespace": "analysis", "labels": {"app": "analyzer"}},
               "data": {"region": "moscow"}}),
    );
    src
}

/// The target cluster, with the target namespace created (a real API server refuses
/// writes into a namespace that does not exist).
pub fn target_cluster() -> FakeCluster {
    let dst = FakeCluster::start();
    dst.api.create_namespace("analysis-zrh");
    dst
}
