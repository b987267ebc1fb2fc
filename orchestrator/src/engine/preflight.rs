//! Pre-flight: every store the remaining stages touch is opened and asked for one
//! listing page before anything moves, so a wrong credential or an unreachable
//! endpoint stops the run at the start instead of halfway. Each Kubernetes workload a
//! pending stage deploys is dry-run at its target cluster ([`check_deploys`]) before any
//! stage runs, so a manifest the target would refuse stops the run before `freeze`.

use std::collections::BTreeSet;

use connectors::store::{Access, open_store, preflight};
use plans::Step;

use super::{Context, EngineError};

/// Check the stores of the pending stages.
pub(crate) async fn check_stores(ctx: &Context, pending: &[usize]) -> Result<(), EngineError> {
    let mut stores: BTreeSet<(String, bool)> = BTreeSet::new();
    for &i in pending {
        for step in &ctx.plan.plan().stages[i].steps {
            if let Step::Copy(w) | Step::Verify(w) = step
                && let Some(wl) = ctx.plan.object_workload(w)
            {
                stores.insert((wl.from.clone(), false));
                stores.insert((wl.to.clone(), true));
            }
        }
    }
    for (name, write) in stores {
        let Some(store) = ctx.plan.store(&name) else {
            continue;
        };
        let access = if write { Access::Write } else { Access::Read };
        let handle = open_store(&name, store, ctx.plan.base_dir(), access).map_err(|source| {
            EngineError::Store {
                store: name.clone(),
                source,
            }
        })?;
        preflight(&handle)
            .await
            .map_err(|source| EngineError::Store {
                store: name.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Dry-run every workload the pending stages deploy, before anything is frozen.
pub(crate) async fn check_deploys(ctx: &Context, pending: &[usize]) -> Result<(), EngineError> {
    let mut seen = BTreeSet::new();
    for &i in pending {
        for step in &ctx.plan.plan().stages[i].steps {
            if let Step::Deploy(w) = step
                && seen.insert(w.clone())
            {
                let report = super::steps::kubernetes::dry_run_deploy(ctx, w)
                    .await
                    .map_err(|cause| EngineError::DeployPreflight {
                        workload: w.clone(),
                        cause: Box::new(cause),
                    })?;
                tracing::info!(workload = %w, accepted = report.accepted, "deploy dry run passed");
                for notice in report.notices {
                    tracing::warn!(workload = %w, %notice, "deploy dry run");
                }
            }
        }
    }
    Ok(())
}
