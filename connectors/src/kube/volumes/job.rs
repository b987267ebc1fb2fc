//! The mover Job: the worker Job with one claim mounted (see the module comment).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Capabilities, EnvVar, PersistentVolumeClaimVolumeSource, Volume, VolumeMount,
};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use super::super::KubeError;
use super::super::resource::ResourceId;
use super::super::workers::{CONTAINER, JOB_NAME_LABEL, WorkerJob, build_job};
use super::placement::Scheduling;

/// Where the claim is mounted in a mover pod.
pub const VOLUME_MOUNT: &str = "/volume";
/// The pod's name for the claim's volume.
const VOLUME_NAME: &str = "claim";

/// One claim's mover.
#[derive(Debug, Clone, PartialEq)]
pub struct MoverJob {
    /// The Job as a worker (one completion, its args `volume pack …`).
    pub worker: WorkerJob,
    /// The PersistentVolumeClaim mounted at [`VOLUME_MOUNT`].
    pub claim: String,
    /// Mount it read-only (pack, verify).
    pub read_only: bool,
    /// Run as root with the capabilities to restore (or read) any owner's files.
    pub as_root: bool,
    /// Pin the pod to this node (where a running pod holds the claim attached, or
    /// where a claim mounted with this one was restored).
    pub node: Option<String>,
    /// The node constraints of the workload mounting the claim.
    pub scheduling: Scheduling,
    /// Run as this `(uid, gid)`, non-root and without added capabilities (the plan's
    /// `runAsUser`/`runAsGroup`); `as_root` is then false.
    pub run_as: Option<(i64, i64)>,
}

/// The `batch/v1` Job for `mover`.
pub fn build_mover_job(mover: &MoverJob) -> Job {
    let mut job = build_job(&mover.worker);
    let Some(pod) = job.spec.as_mut().and_then(|s| s.template.spec.as_mut()) else {
        return job;
    };
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: VOLUME_NAME.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: mover.claim.clone(),
            read_only: Some(mover.read_only),
        }),
        ..Volume::default()
    });
    // The workload's node constraints, and the node pin (as a DaemonSet pins its pods:
    // by the node's name, through the scheduler, which still checks resources and
    // taints, not by a hostname label that may differ).
    mover.scheduling.apply(pod, mover.node.as_deref());
    if let Some(sc) = pod.security_context.as_mut() {
        sc.fs_group = None;
        if let Some((uid, gid)) = mover.run_as {
            sc.run_as_non_root = Some(true);
            sc.run_as_user = Some(uid);
            sc.run_as_group = Some(gid);
        }
        if mover.as_root {
            sc.run_as_non_root = Some(false);
            sc.run_as_user = Some(0);
            sc.run_as_group = Some(0);
        }
    }
    for container in &mut pod.containers {
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: VOLUME_NAME.into(),
                mount_path: VOLUME_MOUNT.into(),
                read_only: Some(mover.read_only),
                ..VolumeMount::default()
            });
        container.env.get_or_insert_with(Vec::new).push(EnvVar {
            name: "RELOCATE_VOLUME_PATH".into(),
            value: Some(VOLUME_MOUNT.into()),
            ..EnvVar::default()
        });
        if mover.as_root
            && let Some(sc) = container.security_context.as_mut()
        {
            sc.run_as_non_root = Some(false);
            let add = if mover.read_only {
                vec!["DAC_READ_SEARCH".into()]
            } else {
                vec!["CHOWN".into(), "FOWNER".into(), "DAC_OVERRIDE".into()]
            };
            sc.capabilities = Some(Capabilities {
                add: Some(add),
                drop: Some(vec!["ALL".into()]),
            });
        }
    }
    with_termination_log(pod);
    job
}

/// Create the mover's Job, or re-attach to the one an earlier run of the same step made
/// (same name and run labels).
pub async fn ensure_mover_job(client: Client, mover: &MoverJob) -> Result<Job, KubeError> {
    let worker = &mover.worker;
    let api: Api<Job> = Api::namespaced(client, &worker.namespace);
    let id = ResourceId {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        namespace: worker.namespace.clone(),
        name: worker.name.clone(),
    };
    match api
        .create(&PostParams::default(), &build_mover_job(mover))
        .await
    {
        Ok(job) => {
            tracing::info!(job = %id, claim = %mover.claim, "created volume mover Job");
            Ok(job)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api
                .get(&worker.name)
                .await
                .map_err(|e| KubeError::from_api(&id, e))?;
            let labels = existing.metadata.labels.clone().unwrap_or_default();
            let differences: Vec<String> = worker
                .all_labels()
                .into_iter()
                .filter(|(k, v)| labels.get(k) != Some(v))
                .map(|(k, v)| format!("{k}: expected {v}, found {:?}", labels.get(&k)))
                .collect();
            if !differences.is_empty() {
                return Err(KubeError::JobTaken {
                    resource: id.to_string(),
                    namespace: worker.namespace.clone(),
                    name: worker.name.clone(),
                    differences: differences.join("; "),
                });
            }
            tracing::info!(job = %id, "re-attached to the volume mover Job of an earlier run");
            Ok(existing)
        }
        Err(e) => Err(KubeError::from_api(&id, e)),
    }
}

/// Where a mover writes its termination message (the kubelet's default path, set
/// explicitly so the contract is in the Job).
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// The env naming [`TERMINATION_LOG`] to the mover.
pub const TERMINATION_LOG_ENV: &str = "RELOCATE_TERMINATION_LOG";

/// The mover seals its report with a termination message: the kubelet copies the file at
/// `terminationMessagePath` (at most 4096 bytes) into the pod's status, which only the
/// kubelet (and whoever may write `pods/status`) can set, not whoever holds the exchange
/// store's credentials. `File`, not `FallbackToLogsOnError`: a message is then always
/// the mover's own words, never the tail of its log.
fn with_termination_log(pod: &mut k8s_openapi::api::core::v1::PodSpec) {
    for container in &mut pod.containers {
        container.termination_message_path = Some(TERMINATION_LOG.into());
        container.termination_message_policy = Some("File".into());
        container.env.get_or_insert_with(Vec::new).push(EnvVar {
            name: TERMINATION_LOG_ENV.into(),
            value: Some(TERMINATION_LOG.into()),
            ..EnvVar::default()
        });
    }
}

/// A mover pod that exited 0, and what it left as its termination message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoverExit {
    /// The pod's name.
    pub pod: String,
    /// The container's `state.terminated.message`; `None` when empty or absent.
    pub message: Option<String>,
}

/// The label the Job controller puts on a Job's pods with the Job's uid.
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

/// The pods of mover Job `namespace/job` that succeeded, with their termination
/// messages, ordered by name. Selected by the Job's uid, not its name: pods orphaned by
/// an earlier Job of the same name are not this Job's.
pub async fn succeeded_movers(
    client: Client,
    namespace: &str,
    job: &str,
) -> Result<Vec<MoverExit>, KubeError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let job_id = ResourceId {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        namespace: namespace.into(),
        name: job.into(),
    };
    let found = jobs
        .get(job)
        .await
        .map_err(|e| KubeError::from_api(&job_id, e))?;
    let selector = match found.metadata.uid {
        Some(uid) => format!("{JOB_NAME_LABEL}={job},{CONTROLLER_UID_LABEL}={uid}"),
        None => format!("{JOB_NAME_LABEL}={job}"),
    };
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, namespace);
    let id = ResourceId {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: namespace.into(),
        name: format!("<pods of job {job}>"),
    };
    let pods = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| KubeError::from_api(&id, e))?;
    let mut out: Vec<MoverExit> = pods
        .items
        .into_iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
        .map(|p| {
            let message = p
                .status
                .and_then(|s| s.container_statuses)
                .into_iter()
                .flatten()
                .filter(|c| c.name == CONTAINER)
                .find_map(|c| c.state.and_then(|s| s.terminated))
                .and_then(|t| t.message)
                .filter(|m| !m.is_empty());
            MoverExit {
                pod: p.metadata.name.unwrap_or_default(),
                message,
            }
        })
        .collect();
    out.sort_by(|a, b| a.pod.cmp(&b.pod));
    Ok(out)
}

/// Delete mover Job `namespace/name` and, through the garbage collector, its pods
/// (`propagationPolicy: Background`; a Job deleted through the API without it orphans
/// its pods). Gone already is fine.
pub async fn delete_mover_job(
    client: Client,
    namespace: &str,
    name: &str,
) -> Result<(), KubeError> {
    let api: Api<Job> = Api::namespaced(client, namespace);
    let id = ResourceId {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        namespace: namespace.into(),
        name: name.into(),
    };
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            tracing::info!(job = %id, "deleted the volume mover Job (its report was accepted)");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(KubeError::from_api(&id, e)),
    }
}
