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
//!
//! [`follow`] fails a mover early when Kubernetes says it cannot run (unschedulable,
//! refused at creation, a volume that will not mount); [`report`] accepts a report only
//! when its pod's termination message seals its bytes. An accepted mover's Job is then
//! deleted with its pod; a failed or refused one is kept until its TTL for inspection
//! (a rerun of the stage is a new attempt, with new Job names, so it never collides).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::kube::volumes::{
    MoverJob, Scheduling, claim_status, delete_mover_job, ensure_mover_job, mover_node,
};
use connectors::kube::workers::{WorkerJob, WorkerResources, job_name};
use object_store::ObjectStore;

use super::mover::{MoverError, MoverReport};
use super::order::{MoverTask, VolumeLayout, VolumeOrder};
use super::progress::OnProgress;
use crate::scaleout::exchange;

mod follow;
mod report;

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
    /// Where each claim's progress goes (the mover pods' logs are followed).
    pub progress: Option<OnProgress>,
    /// The run's stop (Ctrl-C): the coordinator stops waiting, the movers go on.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
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
    // Each mover's log, followed for its progress lines until the movers are done
    // (dropping the set aborts the followers).
    let mut followers = tokio::task::JoinSet::new();
    if let Some(on) = &movers.progress {
        for (index, job) in jobs.iter().enumerate() {
            followers.spawn(super::progress::follow(
                movers.client.clone(),
                movers.namespace.clone(),
                job.worker.name.clone(),
                index,
                on.clone(),
            ));
        }
    }
    let deadline = Instant::now() + movers.timeout;
    // All at once: the first mover to fail fails the step, whichever claim it has. A
    // claim restored next to another starts when that one's mover is done.
    let jobs = &jobs;
    let claims = &order.claims;
    let movers_done = futures::future::try_join_all(jobs.iter().zip(claims).zip(&leaders).map(
        |((job, claim), leader)| async move {
            match leader {
                None => follow::wait(movers, job, claim, task, deadline).await,
                Some(leader) => {
                    let (lead, lead_claim) = (&jobs[*leader], &claims[*leader]);
                    follow::wait(movers, lead, lead_claim, task, deadline).await?;
                    // Its own time from its start: a follower is not cut short by the
                    // time its leader took.
                    let deadline = Instant::now() + movers.timeout;
                    let mut job = job.clone();
                    job.node = next_to(movers, lead, &job).await?;
                    ensure_mover_job(movers.client.clone(), &job)
                        .await
                        .map_err(|e| cluster(claim, e))?;
                    follow::wait(movers, &job, claim, task, deadline).await
                }
            }
        },
    ));
    let stop = async {
        match &movers.cancel {
            Some(cancel) => cancel.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        done = movers_done => { done?; }
        () = stop => {
            // A mover is a Job in the cluster, not a child of this process: it goes
            // on, and the resumed step re-attaches to it by name.
            return Err(MoverError::Interrupted {
                task: task.as_str(),
                namespace: movers.namespace.clone(),
                jobs: jobs.iter().map(|j| j.worker.name.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
    }
    // The movers' last progress lines, read if their pods' logs still stream.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while followers.join_next().await.is_some() {}
    })
    .await;
    let mut reports = Vec::new();
    let mut refused = None;
    for (index, (job, claim)) in jobs.iter().zip(&order.claims).enumerate() {
        let path = layout.result(task, index as u32);
        match report::accepted_report(movers, job, claim, task, &path).await {
            Ok(report) => reports.push(report),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    // Only now, with each report checked against its pod's seal, may a Job (and its
    // pod, which holds the seal) go; a refused or failed one stays until its TTL.
    for job in jobs.iter().take(reports.len()) {
        if let Err(e) =
            delete_mover_job(movers.client.clone(), &movers.namespace, &job.worker.name).await
        {
            tracing::warn!(job = %job.worker.name, error = %e, "mover Job not deleted; its TTL removes it");
        }
    }
    match refused {
        Some(e) => Err(e),
        None => Ok(reports),
    }
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

fn cluster(claim: &str, source: connectors::kube::KubeError) -> MoverError {
    MoverError::Cluster {
        claim: claim.to_owned(),
        source: Box::new(source),
    }
}
