//! `freeze`, `deploy` and `rollback` steps on Kubernetes workloads.
//!
//! Every effect is preceded by its intent in the state (`workload_state`):
//! - `freeze` records every writer it will stop and how it stood (`frozen`: replicas,
//!   suspension, claim policy, KEDA pause) before stopping any, and reuses an existing
//!   record when resumed, so a second freeze never records zeros;
//! - `deploy` records the resources it is about to apply (`deploying`) before applying,
//!   then their digests (`applied`) for the evidence;
//! - `rollback` (in `rollback`) works only from those records, so it also works after a
//!   crash: source first, best effort, then the target.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use connectors::kube::{
    Applied, ApplyOptions, DryRunReport, FrozenState, KubeError, Resource, ResourceId, WaitOptions,
    apply, apply_freeze, connect, dry_run, export, late_jobs, mask_secrets, plan_freeze, transform,
    wait_ready, wait_scaled_down,
};
use plans::{KubernetesWorkload, Stage};

mod rollback;
pub(crate) mod volumes;

pub(crate) use rollback::{rollback, rollback_workload};

use super::{StepFailure, StepResult, missing_workload};
use crate::engine::{Context, EngineError};
use crate::progress::{Event, StepSummary};

/// `workload_state` names.
pub(crate) const FROZEN: &str = "frozen";
pub(crate) const DEPLOYING: &str = "deploying";
pub(crate) const APPLIED: &str = "applied";

const DEFAULT_WAIT: Duration = Duration::from_secs(300);

type StepOutput = Result<(StepSummary, StepResult), EngineError>;

fn failed(detail: impl std::fmt::Display) -> StepOutput {
    Ok((
        StepSummary::default(),
        StepResult::failed(detail.to_string()),
    ))
}

/// An error and its causes on one line: a step's failure is kept as text, and "API call
/// failed" alone does not say that the connection was refused.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(&format!(": {e}"));
        cause = e.source();
    }
    text
}

fn started(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    kind: &str,
    name: &str,
    description: String,
) {
    ctx.emit(Event::StepStarted {
        stage: stage.name.clone(),
        step: step_index + 1,
        kind: kind.into(),
        workload: Some(name.into()),
        description,
        counters: None,
    });
}

fn say(ctx: &Context, stage: &Stage, line: String) {
    ctx.emit(Event::CommandOutput {
        stage: stage.name.clone(),
        line,
    });
}

/// Why a step could not reach a cluster.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    /// The workload names a cluster the plan does not define.
    #[error("cluster {0} is not in the plan")]
    NotInPlan(String),
    /// The cluster's client could not be built.
    #[error("cluster {cluster}: {source}")]
    Connect {
        /// The plan's name for the cluster.
        cluster: String,
        /// Why.
        #[source]
        source: KubeError,
    },
}

async fn client(ctx: &Context, cluster: &str) -> Result<kube::Client, ClusterError> {
    let spec = ctx
        .plan
        .plan()
        .clusters
        .get(cluster)
        .ok_or_else(|| ClusterError::NotInPlan(cluster.to_owned()))?;
    connect(spec, ctx.plan.base_dir())
        .await
        .map_err(|source| ClusterError::Connect {
            cluster: cluster.to_owned(),
            source,
        })
}

/// A cluster's client, for the pre-flight.
pub(crate) async fn cluster_client(
    ctx: &Context,
    cluster: &str,
) -> Result<kube::Client, ClusterError> {
    client(ctx, cluster).await
}

/// The workload's `waitTimeout` (parsed once by validation), else the default.
fn wait_timeout(ctx: &Context, workload: &str) -> Duration {
    ctx.plan.wait_timeout(workload).unwrap_or(DEFAULT_WAIT)
}

fn load<T: serde::de::DeserializeOwned>(
    ctx: &Context,
    workload: &str,
    name: &str,
) -> Result<Option<T>, EngineError> {
    match ctx.db.workload_state(workload, name)? {
        Some(json) => serde_json::from_str(&json).map(Some).map_err(|e| {
            EngineError::State(crate::state::StateError::Corrupt {
                what: "workload state",
                detail: e.to_string(),
            })
        }),
        None => Ok(None),
    }
}

fn save<T: serde::Serialize>(
    ctx: &Context,
    workload: &str,
    name: &str,
    value: &T,
) -> Result<(), EngineError> {
    let json = serde_json::to_string(value).map_err(|e| {
        EngineError::State(crate::state::StateError::Corrupt {
            what: "workload state",
            detail: e.to_string(),
        })
    })?;
    Ok(ctx.db.set_workload_state(workload, name, &json)?)
}

/// Keep a human-readable copy of manifests (Secret values masked) in the state directory.
fn keep_manifests(
    ctx: &Context,
    workload: &str,
    side: &str,
    resources: &[Resource],
) -> Result<PathBuf, EngineError> {
    let dir = ctx
        .state
        .root()
        .join("kubernetes")
        .join(workload)
        .join(side);
    std::fs::create_dir_all(&dir).map_err(|source| crate::state::StateError::Io {
        path: dir.clone(),
        source,
    })?;
    for r in resources {
        let path = dir.join(format!("{}-{}.json", r.kind.to_lowercase(), r.name));
        let text = serde_json::to_string_pretty(&mask_secrets(&r.object)).unwrap_or_default();
        std::fs::write(&path, text)
            .map_err(|source| crate::state::StateError::Io { path, source })?;
    }
    Ok(dir)
}

/// Record every writer at the source and how it stood, then stop them and wait for their
/// pods to go. A writer that cannot be stopped fails the step before anything is changed.
pub(crate) async fn freeze(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
) -> StepOutput {
    let Some(w) = ctx.plan.kubernetes_workload(name) else {
        return Ok((StepSummary::default(), missing_workload(name)));
    };
    started(
        ctx,
        stage,
        step_index,
        "freeze",
        name,
        format!("{name}: stop the writers in {}/{}", w.from, w.namespace),
    );
    let src = match client(ctx, &w.from).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let frozen: FrozenState = match load(ctx, name, FROZEN)? {
        Some(existing) => existing,
        None => {
            let resources = match export(&src, w).await {
                Ok(r) => r,
                Err(e) => return failed(format!("export from {}: {e}", w.from)),
            };
            keep_manifests(ctx, name, "source", &resources)?;
            let state = match plan_freeze(&src, w).await {
                Ok(s) => s,
                Err(e) => return failed(with_causes(&e)),
            };
            save(ctx, name, FROZEN, &state)?;
            state
        }
    };
    let mut frozen = frozen;
    if let Err(e) = apply_freeze(&src, &frozen).await {
        return failed(with_causes(&e));
    }
    match late_jobs(&src, &frozen).await {
        Ok(late) if late.is_empty() => {}
        Ok(late) => {
            frozen.entries.extend(late);
            save(ctx, name, FROZEN, &frozen)?;
            if let Err(e) = apply_freeze(&src, &frozen).await {
                return failed(with_causes(&e));
            }
        }
        Err(e) => return failed(with_causes(&e)),
    }
    let stopped: Vec<String> = frozen.entries.iter().map(|e| e.id().to_string()).collect();
    say(
        ctx,
        stage,
        format!(
            "{name}: stopped {} writer(s) ({}); waiting for their pods to stop",
            stopped.len(),
            stopped.join(", ")
        ),
    );
    if let Err(e) = wait_scaled_down(
        &src,
        &frozen,
        WaitOptions::with_timeout(wait_timeout(ctx, name)),
    )
    .await
    {
        return failed(with_causes(&e));
    }
    Ok((StepSummary::default(), StepResult::Succeeded))
}

/// Export from the source, transform, apply to the target and wait until ready.
pub(crate) async fn deploy(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
) -> StepOutput {
    let Some(w) = ctx.plan.kubernetes_workload(name) else {
        return Ok((StepSummary::default(), missing_workload(name)));
    };
    let target_ns = w.target_namespace().to_owned();
    started(
        ctx,
        stage,
        step_index,
        "deploy",
        name,
        format!("{name}: {}/{} → {}/{target_ns}", w.from, w.namespace, w.to),
    );
    let (src, tgt) = match (client(ctx, &w.from).await, client(ctx, &w.to).await) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => return failed(e),
    };
    let transformed = match target_manifests(ctx, name, w, &src).await {
        Ok(t) => t,
        Err(e) => return failed(StepFailure::Cause(Box::new(e))),
    };
    // A workload whose claims' data moves: its claims (a StatefulSet's template claims
    // as manifests of their own, before the set) are created and restored before any
    // workload is applied, so nothing starts on an empty volume.
    let volume = ctx.plan.volume_workload(name);
    let mut transformed = transformed;
    let claims = match volume {
        Some(_) => match volumes::target_claims(ctx, name, &transformed) {
            Ok(claims) => claims,
            Err(e) => return volumes::kept_frozen(ctx, stage, e),
        },
        None => Vec::new(),
    };
    for claim in claims.iter().filter(|c| c.statefulset.is_some()) {
        let at = transformed
            .iter()
            .position(|r| r.kind == "StatefulSet")
            .unwrap_or(transformed.len());
        transformed.insert(at, claim.resource.clone());
    }
    let options = ApplyOptions::from(w);
    // Dry-run again right before applying: the target may have changed since the pre-flight,
    // and nothing must be half-applied because the third manifest is refused.
    if let Err(source) = dry_run(&tgt, &transformed, options).await {
        return failed(StepFailure::Cause(Box::new(DeployCheckError::DryRun {
            cluster: w.to.clone(),
            source,
        })));
    }
    keep_manifests(ctx, name, "target", &transformed)?;
    let ids: Vec<ResourceId> = transformed.iter().map(Resource::id).collect();
    save(ctx, name, DEPLOYING, &ids)?;
    if let Some((w, v)) = volume {
        match volumes::restore_claims(ctx, stage, step_index, name, w, v, &tgt, &claims).await {
            Ok((restored, verified, made_now)) => {
                save(ctx, name, volumes::RESTORED, &restored)?;
                save(ctx, name, volumes::VERIFIED, &verified)?;
                if made_now {
                    volumes::record_checks(ctx, stage, name, "restored", &restored)?;
                    volumes::record_checks(ctx, stage, name, "reread", &verified)?;
                }
            }
            Err(e) => return volumes::kept_frozen(ctx, stage, e),
        }
    }
    let applied: Vec<Applied> = match apply(&tgt, &transformed, options).await {
        Ok(a) => a,
        Err(e) => return failed(format!("apply to {}: {e}", w.to)),
    };
    save(ctx, name, APPLIED, &applied)?;
    say(
        ctx,
        stage,
        format!(
            "{name}: applied {} resource(s) to {}; waiting for rollout",
            applied.len(),
            w.to
        ),
    );
    let progress = |p: &connectors::kube::ReadyProgress| {
        if !p.waiting.is_empty() {
            say(
                ctx,
                stage,
                format!(
                    "{name}: {}/{} ready; waiting for {}",
                    p.ready,
                    p.total,
                    p.waiting.join("; ")
                ),
            );
        }
    };
    if let Err(e) = wait_ready(
        &tgt,
        &transformed,
        WaitOptions::with_timeout(wait_timeout(ctx, name)),
        progress,
    )
    .await
    {
        return failed(e);
    }
    Ok((
        StepSummary {
            copied: applied.len() as u64,
            ..Default::default()
        },
        StepResult::Succeeded,
    ))
}

/// Why a deploy's target manifests could not be built or were refused by the dry run,
/// with the cause kept.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeployCheckError {
    /// The step names a workload that is not a Kubernetes one (validation prevents it).
    #[error("{0} is not a Kubernetes workload")]
    NotKubernetes(String),
    /// A cluster could not be reached.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Exporting from the source failed.
    #[error("export from {cluster}: {source}")]
    Export {
        /// The source cluster's name in the plan.
        cluster: String,
        /// Why.
        #[source]
        source: KubeError,
    },
    /// The recorded freeze could not be read.
    #[error(transparent)]
    State(Box<EngineError>),
    /// The plan's transform could not be applied to the exported manifests.
    #[error(transparent)]
    Transform(KubeError),
    /// The target refused the server-side dry run.
    #[error("dry run at {cluster}: {source}")]
    DryRun {
        /// The target cluster's name in the plan.
        cluster: String,
        /// Every problem the dry run found.
        #[source]
        source: KubeError,
    },
}

/// Export from the source and transform for the target, with the recorded replica counts
/// when the source is already frozen.
async fn target_manifests(
    ctx: &Context,
    name: &str,
    w: &KubernetesWorkload,
    src: &kube::Client,
) -> Result<Vec<Resource>, DeployCheckError> {
    let mut resources = export(src, w)
        .await
        .map_err(|source| DeployCheckError::Export {
            cluster: w.from.clone(),
            source,
        })?;
    let frozen =
        load::<FrozenState>(ctx, name, FROZEN).map_err(|e| DeployCheckError::State(Box::new(e)))?;
    if let Some(frozen) = frozen {
        restore_recorded_scale(&mut resources, &frozen);
    }
    let labels = BTreeMap::from([(
        "relocate.io/region".to_owned(),
        ctx.plan.plan().target.clone(),
    )]);
    transform(&resources, &w.transform, &labels).map_err(DeployCheckError::Transform)
}

/// The deploy's server-side dry run at the target (pre-flight, before any freeze).
pub(crate) async fn dry_run_deploy(
    ctx: &Context,
    name: &str,
) -> Result<DryRunReport, DeployCheckError> {
    let w = ctx
        .plan
        .kubernetes_workload(name)
        .ok_or_else(|| DeployCheckError::NotKubernetes(name.to_owned()))?;
    let src = client(ctx, &w.from).await?;
    let tgt = client(ctx, &w.to).await?;
    let transformed = target_manifests(ctx, name, w, &src).await?;
    dry_run(&tgt, &transformed, ApplyOptions::from(w))
        .await
        .map_err(|source| DeployCheckError::DryRun {
            cluster: w.to.clone(),
            source,
        })
}

/// A frozen source exports with zero replicas, suspended, with its claims retained and its
/// autoscalers paused; the target must get the state recorded before the freeze.
fn restore_recorded_scale(resources: &mut [Resource], frozen: &FrozenState) {
    for r in resources.iter_mut() {
        let Some(entry) = frozen
            .entries
            .iter()
            .find(|e| e.kind == r.kind && e.name == r.name && e.namespace == r.namespace)
        else {
            continue;
        };
        if let (Some(replicas), Some(spec)) = (
            entry.replicas,
            r.object.get_mut("spec").and_then(|s| s.as_object_mut()),
        ) {
            spec.insert("replicas".into(), replicas.into());
        }
        if let (Some(suspended), Some(spec)) = (
            entry.suspended,
            r.object.get_mut("spec").and_then(|s| s.as_object_mut()),
        ) {
            spec.insert("suspend".into(), suspended.into());
        }
        if let (Some(policy), Some(retention)) = (
            &entry.when_scaled,
            r.object
                .pointer_mut("/spec/persistentVolumeClaimRetentionPolicy")
                .and_then(|p| p.as_object_mut()),
        ) {
            retention.insert("whenScaled".into(), policy.clone().into());
        }
        if entry.kind == "ScaledObject"
            && let Some(annotations) = r
                .object
                .pointer_mut("/metadata/annotations")
                .and_then(|a| a.as_object_mut())
        {
            match &entry.paused_replicas {
                Some(before) => annotations.insert(KEDA_PAUSED.into(), before.clone().into()),
                None => annotations.remove(KEDA_PAUSED),
            };
        }
    }
}

/// KEDA's pause annotation, which the freeze sets on the source's ScaledObjects.
const KEDA_PAUSED: &str = "autoscaling.keda.sh/paused-replicas";

#[cfg(test)]
mod tests {
    use connectors::kube::FrozenEntry;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_target_gets_the_state_recorded_before_the_freeze() {
        let frozen_source = [
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "analysis"},
                   "spec": {"replicas": 0, "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}}),
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                   "metadata": {"name": "api", "namespace": "analysis",
                                "annotations": {"autoscaling.keda.sh/paused-replicas": "0", "team": "data"}},
                   "spec": {"scaleTargetRef": {"name": "api"}}}),
        ];
        let mut resources: Vec<Resource> = frozen_source
            .into_iter()
            .map(|o| Resource::from_object(o, "analysis").expect("manifest"))
            .collect();
        let entry = |kind: &str, name: &str| FrozenEntry {
            api_version: String::new(),
            kind: kind.into(),
            namespace: "analysis".into(),
            name: name.into(),
            ..FrozenEntry::default()
        };
        let state = FrozenState {
            entries: vec![
                entry("ScaledObject", "api"),
                FrozenEntry {
                    replicas: Some(2),
                    when_scaled: Some("Delete".into()),
                    ..entry("StatefulSet", "db")
                },
            ],
        };
        restore_recorded_scale(&mut resources, &state);
        let db = &resources[0].object["spec"];
        assert_eq!(db["replicas"], 2);
        assert_eq!(
            db["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
            "Delete"
        );
        assert_eq!(
            resources[1].object["metadata"]["annotations"],
            json!({"team": "data"}),
            "the target's autoscaler is not born paused"
        );
    }
}
