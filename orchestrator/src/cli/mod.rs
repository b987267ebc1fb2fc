//! The command line: raw arguments (clap) in, a command run, an exit code out.
//!
//! Each subcommand lives in its own module and returns `anyhow::Result<u8>`; errors are
//! printed with their whole cause chain and mapped to an exit code by what they mean
//! (see [`crate::exit`]).

mod approve;
mod evidence;
mod keys;
pub(crate) mod output;
mod plan;
mod record;
mod run;
mod secret_files;
mod shell;
mod status;
mod verify;
mod volume;
mod watch;
mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::engine::EngineError;
use crate::exit;
use crate::progress::OutputMode;
use crate::state::StateError;

/// relocate: move object-store and Kubernetes workloads between regions, verified and
/// signed off stage by stage.
#[derive(Debug, Parser)]
#[command(
    name = "relocate",
    version,
    about = "Move object stores and Kubernetes workloads between regions, stage by stage: \
             every object verified at the target, every stage signed off by an independent auditor.",
    long_about = "Move object stores and Kubernetes workloads between regions, stage by stage: \
                  every object verified at the target, every stage signed off by an independent \
                  auditor.\n\n\
                  relocate runs a migration plan (YAML): stages of copy, verify, freeze, deploy \
                  and run steps that move object stores (S3, Azure Blob, GCS, local) and \
                  Kubernetes workloads from a source region to a target region. Every object is \
                  hashed while it streams and re-read at the target; each stage ends with signed \
                  evidence that the plan's approvers must sign before the next stage starts. The \
                  state directory (beside the plan, `.relocate/<name>/`) remembers everything, so \
                  an interrupted run resumes where it stopped, and the exported record can be \
                  verified by anyone.",
    after_help = "Examples:
  relocate plan validate move.yaml         check a plan, every problem with its line
  relocate plan show move.yaml             what each stage would do, and the pre-flight
  relocate run move.yaml                   run (or resume) the move
  relocate status move.yaml --watch        where it stands, redrawn every 2 s
  relocate evidence show EVIDENCE          what an approver is asked to sign
  relocate approve --key auditor.key --evidence EVIDENCE --plan move.yaml --out DROP
  relocate record export move.yaml --out move.intoto.jsonl
  relocate verify move.intoto.jsonl --plan move.yaml

Shell completion: relocate completions bash|zsh|fish; manual: relocate man | man -l -"
)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, explain or describe a plan without changing anything.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Run a plan's stages in order, resuming where a previous run stopped.
    Run(run::RunArgs),
    /// A full-screen live view of a move (stages, the step in progress, rate, ETA,
    /// failures, who is awaited at a gate); `q` quits. Reads the state only.
    Watch(watch::WatchArgs),
    /// Show where a move stands (works while a run is going).
    Status(status::StatusArgs),
    /// Manage approver keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Sign an approval (or rejection) of a stage's evidence: the approver's tool.
    Approve(approve::ApproveArgs),
    /// Undo a stage's Kubernetes cutover: restore the source first (best effort), then stop the target.
    Rollback(run::RollbackArgs),
    /// Read a stage's evidence in words: what an approver signs.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Export the move's tamper-evident record (evidence and approvals) for auditors.
    #[command(subcommand)]
    Record(record::RecordCommand),
    /// Print the shell completion script (bash, zsh, fish, …) on stdout.
    Completions(shell::CompletionsArgs),
    /// Print the manual page (roff) on stdout: `relocate man | man -l -`.
    Man,
    /// Run one shard of a sharded workload's work order (the worker image's
    /// entrypoint; `relocate run` starts these itself).
    Worker(worker::WorkerArgs),
    /// Move one PersistentVolumeClaim's files through the staging store (the mover
    /// pods' entrypoint; not yet started by `relocate run`: see the README, "Stateful workloads").
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Check an exported record on any machine: signatures, chain, thresholds; with
    /// `--target` the target's objects; `--object` one object's proof; `--digests` a store.
    Verify(verify::VerifyArgs),
}

/// `relocate plan …`
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Validate a plan; print every problem as `file:line:col: problem — fix`.
    Validate {
        /// The plan file.
        plan: PathBuf,
    },
    /// Explain a plan's stages and what each step would do (lists the stores; changes nothing).
    Show(plan::ShowArgs),
    /// Print the plan's JSON Schema.
    Schema,
}

/// `relocate keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub.
    Generate {
        /// Path stem of the files to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Options shared by the commands that read or write state.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// State directory (default `.relocate/<plan name>/` beside the plan file).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Output format of commands that report.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// `auto` (bars on a terminal, lines otherwise), `plain` or `json` (NDJSON).
    #[arg(long, value_enum, default_value = "auto")]
    pub output: OutputMode,
}

/// Set up `tracing` on stderr.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal: never in a pipe, a file or CI logs.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Run the command; print any error; return the exit code.
pub async fn dispatch(cli: Cli) -> u8 {
    let result = match cli.command {
        Command::Plan(PlanCommand::Validate { plan }) => plan::validate(&plan),
        Command::Plan(PlanCommand::Show(args)) => plan::show(&args).await,
        Command::Plan(PlanCommand::Schema) => plan::schema(),
        Command::Run(args) => run::run(args).await,
        Command::Status(args) => status::status(&args),
        Command::Watch(args) => watch::watch(&args),
        Command::Keys(KeysCommand::Generate { out }) => keys::generate(&out),
        Command::Approve(args) => approve::approve(&args),
        Command::Rollback(args) => run::rollback(args).await,
        Command::Record(command) => record::record(&command),
        Command::Evidence(command) => evidence::evidence(&command),
        Command::Completions(args) => shell::completions(&args),
        Command::Man => shell::man(),
        Command::Verify(args) => verify::verify(&args).await,
        Command::Worker(args) => worker::worker(&args).await,
        Command::Volume(command) => volume::volume(&command).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            exit_code(&e)
        }
    }
}

/// Print an error on one line with its causes (see [`one_line`]).
pub fn report(e: &anyhow::Error) {
    eprintln!("relocate: error: {}", one_line(e));
}

/// An error and its causes on one line, `what: why: deeper why`, leaving out a cause
/// whose text the message already holds (many errors print their source themselves).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    let mut previous = text.clone();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        // Already said, or the same thing said again at more length (`Error code 26:
        // file is not a database` under `file is not a database`).
        if !text.contains(&cause) && !cause.ends_with(&previous) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        previous = cause;
    }
    text
}

/// The exit code an error means.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(p) = cause.downcast_ref::<plans::PlanError>() {
            return match p {
                plans::PlanError::Invalid(_) => exit::INVALID_PLAN,
                _ => exit::ERROR,
            };
        }
        if let Some(s) = cause.downcast_ref::<StateError>()
            && matches!(s, StateError::Locked { .. })
        {
            return exit::LOCKED;
        }
        if let Some(engine) = cause.downcast_ref::<EngineError>() {
            return engine.exit_code();
        }
    }
    exit::ERROR
}

/// The plan's state directory (`--state-dir`, else beside the plan); a notice about an
/// old state in the current directory goes to stderr.
pub(crate) fn state_dir(args: &StateArgs, plan: &plans::ValidatedPlan) -> crate::state::StateDir {
    let (dir, notice) =
        crate::state::StateDir::locate(args.state_dir.as_deref(), plan.base_dir(), plan.name());
    if let Some(notice) = notice {
        eprintln!("relocate: notice: {notice}");
    }
    dir
}

/// Load and validate a plan, printing nothing (errors carry their positions).
pub(crate) fn load_plan(path: &std::path::Path) -> anyhow::Result<plans::ValidatedPlan> {
    Ok(plans::load(path)?)
}

/// Load and validate a plan that is about to be used, warning about its secret files.
pub(crate) fn load_plan_warning(path: &std::path::Path) -> anyhow::Result<plans::ValidatedPlan> {
    let plan = load_plan(path)?;
    secret_files::warn(&plan);
    Ok(plan)
}

/// An `--operator-key KEY|FILE` argument: the key itself (`ed25519:…`) or a file holding
/// it (`operator.pub`). One reading for every command that pins the operator key.
pub(crate) fn operator_key_arg(text: &str) -> anyhow::Result<relocate_verifier::PublicKey> {
    use anyhow::Context as _;
    let text = if text.trim_start().starts_with("ed25519:") {
        text.to_owned()
    } else {
        std::fs::read_to_string(text).with_context(|| format!("reading {text}"))?
    };
    relocate_verifier::PublicKey::parse(text.trim()).context("--operator-key")
}
