//! The mover Job: the worker Job with one claim mounted (see the module comment).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Capabilities, EnvVar, PersistentVolumeClaimVolumeSource, Volume, VolumeMount,
};
use kube::Client;
use kube::api::{Api, PostParams};

use super::super::KubeError;
use super::super::resource::ResourceId;
use super::super::workers::{WorkerJob, build_job};
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
