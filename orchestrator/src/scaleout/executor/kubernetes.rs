//! Workers as a Kubernetes Indexed Job in the target cluster (see
//! `connectors::kube::workers` for the Job's shape and why each field is set).
//!
//! The coordinator creates the Job (or re-attaches to the one a killed coordinator
//! made: same name, same run labels), then follows it: the Job's own
//! `completedIndexes`/`failedIndexes` say which shards ended, and each running pod's
//! log carries the worker's NDJSON progress, summed into one display. Retries per
//! shard (`backoffLimitPerIndex`) and permanent failures (`podFailurePolicy`) are the
//! Job controller's; a pod lost to a node drain (`DisruptionTarget`) is not counted.
//! Pods that cannot start, be created, be scheduled or mount their volumes fail the
//! step after a grace, naming Kubernetes' reason, instead of waiting for ever.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use connectors::kube::workers::{
    JobFinished, WorkerJob, WorkerResources, blocked_job, check_worker_prerequisites, ensure_job,
    follow_pod_logs, job_name, job_pods, job_progress, stuck_worker_pods,
};
use futures::StreamExt;
use plans::KubernetesWorkers;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Ends, Launch, Observed, ShardEnd};
use crate::engine::Context;
use crate::scaleout::ScaleError;
use crate::scaleout::order::WorkOrder;

/// How often the Job's status is read.
const POLL: Duration = Duration::from_secs(2);

/// How long a finished Job (and its pods' logs) stays for inspection.
const TTL_AFTER_FINISHED: u32 = 24 * 3600;

/// The Job for an order.
pub fn worker_job(k: &KubernetesWorkers, order: &WorkOrder, launch: &Launch) -> WorkerJob {
    let labels = BTreeMap::from([
        (
            "relocate.io/plan-digest".to_owned(),
            order
                .plan_digest
                .trim_start_matches("sha256:")
                .chars()
                .take(63)
                .collect(),
        ),
        ("relocate.io/workload".to_owned(), order.workload.clone()),
        ("relocate.io/stage".to_owned(), order.stage.clone()),
        ("relocate.io/attempt".to_owned(), launch.attempt.to_string()),
        (
            "relocate.io/step".to_owned(),
            format!("{}-{}", order.step + 1, order.task.as_str()),
        ),
    ]);
    WorkerJob {
        name: job_name(
            &order.workload,
            &order.stage,
            launch.attempt,
            &format!("{}-{}", order.step + 1, order.task.as_str()),
        ),
        namespace: k.namespace.clone(),
        image: k.image.clone(),
        completions: order.shards.len() as u32,
        parallelism: launch.parallelism,
        service_account: k.service_account_name.clone(),
        secret_name: k.credentials.as_ref().map(|c| c.secret_name.clone()),
        resources: WorkerResources {
            cpu: k.resources.as_ref().and_then(|r| r.cpu.clone()),
            memory: k.resources.as_ref().and_then(|r| r.memory.clone()),
        },
        args: vec![
            "worker".into(),
            "--order".into(),
            launch.order.clone(),
            "--order-digest".into(),
            launch.order_digest.clone(),
        ],
        env: vec![("RELOCATE_STATE_STORE".into(), launch.state_store.clone())],
        labels,
        backoff_limit_per_index: k.backoff_limit_per_index.unwrap_or(launch.attempts - 1),
        ttl_seconds_after_finished: TTL_AFTER_FINISHED,
    }
}

/// Run the order's Job to its end.
pub(crate) async fn run(
    ctx: &Context,
    k: &KubernetesWorkers,
    order: &WorkOrder,
    launch: &Launch,
    observed: &Observed,
    cancel: &CancellationToken,
) -> Result<Ends, ScaleError> {
    let kube = |source| ScaleError::Kube {
        cluster: k.cluster.clone(),
        source: Box::new(source),
    };
    let spec =
        ctx.plan.plan().clusters.get(&k.cluster).ok_or_else(|| {
            ScaleError::Executor(format!("cluster {} is not in the plan", k.cluster))
        })?;
    let client = connectors::kube::connect(spec, ctx.plan.base_dir())
        .await
        .map_err(kube)?;
    check_worker_prerequisites(
        client.clone(),
        &k.namespace,
        k.credentials.as_ref().map(|c| c.secret_name.as_str()),
        k.service_account_name.as_deref(),
    )
    .await
    .map_err(kube)?;
    let job = worker_job(k, order, launch);
    ensure_job(client.clone(), &job).await.map_err(kube)?;
    let wanted: BTreeSet<u32> = launch.shards.iter().copied().collect();
    let mut following: BTreeSet<String> = BTreeSet::new();
    let mut logs: JoinSet<String> = JoinSet::new();
    let mut stuck_since: Option<std::time::Instant> = None;
    let mut obstacles = super::obstacles::Obstacles::default();
    let kubectl = format!(
        "kubectl -n {} logs -l batch.kubernetes.io/job-name={}",
        job.namespace, job.name
    );
    loop {
        let progress = job_progress(client.clone(), &job.namespace, &job.name)
            .await
            .map_err(kube)?;
        // A followed log that ended lets its pod be followed again (a dropped stream
        // of a pod still running); each retry of a shard is a new pod.
        while let Some(Ok(pod)) = logs.try_join_next() {
            following.remove(&pod);
        }
        match job_pods(client.clone(), &job.namespace, &job.name).await {
            Ok(pods) => {
                for (_, pod, phase) in pods {
                    if phase != "Running" || !following.insert(pod.clone()) {
                        continue;
                    }
                    let (client, ns, observed) =
                        (client.clone(), job.namespace.clone(), observed.clone());
                    logs.spawn(async move {
                        let mut lines = std::pin::pin!(follow_pod_logs(client, &ns, &pod));
                        while let Some(Ok(line)) = lines.next().await {
                            observed.aggregate.take_line(&line, &observed.counters);
                        }
                        pod
                    });
                }
            }
            Err(e) => tracing::warn!("listing the pods of Job {}: {e}", job.name),
        }
        // Pods that can never start (no image, a Secret or key missing, nowhere to
        // schedule) leave the Job active forever: fail the step after a grace.
        let stuck = stuck_worker_pods(client.clone(), &job.namespace, &job.name)
            .await
            .unwrap_or_default();
        match (&stuck[..], stuck_since) {
            ([], _) => stuck_since = None,
            ([first, ..], Some(since)) if since.elapsed() >= stuck_grace() => {
                logs.abort_all();
                return Err(ScaleError::Executor(format!(
                    "pod {} of shard {} cannot start: {}: {} ({} pod(s) stuck for {}s; the Job {}/{} is left for inspection: kubectl -n {} describe pod {})",
                    first.pod,
                    first.index,
                    first.reason,
                    first.message,
                    stuck.len(),
                    stuck_grace().as_secs(),
                    job.namespace,
                    job.name,
                    job.namespace,
                    first.pod
                )));
            }
            (_, None) => stuck_since = Some(std::time::Instant::now()),
            _ => {}
        }
        // Pods that cannot be created (quota, Pod Security admission), scheduled, or
        // have their volumes attached (see `obstacles`).
        if obstacles.due(Duration::from_millis(500)) {
            let blocked = blocked_job(client.clone(), &job.namespace, &job.name)
                .await
                .unwrap_or_default();
            if let Some((b, since)) = obstacles.outlasting(&blocked) {
                {
                    logs.abort_all();
                    let subject = b
                        .pod
                        .as_ref()
                        .map_or("its pods".to_owned(), |p| format!("pod {p}"));
                    return Err(ScaleError::Executor(format!(
                        "{subject} of Job {}/{} {}: {}: {} (for {}s; the Job is left for inspection: kubectl -n {} describe job {})",
                        job.namespace,
                        job.name,
                        b.kind.describe(),
                        b.reason,
                        b.message,
                        since.elapsed().as_secs(),
                        job.namespace,
                        job.name
                    )));
                }
            }
        }
        let ended = progress
            .completed
            .union(&progress.failed)
            .copied()
            .collect::<BTreeSet<_>>();
        if wanted.is_subset(&ended) || progress.finished.is_some() {
            let mut ends = Ends::new();
            for &index in &launch.shards {
                let end = if progress.completed.contains(&index) {
                    ShardEnd::Finished
                } else if progress.failed.contains(&index) {
                    // A permanent failure (exit 4) still wrote its result; the merge
                    // finds it. Otherwise the Job's reason is all there is.
                    let why = match &progress.finished {
                        Some(JobFinished::Failed { reason, message }) => {
                            format!("its pods failed ({reason}: {message}); see {kubectl}")
                        }
                        _ => format!("its pods failed; see {kubectl}"),
                    };
                    ShardEnd::Failed {
                        code: None,
                        detail: why,
                    }
                } else {
                    ShardEnd::Failed {
                        code: None,
                        detail: format!(
                            "the Job ended without running it ({:?})",
                            progress.finished
                        ),
                    }
                };
                ends.insert(index, end);
            }
            logs.abort_all();
            return Ok(ends);
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => {
                // The Job keeps running in the cluster; a rerun re-attaches to it.
                logs.abort_all();
                tracing::warn!(
                    "stopped following Job {}/{}; its pods keep running and a rerun re-attaches",
                    job.namespace, job.name
                );
                return Ok(launch.shards.iter().map(|&i| (i, ShardEnd::Interrupted)).collect());
            }
        }
    }
}

/// How long pods may be unable to start before the step fails
/// (`RELOCATE_STUCK_POD_SECONDS`, default 300: an image pull can be slow).
pub(crate) fn stuck_grace() -> Duration {
    Duration::from_secs(
        std::env::var("RELOCATE_STUCK_POD_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    )
}
