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
    /// Write a self-contained HTML transparency report of a record, built from what
    /// verifying it established (a record that fails a check gives a report that says
    /// so first, in red). Exits 7 when the record does not verify.
    Report(ReportArgs),
}

/// `relocate record report` arguments.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The record file (`*.intoto.jsonl`, its manifests beside it).
    pub record: PathBuf,
    /// The reviewed plan (pins the approver keys and, with `operator.publicKey`, the
    /// operator key).
    #[arg(long, value_name = "PLAN")]
    pub plan: PathBuf,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Pin the operator key (`ed25519:…` or a file) when the plan does not.
    #[arg(long, value_name = "KEY|FILE")]
    pub operator_key: Option<String>,
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
        RecordCommand::Report(args) => report(args),
    }
}

fn report(args: &ReportArgs) -> anyhow::Result<u8> {
    use relocate_verifier::{Bundle, Report};
    let plan = load_plan(&args.plan)?;
    let operator = args
        .operator_key
        .as_deref()
        .map(super::operator_key_arg)
        .transpose()?;
    let bundle = Bundle::read(&args.record)
        .with_context(|| format!("reading the record {}", args.record.display()))?;
    let mut verdict = Report::quiet();
    let reviewed = crate::audit::export::reviewed_plan(&plan);
    let outcome =
        relocate_verifier::verify_record(&bundle, Some(&reviewed), operator, &mut verdict)
            .context("the plan's operator.publicKey")?;
    let view = crate::audit::transparency::build(&args.record, &plan, &verdict, &outcome);
    let html = crate::audit::transparency::render(&view);
    std::fs::write(&args.out, html).with_context(|| format!("writing {}", args.out.display()))?;
    outln!(
        "{} report written to {}: {}",
        if view.verified {
            "transparency"
        } else {
            "FAILED-VERIFICATION"
        },
        args.out.display(),
        verdict.summary()
    );
    Ok(if view.verified {
        exit::SUCCESS
    } else {
        exit::VERIFY_FAILED
    })
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
