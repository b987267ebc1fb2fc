//! `relocate volume pack|restore|verify`: the mover pods' entrypoint (same image as
//! `relocate worker`). Exit codes: 0 done; 7 the target volume does not match what was
//! staged (or a staged file does not match its hash); 3 the order is invalid (both
//! permanent: the Job does not retry them); 1 an operational error (retried).

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::exit;
use crate::volumes::VolumeError;
use crate::volumes::mover::{MoverError, open_state, run_mover};
use crate::volumes::order::MoverTask;

/// `relocate volume …`
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Read a mounted source claim into the staging store (hashing every file).
    Pack(MoverArgs),
    /// Write the staged volume into a mounted target claim (re-hashing every file).
    Restore(MoverArgs),
    /// Re-read a mounted target claim and compare its root with the staged one.
    Verify(MoverArgs),
}

/// What every mover is told.
#[derive(Debug, Args)]
pub struct MoverArgs {
    /// The volume order's path in the state store.
    #[arg(long)]
    pub order: String,
    /// Which of the order's claims (a Kubernetes Indexed Job sets `JOB_COMPLETION_INDEX`).
    #[arg(long, env = "JOB_COMPLETION_INDEX")]
    pub index: u32,
    /// Where the claim is mounted.
    #[arg(long, env = "RELOCATE_VOLUME_PATH")]
    pub path: std::path::PathBuf,
    /// The state store, as its plan entry in JSON (secrets as `${env:…}`/`${file:…}`).
    #[arg(long, env = "RELOCATE_STATE_STORE", hide_env_values = true)]
    pub state_store: String,
    /// `sha256:<hex>` of the order's bytes, as the coordinator wrote them: an order
    /// changed since (by anyone who can write the state store) is refused.
    #[arg(long)]
    pub order_digest: Option<String>,
    /// The claim this mover is for: an order whose claim at `--index` differs is
    /// refused.
    #[arg(long)]
    pub claim: Option<String>,
    /// Where to write the termination message sealing the report (in a pod: the
    /// container's `terminationMessagePath`).
    #[arg(long, env = "RELOCATE_TERMINATION_LOG")]
    pub termination_log: Option<std::path::PathBuf>,
}

/// Run one mover.
pub async fn volume(command: &VolumeCommand) -> anyhow::Result<u8> {
    let (task, args) = match command {
        VolumeCommand::Pack(a) => (MoverTask::Pack, a),
        VolumeCommand::Restore(a) => (MoverTask::Restore, a),
        VolumeCommand::Verify(a) => (MoverTask::Verify, a),
    };
    let entry: plans::Store = serde_json::from_str(&args.state_store)
        .context("--state-store / RELOCATE_STATE_STORE is not a store entry in JSON")?;
    let state = open_state(&entry)?;
    let pins = crate::volumes::mover::Pins {
        order_digest: args.order_digest.clone(),
        claim: args.claim.clone(),
        termination_log: args.termination_log.clone(),
    };
    match run_mover(&state, &args.order, args.index, task, &args.path, &pins).await {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string(&report).context("encoding the mover's report")?
            );
            if let Some(path) = &args.termination_log {
                // In the log, so an operator can tell a pod of this version whose
                // message went missing from one of an older image (see the coordinator).
                eprintln!("termination message written to {}", path.display());
            }
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            // Redacted: a store's error may echo what it was sent.
            eprintln!(
                "relocate volume {}: {}",
                task.as_str(),
                state.redact(&chain(&e))
            );
            Ok(match &e {
                MoverError::Order { .. } => exit::INVALID_PLAN,
                MoverError::Mismatch { .. } => exit::VERIFY_FAILED,
                MoverError::Volume { source, .. }
                    if matches!(**source, VolumeError::Corrupt { .. }) =>
                {
                    exit::VERIFY_FAILED
                }
                _ => exit::ERROR,
            })
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
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
