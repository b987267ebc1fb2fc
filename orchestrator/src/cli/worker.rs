//! `relocate worker`: the worker image's entrypoint (and the local executor's child).
//! Exit codes: 0 done; 4 the range is done with objects that failed to copy or
//! verify; 3 the order is invalid (both permanent: the Job does not retry them); 1 an
//! operational error (retried); 130 interrupted (checkpoint saved).

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::scaleout::ScaleError;
use crate::scaleout::worker::{Assignment, WorkerOutcome, open_state_store, run_worker};

/// `relocate worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The work order's path in the state store.
    #[arg(long)]
    pub order: String,
    /// `sha256:<hex>` of the order's bytes: the worker refuses an order that does not
    /// hash to it (the coordinator puts it in the Job's arguments, out of reach of
    /// whoever can write the state store).
    #[arg(long, value_name = "sha256:HEX")]
    pub order_digest: String,
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
    let assignment = Assignment {
        order: args.order.clone(),
        order_digest: args.order_digest.clone(),
        index: args.index,
    };
    match run_worker(&state, &assignment, &cancel).await {
        Ok(WorkerOutcome::Done) => Ok(exit::SUCCESS),
        Ok(WorkerOutcome::Failed) => Ok(exit::STEP_FAILED),
        Ok(WorkerOutcome::Interrupted) => Ok(exit::INTERRUPTED),
        Err(e @ ScaleError::Order { .. }) => {
            eprintln!("relocate worker: {}", state.redact(&format!("{e:#}")));
            Ok(exit::INVALID_PLAN)
        }
        Err(e) => {
            // Redacted: a store's error may echo what it was sent.
            eprintln!(
                "relocate worker: {}",
                state.redact(&crate::transfer::copy::error_chain(&e))
            );
            Ok(exit::ERROR)
        }
    }
}

fn stop_on_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
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
