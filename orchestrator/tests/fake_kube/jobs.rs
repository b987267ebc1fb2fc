//! A minimal Job controller and kubelet for the fake API server: Indexed Jobs whose pods
//! are local processes, so the coordinator's Kubernetes executor can run end to end with
//! the real `relocate` binary where no cluster can run.
//!
//! On `POST .../jobs` (Indexed only) the Job is stored and a controller thread runs each
//! index's pod as `entrypoint <container args>` (the test sets the entrypoint, standing in
//! for the image) with `JOB_COMPLETION_INDEX`, the container's literal `env`, and env
//! resolved from `envFrom.secretRef` / `valueFrom.secretKeyRef` against the Secrets stored
//! in the fake (`data` base64 or `stringData`). A missing Secret leaves the pod `Pending`
//! in `CreateContainerConfigError`, as a kubelet does; nothing runs. The controller honours
//! `parallelism`, `backoffLimitPerIndex` and `podFailurePolicy` (`FailIndex`, `FailJob`,
//! `Ignore`, `Count`; a pod the test kills as a disruption carries `DisruptionTarget`), and
//! keeps the Job's `status` (`active`, `succeeded`, `failed`, `completedIndexes`,
//! `failedIndexes` compressed, `Complete` / `Failed`) and Pod objects (labels
//! `batch.kubernetes.io/job-name` and `job-completion-index`, phase, exit code) current.
//! `GET .../pods/{pod}/log` serves stdout and stderr, streamed with `follow=true` until
//! the process exits. Retries start at once (no exponential back-off delay).
//!
//! Also as a cluster does: pods a test blocks are refused at creation, left
//! unschedulable or left mounting, with their conditions and events (`obstacles`); a
//! container's `terminationMessagePath` is a per-pod file whose content (the last 4096
//! bytes) becomes `state.terminated.message` (`termination`); deleting a Job removes its
//! pods only with `propagationPolicy` `Background` or `Foreground`; and a test can run a
//! hook between a pod's exit and its status (`observe`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

mod controller;
mod kubelet;
mod observe;
mod obstacles;
pub mod scheduler;
mod termination;

use super::apiserver::status;
use super::{FakeCluster, Objects};

/// How a test's kill of a running index is seen by the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillAs {
    /// A node drain or preemption: the pod gets `DisruptionTarget` (ignored by the
    /// worker Job's policy: retried without spending a retry).
    Disruption,
    /// A plain failure (exit 137), counted against `backoffLimitPerIndex`.
    Failure,
}

#[derive(Default)]
struct LogBuffer {
    lines: Mutex<Vec<String>>,
    done: AtomicBool,
}

struct Running {
    child: Arc<Mutex<Child>>,
    disrupted: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    entrypoint: Option<PathBuf>,
    workdir: Option<PathBuf>,
    /// PersistentVolumeClaim `(namespace, name)` → the local directory standing for it.
    claims: BTreeMap<(String, String), PathBuf>,
    /// Claims no volume will ever bind (a class without a provisioner).
    unbindable: std::collections::BTreeSet<(String, String)>,
    /// The nodes pods are scheduled on (none: no scheduling).
    nodes: Vec<scheduler::Node>,
    /// Run each pod's process as its `securityContext.runAsUser`/`runAsGroup`.
    run_as_pod_user: bool,
    /// Remove a pod as soon as it succeeds (as the pod garbage collector may).
    gc_succeeded_pods: bool,
    /// Seconds a pod mounting claim `(namespace, name)` waits before its process runs.
    claim_delays: BTreeMap<(String, String), u64>,
    jobs: BTreeMap<(String, String), Value>,
    requests: Vec<Value>,
    logs: BTreeMap<(String, String), Arc<LogBuffer>>,
    running: BTreeMap<(String, String, u32), Running>,
    stopped: bool,
    /// Obstacles for pods mounting a claim (see `obstacles`).
    blocks: BTreeMap<(String, String), obstacles::ClaimBlock>,
    /// Namespaces whose pods the API server refuses, and why.
    refused: BTreeMap<String, String>,
    /// Called when a pod's process exits, before its status says so.
    exit_hooks: Vec<ExitHook>,
    /// Jobs deleted, as `(namespace, name, propagationPolicy)`.
    deleted: Vec<(String, String, Option<String>)>,
}

pub use observe::PodExit;

type ExitHook = Arc<dyn Fn(&PodExit) + Send + Sync>;

/// The Job controller of one fake cluster.
#[derive(Clone)]
pub struct Jobs {
    objects: Objects,
    state: Arc<Mutex<State>>,
    pod_counter: Arc<AtomicU64>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeCluster {
    /// The program each worker pod runs (instead of the image's entrypoint), with the
    /// container's `args`.
    pub fn set_job_entrypoint(&self, path: impl Into<PathBuf>) {
        lock(&self.api.jobs.state).entrypoint = Some(path.into());
    }
    /// The working directory of the pods' processes (default: the test's).
    pub fn set_job_workdir(&self, path: impl Into<PathBuf>) {
        lock(&self.api.jobs.state).workdir = Some(path.into());
    }
    /// The local directory a pod mounting claim `namespace/name` sees at the mount's
    /// path: env values under that path are rewritten to it (volume mover tests).
    pub fn set_claim_dir(&self, namespace: &str, name: &str, dir: impl Into<PathBuf>) {
        lock(&self.api.jobs.state)
            .claims
            .insert((namespace.to_owned(), name.to_owned()), dir.into());
    }
    /// Claim `namespace/name` never binds: pods mounting it stay unschedulable.
    pub fn set_claim_unbindable(&self, namespace: &str, name: &str) {
        lock(&self.api.jobs.state)
            .unbindable
            .insert((namespace.to_owned(), name.to_owned()));
    }
    /// Claim `namespace/name` binds again (its class was fixed).
    pub fn set_claim_bindable(&self, namespace: &str, name: &str) {
        lock(&self.api.jobs.state)
            .unbindable
            .remove(&(namespace.to_owned(), name.to_owned()));
    }
    /// Every Job body POSTed, in order (rejected ones included).
    pub fn job_requests(&self) -> Vec<Value> {
        lock(&self.api.jobs.state).requests.clone()
    }
    /// The Job `namespace/name` with its current status.
    pub fn job(&self, namespace: &str, name: &str) -> Option<Value> {
        let key = (namespace.to_owned(), name.to_owned());
        lock(&self.api.jobs.state).jobs.get(&key).cloned()
    }
    /// Run each pod's process as the user and group its pod's `securityContext` names
    /// (the tests run as root; without this, every pod runs as root).
    pub fn run_pods_as_their_user(&self) {
        lock(&self.api.jobs.state).run_as_pod_user = true;
    }

    /// Make every pod mounting claim `namespace/name` start its process `seconds` late
    /// (a mover with much to do).
    pub fn delay_pods_of_claim(&self, namespace: &str, name: &str, seconds: u64) {
        lock(&self.api.jobs.state)
            .claim_delays
            .insert((namespace.to_owned(), name.to_owned()), seconds);
    }

    /// Remove each pod as soon as it succeeds, as the pod garbage collector (or a node
    /// going away) may before anyone reads where it ran.
    pub fn gc_succeeded_pods(&self) {
        lock(&self.api.jobs.state).gc_succeeded_pods = true;
    }

    /// Forget the entrypoint: pods then stay Pending in `ErrImagePull`, as with an
    /// image that cannot be pulled.
    pub fn clear_job_entrypoint(&self) {
        lock(&self.api.jobs.state).entrypoint = None;
    }
    /// Replace the stored Job `namespace/name` (as if someone edited or re-created it).
    pub fn replace_job(&self, namespace: &str, name: &str, job: Value) {
        let key = (namespace.to_owned(), name.to_owned());
        lock(&self.api.jobs.state).jobs.insert(key, job);
    }
    /// Kill -9 the process running `index` of Job `namespace/job`; false when none runs.
    pub fn kill_job_index(&self, namespace: &str, job: &str, index: u32, how: KillAs) -> bool {
        let key = (namespace.to_owned(), job.to_owned(), index);
        let state = lock(&self.api.jobs.state);
        let Some(running) = state.running.get(&key) else {
            return false;
        };
        running
            .disrupted
            .store(how == KillAs::Disruption, Ordering::SeqCst);
        let mut child = running
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        child.kill().is_ok()
    }
    /// Stop the Job controller (no pod starts any more) and kill -9 every pod process still
    /// running, so no process outlives a test that leaves workers behind; returns how many
    /// were killed.
    pub fn kill_all_job_pods(&self) -> usize {
        let mut state = lock(&self.api.jobs.state);
        state.stopped = true;
        state
            .running
            .values()
            .filter(|running| {
                running
                    .child
                    .lock()
                    .map(|mut c| c.kill().is_ok())
                    .unwrap_or(false)
            })
            .count()
    }
    /// Wait until `namespace/job` has a `Complete` or `Failed` condition; its last state.
    pub fn wait_job_finished(&self, namespace: &str, job: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let current = self.job(namespace, job).expect("job exists");
            if finished(&current) {
                return current;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job not finished in {timeout:?}: {current}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn finished(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True")
}

impl Jobs {
    pub fn new(objects: Objects) -> Self {
        Self {
            objects,
            state: Arc::default(),
            pod_counter: Arc::default(),
        }
    }

    /// Whether this request is the controller's: a Job POST, a GET/DELETE of one of its
    /// Jobs, or a pod's log.
    pub fn serves(
        &self,
        method: &Method,
        collection: &str,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> bool {
        let jobs =
            collection.starts_with("/apis/batch/v1/namespaces/") && collection.ends_with("/jobs");
        match (method, name, sub) {
            (&Method::POST, None, None) => jobs,
            (&Method::GET | &Method::DELETE, Some(name), None) if jobs => {
                let ns = namespace_of(collection);
                lock(&self.state).jobs.contains_key(&(ns, name.to_owned()))
            }
            (&Method::GET, Some(_), Some("log")) => collection.ends_with("/pods"),
            _ => false,
        }
    }

    pub async fn serve(
        &self,
        method: Method,
        collection: String,
        name: Option<String>,
        query: BTreeMap<String, String>,
        request: Request,
    ) -> Response {
        let namespace = namespace_of(&collection);
        match (method, name) {
            (Method::POST, _) => {
                let Ok(body) = to_bytes(request.into_body(), 16 << 20).await else {
                    return status(400, "BadRequest", "unreadable body".into(), json!({}));
                };
                let Ok(job) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "body is not JSON".into(), json!({}));
                };
                self.create(&namespace, job)
            }
            (Method::DELETE, Some(name)) => {
                let body = to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                // DeleteOptions in the body (as kube-rs sends them) or the query.
                let policy = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|o| o["propagationPolicy"].as_str().map(str::to_owned))
                    .or_else(|| query.get("propagationPolicy").cloned());
                self.delete(&namespace, &name, policy)
            }
            (Method::GET, Some(name)) if collection.ends_with("/pods") => self.log(
                &namespace,
                &name,
                query.get("follow").is_some_and(|f| f == "true"),
            ),
            (_, Some(name)) => match lock(&self.state).jobs.get(&(namespace, name)) {
                Some(job) => axum::Json(job.clone()).into_response(),
                None => status(404, "NotFound", "job not found".into(), json!({})),
            },
            (m, None) => status(
                405,
                "MethodNotAllowed",
                format!("{m} {collection}"),
                json!({}),
            ),
        }
    }

    fn create(&self, namespace: &str, mut job: Value) -> Response {
        lock(&self.state).requests.push(job.clone());
        let name = job["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(problem) = invalid(&job) {
            return status(
                422,
                "Invalid",
                format!("Job.batch \"{name}\" is invalid: {problem}"),
                json!({"name": name, "group": "batch", "kind": "Job"}),
            );
        }
        let key = (namespace.to_owned(), name.clone());
        let uid = format!("uid-job-{namespace}-{name}");
        {
            let mut state = lock(&self.state);
            if state.jobs.contains_key(&key) {
                return status(
                    409,
                    "AlreadyExists",
                    format!("jobs.batch \"{name}\" already exists"),
                    json!({"name": name, "group": "batch", "kind": "jobs"}),
                );
            }
            let meta = &mut job["metadata"];
            meta["namespace"] = json!(namespace);
            meta["uid"] = json!(uid);
            meta["resourceVersion"] = json!("1");
            meta["creationTimestamp"] = json!("2026-11-30T10:00:00Z");
            for (k, v) in [
                ("batch.kubernetes.io/job-name", name.as_str()),
                ("batch.kubernetes.io/controller-uid", uid.as_str()),
            ] {
                job["spec"]["template"]["metadata"]["labels"][k] = json!(v);
            }
            job["spec"]["selector"] =
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
            job["status"] = json!({"active": 0, "succeeded": 0, "failed": 0, "startTime": "2026-11-30T10:00:00Z"});
            state.jobs.insert(key.clone(), job.clone());
        }
        let controller = self.clone();
        std::thread::spawn(move || controller.run(key));
        (StatusCode::CREATED, axum::Json(job)).into_response()
    }

    fn delete(&self, namespace: &str, name: &str, policy: Option<String>) -> Response {
        let mut state = lock(&self.state);
        state
            .deleted
            .push((namespace.to_owned(), name.to_owned(), policy.clone()));
        let Some(job) = state.jobs.remove(&(namespace.to_owned(), name.to_owned())) else {
            return status(
                404,
                "NotFound",
                format!("jobs.batch \"{name}\" not found"),
                json!({}),
            );
        };
        for ((ns, j, _), running) in &state.running {
            if ns == namespace && j == name {
                let _ = running.child.lock().map(|mut c| c.kill());
            }
        }
        drop(state);
        // The garbage collector removes the dependents unless told to orphan them, and
        // the API's default for batch/v1 Jobs is to orphan (`kubectl` asks Background).
        if matches!(policy.as_deref(), Some("Background" | "Foreground")) {
            let uid = job["metadata"]["uid"].clone();
            self.objects.lock().expect("lock").retain(|(c, _), o| {
                !(c.ends_with("/pods")
                    && o["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid)))
            });
        }
        axum::Json(job).into_response()
    }

    fn log(&self, namespace: &str, pod: &str, follow: bool) -> Response {
        let key = (namespace.to_owned(), pod.to_owned());
        let Some(buffer) = lock(&self.state).logs.get(&key).cloned() else {
            let waiting = self
                .objects
                .lock()
                .expect("lock")
                .get(&(
                    format!("/api/v1/namespaces/{namespace}/pods"),
                    pod.to_owned(),
                ))
                .map(|p| p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].clone());
            return match waiting {
                Some(reason) => status(
                    400,
                    "BadRequest",
                    format!(
                        "container \"worker\" in pod \"{pod}\" is waiting to start: {}",
                        reason.as_str().unwrap_or("ContainerCreating")
                    ),
                    json!({}),
                ),
                None => status(
                    404,
                    "NotFound",
                    format!("pods \"{pod}\" not found"),
                    json!({"name": pod, "kind": "pods"}),
                ),
            };
        };
        if !follow {
            let text: String = buffer
                .lines
                .lock()
                .expect("lock")
                .iter()
                .map(|l| format!("{l}\n"))
                .collect();
            return (StatusCode::OK, text).into_response();
        }
        let stream = futures::stream::unfold((buffer, 0usize), |(buffer, next)| async move {
            loop {
                let done = buffer.done.load(Ordering::SeqCst);
                let line = buffer.lines.lock().expect("lock").get(next).cloned();
                match line {
                    Some(line) => {
                        return Some((
                            Ok::<_, std::io::Error>(format!("{line}\n")),
                            (buffer, next + 1),
                        ));
                    }
                    None if done => return None,
                    None => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        (StatusCode::OK, Body::from_stream(stream)).into_response()
    }
}

fn namespace_of(collection: &str) -> String {
    collection
        .split("/namespaces/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// What the API server's validation would refuse (the parts the worker Job uses).
fn invalid(job: &Value) -> Option<String> {
    let spec = &job["spec"];
    let restart = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always");
    if !matches!(restart, "Never" | "OnFailure") {
        return Some(format!(
            "spec.template.spec.restartPolicy: Unsupported value: \"{restart}\""
        ));
    }
    if spec.get("podFailurePolicy").is_some() && restart != "Never" {
        return Some("spec.template.spec.restartPolicy: Invalid value: only \"Never\" is supported when podFailurePolicy is specified".into());
    }
    if spec["completionMode"] != "Indexed" {
        return Some("the fake Job controller runs only completionMode: Indexed".into());
    }
    if spec["completions"].as_i64().is_none_or(|c| c < 1) {
        return Some("spec.completions: Required value: when completion mode is Indexed".into());
    }
    None
}
