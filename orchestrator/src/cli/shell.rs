//! `relocate completions SHELL` and `relocate man`: the shell's tab completion and the
//! manual page, both generated from the same clap definition as the parser, so they
//! never drift from the commands they describe.

use std::io::Write;

use clap::CommandFactory;

use super::Cli;
use crate::exit;

/// `relocate completions` arguments.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell, e.g. `bash` (then `relocate completions bash > /etc/bash_completion.d/relocate`).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the completion script for a shell on stdout.
pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "relocate", &mut out);
    write_stdout(&out)
}

/// Print the manual page (roff) on stdout: `relocate man | man -l -`.
pub(crate) fn man() -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(exit::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::BROKEN_PIPE),
        Err(e) => Err(e.into()),
    }
}
