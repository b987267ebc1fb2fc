//! The movers of one step: the order, the exchange store, the image, the Secret and
//! the labels every mover Job of the step gets.

use std::collections::BTreeMap;

use connectors::kube::workers::WorkerResources;
use connectors::store::{Access, StoreHandle, open_store};
use plans::{Stage, Volumes};
use sha2::{Digest, Sha256};

use super::{DEFAULT_TIMEOUT, RUN_ID, VolumeStepError, default_image};
use crate::engine::Context;
use crate::volumes::coordinator::Movers;
use crate::volumes::order::{MoverTask, VOLUME_ORDER_VERSION, VolumeOrder};

pub(super) fn order(ctx: &Context, workload: &str, claims: Vec<String>) -> VolumeOrder {
    VolumeOrder {
        version: VOLUME_ORDER_VERSION,
        plan_digest: ctx.plan.digest().to_string(),
        plan_text: ctx.plan.text().to_owned(),
        plan_path: ctx.plan.path().display().to_string(),
        workload: workload.to_owned(),
        claims,
        segment_bytes: None,
        segment_files: None,
    }
}

/// The staging store, as the coordinator reads it.
pub(super) fn staging(ctx: &Context, v: &Volumes) -> Result<StoreHandle, VolumeStepError> {
    let spec = ctx
        .plan
        .store(&v.staging)
        .ok_or_else(|| VolumeStepError::Claim(format!("store {} is not in the plan", v.staging)))?;
    open_store(&v.staging, spec, ctx.plan.base_dir(), Access::Read).map_err(|e| {
        VolumeStepError::Store {
            what: format!("opening the staging store {}", v.staging),
            source: Box::new(e),
        }
    })
}

/// The movers of one step: where orders and reports are exchanged (the plan's
/// `state.store`, else the staging store), the image, the Secret, the labels.
#[allow(clippy::too_many_arguments)]
pub(super) async fn movers(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    workload: &str,
    v: &Volumes,
    client: kube::Client,
    namespace: &str,
    task: MoverTask,
) -> Result<Movers, VolumeStepError> {
    let exchange_name = ctx
        .plan
        .plan()
        .state
        .as_ref()
        .map_or(v.staging.clone(), |s| s.store.clone());
    let mut entry = ctx
        .plan
        .plan()
        .stores
        .get(&exchange_name)
        .cloned()
        .ok_or_else(|| {
            VolumeStepError::Claim(format!("store {exchange_name} is not in the plan"))
        })?;
    if let Some(url) = ctx.plan.store_url(&exchange_name) {
        entry.url = url.to_string();
    }
    let state_entry = serde_json::to_string(&entry).map_err(|e| VolumeStepError::Store {
        what: "encoding the exchange store's entry".into(),
        source: Box::new(e),
    })?;
    let spec = ctx.plan.store(&exchange_name).ok_or_else(|| {
        VolumeStepError::Claim(format!("store {exchange_name} is not in the plan"))
    })?;
    let exchange =
        open_store(&exchange_name, spec, ctx.plan.base_dir(), Access::Write).map_err(|e| {
            VolumeStepError::Store {
                what: format!("opening {exchange_name}, where mover orders go"),
                source: Box::new(e),
            }
        })?;
    let attempt = super::attempt(ctx, stage)?;
    // A state directory's own id in every Job and order name: a rehearsal's Jobs (same
    // plan, stage and attempt, finished less than a day ago) are never re-attached to
    // by the real run from a fresh state directory.
    let run = match ctx.db.meta(RUN_ID)? {
        Some(id) => id,
        None => {
            let seed = format!(
                "{:?} {} {}",
                std::time::SystemTime::now(),
                std::process::id(),
                ctx.state.root().display()
            );
            let id = hex::encode(&Sha256::digest(seed.as_bytes())[..4]);
            ctx.db.set_meta(RUN_ID, &id)?;
            id
        }
    };
    let plan_name = &ctx.plan.plan().name;
    let step = format!("{}-{}", step_index + 1, task.as_str());
    let labels = BTreeMap::from([
        (
            "relocate.io/plan-digest".to_owned(),
            ctx.plan
                .digest()
                .as_str()
                .trim_start_matches("sha256:")
                .chars()
                .take(63)
                .collect(),
        ),
        ("relocate.io/stage".to_owned(), stage.name.clone()),
        ("relocate.io/attempt".to_owned(), attempt.to_string()),
    ]);
    Ok(Movers {
        client,
        namespace: namespace.to_owned(),
        image: v.image.clone().unwrap_or_else(default_image),
        secret_name: v.credentials.as_ref().map(|c| c.secret_name.clone()),
        resources: WorkerResources {
            cpu: v.resources.as_ref().and_then(|r| r.cpu.clone()),
            memory: v.resources.as_ref().and_then(|r| r.memory.clone()),
        },
        state: exchange.store,
        state_entry,
        order_path: format!(
            "relocate/{plan_name}/volumes/{workload}/{run}/{}-{attempt}-{step}/order.json",
            stage.name,
        ),
        labels,
        attempt,
        stage: format!("{run}/{}", stage.name),
        step,
        timeout: ctx.plan.volume_timeout(workload).unwrap_or(DEFAULT_TIMEOUT),
        run_as: v.run_as_user.map(|u| (u, v.run_as_group.unwrap_or(u))),
        progress: None,
        cancel: Some(ctx.cancel.clone()),
    })
}
