//! The command line: raw arguments (clap) in, a command run, an exit code out.
//!
//! Each subcommand lives in its own module and returns `anyhow::Result<u8>`; errors are
//! printed with their whole cause chain and mapped to an exit code by what they mean
//! (see [`crate::exit`]).

mod approve;
mod keys;
pub(crate) mod output;
mod plan;
mod record;
mod run;
mod secret_files;
mod status;
mod verify;
mod volume;
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
#[command(name = "relocate", version, about, long_about = None)]
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
    /// Show where a move stands (works while a run is going).
    Status(status::StatusArgs),
    /// Manage approver keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Sign an approval (or rejection) of a stage's evidence: the approver's tool.
    Approve(approve::ApproveArgs),
    /// Undo a stage's Kubernetes cutover: restore the source first (best effort), then stop the target.
    Rollback(run::RollbackArgs),
    /// Export the move's tamper-evident record (evidence and approvals) for auditors.
    #[command(subcommand)]
    Record(record::RecordCommand),
    /// Run one shard of a sharded workload's work order (the worker image's
    /// entrypoint; `relocate run` starts these itself).
    Worker(worker::WorkerArgs),
    /// Move one PersistentVolumeClaim's files through the staging store (the mover
    /// pods' entrypoint; `relocate run` starts these itself).
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
    /// State directory (default `.relocate/<plan name>/`).
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
        Command::Keys(KeysCommand::Generate { out }) => keys::generate(&out),
        Command::Approve(args) => approve::approve(&args),
        Command::Rollback(args) => run::rollback(args).await,
        Command::Record(command) => record::record(&command),
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

/// Print an error with its cause chain, one cause per line.
pub fn report(e: &anyhow::Error) {
    let mut text = format!("relocate: error: {e}");
    for cause in e.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{text}");
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
