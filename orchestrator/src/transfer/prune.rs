//! Prune: remove from the target what relocate copied earlier and the source deleted
//! since.
//!
//! The intent is in the journal before any delete: `mark_listed` commits the epoch of
//! every key the source still lists, so a row left in an older epoch is one to remove,
//! and a crash mid-prune finds the same rows again (a delete of what is already gone
//! counts as done). A row is marked pruned, and counted in the report (and so in the
//! signed evidence), only once the target confirmed the object gone; a failed delete
//! is recorded on the row with its error, counted apart, and fails the step, and the
//! rerun tries it again. At a local target the delete never follows a symbolic link.

use std::path::PathBuf;

use object_store::ObjectStoreExt;

use crate::state::{Db, ObjectUpdate, ObjectWriter};

use super::copy::{CopyJob, CopyReport, MAX_REPORTED, error_chain};
use super::local::confine;
use super::{Counters, TransferError};

/// Rows a prune round reads at once.
const ROUND: usize = 512;

/// Remove the rows of older epochs from the target; see the module's paragraph.
pub(super) async fn prune(
    job: &CopyJob,
    db: &Db,
    writer: &ObjectWriter,
    epoch: i64,
    report: &mut CopyReport,
    counters: &Counters,
) -> Result<(), TransferError> {
    let root = match &job.local.target {
        Some(fs) => Some(
            super::local::root(fs).map_err(|source| TransferError::List {
                store: job.target_name.clone(),
                source,
            })?,
        ),
        None => None,
    };
    loop {
        let keys = db.unseen_page(&job.workload, epoch, ROUND)?;
        if keys.is_empty() {
            return Ok(());
        }
        for key in keys {
            match delete(job, root.as_ref(), &key).await {
                Ok(()) => {
                    report.pruned += 1;
                    Counters::add(&counters.pruned, 1);
                    writer.send(ObjectUpdate::Pruned {
                        workload: job.workload.clone(),
                        key,
                    });
                }
                Err(reason) => {
                    tracing::warn!(workload = %job.workload, key = %key, "{reason}");
                    report.prune_failed += 1;
                    Counters::add(&counters.failed, 1);
                    if report.failures.len() < MAX_REPORTED {
                        report.failures.push((key.clone(), reason.clone()));
                    }
                    // Kept live with its error, and stamped with this epoch so this
                    // round does not pick it again; the next run's prune will.
                    writer.send(ObjectUpdate::Failed {
                        workload: job.workload.clone(),
                        key: key.clone(),
                        error: reason,
                    });
                    writer.send(ObjectUpdate::Seen {
                        workload: job.workload.clone(),
                        key,
                        epoch,
                    });
                }
            }
        }
        writer.flush().await?;
    }
}

/// Delete one object from the target; gone already counts as deleted.
async fn delete(job: &CopyJob, root: Option<&PathBuf>, key: &str) -> Result<(), String> {
    let failed = |e: &dyn std::error::Error| {
        format!(
            "could not remove from {} (the source deleted it): {}",
            job.target_name,
            error_chain(e)
        )
    };
    let location = super::key_path(key);
    if let (Some(root), Some(fs)) = (root, &job.local.target) {
        // A `name#digits` key was refused by the copy: relocate never wrote it there.
        if location
            .filename()
            .is_some_and(super::local::is_staging_name)
        {
            return Ok(());
        }
        let path = fs.path_to_filesystem(&location).map_err(|e| failed(&e))?;
        let root = root.clone();
        return tokio::task::spawn_blocking(move || confine::remove(&root, &path))
            .await
            .map_err(|e| failed(&e))?
            .map(|_| ())
            .map_err(|e| failed(&e));
    }
    match job.target.delete(&location).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(failed(&e)),
    }
}
