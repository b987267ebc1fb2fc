//! Stage and step records: the intent journal of the run.
//!
//! A step row is written `started` before the step's effect and `succeeded` or
//! `failed` after it; a stage row moves `running → awaiting-signoff → completed`
//! (or `failed` / `rejected`). Every transition is one committed statement, so a crash
//! at any moment leaves a record the rerun can resume from.

use rusqlite::{OptionalExtension, params};

use super::db::{blocking, now};
use super::{Db, StateError};

/// Where a stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageStatus {
    /// Steps are running (or were, when the run stopped).
    Running,
    /// Evidence written; waiting for approvals.
    AwaitingSignoff,
    /// All steps succeeded and the gate (if any) passed.
    Completed,
    /// A step failed.
    Failed,
    /// An approver rejected the stage's evidence.
    Rejected,
}

impl StageStatus {
    /// Name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Running => "running",
            StageStatus::AwaitingSignoff => "awaiting-signoff",
            StageStatus::Completed => "completed",
            StageStatus::Failed => "failed",
            StageStatus::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<Self, StateError> {
        Ok(match s {
            "running" => StageStatus::Running,
            "awaiting-signoff" => StageStatus::AwaitingSignoff,
            "completed" => StageStatus::Completed,
            "failed" => StageStatus::Failed,
            "rejected" => StageStatus::Rejected,
            other => {
                return Err(StateError::Corrupt {
                    what: "stage status",
                    detail: other.to_owned(),
                });
            }
        })
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Intent written; the effect may or may not have happened.
    Started,
    /// Done.
    Succeeded,
    /// Failed (error kept).
    Failed,
}

impl StepStatus {
    /// Name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Started => "started",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StateError> {
        Ok(match s {
            "started" => StepStatus::Started,
            "succeeded" => StepStatus::Succeeded,
            "failed" => StepStatus::Failed,
            other => {
                return Err(StateError::Corrupt {
                    what: "step status",
                    detail: other.to_owned(),
                });
            }
        })
    }
}

/// A stage's row.
#[derive(Debug, Clone)]
pub struct StageRecord {
    /// Position in the plan.
    pub index: usize,
    /// Name.
    pub name: String,
    /// Attempt number, from 1; a rejected or failed stage run again is a new attempt.
    pub attempt: u32,
    /// Where it stands.
    pub status: StageStatus,
    /// Digest of this attempt's evidence, once written.
    pub evidence_digest: Option<String>,
    /// Path of this attempt's evidence file, once written.
    pub evidence_path: Option<String>,
    /// Start time.
    pub started_at: Option<String>,
    /// End time.
    pub finished_at: Option<String>,
    /// Why it failed or was rejected.
    pub detail: Option<String>,
}

/// A stage attempt's evidence, as [`Db::record_stage_evidence`] journals it.
#[derive(Debug, Clone, Copy)]
pub struct NewEvidence<'a> {
    /// The stage's name.
    pub stage: &'a str,
    /// The attempt it attests.
    pub attempt: u32,
    /// The evidence digest.
    pub digest: &'a str,
    /// The DSSE envelope as JSON.
    pub envelope: &'a str,
    /// Where the evidence file was written.
    pub path: &'a str,
}

/// A step's row.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Position in the stage.
    pub step_index: usize,
    /// The stage attempt it ran in.
    pub attempt: u32,
    /// Step kind.
    pub kind: String,
    /// Workload, if any.
    pub workload: Option<String>,
    /// Where it stands.
    pub status: StepStatus,
    /// Start time.
    pub started_at: String,
    /// End time.
    pub finished_at: Option<String>,
    /// JSON summary (counts, bytes).
    pub summary: Option<String>,
    /// Error, when failed.
    pub error: Option<String>,
}

impl Db {
    /// A stage's row.
    pub fn stage(&self, index: usize) -> Result<Option<StageRecord>, StateError> {
        blocking(|| {
            let conn = self.conn();
            let row = conn
            .query_row(
                "SELECT stage_index, name, attempt, status, evidence_digest, evidence_path, started_at, finished_at, detail
                 FROM stages WHERE stage_index = ?1",
                params![index as i64],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()?;
            row.map(
                |(
                    i,
                    name,
                    attempt,
                    status,
                    evidence_digest,
                    evidence_path,
                    started_at,
                    finished_at,
                    detail,
                )| {
                    Ok(StageRecord {
                        index: i as usize,
                        name,
                        attempt: attempt as u32,
                        status: StageStatus::parse(&status)?,
                        evidence_digest,
                        evidence_path,
                        started_at,
                        finished_at,
                        detail,
                    })
                },
            )
            .transpose()
        })
    }

    /// Begin (or re-begin) a stage attempt.
    ///
    /// Re-beginning the same attempt keeps its evidence, and an attempt whose evidence
    /// is written stays `awaiting-signoff`: its steps are done, and a resumed gate wait
    /// must ask for approvals of that same evidence (never write a second one).
    pub fn start_stage(&self, index: usize, name: &str, attempt: u32) -> Result<(), StateError> {
        blocking(|| {
            self.conn().execute(
                "INSERT INTO stages (stage_index, name, attempt, status, started_at)
             VALUES (?1, ?2, ?3, 'running', ?4)
             ON CONFLICT (stage_index) DO UPDATE SET name = ?2, attempt = ?3,
               status = CASE WHEN attempt = ?3 AND evidence_digest IS NOT NULL
                             THEN 'awaiting-signoff' ELSE 'running' END,
               evidence_digest = CASE WHEN attempt = ?3 THEN evidence_digest ELSE NULL END,
               evidence_path = CASE WHEN attempt = ?3 THEN evidence_path ELSE NULL END,
               finished_at = NULL, detail = NULL",
                params![index as i64, name, attempt as i64, now()],
            )?;
            Ok(())
        })
    }

    /// Append a stage attempt's evidence to the record and move the stage to awaiting
    /// sign-off, in one transaction: a crash leaves both or neither, so a resumed run
    /// never signs a second evidence for the same attempt.
    pub fn record_stage_evidence(
        &self,
        index: usize,
        evidence: &NewEvidence<'_>,
    ) -> Result<(), StateError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO record (kind, stage, attempt, digest, envelope, at)
             VALUES ('evidence', ?1, ?2, ?3, ?4, ?5)",
                params![
                    evidence.stage,
                    evidence.attempt as i64,
                    evidence.digest,
                    evidence.envelope,
                    now()
                ],
            )?;
            tx.execute(
            "UPDATE stages SET status = 'awaiting-signoff', evidence_digest = ?2, evidence_path = ?3 WHERE stage_index = ?1",
            params![index as i64, evidence.digest, evidence.path],
        )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Close a stage with a final status.
    pub fn finish_stage(
        &self,
        index: usize,
        status: StageStatus,
        detail: Option<&str>,
    ) -> Result<(), StateError> {
        blocking(|| {
            self.conn().execute(
            "UPDATE stages SET status = ?2, finished_at = ?3, detail = ?4 WHERE stage_index = ?1",
            params![index as i64, status.as_str(), now(), detail],
        )?;
            Ok(())
        })
    }

    /// A step's row.
    pub fn step(&self, stage: usize, step: usize) -> Result<Option<StepRecord>, StateError> {
        blocking(|| {
            let conn = self.conn();
            let row = conn
            .query_row(
                "SELECT step_index, attempt, kind, workload, status, started_at, finished_at, summary, error
                 FROM steps WHERE stage_index = ?1 AND step_index = ?2",
                params![stage as i64, step as i64],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get(3)?,
                        r.get::<_, String>(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()?;
            row.map(
                |(
                    step_index,
                    attempt,
                    kind,
                    workload,
                    status,
                    started_at,
                    finished_at,
                    summary,
                    error,
                )| {
                    Ok(StepRecord {
                        step_index: step_index as usize,
                        attempt: attempt as u32,
                        kind,
                        workload,
                        status: StepStatus::parse(&status)?,
                        started_at,
                        finished_at,
                        summary,
                        error,
                    })
                },
            )
            .transpose()
        })
    }

    /// Write a step's intent (`started`) before its effect.
    pub fn start_step(
        &self,
        stage: usize,
        step: usize,
        attempt: u32,
        kind: &str,
        workload: Option<&str>,
    ) -> Result<(), StateError> {
        blocking(|| {
            self.conn().execute(
            "INSERT OR REPLACE INTO steps (stage_index, step_index, attempt, kind, workload, status, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'started', ?6)",
            params![stage as i64, step as i64, attempt as i64, kind, workload, now()],
        )?;
            Ok(())
        })
    }

    /// Write a step's outcome after its effect.
    pub fn finish_step(
        &self,
        stage: usize,
        step: usize,
        status: StepStatus,
        summary: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        blocking(|| {
            self.conn().execute(
            "UPDATE steps SET status = ?3, finished_at = ?4, summary = ?5, error = ?6 WHERE stage_index = ?1 AND step_index = ?2",
            params![stage as i64, step as i64, status.as_str(), now(), summary, error],
        )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(attempt: u32) -> NewEvidence<'static> {
        NewEvidence {
            stage: "seed",
            attempt,
            digest: "sha256:1",
            envelope: "{}",
            path: "e1",
        }
    }

    #[test]
    fn a_new_attempt_forgets_the_old_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        db.start_stage(0, "seed", 1).unwrap();
        db.record_stage_evidence(0, &evidence(1)).unwrap();
        db.start_stage(0, "seed", 1).unwrap();
        let s = db.stage(0).unwrap().unwrap();
        assert_eq!(
            (s.status, s.evidence_digest.as_deref()),
            (StageStatus::AwaitingSignoff, Some("sha256:1")),
            "a resumed attempt keeps its evidence and still awaits sign-off"
        );
        db.finish_stage(0, StageStatus::Rejected, Some("no"))
            .unwrap();
        db.start_stage(0, "seed", 2).unwrap();
        let s = db.stage(0).unwrap().unwrap();
        assert_eq!(
            (s.attempt, s.status, s.evidence_digest),
            (2, StageStatus::Running, None)
        );
    }

    #[test]
    fn step_intent_then_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.db")).unwrap();
        db.start_step(0, 1, 1, "copy", Some("w")).unwrap();
        assert_eq!(db.step(0, 1).unwrap().unwrap().status, StepStatus::Started);
        db.finish_step(0, 1, StepStatus::Succeeded, Some("{}"), None)
            .unwrap();
        assert_eq!(
            db.step(0, 1).unwrap().unwrap().status,
            StepStatus::Succeeded
        );
    }
}
