//! `copy` and `verify` steps: open the workload's stores and hand them to the
//! transfer engine, then turn its report into a summary and per-key problem events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use connectors::store::{Access, StoreHandle, open_store};
use plans::{ObjectWorkload, Stage};

use super::{StepResult, missing_workload};
use crate::engine::{Context, EngineError};
use crate::progress::{Event, StepSummary};
use crate::transfer::copy::{Multipart, ServerSide};
use crate::transfer::local::{LocalSides, confine, is_staging_file_of};
use crate::transfer::ratelimit::RateLimiter;
use crate::transfer::{
    CopyJob, Counters, KeyFilter, TransferError, VerifyJob, copy_workload, verify_workload,
};

/// Default objects in flight per workload.
pub(crate) const DEFAULT_CONCURRENCY: usize = 16;

pub(crate) fn open(ctx: &Context, name: &str, access: Access) -> Result<StoreHandle, EngineError> {
    let store = ctx
        .plan
        .store(name)
        .ok_or_else(|| EngineError::StepFailed {
            stage: String::new(),
            step: 0,
            kind: "open".into(),
            cause: format!("store {name} is not in the plan").into(),
        })?;
    open_store(name, store, ctx.plan.base_dir(), access).map_err(|source| EngineError::Store {
        store: name.to_owned(),
        source,
    })
}

fn filter(w: &ObjectWorkload) -> Result<KeyFilter, String> {
    KeyFilter::new(&w.include, &w.exclude).map_err(|e| format!("bad include/exclude pattern: {e}"))
}

/// Two cloud stores in one bucket/account copy server-side. Never for local files:
/// `LocalFileSystem::copy` hard-links, and a later in-place change at the source would
/// then change the target too.
fn server_side(source: &StoreHandle, target: &StoreHandle) -> Option<ServerSide> {
    let cloud = ["s3|", "azure|", "gcs|"]
        .iter()
        .any(|p| source.same_account_key.starts_with(p));
    (cloud && source.same_account_key == target.same_account_key).then(|| ServerSide {
        root: target.root.clone(),
        source_prefix: source.prefix.clone(),
        target_prefix: target.prefix.clone(),
    })
}

/// A local target killed mid-write keeps object_store's staging file (`name#N`) beside
/// the object; verify would then report it as an unexpected object, and nothing else
/// would remove it. Only the objects that were in flight can have one, so only their
/// directories are looked at.
pub(crate) fn sweep_staging_files(
    db: &crate::state::Db,
    workload: &str,
    dir: &std::path::Path,
) -> Result<(), crate::state::StateError> {
    // In-flight objects by directory, so each directory is read once however many of
    // its objects were in flight (a page of intents is 1,024 keys).
    let mut by_dir: BTreeMap<std::path::PathBuf, BTreeSet<String>> = BTreeMap::new();
    for key in db.in_flight_keys(workload, 100_000)? {
        let path = dir.join(&key);
        if let (Some(parent), Some(name)) =
            (path.parent(), path.file_name().and_then(|n| n.to_str()))
        {
            by_dir
                .entry(parent.to_path_buf())
                .or_default()
                .insert(name.to_owned());
        }
    }
    for (parent, names) in by_dir {
        // Opened from the target's root without following a link (a link planted in the
        // target must not lead the sweep to delete elsewhere); removals go through it.
        let opened = match confine::parent(dir, &parent.join("_"), false) {
            Ok((opened, _)) => opened,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(
                    "cannot look for staging files left in {}: {e}",
                    parent.display()
                );
                continue;
            }
        };
        let entries = match std::fs::read_dir(&parent) {
            Ok(entries) => entries,
            // Nothing was ever written there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(
                    "cannot look for staging files left in {}: {e}",
                    parent.display()
                );
                continue;
            }
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let leftover = file
                .to_str()
                .and_then(|f| f.rsplit_once('#').map(|(object, _)| (f, object)))
                .is_some_and(|(f, object)| names.contains(object) && is_staging_file_of(f, object));
            if !leftover {
                continue;
            }
            match opened.remove(&file) {
                Ok(()) => tracing::info!(
                    "removed staging file {} left by an interrupted run",
                    entry.path().display()
                ),
                Err(e) => {
                    tracing::warn!("cannot remove staging file {}: {e}", entry.path().display())
                }
            }
        }
    }
    Ok(())
}

/// The copy of a workload between two opened stores: the one way a copy is set up,
/// for the in-process step and for a sharded worker alike (which then sets its range).
pub(crate) fn copy_job(
    name: &str,
    w: &ObjectWorkload,
    bandwidth: Option<u64>,
    source: &StoreHandle,
    target: &StoreHandle,
) -> Result<CopyJob, String> {
    let m = target.multipart;
    Ok(CopyJob {
        workload: name.to_owned(),
        source_name: format!("{} ({})", source.name, source.display_url),
        target_name: format!("{} ({})", target.name, target.display_url),
        source: source.store.clone(),
        target: target.store.clone(),
        filter: filter(w)?,
        algorithm: w.checksum,
        // Between two local directories the batches take blocking threads: a fixed 16.
        // Elsewhere objects in flight adapt to the link, up to `concurrency`.
        concurrency: w
            .concurrency
            .unwrap_or(if source.local.is_some() && target.local.is_some() {
                DEFAULT_CONCURRENCY
            } else {
                crate::transfer::adaptive::CEILING
            }),
        adaptive: true,
        multipart: Multipart {
            threshold: m.threshold,
            part_size: m.part_size,
            concurrency: m.concurrency,
        },
        limiter: bandwidth.map(|r| Arc::new(RateLimiter::new(r))),
        range: None,
        prune: true,
        memory_budget: crate::transfer::copy::DEFAULT_MEMORY_BUDGET,
        server_side: server_side(source, target),
        local: LocalSides {
            source: source.local.clone(),
            target: target.local.clone(),
        },
        symlinks: w.symlinks,
        existing_target: w.existing_target,
    })
}

/// The verify of a workload's target (see [`copy_job`]).
pub(crate) fn verify_job(
    name: &str,
    w: &ObjectWorkload,
    target: &StoreHandle,
) -> Result<VerifyJob, String> {
    Ok(VerifyJob {
        workload: name.to_owned(),
        target_name: format!("{} ({})", target.name, target.display_url),
        target: target.store.clone(),
        filter: filter(w)?,
        concurrency: w.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        range: None,
        local: target.local.clone(),
        checksums: stored_checksums(name, w, target),
    })
}

/// With `verify: { mode: checksum }`, the reader of the target's stored checksums: S3 only
/// (the one store whose checksum of the whole object relocate can read); elsewhere every
/// object is re-read, and the log says so once.
fn stored_checksums(
    name: &str,
    w: &ObjectWorkload,
    target: &StoreHandle,
) -> Option<Arc<crate::transfer::stored::StoredChecksums>> {
    if w.verify_mode() != plans::VerifyMode::Checksum {
        return None;
    }
    match &target.signer {
        Some(signer) => Some(Arc::new(crate::transfer::stored::StoredChecksums::new(
            signer.clone(),
            target.prefix.clone(),
        ))),
        None => {
            tracing::info!(
                "{name}: {} keeps no checksum relocate can read without downloading: \
                 `verify: {{ mode: checksum }}` re-reads every object",
                target.display_url
            );
            None
        }
    }
}

/// Copy what is missing or changed at the target.
pub(crate) async fn copy(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
) -> Result<(StepSummary, StepResult), EngineError> {
    let Some(w) = ctx.plan.object_workload(name) else {
        return Ok((StepSummary::default(), missing_workload(name)));
    };
    if crate::scaleout::coordinator::is_sharded(w) {
        let task = crate::scaleout::order::ShardTask::Copy;
        return crate::scaleout::coordinator::run(ctx, stage, step_index, name, w, task).await;
    }
    let source = open(ctx, &w.from, Access::Read)?;
    let target = open(ctx, &w.to, Access::Write)?;
    let job = match copy_job(name, w, ctx.plan.bandwidth(name), &source, &target) {
        Ok(job) => job,
        Err(e) => return Ok((StepSummary::default(), StepResult::failed(e))),
    };
    if let Some(dir) = ctx
        .plan
        .store_url(&w.to)
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
    {
        sweep_staging_files(&ctx.db, name, &dir)?;
    }
    let counters = Arc::new(Counters::default());
    ctx.emit(Event::StepStarted {
        stage: stage.name.clone(),
        step: step_index + 1,
        kind: "copy".into(),
        workload: Some(name.to_owned()),
        description: format!("{name}: {} → {}", source.display_url, target.display_url),
        counters: Some(counters.clone()),
    });
    let report = match copy_workload(&job, &ctx.db, &counters, &ctx.cancel).await {
        Ok(report) => report,
        Err(e @ TransferError::ExistingTarget { .. }) => {
            return Ok((StepSummary::default(), StepResult::failed(e.to_string())));
        }
        Err(e) => return Err(e.into()),
    };
    if report.skipped_links > 0 {
        tracing::warn!(
            "{name}: {} symbolic link(s) in {} left out (`symlinks: skip`; set `symlinks: follow` to copy what they point to inside the source)",
            report.skipped_links,
            source.display_url
        );
    }
    for (key, reason) in &report.failures {
        ctx.emit(Event::ObjectProblem {
            stage: stage.name.clone(),
            workload: name.to_owned(),
            key: key.clone(),
            problem: "copy-failed".into(),
            detail: target.redact(&source.redact(reason)),
        });
    }
    let summary = StepSummary {
        copied: report.copied,
        skipped: report.skipped,
        failed: report.failed,
        pruned: report.pruned,
        bytes: report.bytes,
        adopted: (report.adopted > 0).then_some(report.adopted),
        symlinks_skipped: source.local.is_some().then_some(report.skipped_links),
        prune_failed: (report.prune_failed > 0).then_some(report.prune_failed),
        ..Default::default()
    };
    let outcome = if report.interrupted {
        StepResult::Interrupted
    } else if report.prune_failed > 0 {
        StepResult::failed(format!(
            "{} object(s) the source deleted could not be removed from the target (first: {}); rerun to retry them",
            report.prune_failed,
            report
                .failures
                .iter()
                .find(|(_, r)| r.starts_with("could not remove"))
                .map(|(k, r)| format!("{k:?}: {}", target.redact(&source.redact(r))))
                .unwrap_or_default()
        ))
    } else if report.failed > 0 {
        StepResult::failed(format!(
            "{} of {} objects failed to copy (first: {}); rerun to retry them",
            report.failed,
            report.listed,
            report
                .failures
                .first()
                .map(|(k, r)| format!("{k:?}: {}", target.redact(&source.redact(r))))
                .unwrap_or_default()
        ))
    } else {
        StepResult::Succeeded
    };
    Ok((summary, outcome))
}

/// Re-read and hash the target; compare with the manifest.
pub(crate) async fn verify(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    name: &str,
) -> Result<(StepSummary, StepResult), EngineError> {
    let Some(w) = ctx.plan.object_workload(name) else {
        return Ok((StepSummary::default(), missing_workload(name)));
    };
    if crate::scaleout::coordinator::is_sharded(w) {
        let task = crate::scaleout::order::ShardTask::Verify;
        return crate::scaleout::coordinator::run(ctx, stage, step_index, name, w, task).await;
    }
    let target = open(ctx, &w.to, Access::Read)?;
    let job = match verify_job(name, w, &target) {
        Ok(job) => job,
        Err(e) => return Ok((StepSummary::default(), StepResult::failed(e))),
    };
    let counters = Arc::new(Counters::default());
    ctx.emit(Event::StepStarted {
        stage: stage.name.clone(),
        step: step_index + 1,
        kind: "verify".into(),
        workload: Some(name.to_owned()),
        description: format!("{name}: re-read and hash {}", target.display_url),
        counters: Some(counters.clone()),
    });
    let report = verify_workload(&job, &ctx.db, &counters, &ctx.cancel).await?;
    for p in &report.problems {
        ctx.emit(Event::ObjectProblem {
            stage: stage.name.clone(),
            workload: name.to_owned(),
            key: p.key.clone(),
            problem: serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            detail: target.redact(&p.detail),
        });
    }
    let summary = StepSummary {
        verified: report.verified,
        failed: report.failed(),
        bytes: report.bytes,
        verify_mode: Some(w.verify_mode().as_str().to_owned()),
        verified_by_checksum: (w.verify_mode() == plans::VerifyMode::Checksum)
            .then_some(report.by_checksum),
        ..Default::default()
    };
    let outcome = if report.interrupted {
        StepResult::Interrupted
    } else if report.failed() > 0 {
        StepResult::failed(format!(
            "verification failed: {} mismatched, {} missing, {} unexpected, {} unreadable (of {} checked)",
            report.mismatched,
            report.missing,
            report.unexpected,
            report.unreadable,
            report.verified + report.mismatched + report.missing + report.unreadable
        ))
    } else {
        StepResult::Succeeded
    };
    Ok((summary, outcome))
}
