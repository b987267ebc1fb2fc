//! Printing a command's output on stdout when the reader may go away.
//!
//! `println!` panics when stdout is a closed pipe (`relocate status --json | head`).
//! [`outln!`] writes the same line; when the reader has gone it ends the process at
//! once, quietly, with [`crate::exit::BROKEN_PIPE`] (141, what a Unix tool killed by
//! `SIGPIPE` reports), since nothing is left to tell anyone. Any other write failure
//! (a full disk behind a redirect) is said on stderr and exits with
//! [`crate::exit::ERROR`]. Commands that run a plan do not print through this: their
//! renderers drop output nobody reads and the run goes on.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Write one line (`args` and a newline) to stdout; see the module docs for failures.
pub fn line(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            std::process::exit(i32::from(crate::exit::BROKEN_PIPE))
        }
        Err(e) => {
            eprintln!("relocate: error: cannot write to stdout: {e}");
            std::process::exit(i32::from(crate::exit::ERROR))
        }
    }
}

/// `println!` for command output that survives a closed stdout (see [`line`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

pub(crate) use outln;
