//! The fake kubelet: one worker pod as a local process, with the environment a kubelet
//! would build (Secrets resolved by reference), its log captured line by line, and the Pod
//! object kept current.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::controller::Outcome;
use super::obstacles::{Obstacle, mounting, unschedulable};
use super::termination::TerminationLog;
use super::{Jobs, LogBuffer, PodExit, Running, lock};

impl Jobs {
    /// Make the pod object for `index` and run its process on a thread; false when the
    /// API server refused the pod (no Pod object exists).
    pub(super) fn start_pod(
        &self,
        key: &(String, String),
        job: &Value,
        index: u32,
        tx: mpsc::Sender<Outcome>,
    ) -> bool {
        let (namespace, name) = key.clone();
        let n = self.pod_counter.fetch_add(1, Ordering::SeqCst);
        let pod_name = format!("{name}-{index}-{:05x}", n % 0xfffff);
        let template = &job["spec"]["template"];
        let mut labels = template["metadata"]["labels"].clone();
        labels["batch.kubernetes.io/job-completion-index"] = json!(index.to_string());
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": namespace, "uid": format!("uid-pod-{pod_name}"), "labels": labels,
                         "annotations": {"batch.kubernetes.io/job-completion-index": index.to_string()},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                              "uid": job["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
            "spec": template["spec"], "status": {"phase": "Pending"}});
        let container = template["spec"]["containers"][0].clone();
        if let Some(why) = self.refusal(&namespace) {
            let owner = json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "namespace": namespace, "uid": job["metadata"]["uid"]}});
            let message = format!("Error creating: pods \"{pod_name}\" is forbidden: {why}");
            self.warn(&owner, "FailedCreate", &message, "job-controller");
            return false;
        }
        let mut pod = pod;
        match self.schedule(&namespace, &template["spec"]) {
            Ok(Some(node)) => pod["spec"]["nodeName"] = json!(node),
            Ok(None) => {}
            Err(message) => {
                let pod = unschedulable(pod, &message);
                self.put_pod(&namespace, pod.clone());
                self.warn(&pod, "FailedScheduling", &message, "default-scheduler");
                return true;
            }
        }
        match self.obstacle(&namespace, &template["spec"]) {
            Some(Obstacle::Unschedulable(message)) => {
                let pod = unschedulable(pod, &message);
                self.put_pod(&namespace, pod.clone());
                self.warn(&pod, "FailedScheduling", &message, "default-scheduler");
                return true;
            }
            Some(Obstacle::Mount(reason, message, component)) => {
                let pod = mounting(pod);
                self.put_pod(&namespace, pod.clone());
                self.warn(&pod, &reason, &message, component);
                return true;
            }
            None => {}
        }
        if let Err(message) = self.attach_claims(&namespace, &template["spec"]) {
            let pod = mounting(pod);
            self.put_pod(&namespace, pod.clone());
            self.warn(&pod, "FailedMount", &message, "kubelet");
            return true;
        }
        let termination = TerminationLog::of(&container, &pod_name);
        let env = self
            .resolve_env(&namespace, &container, index)
            .map(|env| self.map_claims(&namespace, &template["spec"], &container, env))
            .map(|env| termination.map_env(env));
        let entrypoint = lock(&self.state).entrypoint.clone();
        let (env, entrypoint) = match (env, entrypoint) {
            (Ok(env), Some(entrypoint)) => (env, entrypoint),
            (Err(message), _) => {
                self.put_pod(
                    &namespace,
                    waiting(pod, "CreateContainerConfigError", &message),
                );
                return true;
            }
            (_, None) => {
                self.put_pod(
                    &namespace,
                    waiting(
                        pod,
                        "ErrImagePull",
                        "no entrypoint: call FakeCluster::set_job_entrypoint",
                    ),
                );
                return true;
            }
        };
        let workdir = lock(&self.state).workdir.clone();
        let delay = template["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .filter_map(|c| {
                lock(&self.state)
                    .claim_delays
                    .get(&(namespace.clone(), c.to_owned()))
                    .copied()
            })
            .max();
        let mut command = match delay {
            Some(seconds) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("sleep {seconds}; exec \"$0\" \"$@\""))
                    .arg(&entrypoint);
                sh
            }
            None => Command::new(&entrypoint),
        };
        command
            .args(
                container["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            )
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOSTNAME", &pod_name)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = workdir {
            command.current_dir(dir);
        }
        let context = &template["spec"]["securityContext"];
        if lock(&self.state).run_as_pod_user
            && let Some(uid) = context["runAsUser"].as_u64()
        {
            let gid = context["runAsGroup"].as_u64().unwrap_or(uid);
            command.uid(uid as u32).gid(gid as u32);
        }
        let buffer = Arc::new(LogBuffer::default());
        lock(&self.state)
            .logs
            .insert((namespace.clone(), pod_name.clone()), buffer.clone());
        // Spawned and registered under one lock: once the process has run at all, a test's
        // `kill_job_index` finds it.
        let mut state = lock(&self.state);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                drop(state);
                buffer.done.store(true, Ordering::SeqCst);
                self.put_pod(
                    &namespace,
                    terminated(
                        pod,
                        128,
                        &format!("cannot start {}: {e}", entrypoint.display()),
                        false,
                    ),
                );
                let _ = tx.send(Outcome {
                    index,
                    exit_code: Some(128),
                    disrupted: false,
                });
                return true;
            }
        };
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let child = Arc::new(Mutex::new(child));
        let disrupted = Arc::new(AtomicBool::new(false));
        let run_key = (namespace.clone(), name.clone(), index);
        state.running.insert(
            run_key.clone(),
            Running {
                child: child.clone(),
                disrupted: disrupted.clone(),
            },
        );
        drop(state);
        let readers: Vec<_> = [
            stdout.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            stderr.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|stream| {
            let buffer = buffer.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    buffer.lines.lock().expect("lock").push(line);
                }
            })
        })
        .collect();
        let mut running = pod;
        running["status"] = json!({"phase": "Running", "containerStatuses": [{"name": "worker", "ready": true, "restartCount": 0,
                                   "state": {"running": {"startedAt": "2026-11-30T10:00:01Z"}}}]});
        self.put_pod(&namespace, running.clone());
        let controller = self.clone();
        std::thread::spawn(move || {
            let exit = loop {
                let polled = child.lock().map(|mut c| c.try_wait());
                match polled {
                    Ok(Ok(Some(exit))) => break exit,
                    Ok(Ok(None)) => std::thread::sleep(Duration::from_millis(10)),
                    _ => break std::os::unix::process::ExitStatusExt::from_raw(9),
                }
            };
            for reader in readers {
                let _ = reader.join();
            }
            buffer.done.store(true, Ordering::SeqCst);
            let code = exit.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&exit).unwrap_or(9)
            });
            let disrupted = disrupted.load(Ordering::SeqCst);
            lock(&controller.state).running.remove(&run_key);
            // Between the process's exit and its status: what a test's hook does here
            // happens before anyone can see the pod (or the Job) finished.
            let exit = PodExit {
                namespace: run_key.0.clone(),
                job: run_key.1.clone(),
                pod: pod_name.clone(),
                exit_code: code,
            };
            let hooks = lock(&controller.state).exit_hooks.clone();
            for hook in hooks {
                hook(&exit);
            }
            let message = termination.message(code, &buffer);
            controller.put_pod(&run_key.0, terminated(running, code, &message, disrupted));
            let _ = tx.send(Outcome {
                index,
                exit_code: Some(code),
                disrupted,
            });
        });
        true
    }

    fn put_pod(&self, namespace: &str, pod: Value) {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let key = (format!("/api/v1/namespaces/{namespace}/pods"), name);
        if pod["status"]["phase"] == "Succeeded" && lock(&self.state).gc_succeeded_pods {
            self.objects.lock().expect("lock").remove(&key);
            return;
        }
        self.objects.lock().expect("lock").insert(key, pod);
    }

    /// The container's environment as the kubelet would build it; `Err` names what is missing.
    fn resolve_env(
        &self,
        namespace: &str,
        container: &Value,
        index: u32,
    ) -> Result<Vec<(String, String)>, String> {
        let mut env = vec![("JOB_COMPLETION_INDEX".to_owned(), index.to_string())];
        for from in container["envFrom"].as_array().into_iter().flatten() {
            let Some(name) = from["secretRef"]["name"].as_str() else {
                continue;
            };
            let prefix = from["prefix"].as_str().unwrap_or_default();
            match self.secret(namespace, name) {
                Some(data) => {
                    env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)))
                }
                None if from["secretRef"]["optional"] == true => {}
                None => return Err(format!("secret \"{name}\" not found")),
            }
        }
        for var in container["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().unwrap_or_default().to_owned();
            if let Some(value) = var["value"].as_str() {
                env.push((name, value.to_owned()));
            } else if let Some(reference) = var["valueFrom"].get("secretKeyRef") {
                let secret = reference["name"].as_str().unwrap_or_default();
                let key = reference["key"].as_str().unwrap_or_default();
                match self.secret(namespace, secret).map(|d| d.get(key).cloned()) {
                    Some(Some(value)) => env.push((name, value)),
                    _ if reference["optional"] == true => {}
                    None => return Err(format!("secret \"{secret}\" not found")),
                    Some(None) => {
                        return Err(format!(
                            "couldn't find key {key} in Secret {namespace}/{secret}"
                        ));
                    }
                }
            } else if var["valueFrom"]["fieldRef"]["fieldPath"]
                .as_str()
                .is_some_and(|p| p.contains("job-completion-index"))
            {
                env.push((name, index.to_string()));
            }
        }
        Ok(env)
    }

    /// Env values under a mounted claim's path, rewritten to the claim's local directory.
    fn map_claims(
        &self,
        namespace: &str,
        pod_spec: &Value,
        container: &Value,
        env: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        let state = lock(&self.state);
        let job_volumes = pod_spec["volumes"].as_array().cloned().unwrap_or_default();
        let mut mapped = env;
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let claim = job_volumes
                .iter()
                .find(|v| v["name"] == mount["name"])
                .and_then(|v| v["persistentVolumeClaim"]["claimName"].as_str());
            let (Some(claim), Some(path)) = (claim, mount["mountPath"].as_str()) else {
                continue;
            };
            let Some(dir) = state.claims.get(&(namespace.to_owned(), claim.to_owned())) else {
                continue;
            };
            for (_, value) in &mut mapped {
                if let Some(rest) = value.strip_prefix(path) {
                    *value = format!("{}{rest}", dir.display());
                }
            }
        }
        mapped
    }

    /// The pod's claims, as a kubelet and a binder would: each must be mapped to a
    /// local directory (never the host's own mount path) and not held unbindable; a
    /// claim still unbound binds now, to a volume of its request's size (a
    /// `WaitForFirstConsumer` claim binds when its first pod is scheduled).
    fn attach_claims(&self, namespace: &str, pod_spec: &Value) -> Result<(), String> {
        // One lock at a time: the API server's handlers take the objects' lock first.
        let (unbindable, mut mapped) = {
            let state = lock(&self.state);
            (state.unbindable.clone(), state.claims.clone())
        };
        let mut objects = self.objects.lock().expect("lock");
        // A claim provisioned from a VolumeSnapshot gets a copy of its source claim's
        // directory, made when it is first mounted.
        for volume in pod_spec["volumes"].as_array().into_iter().flatten() {
            let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() else {
                continue;
            };
            let key = (namespace.to_owned(), claim.to_owned());
            if mapped.contains_key(&key) {
                continue;
            }
            let pvcs = format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims");
            let source = objects
                .get(&(pvcs, claim.to_owned()))
                .filter(|pvc| pvc["spec"]["dataSource"]["kind"] == "VolumeSnapshot")
                .and_then(|pvc| pvc["spec"]["dataSource"]["name"].as_str())
                .and_then(|snap| {
                    objects.get(&(
                        format!("/apis/snapshot.storage.k8s.io/v1/namespaces/{namespace}/volumesnapshots"),
                        snap.to_owned(),
                    ))
                })
                .and_then(|s| s["spec"]["source"]["persistentVolumeClaimName"].as_str())
                .and_then(|c| mapped.get(&(namespace.to_owned(), c.to_owned())).cloned());
            if let Some(dir) = source {
                let copy = dir.with_extension(format!("snapshot-{claim}"));
                let copied = std::process::Command::new("cp")
                    .arg("-a")
                    .arg(&dir)
                    .arg(&copy)
                    .status()
                    .is_ok_and(|s| s.success());
                if copied {
                    lock(&self.state).claims.insert(key.clone(), copy.clone());
                    mapped.insert(key, copy);
                }
            }
        }
        for volume in pod_spec["volumes"].as_array().into_iter().flatten() {
            let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() else {
                continue;
            };
            let key = (namespace.to_owned(), claim.to_owned());
            if unbindable.contains(&key) {
                return Err(format!(
                    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims ({claim})"
                ));
            }
            if !mapped.contains_key(&key) {
                return Err(format!(
                    "FailedMount: claim {namespace}/{claim} has no local directory (FakeCluster::set_claim_dir)"
                ));
            }
            let stored = (
                format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims"),
                claim.to_owned(),
            );
            if let Some(pvc) = objects.get_mut(&stored)
                && pvc["status"]["phase"] != "Bound"
            {
                let size = pvc["spec"]["resources"]["requests"]["storage"].clone();
                pvc["status"] = json!({"phase": "Bound", "capacity": {"storage": size}});
            }
        }
        Ok(())
    }

    /// A stored Secret's values, decoded.
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let key = (
            format!("/api/v1/namespaces/{namespace}/secrets"),
            name.to_owned(),
        );
        let secret = self.objects.lock().expect("lock").get(&key).cloned()?;
        let mut out = BTreeMap::new();
        for (k, v) in secret["data"].as_object().into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            out.insert(k.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
        for (k, v) in secret["stringData"].as_object().into_iter().flatten() {
            out.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
        }
        Some(out)
    }
}

fn waiting(mut pod: Value, reason: &str, message: &str) -> Value {
    pod["status"] = json!({"phase": "Pending", "containerStatuses": [{"name": "worker", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": reason, "message": message}}}]});
    pod
}

fn terminated(mut pod: Value, code: i32, message: &str, disrupted: bool) -> Value {
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let reason = if code == 0 { "Completed" } else { "Error" };
    pod["status"] = json!({"phase": phase, "containerStatuses": [{"name": "worker", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}}]});
    if disrupted {
        pod["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                                              "message": "Taint manager: deleting due to NoExecute taint"}]);
    }
    pod
}
