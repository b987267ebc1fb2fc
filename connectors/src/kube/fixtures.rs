//! Realistic API payloads, shaped as a v1.30 API server returns them, shared by the tests.

use serde_json::{Value, json};

pub(crate) fn managed_fields(manager: &str) -> Value {
    json!([{
        "manager": manager,
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": "2025-03-02T09:14:11Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
    }])
}

pub(crate) fn deployment(ns: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": "6f1a0c52-8f7e-4c1b-9b3e-0d2b1c5e7a10",
            "resourceVersion": "48213377",
            "generation": 7,
            "creationTimestamp": "2024-11-18T08:02:44Z",
            "labels": {"app": "analyzer", "tier": "backend"},
            "annotations": {
                "deployment.kubernetes.io/revision": "7",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"apps/v1\"}",
                "team": "data"
            },
            "managedFields": managed_fields("kubectl-client-side-apply")
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "analyzer"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "analyzer"}},
                "spec": {
                    "nodeName": "msk-node-3",
                    "initContainers": [{"name": "migrate", "image": "registry.msk.example/analyzer-migrate:1.4.2"}],
                    "containers": [
                        {
                            "name": "analyzer",
                            "image": "registry.msk.example/analyzer:1.4.2",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "envFrom": [{"configMapRef": {"name": "analyzer-config"}}],
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}
                        },
                        {"name": "sidecar", "image": "docker.io/library/envoy:v1.31"}
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "serviceAccountName": "analyzer"
                }
            }
        },
        "status": {
            "observedGeneration": 7,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet \"analyzer-7d9f8b6c5\" has successfully progressed."}
            ]
        }
    })
}

pub(crate) fn service(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name, "namespace": ns,
            "uid": "0b7c1f0e-2f55-4d8e-a1a9-3e2f9a1d4c77",
            "resourceVersion": "48200012",
            "creationTimestamp": "2024-11-18T08:02:44Z",
            "labels": {"app": "analyzer"},
            "managedFields": managed_fields("kubectl")
        },
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.96.112.41",
            "clusterIPs": ["10.96.112.41"],
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 31877,
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}],
            "selector": {"app": "analyzer"},
            "sessionAffinity": "None"
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
    })
}

pub(crate) fn pvc(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name, "namespace": ns,
            "uid": "b3e2a1c4-0000-4e4e-8a8a-1234567890ab",
            "resourceVersion": "40110022",
            "creationTimestamp": "2024-10-01T12:00:00Z",
            "labels": {"app": "analyzer"},
            "annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.beta.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                "volume.kubernetes.io/selected-node": "msk-node-3"
            },
            "finalizers": ["kubernetes.io/pvc-protection"],
            "managedFields": managed_fields("kube-controller-manager")
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "20Gi"}},
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
            "volumeName": "pvc-b3e2a1c4-0000-4e4e-8a8a-1234567890ab"
        },
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "20Gi"}}
    })
}

pub(crate) fn config_map(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name, "namespace": ns,
            "uid": "1c2d3e4f-aaaa-bbbb-cccc-1234567890ab",
            "resourceVersion": "39000001",
            "creationTimestamp": "2024-11-18T08:02:44Z",
            "labels": {"app": "analyzer"}
        },
        "data": {"LOG_LEVEL": "info", "BUCKET": "telemetry"}
    })
}

pub(crate) fn opaque_secret(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name, "namespace": ns,
            "uid": "9a8b7c6d-1111-2222-3333-444455556666",
            "resourceVersion": "39000002",
            "creationTimestamp": "2024-11-18T08:02:44Z",
            "labels": {"app": "analyzer"}
        },
        // base64("hunter2-db-password"), base64("admin")
        "data": {"password": "aHVudGVyMi1kYi1wYXNzd29yZA==", "username": "YWRtaW4="}
    })
}

pub(crate) fn token_secret(ns: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": "analyzer-token-x7k2p", "namespace": ns,
            "uid": "77777777-1111-2222-3333-444455556666",
            "resourceVersion": "39000003",
            "labels": {"app": "analyzer"},
            "annotations": {"kubernetes.io/service-account.name": "analyzer"}
        },
        "data": {"token": "ZXlKaGJHY2lPaUpTVXpJMU5pSjk=", "ca.crt": "LS0tLS1CRUdJTg==", "namespace": "YW5hbHlzaXM="}
    })
}

pub(crate) fn statefulset(ns: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name, "namespace": ns, "generation": 3,
            "uid": "5555aaaa-1111-2222-3333-444455556666",
            "resourceVersion": "48000001",
            "labels": {"app": "analyzer"}
        },
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": name}},
                "spec": {"containers": [{"name": "db", "image": "registry.msk.example/pg/postgres:16.3"}]}
            },
            "volumeClaimTemplates": [{
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "creationTimestamp": null},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                         "resources": {"requests": {"storage": "50Gi"}}, "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}
            }]
        },
        "status": {"observedGeneration": 3, "replicas": replicas, "readyReplicas": replicas,
                   "currentRevision": "db-5c7d9", "updateRevision": "db-5c7d9"}
    })
}

pub(crate) fn cronjob(ns: &str, name: &str, suspend: bool) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": ns, "uid": "c0c0c0c0-1111-2222-3333-444455556666",
                     "resourceVersion": "48000100", "labels": {"app": "analyzer"}},
        "spec": {
            "schedule": "*/15 * * * *",
            "suspend": suspend,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "metadata": {"creationTimestamp": null},
                "spec": {"template": {"metadata": {"creationTimestamp": null},
                    "spec": {"restartPolicy": "OnFailure",
                             "containers": [{"name": "report", "image": "registry.msk.example/report:2.0"}]}}}
            }
        },
        "status": {"lastScheduleTime": "2025-03-02T09:00:00Z"}
    })
}

pub(crate) fn job(ns: &str, name: &str) -> Value {
    let uid = "e3b0c442-98fc-4c14-9afb-f4c8996fb924";
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid, "resourceVersion": "48000200",
            "labels": {"app": "analyzer", "batch.kubernetes.io/controller-uid": uid,
                       "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name}
        },
        "spec": {
            "backoffLimit": 2,
            "completions": 1,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {
                    "app": "analyzer", "batch.kubernetes.io/controller-uid": uid,
                    "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "seed", "image": "registry.msk.example/seed:1.0"}]}
            }
        },
        "status": {"succeeded": 1, "startTime": "2025-03-02T09:00:00Z"}
    })
}

pub(crate) fn role_binding(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns, "uid": "bbbbbbbb-1111-2222-3333-444455556666",
                     "resourceVersion": "100", "labels": {"app": "analyzer"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "analyzer"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "analyzer", "namespace": ns},
            {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"},
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "data-team"}
        ]
    })
}

/// A `kind: List` envelope as the API server returns for a list call.
/// Like the real API server, items carry no `kind`/`apiVersion` of their own.
pub(crate) fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut item| {
            if let Some(item) = item.as_object_mut() {
                item.remove("kind");
                item.remove("apiVersion");
            }
            item
        })
        .collect();
    json!({
        "apiVersion": api_version,
        "kind": format!("{kind}List"),
        "metadata": {"resourceVersion": "48213400"},
        "items": items
    })
}

/// A `Status` failure body as the API server sends with 4xx answers.
pub(crate) fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code
    })
}
