//! The first copy of a workload over a target that already holds objects.
//!
//! A state directory knows only what it copied. The same plan run from another
//! directory starts a new state, and without this check it re-copied everything over a
//! finished target, silently. So the first copy of a workload (no listing epoch in this
//! state yet) lists the target under the workload's keys first; objects there stop the
//! copy unless the plan says `existingTarget: adopt`, in which case each of them is
//! hashed at both ends and kept (recorded as copied, with the source's hash) when the
//! hashes match, and copied over otherwise.

use std::collections::HashSet;

use futures::StreamExt;
use object_store::ObjectMeta;
use plans::ExistingTarget;
use tokio_util::sync::CancellationToken;

use super::copy::{CopyFailure, CopyJob};
use super::local::Links;
use super::outcome::Done;
use super::verify::hash_target;
use super::{Counters, TransferError};
use crate::state::Db;

/// Before the first copy of a workload: `None` to copy as usual, or the keys already at
/// the target to adopt. Objects at the target without `adopt` are an error.
pub(super) async fn first_copy(
    job: &CopyJob,
    db: &Db,
    cancel: &CancellationToken,
) -> Result<Option<HashSet<String>>, TransferError> {
    // `Db::next_epoch` keeps the workload's listing epoch under this key: none means
    // this state never started a copy of the workload (a refused start sets none).
    if db.meta(&format!("epoch:{}", job.workload))?.is_some() {
        return Ok(None);
    }
    let mut listing = match &job.local.target {
        Some(fs) => super::local::list_store(fs, Links::Target).pages,
        None => super::listing::read_ahead(super::range::cloud_listing(
            job.target.as_ref(),
            job.range.as_ref(),
        )),
    };
    let mut found = HashSet::new();
    while let Some(page) = tokio::select! {
        p = listing.next() => p,
        () = cancel.cancelled() => None,
    } {
        for meta in super::listing::owned(page, &job.target_name, &job.filter, job.range.as_ref())? {
            found.insert(meta.location.as_ref().to_owned());
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    match job.existing_target {
        ExistingTarget::Refuse => Err(TransferError::ExistingTarget {
            store: job.target_name.clone(),
            objects: found.len() as u64,
        }),
        ExistingTarget::Adopt => {
            tracing::info!(
                workload = %job.workload,
                "{} already holds {} object(s): keeping those whose hash matches the source's",
                job.target_name,
                found.len()
            );
            Ok(Some(found))
        }
    }
}

/// An object the target already has: keep it when both ends hash alike, else copy it.
pub(super) async fn adopt_or_copy(
    job: &CopyJob,
    meta: &ObjectMeta,
    counters: &Counters,
) -> Result<Done, CopyFailure> {
    let key = meta.location.as_ref();
    let source = hash_target(&job.source, key, job.algorithm, counters).await;
    let target = hash_target(&job.target, key, job.algorithm, counters).await;
    match (source, target) {
        (Ok(s), Ok(t)) if s == t => Ok(Done::Adopted(s)),
        (Err(object_store::Error::NotFound { .. }), _) => Err(CopyFailure::Vanished),
        (Err(e), _) => Err(CopyFailure::read(&job.source_name, e)),
        (Ok(_), _) => super::object::copy_one(job, meta, counters)
            .await
            .map(Done::Copied),
    }
}
