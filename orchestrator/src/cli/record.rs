//! `relocate record export PLAN --out FILE`: write the move's record as a
//! self-contained in-toto bundle plus its manifests (format: [`crate::audit`]).

use std::path::PathBuf;

use anyhow::Context;

use super::{StateArgs, load_plan};
use crate::audit::export_record;
use crate::cli::output::outln;
use crate::exit;

/// `relocate record …`
#[derive(Debug, clap::Subcommand)]
pub enum RecordCommand {
    /// Write the record (evidence and approvals, in order, with the keys and plan digest
    /// needed to check it) as `*.intoto.jsonl`, and the manifests to `FILE.manifests/`.
    Export(ExportArgs),
}

/// `relocate record export` arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The record file to write, e.g. `move.intoto.jsonl`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// State directory.
    #[command(flatten)]
    pub state: StateArgs,
}

/// Run a `record` subcommand.
pub(crate) fn record(command: &RecordCommand) -> anyhow::Result<u8> {
    match command {
        RecordCommand::Export(args) => export(args),
    }
}

fn export(args: &ExportArgs) -> anyhow::Result<u8> {
    let plan = load_plan(&args.plan)?;
    let state = super::state_dir(&args.state, &plan);
    let summary = export_record(&plan, &state, &args.out)
        .with_context(|| format!("exporting the record of plan `{}`", plan.name()))?;
    outln!(
        "record of plan `{}` written to {}: header + {} entries; {} manifests in {}",
        plan.name(),
        summary.path.display(),
        summary.entries,
        summary.manifests,
        summary.manifests_dir.display()
    );
    Ok(exit::SUCCESS)
}
