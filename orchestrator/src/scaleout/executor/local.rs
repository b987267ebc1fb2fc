//! Workers as child processes of the coordinator: the same binary, `relocate worker`,
//! for tests and for hosts without a cluster.
//!
//! A child reads its order from the state store like a pod would and prints its
//! progress on stdout. Ctrl-C reaches the children as SIGTERM (they checkpoint and
//! stop); a child that dies (`kill -9`) is started again and resumes from its last
//! checkpoint; a child whose coordinator dies stops by itself within half a second
//! (`--exit-with-parent`), long before a rerun has split and started a worker for
//! the same shard.

use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Ends, Launch, Observed, PERMANENT_EXIT_CODES, ShardEnd};
use crate::scaleout::ScaleError;

/// How long a worker may take to checkpoint and stop after SIGTERM.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Lines of a failed worker's stderr kept for the error message.
const STDERR_TAIL: usize = 8;

/// Run every shard of `launch` to its end.
pub async fn run(
    launch: &Launch,
    observed: &Observed,
    cancel: &CancellationToken,
) -> Result<Ends, ScaleError> {
    let exe = std::env::current_exe()
        .map_err(|e| ScaleError::Executor(format!("cannot find the relocate binary: {e}")))?;
    let slots = Arc::new(Semaphore::new(launch.parallelism.max(1) as usize));
    let mut tasks = JoinSet::new();
    for &index in &launch.shards {
        let (exe, launch, observed, cancel, slots) = (
            exe.clone(),
            launch.clone(),
            observed.clone(),
            cancel.clone(),
            slots.clone(),
        );
        tasks.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return (
                    index,
                    ShardEnd::Failed {
                        code: None,
                        detail: "executor closed".into(),
                    },
                );
            };
            let mut last = ShardEnd::Failed {
                code: None,
                detail: "never started".into(),
            };
            for attempt in 1..=launch.attempts.max(1) {
                if cancel.is_cancelled() {
                    return (index, ShardEnd::Interrupted);
                }
                last = run_one(&exe, &launch, index, &observed, &cancel).await;
                match &last {
                    ShardEnd::Failed { code, detail: why }
                        if !code.is_some_and(|c| PERMANENT_EXIT_CODES.contains(&c)) =>
                    {
                        tracing::warn!(
                            "shard {index}: worker run {attempt} of {} ended without a result ({why}); starting it again",
                            launch.attempts
                        );
                    }
                    _ => break,
                }
            }
            (index, last)
        });
    }
    let mut ends = Ends::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, end) =
            joined.map_err(|e| ScaleError::Executor(format!("a worker task stopped: {e}")))?;
        ends.insert(index, end);
    }
    Ok(ends)
}

async fn run_one(
    exe: &std::path::Path,
    launch: &Launch,
    index: u32,
    observed: &Observed,
    cancel: &CancellationToken,
) -> ShardEnd {
    let mut child = match Command::new(exe)
        .arg("worker")
        .arg("--order")
        .arg(&launch.order)
        .arg("--order-digest")
        .arg(&launch.order_digest)
        .arg("--index")
        .arg(index.to_string())
        .arg("--exit-with-parent")
        .env("RELOCATE_STATE_STORE", &launch.state_store)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return ShardEnd::Failed {
                code: None,
                detail: format!("cannot start a worker: {e}"),
            };
        }
    };
    let pid = child.id();
    let stdout = child.stdout.take().map(|out| {
        let observed = observed.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                observed.aggregate.take_line(&line, &observed.counters);
            }
        })
    });
    let stderr = child.stderr.take().map(|err| {
        tokio::spawn(async move {
            let mut tail = std::collections::VecDeque::new();
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!("shard {index}: {line}");
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Vec::from(tail).join("\n")
        })
    });
    let status = tokio::select! {
        s = child.wait() => s,
        () = cancel.cancelled() => {
            // SIGTERM: the worker checkpoints and stops.
            if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            // Objects in flight finish first; one that would take longer (a large
            // object under a bandwidth cap) is cut: its rerun copies it again.
            if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                tracing::warn!("shard {index}: the worker did not stop within {STOP_GRACE:?}; killing it");
                let _ = child.kill().await;
            }
            return ShardEnd::Interrupted;
        }
    };
    if let Some(task) = stdout {
        let _ = task.await;
    }
    let tail = match stderr {
        Some(task) => task.await.unwrap_or_default(),
        None => String::new(),
    };
    match status {
        Ok(s) if s.success() => ShardEnd::Finished,
        // A worker that finished its range with failed objects still wrote its result.
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            let how = match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "ended".to_owned(),
            };
            ShardEnd::Failed {
                code: s.code(),
                detail: if tail.is_empty() {
                    how
                } else {
                    format!("{how}: {tail}")
                },
            }
        }
        Err(e) => ShardEnd::Failed {
            code: None,
            detail: format!("waiting for the worker: {e}"),
        },
    }
}
