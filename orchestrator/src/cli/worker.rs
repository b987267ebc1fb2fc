//! `relocate worker`: the worker image's entrypoint (and the local executor's child).
//! Exit codes: 0 done; 4 the range is done with failed objects (or 7, failed
//! verification); 3 the order is invalid (both permanent: the Job does not retry
//! them); 1 an operational error (retried); 130 interrupted (checkpoint saved).

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::scaleout::ScaleError;
use crate::scaleout::worker::{WorkerOutcome, open_state_store, run_worker};

/// `relocate worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The work order's path in the state store.
    #[arg(long)]
    pub order: String,
    /// This worker's shard (a Kubernetes Indexed Job sets `JOB_COMPLETION_INDEX`).
    #[arg(long, env = "JOB_COMPLETION_INDEX")]
    pub index: u32,
    /// The state store, as its plan entry in JSON (`{"region":…,"url":…,"options":{…}}`,
    /// secrets as `${env:…}`/`${file:…}` references).
    #[arg(long, env = "RELOCATE_STATE_STORE", hide_env_values = true)]
    pub state_store: String,
    /// Stop (after a checkpoint) when the process that started this one exits: a
    /// local worker never outlives its coordinator.
    #[arg(long)]
    pub exit_with_parent: bool,
}

/// Run one shard.
pub async fn worker(args: &WorkerArgs) -> anyhow::Result<u8> {
    let entry: plans::Store = serde_json::from_str(&args.state_store)
        .context("--state-store / RELOCATE_STATE_STORE is not a store entry in JSON")?;
    let state = open_state_store(&entry)?;
    let cancel = CancellationToken::new();
    stop_on_signals(cancel.clone());
    if args.exit_with_parent {
        stop_with_parent(cancel.clone());
    }
    match run_worker(&state, &args.order, args.index, &cancel).await {
        Ok(WorkerOutcome::Done) => Ok(exit::SUCCESS),
        Ok(WorkerOutcome::Failed) => Ok(exit::STEP_FAILED),
        Ok(WorkerOutcome::Interrupted) => Ok(exit::INTERRUPTED),
        Err(e @ ScaleError::Order { .. }) => {
            eprintln!("relocate worker: {}", state.redact(&format!("{e:#}")));
            Ok(exit::INVALID_PLAN)
        }
        Err(e) => {
            // Redacted: a store's error may echo what it was sent.
            eprintln!("relocate worker: {}", state.redact(&error_chain(&e)));
            Ok(exit::ERROR)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

fn stop_on_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        cancel.cancel();
    });
}

fn stop_with_parent(cancel: CancellationToken) {
    let parent = std::os::unix::process::parent_id();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                tracing::warn!("the coordinator exited: stopping after a checkpoint");
                cancel.cancel();
                return;
            }
        }
    });
}
