//! Progress as data: the engine emits [`Event`]s; a renderer draws them.
//!
//! The engine never imports indicatif. Three renderers: [`tty`] (indicatif bars with
//! rates and ETAs), [`plain`] (a line per event plus periodic progress lines, for logs
//! and CI), [`json`] (NDJSON for scripts). High-volume per-object progress is not an
//! event: steps expose shared [`crate::transfer::Counters`] that renderers sample.

pub mod events;
pub mod json;
pub mod plain;
pub mod ticker;
pub mod tty;

pub use events::{Event, EventSink, ShardEvidence, StepSummary};

use std::sync::Arc;

/// How `run` reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// Plain lines.
    Plain,
    /// NDJSON events on stdout.
    Json,
}

/// Pick the renderer for the mode and terminal.
pub fn renderer(mode: OutputMode) -> Arc<dyn EventSink> {
    use std::io::IsTerminal;
    match mode {
        OutputMode::Json => Arc::new(json::JsonRenderer::new()),
        OutputMode::Plain => Arc::new(plain::PlainRenderer::new()),
        OutputMode::Auto if std::io::stderr().is_terminal() => Arc::new(tty::TtyRenderer::new()),
        OutputMode::Auto => Arc::new(plain::PlainRenderer::new()),
    }
}
