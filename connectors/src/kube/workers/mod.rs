//! Workers on Kubernetes: a workload's copy and verify fanned out as one **Indexed Job** of
//! `relocate worker` pods, one index per shard. This module checks what the pods need
//! ([`check_worker_prerequisites`]), builds the Job, creates it once ([`ensure_job`]),
//! follows it ([`job_progress`]), finds its pods and those that cannot start
//! ([`job_pods`], [`stuck_worker_pods`]), says why pods that never start are blocked
//! ([`blocked_job`]: unschedulable, refused at creation, a volume that will not mount)
//! and streams their logs ([`follow_pod_logs`]); what a shard means is the coordinator's
//! business.
//!
//! Why the Job looks as it does ([`build_job`]):
//! - `completionMode: Indexed`, `completions` = shards: each pod gets its shard from
//!   `JOB_COMPLETION_INDEX`, and the Job records per index what finished
//!   (`status.completedIndexes` / `failedIndexes`), so a restarted coordinator re-reads
//!   progress from the cluster instead of trusting its own memory.
//! - `parallelism`: how many shards move at once (bounded by the stores, not the cluster).
//! - `backoffLimitPerIndex` (no `maxFailedIndexes`): a flaky shard is retried on its own and
//!   one shard failing for good does not stop the others; every index runs, and the step
//!   then fails naming exactly the failed shards, which a rerun retries alone.
//! - `restartPolicy: Never` (required by the pod failure policy): a retry is a fresh pod,
//!   which resumes from the shard's checkpoint in the state store.
//! - `podFailurePolicy`: exit codes 3, 4, 7 (invalid work order, objects failed or
//!   mismatched, verification failed) `FailIndex` at once, since retrying cannot fix them;
//!   `DisruptionTarget` (node drain, preemption, eviction) is `Ignore`d: retried without
//!   spending the index's retries.
//! - `ttlSecondsAfterFinished`: the Job and its pods (and their logs) go away by themselves,
//!   after the coordinator has read them.
//! - Pods run as non-root 65532 with a read-only root filesystem, no privilege escalation,
//!   every capability dropped and the `RuntimeDefault` seccomp profile (the `restricted` Pod
//!   Security Standard); an `emptyDir` at `/tmp` (`TMPDIR`) is their only writable path.
//! - Credentials only by reference: the Secret is passed as `envFrom.secretRef` and mounted
//!   read-only at `/var/run/secrets/relocate`; no value ever appears in the Job object,
//!   which anyone with `get jobs` can read. `automountServiceAccountToken: false`: workers
//!   talk to object stores, never to the Kubernetes API (workload identity webhooks project
//!   their own token).
//! - Requests equal limits for CPU and memory when given (Guaranteed QoS: not the first
//!   to be evicted, not throttled below its share).
//! - Labels `app.kubernetes.io/name: relocate-worker`, `app.kubernetes.io/managed-by:
//!   relocate` and the run's own (plan digest, stage, attempt, step) on Job and pods:
//!   [`ensure_job`] re-attaches only to a Job carrying the same run labels. Label values
//!   are at most 63 characters: pass a digest's prefix, not a whole SHA-256.

mod blocked;
mod indexes;
mod job;
mod logs;
mod pods;
mod preflight;
mod spec;

#[cfg(test)]
mod blocked_tests;
#[cfg(test)]
mod mock_tests;
#[cfg(test)]
mod spec_tests;

pub use blocked::{BlockKind, Blocked, blocked_job};
pub use indexes::{IndexListError, MAX_INDEXES, format_indexes, parse_indexes};
pub use job::{JobFinished, JobProgress, ensure_job, job_progress, progress_of};
pub use logs::follow_pod_logs;
pub use pods::{INDEX_LABEL, JOB_NAME_LABEL, StuckPod, job_pods, stuck_worker_pods};
pub use preflight::check_worker_prerequisites;
pub use spec::{
    APP_NAME, CONTAINER, MANAGED_BY, MAX_JOB_NAME, PERMANENT_EXIT_CODES, SECRET_MOUNT, WORKER_UID,
    WorkerJob, WorkerResources, build_job, job_name,
};
