//! The run's live view, written beside its state for `relocate watch`: the step in
//! progress with its counters, the gate being waited at (who, and the command they
//! would run), the latest object problems. Rewritten once a second by a rename, so a
//! reader never sees half a file; the run never waits on it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::progress::{Event, EventSink};
use crate::transfer::Counters;
use crate::transfer::counters::Snapshot;

/// How many recent object problems the live view keeps.
const PROBLEMS: usize = 5;

/// What `live.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Live {
    /// The process writing it.
    pub pid: u32,
    /// When it was written (RFC 3339).
    pub updated_at: String,
    /// The step in progress: stage, position (from 1), kind, workload, what it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<LiveStep>,
    /// The gate being waited at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<LiveGate>,
    /// The latest object problems: (key, problem).
    #[serde(default)]
    pub problems: Vec<(String, String)>,
    /// The run ended.
    #[serde(default)]
    pub finished: bool,
}

/// The step in progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveStep {
    /// Stage.
    pub stage: String,
    /// Position in the stage, from 1.
    pub step: usize,
    /// Kind.
    pub kind: String,
    /// Workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// What it does.
    pub description: String,
    /// Its counters, for object steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<Snapshot>,
}

/// The gate being waited at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveGate {
    /// Stage.
    pub stage: String,
    /// Approvers awaited.
    pub awaiting: Vec<String>,
    /// Approvals needed.
    pub threshold: usize,
    /// The evidence file.
    pub evidence: String,
    /// What it attests.
    pub attests: String,
    /// How each awaited approver answers.
    pub asks: Vec<String>,
}

/// The live file of a state directory.
pub fn path_in(state_root: &Path) -> PathBuf {
    state_root.join("live.json")
}

/// Read a live file (`None` when there is none or it is unreadable).
pub fn read(path: &Path) -> Option<Live> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// What of a live view still holds, given the run lock's `holder` (as
/// [`crate::state::RunLock::holder`] names it): all of it when the holder wrote it;
/// without a run, or written by another process (a run killed with `kill -9` leaves
/// its last view behind), only its latest problems: its step, counters and gate
/// describe nothing that is going on.
pub fn present(live: Option<Live>, holder: Option<&str>) -> Option<Live> {
    let mut live = live?;
    let by_holder = holder.is_some_and(|h| {
        let words: Vec<&str> = h.split_whitespace().collect();
        let pid = live.pid.to_string();
        words.windows(2).any(|w| w[0] == "pid" && w[1] == pid)
    });
    if !by_holder {
        live.step = None;
        live.gate = None;
    }
    Some(live)
}

#[derive(Default)]
struct Shared {
    live: Live,
    counters: Option<Arc<Counters>>,
}

/// An event sink that keeps the live view and hands every event on.
pub struct LiveFile {
    inner: Arc<dyn EventSink>,
    shared: Arc<Mutex<Shared>>,
    path: PathBuf,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for LiveFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFile")
            .field("path", &self.path)
            .finish()
    }
}

impl LiveFile {
    /// Wrap `inner`, writing the live view to `path` once a second.
    pub fn new(path: PathBuf, inner: Arc<dyn EventSink>) -> Self {
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, p, halt) = (shared.clone(), path.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(std::sync::atomic::Ordering::Relaxed) {
                write(&p, &s);
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Self {
            inner,
            shared,
            path,
            stop,
        }
    }
}

impl LiveFile {
    /// The run ended: write the view one last time, saying so, and stop rewriting it.
    pub fn close(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        {
            let mut s = lock(&self.shared);
            s.live.finished = true;
            s.live.step = None;
            s.counters = None;
        }
        write(&self.path, &self.shared);
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Write the view by a rename; a failure only costs the watcher an update.
fn write(path: &Path, shared: &Mutex<Shared>) {
    let live = {
        let mut s = lock(shared);
        let snapshot = s.counters.as_ref().map(|c| c.snapshot());
        if let Some(step) = s.live.step.as_mut() {
            step.counters = snapshot;
        }
        s.live.pid = std::process::id();
        s.live.updated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        s.live.clone()
    };
    let Ok(bytes) = serde_json::to_vec(&live) else {
        return;
    };
    let aside = path.with_extension("json.new");
    if std::fs::write(&aside, bytes).is_ok() {
        let _ = std::fs::rename(&aside, path);
    }
}

impl EventSink for LiveFile {
    fn emit(&self, event: Event) {
        {
            let mut s = lock(&self.shared);
            match &event {
                Event::StepStarted {
                    stage,
                    step,
                    kind,
                    workload,
                    description,
                    counters,
                } => {
                    s.counters = counters.clone();
                    s.live.gate = None;
                    s.live.step = Some(LiveStep {
                        stage: stage.clone(),
                        step: *step,
                        kind: kind.clone(),
                        workload: workload.clone(),
                        description: description.clone(),
                        counters: None,
                    });
                }
                Event::StepFinished { .. } => {
                    s.counters = None;
                    s.live.step = None;
                }
                Event::ObjectProblem { key, problem, .. } => {
                    if s.live.problems.len() == PROBLEMS {
                        s.live.problems.remove(0);
                    }
                    s.live.problems.push((key.clone(), problem.clone()));
                }
                Event::GateWaiting {
                    stage,
                    awaiting,
                    threshold,
                    evidence,
                    attests,
                    asks,
                } => {
                    s.live.gate = Some(LiveGate {
                        stage: stage.clone(),
                        awaiting: awaiting.clone(),
                        threshold: *threshold,
                        evidence: evidence.clone(),
                        attests: attests.clone(),
                        asks: asks.clone(),
                    });
                }
                Event::ApprovalReceived { approver, .. } => {
                    if let Some(gate) = s.live.gate.as_mut() {
                        gate.awaiting.retain(|a| a != approver);
                    }
                }
                Event::StageFinished { .. } => {
                    s.live.gate = None;
                }
                _ => {}
            }
        }
        self.inner.emit(event);
    }

    fn finish(&self) {
        self.close();
        self.inner.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_left_by_a_killed_run_shows_no_step_gate_or_transfers_in_flight() {
        let live = Live {
            pid: 4242,
            step: Some(LiveStep {
                stage: "seed".into(),
                step: 1,
                kind: "copy".into(),
                counters: Some(Snapshot {
                    in_flight: 4,
                    ..Snapshot::default()
                }),
                ..LiveStep::default()
            }),
            gate: Some(LiveGate::default()),
            problems: vec![("k".into(), "copy-failed".into())],
            ..Live::default()
        };
        let kept = present(Some(live.clone()), Some("ops@host pid 4242 since now"));
        assert_eq!(kept.as_ref(), Some(&live));
        for holder in [
            None,
            Some("ops@host pid 77 since now"),
            Some("pid 42420 since"),
        ] {
            let stale = present(Some(live.clone()), holder).expect("problems kept");
            assert!(stale.step.is_none() && stale.gate.is_none(), "{holder:?}");
            assert_eq!(stale.problems, live.problems);
        }
    }
}
