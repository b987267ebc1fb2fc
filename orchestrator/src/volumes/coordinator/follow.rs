//! Following one mover Job until it completes, and failing early, naming the claim and
//! Kubernetes' own reason, when it cannot: a pod that can never start (no image, a
//! Secret missing), one the scheduler cannot place, a Job whose pods the API server
//! refuses (quota, Pod Security admission), a volume that will not attach or mount.
//! Without this a stuck mover looks like a running one until `volumes.timeout` (an
//! hour by default), the hang Velero's and Crane's users complain of most.
//!
//! A Job failed this way is deleted with its pod (which never ran, so has no log): left,
//! it would start once the obstacle clears, beside the rerun's mover of the same claim.
//! Kubernetes keeps its events for an hour, and the error quotes them.
//!
//! Each obstacle must persist for a grace before it is an error, as for the scale-out
//! workers ([`crate::scaleout::executor::obstacles`]): `RELOCATE_STUCK_POD_SECONDS`
//! (default 300 s), three times that for attach and mount errors.

use std::time::Instant;

use connectors::kube::volumes::{MoverJob, claim_status, delete_mover_job, unscheduled_reason};
use connectors::kube::workers::{Blocked, blocked_job, job_progress, stuck_worker_pods};

use super::{Movers, POLL, cluster};
use crate::scaleout::executor::kubernetes::stuck_grace;
use crate::scaleout::executor::obstacles::Obstacles;
use crate::volumes::mover::{BlockedMover, MoverError};
use crate::volumes::order::MoverTask;

/// Wait for `job` (moving `claim`) to complete, until `deadline`.
pub(super) async fn wait(
    movers: &Movers,
    job: &MoverJob,
    claim: &str,
    task: MoverTask,
    deadline: Instant,
) -> Result<(), MoverError> {
    let (ns, name) = (&movers.namespace, &job.worker.name);
    let failed = |detail: String| MoverError::MoverFailed {
        claim: claim.to_owned(),
        task: task.as_str(),
        namespace: ns.clone(),
        job: name.clone(),
        detail,
    };
    let mut stuck_since: Option<Instant> = None;
    let mut obstacles = Obstacles::default();
    let mut undiagnosed = false;
    loop {
        let progress = job_progress(movers.client.clone(), ns, name)
            .await
            .map_err(|e| cluster(claim, e))?;
        if progress.completed.contains(&0) {
            return Ok(());
        }
        if !progress.failed.is_empty() || progress.finished.is_some() {
            let detail = match progress.finished {
                Some(connectors::kube::workers::JobFinished::Failed { reason, message }) => {
                    format!("{reason}: {message}")
                }
                _ => "its pod failed for good".into(),
            };
            return Err(failed(detail));
        }
        // A pod that can never start (no image, a Secret key missing) leaves the Job
        // active until the timeout: fail after the workers' grace, naming the reason.
        let stuck = stuck_worker_pods(movers.client.clone(), ns, name)
            .await
            .unwrap_or_default();
        match (stuck.first(), stuck_since) {
            (None, _) => stuck_since = None,
            (Some(first), Some(since)) if since.elapsed() >= stuck_grace() => {
                let obstacle = Obstacle {
                    pod: Some(first.pod.clone()),
                    what: "cannot start",
                    reason: first.reason.clone(),
                    message: first.message.clone(),
                };
                return Err(blocked_error(movers, job, claim, task, &obstacle, since).await);
            }
            (Some(_), None) => stuck_since = Some(Instant::now()),
            (Some(_), Some(_)) => {}
        }
        if obstacles.due(POLL) {
            let blocked = match blocked_job(movers.client.clone(), ns, name).await {
                Ok(blocked) => blocked,
                Err(e) => {
                    // Best effort (listing events may be forbidden): the timeout still
                    // bounds the wait; said once, not at every poll.
                    if !undiagnosed {
                        tracing::warn!(job = %name, error = %e, "cannot read the mover's pods and events: a mover that cannot run fails only at the timeout");
                        undiagnosed = true;
                    }
                    Vec::new()
                }
            };
            if let Some((obstacle, since)) = obstacles.outlasting(&blocked) {
                let obstacle = Obstacle::from(obstacle);
                return Err(blocked_error(movers, job, claim, task, &obstacle, since).await);
            }
        }
        if Instant::now() >= deadline {
            // A pod no node could take leaves its claim Pending too: say why, not that
            // the claim failed to bind after its pod was scheduled.
            if let Ok(Some(why)) = unscheduled_reason(movers.client.clone(), ns, name).await {
                let obstacle = Obstacle {
                    pod: None,
                    what: "was never scheduled",
                    reason: "Unschedulable".into(),
                    message: why,
                };
                let since = deadline
                    .checked_sub(movers.timeout)
                    .unwrap_or_else(Instant::now);
                return Err(blocked_error(movers, job, claim, task, &obstacle, since).await);
            }
            let status = claim_status(movers.client.clone(), ns, &job.claim)
                .await
                .map_err(|e| cluster(claim, e))?;
            if let Err(pending) = status.accepts(ns, &job.claim, 0) {
                // Its pod never ran (its claim never bound): deleted, so that it does
                // not start once the claim binds, beside a rerun's mover.
                if let Err(e) = delete_mover_job(movers.client.clone(), ns, name).await {
                    tracing::warn!(job = %name, error = %e, "mover Job of a Pending claim not deleted: delete it before a rerun");
                }
                return Err(pending.into());
            }
            return Err(MoverError::TimedOut {
                claim: claim.to_owned(),
                task: task.as_str(),
                namespace: ns.clone(),
                name: name.clone(),
                after: humantime::format_duration(movers.timeout).to_string(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why a mover's pod does not run, in Kubernetes' words.
struct Obstacle {
    pod: Option<String>,
    what: &'static str,
    reason: String,
    message: String,
}

impl From<&Blocked> for Obstacle {
    fn from(b: &Blocked) -> Self {
        Obstacle {
            pod: b.pod.clone(),
            what: b.kind.describe(),
            reason: b.reason.clone(),
            message: b.message.clone(),
        }
    }
}

/// The error for `obstacle`, with the mounted claim's state when it is `Pending` (the
/// likeliest cause of an unschedulable mover).
async fn blocked_error(
    movers: &Movers,
    job: &MoverJob,
    claim: &str,
    task: MoverTask,
    obstacle: &Obstacle,
    since: Instant,
) -> MoverError {
    let ns = &movers.namespace;
    let claim_state = match claim_status(movers.client.clone(), ns, &job.claim).await {
        Ok(status) if status.phase == "Pending" => format!(
            "; claim {ns}/{} is still Pending (storage class {})",
            job.claim,
            status.storage_class.as_deref().unwrap_or("(default)")
        ),
        _ => String::new(),
    };
    let name = &job.worker.name;
    let (subject, involved) = match &obstacle.pod {
        Some(pod) => (format!("pod {pod}"), pod.clone()),
        None => ("its pod".to_owned(), name.clone()),
    };
    // Deleted, not kept: a pod that never ran has no log to inspect, and one that
    // starts once the obstacle clears would write beside a rerun's mover of the claim.
    let cleanup = match delete_mover_job(movers.client.clone(), ns, name).await {
        Ok(()) => format!(
            "The Job was deleted, so it cannot start later beside a rerun's; its events stay for an hour: kubectl -n {ns} get events --field-selector involvedObject.name={involved}"
        ),
        Err(e) => format!(
            "The Job could not be deleted ({e}): delete it before a rerun, or it may start beside the rerun's: kubectl -n {ns} delete job {name} --cascade=background"
        ),
    };
    MoverError::Blocked(Box::new(BlockedMover {
        claim: claim.to_owned(),
        task: task.as_str(),
        namespace: ns.clone(),
        job: job.worker.name.clone(),
        subject,
        what: obstacle.what,
        reason: obstacle.reason.clone(),
        message: obstacle.message.clone(),
        claim_state,
        waited: since.elapsed().as_secs(),
        cleanup,
    }))
}
