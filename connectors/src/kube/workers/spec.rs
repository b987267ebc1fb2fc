//! The worker Job as relocate asks Kubernetes for it: [`WorkerJob`] says what the
//! coordinator wants (image, shard count, parallelism, credentials by name), [`build_job`]
//! turns it into a `batch/v1` Job, pure and testable without a cluster, and [`job_name`]
//! derives a stable, valid name from the step it runs, so a rerun finds the same Job.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvFromSource, EnvVar, PodSecurityContext,
    PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretEnvSource,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

/// The container's name in every worker pod (the pod failure policy names it).
pub const CONTAINER: &str = "worker";
/// Where the credentials Secret is mounted, read-only, for stores that read key files.
pub const SECRET_MOUNT: &str = "/var/run/secrets/relocate";
/// Exit codes of `relocate worker` that no retry can fix: 3 an invalid work order, 4 a
/// shard whose objects failed or mismatched for good, 7 a verification that failed.
pub const PERMANENT_EXIT_CODES: [i32; 3] = [3, 4, 7];
/// The user and group the worker runs as (distroless `nonroot`).
pub const WORKER_UID: i64 = 65532;
/// `app.kubernetes.io/name` of every worker Job and pod.
pub const APP_NAME: &str = "relocate-worker";
/// `app.kubernetes.io/managed-by` of every worker Job and pod.
pub const MANAGED_BY: &str = "relocate";

/// CPU and memory for one worker; each, when given, is both request and limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerResources {
    /// A Kubernetes CPU quantity, e.g. `"2"` or `"500m"`.
    pub cpu: Option<String>,
    /// A Kubernetes memory quantity, e.g. `"1Gi"`.
    pub memory: Option<String>,
}

/// What the coordinator asks of the cluster for one step's workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerJob {
    /// The Job's name (see [`job_name`]).
    pub name: String,
    /// Namespace the Job runs in; it must exist (see `check_worker_prerequisites`).
    pub namespace: String,
    /// The worker image; its entrypoint is `relocate`.
    pub image: String,
    /// How many indexes (shards) the Job runs.
    pub completions: u32,
    /// At most this many pods at once.
    pub parallelism: u32,
    /// The pod's service account, when the stores need workload identity.
    pub service_account: Option<String>,
    /// The Secret holding store credentials, passed only by reference.
    pub secret_name: Option<String>,
    /// CPU and memory per worker.
    pub resources: WorkerResources,
    /// The container's arguments, e.g. `["worker", "--order", "s3://…"]`.
    pub args: Vec<String>,
    /// Plain, non-secret environment (literal values end up in the Job object).
    pub env: Vec<(String, String)>,
    /// Labels that identify the run (plan digest, stage, attempt, step): a Job of the same
    /// name carrying them is the same Job.
    pub labels: BTreeMap<String, String>,
    /// Retries of one index before that index (only) is failed.
    pub backoff_limit_per_index: u32,
    /// How long a finished Job (and its pods' logs) is kept.
    pub ttl_seconds_after_finished: u32,
}

impl WorkerJob {
    /// The labels every worker Job and pod carries: the caller's, plus relocate's own.
    pub fn all_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert("app.kubernetes.io/name".into(), APP_NAME.into());
        labels.insert("app.kubernetes.io/managed-by".into(), MANAGED_BY.into());
        labels
    }
}

/// Kubernetes counts in `int32`; plan validation bounds shards far below it.
fn int32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The annotation holding the SHA-256 of the Job's spec as relocate built it: a Job
/// found under the expected name is re-attached only when it carries the digest of the
/// spec this step would create (same image, arguments, order digest, Secret), so a Job
/// someone else created with the same name and labels is refused.
pub const SPEC_DIGEST_ANNOTATION: &str = "relocate.io/spec-digest";

/// The `batch/v1` Job for `worker`.
pub fn build_job(worker: &WorkerJob) -> Job {
    let mut job = build_unstamped(worker);
    let digest = serde_json::to_vec(&job.spec)
        .map(|bytes| format!("sha256:{}", hex::encode(Sha256::digest(&bytes))))
        .unwrap_or_default();
    job.metadata.annotations = Some(BTreeMap::from([(
        SPEC_DIGEST_ANNOTATION.to_owned(),
        digest,
    )]));
    job
}

/// [`build_job`] without its spec digest.
fn build_unstamped(worker: &WorkerJob) -> Job {
    let labels = worker.all_labels();
    let metadata = ObjectMeta {
        name: Some(worker.name.clone()),
        namespace: Some(worker.namespace.clone()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            ..ObjectMeta::default()
        }),
        spec: Some(pod_spec(worker)),
    };
    Job {
        metadata,
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(int32(worker.completions)),
            parallelism: Some(int32(worker.parallelism)),
            backoff_limit_per_index: Some(int32(worker.backoff_limit_per_index)),
            pod_failure_policy: Some(failure_policy()),
            ttl_seconds_after_finished: Some(int32(worker.ttl_seconds_after_finished)),
            template,
            ..JobSpec::default()
        }),
        status: None,
    }
}

fn failure_policy() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "FailIndex".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(CONTAINER.into()),
                    operator: "In".into(),
                    values: PERMANENT_EXIT_CODES.to_vec(),
                }),
                on_pod_conditions: None,
            },
            PodFailurePolicyRule {
                action: "Ignore".into(),
                on_exit_codes: None,
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".into(),
                    status: Some("True".into()),
                }]),
            },
        ],
    }
}

fn pod_spec(worker: &WorkerJob) -> PodSpec {
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    if let Some(secret) = &worker.secret_name {
        volumes.push(Volume {
            name: "credentials".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    PodSpec {
        restart_policy: Some("Never".into()),
        service_account_name: worker.service_account.clone(),
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(WORKER_UID),
            run_as_group: Some(WORKER_UID),
            fs_group: Some(WORKER_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container(worker)],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

fn container(worker: &WorkerJob) -> Container {
    let mut env = vec![EnvVar {
        name: "TMPDIR".into(),
        value: Some("/tmp".into()),
        ..EnvVar::default()
    }];
    env.extend(worker.env.iter().map(|(name, value)| EnvVar {
        name: name.clone(),
        value: Some(value.clone()),
        ..EnvVar::default()
    }));
    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    }];
    let env_from = worker.secret_name.as_ref().map(|secret| {
        mounts.push(VolumeMount {
            name: "credentials".into(),
            mount_path: SECRET_MOUNT.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: secret.clone(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]
    });
    Container {
        name: CONTAINER.into(),
        image: Some(worker.image.clone()),
        args: Some(worker.args.clone()),
        env: Some(env),
        env_from,
        volume_mounts: Some(mounts),
        resources: resources(&worker.resources),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// Requests equal to limits: the scheduler reserves what the worker may use, so a busy
/// node neither throttles a shard below its share nor OOM-kills it for a neighbour's use.
fn resources(wanted: &WorkerResources) -> Option<ResourceRequirements> {
    let mut amounts = BTreeMap::new();
    if let Some(cpu) = &wanted.cpu {
        amounts.insert("cpu".to_owned(), Quantity(cpu.clone()));
    }
    if let Some(memory) = &wanted.memory {
        amounts.insert("memory".to_owned(), Quantity(memory.clone()));
    }
    (!amounts.is_empty()).then(|| ResourceRequirements {
        requests: Some(amounts.clone()),
        limits: Some(amounts),
        ..ResourceRequirements::default()
    })
}

/// Longest name: an Indexed Job's pods are named `<job>-<index>-<suffix>` and their hostname
/// `<job>-<index>`, which must fit a 63-character DNS label with room for the index.
pub const MAX_JOB_NAME: usize = 52;

/// A valid, stable Job name for one step's workers: lowercase, DNS-1123, at most
/// [`MAX_JOB_NAME`] characters, readable prefix plus a hash of all four parts (so two
/// workloads whose names differ only in characters Kubernetes forbids still differ).
pub fn job_name(workload: &str, stage: &str, attempt: u32, step_kind: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [workload, stage, &attempt.to_string(), step_kind] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let hash = hex::encode(&hasher.finalize()[..5]);
    let readable = dns_label(&format!("{workload}-{stage}-{attempt}-{step_kind}"));
    let room = MAX_JOB_NAME - hash.len() - 1;
    let prefix: String = readable.chars().take(room).collect();
    let prefix = prefix.trim_end_matches('-');
    if prefix.is_empty() {
        format!("relocate-{hash}")
    } else {
        format!("{prefix}-{hash}")
    }
}

/// Lowercase ASCII letters and digits, every other run of characters one `-`, none at the ends.
fn dns_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}
