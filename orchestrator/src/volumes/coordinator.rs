//! The coordinator's side of a volume move: write the order, run one mover Job per
//! claim (the claim mounted, read-only unless restoring), follow the Jobs, and collect
//! each mover's report (its manifest root goes into the stage's evidence).
//!
//! One Job per claim, not one Indexed Job for all: a pod mounts claims of its own
//! namespace only, and a `ReadWriteOnce` claim binds the pod to its node, so claims on
//! different nodes need different pods anyway. A Job re-created by a rerun is
//! re-attached to (same name and labels), so a coordinator killed mid-move follows
//! the movers it started. A mover that does not finish in time on a claim still
//! `Pending` fails naming the claim and its class.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::kube::volumes::{
    MoverJob, Scheduling, claim_status, ensure_mover_job, mover_node, unscheduled_reason,
};
use connectors::kube::workers::{
    WorkerJob, WorkerResources, job_name, job_progress, stuck_worker_pods,
};
use object_store::ObjectStore;

use super::mover::{MoverError, MoverReport};
use super::order::{MoverTask, VolumeLayout, VolumeOrder};
use crate::scaleout::exchange;
use crate::scaleout::executor::kubernetes::stuck_grace;

/// How often the Jobs are read.
const POLL: Duration = Duration::from_millis(500);

/// Where and how the movers run.
#[derive(Clone)]
pub struct Movers {
    /// The cluster holding the claims.
    pub client: kube::Client,
    /// The claims' namespace (the movers run there).
    pub namespace: String,
    /// The relocate image.
    pub image: String,
    /// The Secret with the stores' credentials, by reference.
    pub secret_name: Option<String>,
    /// CPU and memory per mover.
    pub resources: WorkerResources,
    /// The state store, where the order and the reports go.
    pub state: Arc<dyn ObjectStore>,
    /// The state store's plan entry in JSON (`RELOCATE_STATE_STORE` of the pods).
    pub state_entry: String,
    /// The order's path in the state store (`…/order.json`).
    pub order_path: String,
    /// The run's labels (plan digest, stage, attempt) on every Job.
    pub labels: BTreeMap<String, String>,
    /// Stage attempt (part of the Jobs' names).
    pub attempt: u32,
    /// The stage and the step (`<n>-<task>`), also part of the Jobs' names: a seed and
    /// a delta copy of one claim are different Jobs.
    pub stage: String,
    /// The step, `<position>-<task>`.
    pub step: String,
    /// How long a mover may take.
    pub timeout: Duration,
    /// The plan's `runAsUser`/`runAsGroup`: movers run as that user, not root.
    pub run_as: Option<(i64, i64)>,
}

impl std::fmt::Debug for Movers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Movers")
            .field("namespace", &self.namespace)
            .field("order_path", &self.order_path)
            .finish_non_exhaustive()
    }
}

/// Where a claim's mover runs and what it mounts (default: the claim itself, on any
/// node).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// The node to run on.
    pub node: Option<String>,
    /// The claim to mount instead (a snapshot's clone); the staged prefix stays the
    /// claim's own.
    pub mount: Option<String>,
    /// The node constraints of the workload that mounts the claim.
    pub scheduling: Scheduling,
    /// A claim of the same order that one pod mounts with this one: this mover starts
    /// once that claim's mover is done, on the node it ran on, if this claim is still
    /// unbound (so both bind in one zone; see `connectors::kube::volumes::placement`).
    pub colocated_with: Option<String>,
}

/// Run `task` for every claim of `order`; their reports, in the order's claim order.
///
/// A claim named in `placements` gets its mover pinned to a node (where a running pod
/// holds it attached) or mounting another claim (a snapshot's clone).
pub async fn run_movers(
    movers: &Movers,
    order: &VolumeOrder,
    task: MoverTask,
    placements: &BTreeMap<String, Placement>,
) -> Result<Vec<MoverReport>, MoverError> {
    let layout = VolumeLayout::of_order(&movers.order_path);
    let state_err = |e| MoverError::State(Box::new(e));
    let digest = exchange::put_json(&movers.state, &layout.order(), order)
        .await
        .map_err(state_err)?;
    let mut jobs = Vec::new();
    let mut leaders: Vec<Option<usize>> = Vec::new();
    for (index, claim) in order.claims.iter().enumerate() {
        let mut job = mover_job(movers, order, task, index, claim, &digest);
        let placement = placements.get(claim).cloned().unwrap_or_default();
        job.node = placement.node;
        job.scheduling = placement.scheduling;
        if let Some(mount) = placement.mount {
            job.claim = mount;
        }
        let leader = placement
            .colocated_with
            .and_then(|l| order.claims.iter().position(|c| *c == l))
            .filter(|l| *l != index);
        if leader.is_none() {
            ensure_mover_job(movers.client.clone(), &job)
                .await
                .map_err(|e| cluster(claim, e))?;
        }
        jobs.push(job);
        leaders.push(leader);
    }
    let deadline = Instant::now() + movers.timeout;
    // All at once: the first mover to fail fails the step, whichever claim it has. A
    // claim restored next to another starts when that one's mover is done.
    let jobs = &jobs;
    futures::future::try_join_all(jobs.iter().zip(&leaders).map(|(job, leader)| async move {
        match leader {
            None => wait(movers, job, task, deadline).await,
            Some(leader) => {
                let leader = &jobs[*leader];
                wait(movers, leader, task, deadline).await?;
                // Its own time from its start: a follower is not cut short by the time
                // its leader took.
                let deadline = Instant::now() + movers.timeout;
                let mut job = job.clone();
                job.node = next_to(movers, leader, &job).await?;
                ensure_mover_job(movers.client.clone(), &job)
                    .await
                    .map_err(|e| cluster(&job.claim, e))?;
                wait(movers, &job, task, deadline).await
            }
        }
    }))
    .await?;
    let mut reports = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        let report: MoverReport = exchange::get_json(
            &movers.state,
            &layout.result(task, index as u32),
            "mover report",
        )
        .await
        .map_err(state_err)?
        .ok_or_else(|| MoverError::MoverFailed {
            claim: job.claim.clone(),
            task: task.as_str(),
            namespace: movers.namespace.clone(),
            job: job.worker.name.clone(),
            detail: "it completed without a report".into(),
        })?;
        // A report is the mover's only if it names the claim and task it was started
        // for (a stale or planted one names another).
        let claim = &order.claims[index];
        if report.claim != *claim || report.task != task {
            return Err(MoverError::MoverFailed {
                claim: claim.clone(),
                task: task.as_str(),
                namespace: movers.namespace.clone(),
                job: job.worker.name.clone(),
                detail: format!(
                    "its report is for the {} of claim {}, not this {}",
                    report.task.as_str(),
                    report.claim,
                    task.as_str()
                ),
            });
        }
        reports.push(report);
    }
    Ok(reports)
}

fn mover_job(
    movers: &Movers,
    order: &VolumeOrder,
    task: MoverTask,
    index: usize,
    claim: &str,
    order_digest: &str,
) -> MoverJob {
    let mut labels = movers.labels.clone();
    labels.insert("relocate.io/workload".into(), order.workload.clone());
    labels.insert("relocate.io/volume-task".into(), task.as_str().into());
    MoverJob {
        worker: WorkerJob {
            name: job_name(
                &order.workload,
                &format!("{}/{claim}", movers.stage),
                movers.attempt,
                &movers.step,
            ),
            namespace: movers.namespace.clone(),
            image: movers.image.clone(),
            completions: 1,
            parallelism: 1,
            service_account: None,
            secret_name: movers.secret_name.clone(),
            resources: movers.resources.clone(),
            args: vec![
                "volume".into(),
                task.as_str().into(),
                "--order".into(),
                movers.order_path.clone(),
                "--index".into(),
                index.to_string(),
                "--order-digest".into(),
                order_digest.to_owned(),
                "--claim".into(),
                claim.to_owned(),
            ],
            env: vec![("RELOCATE_STATE_STORE".into(), movers.state_entry.clone())],
            labels,
            backoff_limit_per_index: 2,
            ttl_seconds_after_finished: 24 * 3600,
        },
        claim: claim.to_owned(),
        read_only: task != MoverTask::Restore,
        // Database volumes are 0700 and owned by their database's user: a pack or a
        // verify reads them as root with only DAC_READ_SEARCH (read-only mount), a
        // restore writes them with CHOWN, FOWNER and DAC_OVERRIDE; unless the plan
        // names the user (`runAsUser`).
        as_root: movers.run_as.is_none(),
        node: None,
        scheduling: Scheduling::default(),
        run_as: movers.run_as,
    }
}

/// The node for `job`'s mover, whose claim must bind next to `leader`'s: the node the
/// leader's mover ran on, unless the claim is bound already (its volume decides).
async fn next_to(
    movers: &Movers,
    leader: &MoverJob,
    job: &MoverJob,
) -> Result<Option<String>, MoverError> {
    let status = claim_status(movers.client.clone(), &movers.namespace, &job.claim)
        .await
        .map_err(|e| cluster(&job.claim, e))?;
    if status.phase == "Bound" {
        return Ok(job.node.clone());
    }
    let node = mover_node(
        movers.client.clone(),
        &movers.namespace,
        &leader.worker.name,
    )
    .await
    .map_err(|e| cluster(&leader.claim, e))?;
    // Its pods may be gone (garbage-collected, evicted): the node the leader's claim
    // was provisioned for is where it bound.
    let node = match node {
        Some(node) => Some(node),
        None => {
            claim_status(movers.client.clone(), &movers.namespace, &leader.claim)
                .await
                .map_err(|e| cluster(&leader.claim, e))?
                .selected_node
        }
    };
    match &node {
        Some(node) => {
            tracing::info!(claim = %job.claim, next_to = %leader.claim, %node, "restoring a claim on the node of the claim its pod mounts with it")
        }
        None => {
            tracing::warn!(claim = %job.claim, next_to = %leader.claim, "the mover of the claim mounted with this one left no pod naming its node; restoring without a pin")
        }
    }
    Ok(node.or_else(|| job.node.clone()))
}

async fn wait(
    movers: &Movers,
    job: &MoverJob,
    task: MoverTask,
    deadline: Instant,
) -> Result<(), MoverError> {
    let (ns, name, claim) = (&movers.namespace, &job.worker.name, &job.claim);
    let failed = |detail: String| MoverError::MoverFailed {
        claim: claim.clone(),
        task: task.as_str(),
        namespace: ns.clone(),
        job: name.clone(),
        detail,
    };
    let mut stuck_since: Option<Instant> = None;
    loop {
        let progress = job_progress(movers.client.clone(), ns, name)
            .await
            .map_err(|e| cluster(claim, e))?;
        if progress.completed.contains(&0) {
            return Ok(());
        }
        if !progress.failed.is_empty() || progress.finished.is_some() {
            return Err(failed(format!("{:?}", progress.finished)));
        }
        // A pod that can never start (no image, a Secret key missing) leaves the Job
        // active until the timeout: fail after the workers' grace, naming the reason.
        let stuck = stuck_worker_pods(movers.client.clone(), ns, name)
            .await
            .unwrap_or_default();
        match (stuck.first(), stuck_since) {
            (None, _) => stuck_since = None,
            (Some(first), Some(since)) if since.elapsed() >= stuck_grace() => {
                return Err(failed(format!(
                    "its pod {} cannot start: {}: {}",
                    first.pod, first.reason, first.message
                )));
            }
            (Some(_), None) => stuck_since = Some(Instant::now()),
            (Some(_), Some(_)) => {}
        }
        if Instant::now() >= deadline {
            // A pod no node could take leaves its claim Pending too: say why, not that
            // the claim failed to bind after its pod was scheduled.
            if let Ok(Some(why)) = unscheduled_reason(movers.client.clone(), ns, name).await {
                return Err(failed(format!(
                    "its pod was never scheduled in {}: {why}",
                    humantime::format_duration(movers.timeout)
                )));
            }
            let status = claim_status(movers.client.clone(), ns, claim)
                .await
                .map_err(|e| cluster(claim, e))?;
            status.accepts(ns, claim, 0)?;
            return Err(failed(format!(
                "not done after {}",
                humantime::format_duration(movers.timeout)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn cluster(claim: &str, source: connectors::kube::KubeError) -> MoverError {
    MoverError::Cluster {
        claim: claim.to_owned(),
        source: Box::new(source),
    }
}
