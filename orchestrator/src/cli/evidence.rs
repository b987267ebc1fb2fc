//! `relocate evidence show FILE`: a stage's evidence made readable for the auditor —
//! plan, stage, attempt, per workload the counts, bytes and Merkle root or the applied
//! Kubernetes manifests' digests and each persistent volume's claim, counts and
//! Merkle root, every step and its outcome (a sharded step's shards),
//! the evidence it chains to and the operator key that signed it — with the one
//! paragraph of what approving it means. The operator's signature is checked when a
//! key is pinned (`--plan` with `operator.publicKey`, or `--operator-key`); without a
//! pin the output says plainly that the author is unchecked.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use connectors::signoff::keys::PublicKey;
use connectors::signoff::{Envelope, check_evidence};

use crate::cli::output::outln;
use crate::engine::guide;
use crate::exit;

/// `relocate evidence …`
#[derive(Debug, clap::Subcommand)]
pub enum EvidenceCommand {
    /// Print a stage's evidence in words (what an approver signs).
    Show(ShowArgs),
}

/// `relocate evidence show` arguments.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The evidence envelope (`<state>/evidence/NN-<stage>.attempt-N.intoto.json`).
    pub file: PathBuf,
    /// Check the operator's signature against the plan's `operator.publicKey`.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Check the operator's signature against this key (`ed25519:…` or a `.pub` file).
    #[arg(long, value_name = "KEY|FILE")]
    pub operator_key: Option<String>,
    /// Print the signed statement as JSON instead.
    #[arg(long)]
    pub json: bool,
}

/// Largest evidence read: real evidence is a few KiB.
const MAX_EVIDENCE: u64 = 16 << 20;

/// Run an `evidence` subcommand.
pub(crate) fn evidence(command: &EvidenceCommand) -> anyhow::Result<u8> {
    match command {
        EvidenceCommand::Show(args) => show(args),
    }
}

fn show(args: &ShowArgs) -> anyhow::Result<u8> {
    let mut raw = Vec::new();
    std::fs::File::open(&args.file)
        .and_then(|f| f.take(MAX_EVIDENCE + 1).read_to_end(&mut raw))
        .with_context(|| format!("reading evidence {}", args.file.display()))?;
    if raw.len() as u64 > MAX_EVIDENCE {
        anyhow::bail!("{} is larger than any evidence", args.file.display());
    }
    let envelope = Envelope::from_json(&raw)
        .with_context(|| format!("{} is not a DSSE envelope", args.file.display()))?;
    let pin = pin(args)?;
    let (statement, predicate) = match check_evidence(&envelope, pin.as_ref()) {
        Ok(checked) => checked,
        Err(refused) => {
            eprintln!("relocate: evidence: {refused}");
            return Ok(exit::SIGNOFF);
        }
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&statement)?);
        return Ok(exit::SUCCESS);
    }
    outln!("{}", guide::render(&predicate, Some(&envelope)).trim_end());
    match &pin {
        Some(k) => outln!(
            "signature checked: signed by pinned operator key {}",
            k.key_id()
        ),
        None => outln!(
            "signature NOT checked: no operator key pinned (pass --plan PLAN or --operator-key KEY)"
        ),
    }
    outln!("\nwhat approving means:\n  {}", guide::attests(&predicate));
    Ok(exit::SUCCESS)
}

fn pin(args: &ShowArgs) -> anyhow::Result<Option<PublicKey>> {
    if let Some(text) = &args.operator_key {
        return super::operator_key_arg(text).map(Some);
    }
    let Some(path) = &args.plan else {
        return Ok(None);
    };
    let plan = super::load_plan(path)?;
    plan.plan()
        .operator
        .as_ref()
        .map(|o| PublicKey::parse(&o.public_key))
        .transpose()
        .context("the plan's operator.publicKey")
}
