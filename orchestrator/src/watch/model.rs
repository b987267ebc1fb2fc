//! What `relocate watch` shows, read from the state (never written): the stages and
//! their steps from the database, the run's live view, whether a run holds the state,
//! and the rate from two samples of the live counters.

use std::time::Instant;

use crate::state::{Db, RunLock, StageStatus, StateDir};
use crate::transfer::counters::Snapshot;

use super::live::{self, Live};

/// One stage on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageLine {
    /// Name.
    pub name: String,
    /// `done`, `running`, `awaiting sign-off`, `failed`, `rejected`, `pending`, …
    pub status: String,
    /// Attempt.
    pub attempt: Option<u32>,
}

/// Everything on screen.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The plan's name.
    pub plan: String,
    /// Who holds the state (`None`: no run is going).
    pub holder: Option<String>,
    /// Stages.
    pub stages: Vec<StageLine>,
    /// The live view, when a run wrote one.
    pub live: Option<Live>,
    /// Bytes per second over the last samples (history, oldest first).
    pub rates: Vec<u64>,
}

/// Reads the model, keeping the previous sample to compute the rate.
#[derive(Debug, Default)]
pub struct Sampler {
    last: Option<(Instant, u64)>,
    rates: Vec<u64>,
}

/// How many rate samples the sparkline shows.
const HISTORY: usize = 60;

impl Sampler {
    /// Read the state now.
    pub fn read(
        &mut self,
        plan: &plans::ValidatedPlan,
        state: &StateDir,
    ) -> Result<Model, crate::state::StateError> {
        let holder = RunLock::holder(&state.lock_path());
        let mut stages = Vec::new();
        if state.db_path().exists() {
            let db = Db::open_read_only(&state.db_path())?;
            for (i, stage) in plan.plan().stages.iter().enumerate() {
                let rec = db.stage(i)?;
                let status = match rec.as_ref().map(|r| r.status) {
                    None => "pending".to_owned(),
                    Some(StageStatus::Running) if holder.is_none() => "interrupted".to_owned(),
                    Some(StageStatus::AwaitingSignoff) if holder.is_none() => {
                        "interrupted at its gate".to_owned()
                    }
                    Some(StageStatus::AwaitingSignoff) => "awaiting sign-off".to_owned(),
                    Some(s) => s.as_str().to_owned(),
                };
                stages.push(StageLine {
                    name: stage.name.clone(),
                    status,
                    attempt: rec.map(|r| r.attempt),
                });
            }
        } else {
            stages = plan
                .plan()
                .stages
                .iter()
                .map(|s| StageLine {
                    name: s.name.clone(),
                    status: "pending".into(),
                    attempt: None,
                })
                .collect();
        }
        let live = live::present(live::read(&live::path_in(state.root())), holder.as_deref());
        if let Some(c) = live
            .as_ref()
            .and_then(|l| l.step.as_ref())
            .and_then(|s| s.counters)
        {
            self.sample(&c);
        }
        Ok(Model {
            plan: plan.name().to_owned(),
            holder,
            stages,
            live,
            rates: self.rates.clone(),
        })
    }

    fn sample(&mut self, c: &Snapshot) {
        let now = Instant::now();
        let moved = c.transferred_bytes;
        if let Some((at, before)) = self.last {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                let rate = (moved.saturating_sub(before) as f64 / secs) as u64;
                if self.rates.len() == HISTORY {
                    self.rates.remove(0);
                }
                self.rates.push(rate);
            }
        }
        self.last = Some((now, moved));
    }
}
