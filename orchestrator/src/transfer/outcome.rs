//! One object's outcome recorded: counted in the copy's report and the live counters,
//! and journalled (`copied` with the source hash, `failed` with the error chain, or
//! `pruned` when it vanished from the source mid-copy).

use object_store::ObjectMeta;

use super::copy::{CopyFailure, CopyJob, CopyReport, MAX_REPORTED};
use super::{Counters, TransferError};
use crate::state::{ObjectUpdate, ObjectWriter};

/// What became of one object a copy took on.
pub(super) struct ObjectOutcome {
    pub(super) meta: ObjectMeta,
    pub(super) result: Result<Done, CopyFailure>,
}

/// An object at the target with the source's hash (hex).
pub(super) enum Done {
    /// Copied by this run.
    Copied(String),
    /// Found at the target with the source's hash and kept (`existingTarget: adopt`).
    Adopted(String),
}

pub(super) fn record(
    done: Result<Vec<ObjectOutcome>, tokio::task::JoinError>,
    report: &mut CopyReport,
    writer: &ObjectWriter,
    job: &CopyJob,
    counters: &Counters,
) -> Result<u64, TransferError> {
    let mut vanished = 0;
    for outcome in done.map_err(|e| TransferError::Task(e.to_string()))? {
        vanished += record_one(outcome, report, writer, job, counters);
    }
    Ok(vanished)
}

/// Record one object's outcome; 1 when it vanished from the source.
pub(super) fn record_one(
    outcome: ObjectOutcome,
    report: &mut CopyReport,
    writer: &ObjectWriter,
    job: &CopyJob,
    counters: &Counters,
) -> u64 {
    let ObjectOutcome { meta, result } = outcome;
    let key = meta.location.as_ref().to_owned();
    Counters::add(&counters.done_objects, 1);
    Counters::add(&counters.done_bytes, meta.size);
    match result {
        Ok(done) => {
            let source_hash = match done {
                Done::Copied(hash) => {
                    report.copied += 1;
                    report.bytes += meta.size;
                    Counters::add(&counters.copied, 1);
                    hash
                }
                Done::Adopted(hash) => {
                    report.adopted += 1;
                    Counters::add(&counters.skipped, 1);
                    hash
                }
            };
            writer.send(ObjectUpdate::Copied {
                workload: job.workload.clone(),
                key,
                algorithm: job.algorithm.as_str().to_owned(),
                source_hash,
            });
        }
        Err(CopyFailure::Vanished) => {
            tracing::warn!(workload = %job.workload, key = %key, "object vanished from the source during the copy");
            writer.send(ObjectUpdate::Pruned {
                workload: job.workload.clone(),
                key,
            });
            return 1;
        }
        Err(failure) => {
            let reason = error_chain(&failure);
            report.failed += 1;
            Counters::add(&counters.failed, 1);
            tracing::warn!(workload = %job.workload, key = %key, "copy failed: {reason}");
            if report.failures.len() < MAX_REPORTED {
                report.failures.push((key.clone(), reason.clone()));
            }
            writer.send(ObjectUpdate::Failed {
                workload: job.workload.clone(),
                key,
                error: reason,
            });
        }
    }
    0
}

/// An error and its causes, each once: `a: b: c` (a cause already in its parent's
/// message is not repeated).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
