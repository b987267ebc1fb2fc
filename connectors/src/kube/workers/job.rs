//! Creating the worker Job exactly once and reading how far it got.
//!
//! [`ensure_job`] is safe to call again after a coordinator crash: a Job of the same name
//! that carries the same run labels (plan digest, stage, attempt, step) is the one the
//! crashed coordinator made, so it is re-attached, never duplicated; one with other labels
//! belongs to someone else and is refused by name. [`job_progress`] reads the Indexed Job's
//! own bookkeeping (`completedIndexes`, `failedIndexes`, `active`, conditions), which
//! survives pod garbage collection and coordinator restarts alike.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::api::{Api, PostParams};

use super::indexes::parse_indexes;
use super::spec::{WorkerJob, build_job};
use crate::kube::{KubeError, ResourceId};

/// How an Indexed Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFinished {
    /// Every index completed.
    Complete,
    /// The Job failed: some index failed for good, or the Job as a whole.
    Failed {
        /// The condition's reason, e.g. `FailedIndexes`, `PodFailurePolicy`.
        reason: String,
        /// The condition's message.
        message: String,
    },
}

/// Where a worker Job stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobProgress {
    /// Indexes whose pod succeeded.
    pub completed: BTreeSet<u32>,
    /// Indexes failed for good (retries spent, or a permanent exit code).
    pub failed: BTreeSet<u32>,
    /// Pods running now.
    pub active: u32,
    /// Set once the Job has a `Complete` or `Failed` condition.
    pub finished: Option<JobFinished>,
}

pub(super) fn job_id(namespace: &str, name: &str) -> ResourceId {
    ResourceId {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// A missing namespace, said for workers (the generic message suggests `createNamespace`).
pub(super) fn namespace_missing(namespace: &str) -> KubeError {
    KubeError::MissingPrerequisite {
        kind: "namespace".into(),
        name: namespace.into(),
        namespace: None,
        hint: format!(
            "create it (kubectl create namespace {namespace}) or name another in `workers.kubernetes.namespace`"
        ),
    }
}

fn from_api(id: &ResourceId, err: kube::Error) -> KubeError {
    match KubeError::from_api(id, err) {
        KubeError::NamespaceNotFound { .. } => namespace_missing(&id.namespace),
        other => other,
    }
}

/// Create the Job for `worker`, or re-attach to the one an earlier run of the same step made.
pub async fn ensure_job(client: Client, worker: &WorkerJob) -> Result<Job, KubeError> {
    let api: Api<Job> = Api::namespaced(client, &worker.namespace);
    let id = job_id(&worker.namespace, &worker.name);
    match api.create(&PostParams::default(), &build_job(worker)).await {
        Ok(job) => {
            tracing::info!(job = %id, completions = worker.completions, parallelism = worker.parallelism, "created worker Job");
            Ok(job)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api.get(&worker.name).await.map_err(|e| from_api(&id, e))?;
            let mut differences =
                differing_labels(&worker.all_labels(), existing.metadata.labels.as_ref());
            let digest = |job: &Job| {
                job.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(super::spec::SPEC_DIGEST_ANNOTATION).cloned())
            };
            let (wanted, found) = (digest(&build_job(worker)), digest(&existing));
            if wanted != found {
                differences.push(format!(
                    "annotation {}: {} (this step's spec: {})",
                    super::spec::SPEC_DIGEST_ANNOTATION,
                    found.as_deref().unwrap_or("missing"),
                    wanted.as_deref().unwrap_or("?")
                ));
            }
            if !differences.is_empty() {
                return Err(KubeError::JobTaken {
                    resource: id.to_string(),
                    namespace: worker.namespace.clone(),
                    name: worker.name.clone(),
                    differences: differences.join("; "),
                });
            }
            if existing.metadata.deletion_timestamp.is_some() {
                return Err(KubeError::JobDeleting {
                    resource: id.to_string(),
                    namespace: worker.namespace.clone(),
                    name: worker.name.clone(),
                });
            }
            tracing::info!(job = %id, "re-attached to the worker Job an earlier run of this step created");
            Ok(existing)
        }
        Err(e) => Err(from_api(&id, e)),
    }
}

/// Each wanted label the Job lacks or carries with another value.
fn differing_labels(
    wanted: &BTreeMap<String, String>,
    found: Option<&BTreeMap<String, String>>,
) -> Vec<String> {
    wanted
        .iter()
        .filter_map(|(key, value)| {
            let actual = found.and_then(|labels| labels.get(key));
            (actual != Some(value)).then(|| match actual {
                Some(actual) => format!("{key}: expected {value}, found {actual}"),
                None => format!("{key}: expected {value}, found none"),
            })
        })
        .collect()
}

/// Where Job `namespace/name` stands now.
pub async fn job_progress(
    client: Client,
    namespace: &str,
    name: &str,
) -> Result<JobProgress, KubeError> {
    let api: Api<Job> = Api::namespaced(client, namespace);
    let id = job_id(namespace, name);
    let job = api.get(name).await.map_err(|e| from_api(&id, e))?;
    progress_of(&id, &job)
}

/// [`JobProgress`] from a Job object's status.
pub fn progress_of(id: &ResourceId, job: &Job) -> Result<JobProgress, KubeError> {
    let Some(status) = &job.status else {
        return Ok(JobProgress::default());
    };
    let indexes = |text: &Option<String>| {
        parse_indexes(text.as_deref().unwrap_or_default()).map_err(|source| KubeError::JobStatus {
            resource: id.to_string(),
            source,
        })
    };
    let finished = status.conditions.iter().flatten().find_map(|c| {
        if c.status != "True" {
            return None;
        }
        match c.type_.as_str() {
            "Complete" => Some(JobFinished::Complete),
            "Failed" => Some(JobFinished::Failed {
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            }),
            _ => None,
        }
    });
    Ok(JobProgress {
        completed: indexes(&status.completed_indexes)?,
        failed: indexes(&status.failed_indexes)?,
        active: u32::try_from(status.active.unwrap_or(0)).unwrap_or(0),
        finished,
    })
}
