//! Exit codes: distinct for each way a command can end, so scripts can branch on them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (or nothing left to do) |
//! | 1 | an operational error (I/O, store unreachable, state unreadable) |
//! | 2 | bad command line (clap's own code) |
//! | 3 | invalid plan |
//! | 4 | a step failed (copy errors, verification failed, command failed) |
//! | 5 | sign-off rejected, or approvals refused / not obtained |
//! | 6 | another run holds the state directory |
//! | 7 | `relocate verify` found the record or the target not as attested |
//! | 130 | interrupted (Ctrl-C / SIGTERM); state saved, rerun to resume |
//! | 141 | stdout was closed by its reader (e.g. `\| head`); output stopped quietly |

/// Success.
pub const SUCCESS: u8 = 0;
/// Operational error.
pub const ERROR: u8 = 1;
/// Bad command line: clap's code, and an argument naming what the plan lacks (e.g.
/// `rollback --stage` of a stage the plan does not have).
pub const USAGE: u8 = 2;
/// Invalid plan.
pub const INVALID_PLAN: u8 = 3;
/// A step failed.
pub const STEP_FAILED: u8 = 4;
/// Sign-off rejected or refused.
pub const SIGNOFF: u8 = 5;
/// State directory locked by another run.
pub const LOCKED: u8 = 6;
/// Verification of a record or store failed.
pub const VERIFY_FAILED: u8 = 7;
/// Interrupted.
pub const INTERRUPTED: u8 = 130;
/// Stdout closed by its reader (`| head`): output stopped quietly, as after `SIGPIPE`.
pub const BROKEN_PIPE: u8 = 141;
