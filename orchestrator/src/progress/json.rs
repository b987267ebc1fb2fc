//! NDJSON on stdout: one object per event, plus a `progress` object per second for
//! the running object step. The last line is the `summary` event.

use std::io::Write;
use std::time::Duration;

use super::ticker::Ticker;
use super::{Event, EventSink};

/// Prints events as JSON lines.
#[derive(Debug)]
pub struct JsonRenderer {
    ticker: Ticker,
}

impl JsonRenderer {
    /// A renderer on stdout.
    pub fn new() -> Self {
        let ticker = Ticker::start(Duration::from_secs(1), |label, counters| {
            let line = serde_json::json!({ "event": "progress", "step": label, "counters": counters.snapshot() });
            print_line(&line.to_string());
        });
        Self { ticker }
    }
}

impl Default for JsonRenderer {
    fn default() -> Self {
        Self::new()
    }
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) must not kill the run; the state has the truth.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl EventSink for JsonRenderer {
    fn emit(&self, event: Event) {
        match &event {
            Event::StepStarted {
                stage,
                step,
                counters: Some(c),
                ..
            } => self
                .ticker
                .set(Some((format!("{stage}/{step}"), c.clone()))),
            Event::StepFinished { .. } => self.ticker.set(None),
            _ => {}
        }
        match serde_json::to_string(&event) {
            Ok(line) => print_line(&line),
            Err(e) => tracing::error!("cannot encode event: {e}"),
        }
    }
}
