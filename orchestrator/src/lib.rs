//! relocate's orchestrator: composes plans and connectors into stages, keeps the state,
//! and drives the `relocate` command line.
//!
//! - [`engine`]: runs a validated plan's stages in order, resumably;
//! - [`transfer`]: the copy/verify engine over any two object stores;
//! - [`state`]: the state directory and its SQLite journal;
//! - [`progress`]: events and their renderers (bars, plain lines, NDJSON);
//! - [`audit`]: the record's export and its independent verification;
//! - [`cli`]: the commands, thin glue over the above.

pub mod audit;
pub mod cli;
pub mod engine;
pub mod exit;
pub mod progress;
pub mod scaleout;
pub mod state;
pub mod transfer;
pub mod volumes;
pub mod watch;
