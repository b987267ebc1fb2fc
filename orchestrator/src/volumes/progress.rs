//! How far a mover is, told while it works: a line on stderr at most every two
//! seconds (and one at the end), `{"volumeProgress":{"files":…,"bytes":…}}`, which
//! the coordinator reads from the mover pod's log ([`follow`]) and adds to the step's
//! live counters, so `watch`, `status` and `--output json` show a claim's pack,
//! restore or re-read as they show an object copy. stdout carries only the report.
//!
//! Counts are cumulative for the mover's run: files (regular files, and for a restore
//! those already in place) and their bytes.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A mover's progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Files done so far.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    volume_progress: Progress,
}

impl Progress {
    /// The progress a log line carries, if it is one.
    pub fn of_line(line: &str) -> Option<Progress> {
        let line = line.trim();
        if !line.starts_with('{') {
            return None;
        }
        serde_json::from_str::<Line>(line)
            .ok()
            .map(|l| l.volume_progress)
    }
}

/// Prints [`Progress`] lines as a mover works.
#[derive(Debug)]
pub(crate) struct Reporter {
    now: Progress,
    last: Instant,
    every: Duration,
}

impl Reporter {
    /// Start counting from `from` (a resumed pack's files so far).
    pub(crate) fn new(from: Progress) -> Self {
        // RELOCATE_VOLUME_PROGRESS_MS: tests ask for every file.
        let every = std::env::var("RELOCATE_VOLUME_PROGRESS_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(2), Duration::from_millis);
        Self {
            now: from,
            last: Instant::now(),
            every,
        }
    }

    /// One more file of `bytes`.
    pub(crate) fn file(&mut self, bytes: u64) {
        self.now.files += 1;
        self.now.bytes += bytes;
        if self.last.elapsed() >= self.every {
            self.print();
        }
    }

    /// The last line.
    pub(crate) fn finish(&mut self) {
        self.print();
    }

    fn print(&mut self) {
        self.last = Instant::now();
        if let Ok(text) = serde_json::to_string(&Line {
            volume_progress: self.now,
        }) {
            // A closed stderr must not fail the move.
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }
}

/// What the coordinator does with a claim's progress: `(claim's index in the order,
/// progress)`.
pub type OnProgress = Arc<dyn Fn(usize, Progress) + Send + Sync>;

/// Follow the log of every pod Job `job` runs (a retried mover is a new pod), handing
/// each progress line to `on` as claim `index`; returns once every pod of the Job has
/// ended and its log was read (a mover that finished before it was seen still gives
/// its last line).
pub async fn follow(
    client: kube::Client,
    namespace: String,
    job: String,
    index: usize,
    on: OnProgress,
) {
    use futures::StreamExt;
    let mut followed = std::collections::BTreeSet::new();
    loop {
        let pods = connectors::kube::workers::job_pods(client.clone(), &namespace, &job)
            .await
            .unwrap_or_default();
        let ended = |phase: &str| phase == "Succeeded" || phase == "Failed";
        for (_, pod, phase) in &pods {
            if phase == "Pending" || !followed.insert(pod.clone()) {
                continue;
            }
            let mut lines = std::pin::pin!(connectors::kube::workers::follow_pod_logs(
                client.clone(),
                &namespace,
                pod
            ));
            while let Some(Ok(line)) = lines.next().await {
                if let Some(p) = Progress::of_line(&line) {
                    on(index, p);
                }
            }
        }
        if !pods.is_empty()
            && pods
                .iter()
                .all(|(_, pod, phase)| ended(phase) && followed.contains(pod))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_round_trips_and_other_lines_are_not_progress() {
        let text = serde_json::to_string(&Line {
            volume_progress: Progress {
                files: 3,
                bytes: 300,
            },
        })
        .expect("json");
        assert_eq!(text, r#"{"volumeProgress":{"files":3,"bytes":300}}"#);
        assert_eq!(
            Progress::of_line(&text),
            Some(Progress {
                files: 3,
                bytes: 300
            })
        );
        for other in [
            "",
            "2026-11-30T10:00:00Z INFO volume packed",
            r#"{"claim":"data-db-0"}"#,
            r#"{"volumeProgress":{"files":-1,"bytes":0}}"#,
        ] {
            assert_eq!(Progress::of_line(other), None, "{other}");
        }
    }
}
