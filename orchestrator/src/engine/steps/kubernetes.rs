//! `freeze`, `deploy` and `rollback` steps on Kubernetes workloads.
//!
//! Every effect is preceded by its intent in the state (`workload_state`):
//! - `freeze` records the source's replica counts (`frozen`) before scaling to zero, and
//!   reuses an existing record when resumed, so a second freeze never records zeros;
//! - `deploy` records the resources it is about to apply (`deploying`) before applying,
//!   then their digests (`applied`) for the evidence;
//! - `rollback` works only from those records, so it also works after a crash.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use connectors::kube::{
    Applied, FrozenState, Resource, ResourceId, WaitOptions, apply, apply_freeze, connect, export,
    mask_secrets, plan_freeze, restore, scale_target, transform, wait_ready, wait_scaled_down,
};
use plans::Stage;

use super::{StepResult, missing_workload};
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
        StepResult::Failed(detail.to_string()),
    ))
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

async fn client(ctx: &Context, cluster: &str) -> Result<kube::Client, String> {
    let spec = ctx
        .plan
        .plan()
        .clusters
        .get(cluster)
        .ok_or_else(|| format!("cluster {cluster} is not in the plan"))?;
    connect(spec, ctx.plan.base_dir())
        .await
        .map_err(|e| format!("cluster {cluster}: {e}"))
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

/// Record the source's replica counts, then scale the source to zero and wait for its pods to go.
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
        format!("{name}: scale {}/{} to zero", w.from, w.namespace),
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
            let state = match plan_freeze(&src, &resources).await {
                Ok(s) => s,
                Err(e) => return failed(e),
            };
            save(ctx, name, FROZEN, &state)?;
            state
        }
    };
    if let Err(e) = apply_freeze(&src, &frozen).await {
        return failed(e);
    }
    say(
        ctx,
        stage,
        format!(
            "{name}: {} workload(s) scaled to zero; waiting for their pods to stop",
            frozen.entries.len()
        ),
    );
    if let Err(e) = wait_scaled_down(
        &src,
        &frozen,
        WaitOptions::with_timeout(wait_timeout(ctx, name)),
    )
    .await
    {
        return failed(e);
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
    let target_ns = w
        .transform
        .namespace
        .clone()
        .unwrap_or_else(|| w.namespace.clone());
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
    let mut resources = match export(&src, w).await {
        Ok(r) => r,
        Err(e) => return failed(format!("export from {}: {e}", w.from)),
    };
    if let Some(frozen) = load::<FrozenState>(ctx, name, FROZEN)? {
        restore_recorded_scale(&mut resources, &frozen);
    }
    let labels = BTreeMap::from([(
        "relocate.io/region".to_owned(),
        ctx.plan.plan().target.clone(),
    )]);
    let transformed = match transform(&resources, &w.transform, &labels) {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    keep_manifests(ctx, name, "target", &transformed)?;
    let ids: Vec<ResourceId> = transformed.iter().map(Resource::id).collect();
    save(ctx, name, DEPLOYING, &ids)?;
    let applied: Vec<Applied> = match apply(&tgt, &transformed).await {
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

/// A frozen source exports with zero replicas; the target must get the recorded counts.
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
    }
}

/// Restore the source from the recorded counts and scale the target down.
pub(crate) async fn rollback(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
) -> StepOutput {
    started(
        ctx,
        stage,
        step_index,
        "rollback",
        name,
        format!("{name}: restore the source, scale the target down"),
    );
    match rollback_workload(ctx, name).await {
        Ok(lines) => {
            for l in lines {
                say(ctx, stage, l);
            }
            Ok((StepSummary::default(), StepResult::Succeeded))
        }
        Err(e) => failed(e),
    }
}

/// Undo a workload's cutover from the recorded state; returns what was done.
pub(crate) async fn rollback_workload(ctx: &Context, name: &str) -> Result<Vec<String>, String> {
    let w = ctx
        .plan
        .kubernetes_workload(name)
        .ok_or_else(|| format!("{name} is not a Kubernetes workload"))?;
    let mut done = Vec::new();
    let deployed: Option<Vec<ResourceId>> =
        load(ctx, name, DEPLOYING).map_err(|e| e.to_string())?;
    if let Some(ids) = deployed {
        let tgt = client(ctx, &w.to).await?;
        let targets: Vec<Resource> = ids
            .iter()
            .map(|id| Resource {
                kind: id.kind.clone(),
                api_version: id.api_version.clone(),
                namespace: id.namespace.clone(),
                name: id.name.clone(),
                object: serde_json::Value::Null,
            })
            .collect();
        scale_target(&tgt, &targets, 0)
            .await
            .map_err(|e| format!("scale down at {}: {e}", w.to))?;
        done.push(format!(
            "{name}: target workloads in {} scaled to zero",
            w.to
        ));
    }
    let frozen: Option<FrozenState> = load(ctx, name, FROZEN).map_err(|e| e.to_string())?;
    if let Some(frozen) = frozen {
        let src = client(ctx, &w.from).await?;
        restore(&src, &frozen)
            .await
            .map_err(|e| format!("restore at {}: {e}", w.from))?;
        done.push(format!(
            "{name}: source replica counts restored in {}",
            w.from
        ));
        ctx.db
            .clear_workload_state(name, FROZEN)
            .map_err(|e| e.to_string())?;
    }
    if done.is_empty() {
        done.push(format!("{name}: nothing recorded to roll back"));
    }
    Ok(done)
}
