//! The Job controller proper: start pods up to `parallelism`, judge each pod's ending by
//! the `podFailurePolicy` and `backoffLimitPerIndex`, and write the Job's status.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::mpsc;

use connectors::kube::workers::format_indexes;
use serde_json::{Value, json};

use super::{Jobs, lock};

/// What became of one pod.
pub(super) struct Outcome {
    pub(super) index: u32,
    pub(super) exit_code: Option<i32>,
    pub(super) disrupted: bool,
}

/// The Job's counters as the controller keeps them.
#[derive(Default)]
struct Progress {
    completed: BTreeSet<u32>,
    failed: BTreeSet<u32>,
    failures: BTreeMap<u32, i64>,
    active: i64,
    failed_pods: i64,
    job_failed: Option<(String, String)>,
}

impl Jobs {
    /// The controller loop of one Job: start pods up to `parallelism`, judge each ending.
    pub(super) fn run(self, key: (String, String)) {
        let Some(job) = lock(&self.state).jobs.get(&key).cloned() else {
            return;
        };
        let completions = job["spec"]["completions"].as_u64().unwrap_or(1) as u32;
        let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1).max(0);
        let per_index = job["spec"]["backoffLimitPerIndex"]
            .as_i64()
            .or_else(|| job["spec"]["backoffLimit"].as_i64())
            .unwrap_or(6);
        let mut pending: VecDeque<u32> = (0..completions).collect();
        let mut progress = Progress::default();
        let (tx, rx) = mpsc::channel::<Outcome>();
        loop {
            while progress.active < parallelism
                && progress.job_failed.is_none()
                && !lock(&self.state).stopped
            {
                let Some(index) = pending.pop_front() else {
                    break;
                };
                progress.active += 1;
                if !self.start_pod(&key, &job, index, tx.clone()) {
                    // Refused by the API server: no pod, and (as the real controller
                    // backs off for long) no retry here.
                    progress.active -= 1;
                }
            }
            self.write_status(&key, &progress, completions);
            let stopped = lock(&self.state).stopped;
            if progress.active == 0
                && (pending.is_empty() || progress.job_failed.is_some() || stopped)
            {
                return;
            }
            let Ok(outcome) = rx.recv() else { return };
            progress.active -= 1;
            match outcome.exit_code {
                Some(0) => {
                    progress.completed.insert(outcome.index);
                }
                code => match verdict(&job, code, outcome.disrupted) {
                    Some("Ignore") => pending.push_back(outcome.index),
                    action => {
                        progress.failed_pods += 1;
                        let count = progress.failures.entry(outcome.index).or_default();
                        *count += 1;
                        match (action, *count > per_index) {
                            (Some("FailIndex"), _) | (_, true) => {
                                progress.failed.insert(outcome.index);
                            }
                            (Some("FailJob"), _) => {
                                progress.job_failed = Some((
                                    "PodFailurePolicy".into(),
                                    format!(
                                        "Container worker for pod index {} failed with exit code {} matching FailJob rule",
                                        outcome.index,
                                        code.unwrap_or(-1)
                                    ),
                                ));
                                self.kill_all(&key);
                            }
                            _ => pending.push_back(outcome.index),
                        }
                    }
                },
            }
        }
    }

    fn kill_all(&self, key: &(String, String)) {
        let state = lock(&self.state);
        for ((ns, job, _), running) in &state.running {
            if (ns, job) == (&key.0, &key.1) {
                let _ = running.child.lock().map(|mut c| c.kill());
            }
        }
    }

    fn write_status(&self, key: &(String, String), progress: &Progress, completions: u32) {
        let mut state = lock(&self.state);
        let Some(job) = state.jobs.get_mut(key) else {
            return;
        };
        let status = &mut job["status"];
        status["active"] = json!(progress.active);
        status["succeeded"] = json!(progress.completed.len());
        status["failed"] = json!(progress.failed_pods);
        status["completedIndexes"] = json!(format_indexes(&progress.completed));
        if !progress.failed.is_empty() {
            status["failedIndexes"] = json!(format_indexes(&progress.failed));
        }
        let all_done = progress.completed.len() + progress.failed.len() == completions as usize;
        let failed = match &progress.job_failed {
            Some(why) => Some(why.clone()),
            None if all_done && !progress.failed.is_empty() => {
                Some(("FailedIndexes".into(), "Job has failed indexes".into()))
            }
            None => None,
        };
        let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": "2026-11-30T10:05:00Z"});
        if progress.active == 0 {
            if let Some((reason, message)) = failed {
                status["conditions"] = json!([
                    condition("FailureTarget", &reason, &message),
                    condition("Failed", &reason, &message)
                ]);
            } else if all_done {
                status["conditions"] = json!([
                    condition(
                        "SuccessCriteriaMet",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods"
                    ),
                    condition(
                        "Complete",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods"
                    )
                ]);
                status["completionTime"] = json!("2026-11-30T10:05:00Z");
            }
        }
    }
}

/// The action of the first `podFailurePolicy` rule matching this ending, if any.
fn verdict(job: &Value, exit_code: Option<i32>, disrupted: bool) -> Option<&'static str> {
    let rules = job["spec"]["podFailurePolicy"]["rules"].as_array()?;
    rules.iter().find_map(|rule| {
        let by_code = rule.get("onExitCodes").is_some_and(|on| {
            let listed = on["values"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v.as_i64() == exit_code.map(i64::from));
            match on["operator"].as_str() {
                Some("In") => listed,
                Some("NotIn") => exit_code.is_some() && !listed,
                _ => false,
            }
        });
        let by_condition = rule["onPodConditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                disrupted
                    && c["type"] == "DisruptionTarget"
                    && c["status"].as_str().unwrap_or("True") == "True"
            });
        (by_code || by_condition).then(|| match rule["action"].as_str() {
            Some("FailIndex") => "FailIndex",
            Some("FailJob") => "FailJob",
            Some("Ignore") => "Ignore",
            _ => "Count",
        })
    })
}
