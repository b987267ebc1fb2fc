//! What a test observes of the fake Job controller beyond the API: each pod's exit, as
//! it happens (a hook runs between the process's exit and its status), the Jobs deleted
//! and with which `propagationPolicy`, and the pods a Job left.

use std::sync::Arc;

use serde_json::Value;

use super::super::FakeCluster;
use super::lock;

/// A pod's process has exited; its Pod and Job do not say so yet.
#[derive(Debug, Clone)]
pub struct PodExit {
    pub namespace: String,
    pub job: String,
    pub pod: String,
    pub exit_code: i32,
}

impl FakeCluster {
    /// Run `hook` whenever a pod's process exits, before the pod's status (and so the
    /// Job's) says it finished: whatever it does happens after the process and before
    /// any reader can know.
    pub fn on_pod_exit(&self, hook: impl Fn(&PodExit) + Send + Sync + 'static) {
        lock(&self.api.jobs.state).exit_hooks.push(Arc::new(hook));
    }
    /// Every Job deleted, as `(namespace, name, propagationPolicy)`, in order.
    pub fn deleted_jobs(&self) -> Vec<(String, String, Option<String>)> {
        lock(&self.api.jobs.state).deleted.clone()
    }
    /// The pods of Job `namespace/job` still stored (a deleted Job's pods go only
    /// with `propagationPolicy` `Background` or `Foreground`).
    pub fn job_pods(&self, namespace: &str, job: &str) -> Vec<Value> {
        let collection = format!("/api/v1/namespaces/{namespace}/pods");
        self.objects
            .lock()
            .expect("lock")
            .iter()
            .filter(|((c, _), pod)| {
                *c == collection && pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == job
            })
            .map(|(_, pod)| pod.clone())
            .collect()
    }
}
