//! The `relocate` binary: parse the command line, run the command, map the outcome to
//! an exit code (see [`orchestrator::exit`]). All the work is in the library.

use std::process::ExitCode;

use clap::Parser;
use orchestrator::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relocate: cannot start the async runtime: {e}");
            return ExitCode::from(orchestrator::exit::ERROR);
        }
    };
    let code = runtime.block_on(cli::dispatch(cli));
    ExitCode::from(code)
}
