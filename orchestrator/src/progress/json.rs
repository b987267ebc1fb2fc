//! NDJSON on stdout: one object per event, plus a `progress` object per second for
//! the running object step. The last line is the `summary` event.
//!
//! Every line carries `ts` (RFC 3339, UTC, milliseconds). Numbers are 1-based, as
//! shown to people: `step` always was; every object naming a stage also carries
//! `stageNumber` (its 1-based position in the plan, learnt from `run_started`'s
//! `stage_names`). `stage_started`'s `index` stays 0-based for the scripts that read
//! it already.

use std::collections::HashMap;
use std::sync::Mutex;

use std::io::Write;
use std::time::Duration;

use super::ticker::Ticker;
use super::{Event, EventSink};

/// Prints events as JSON lines.
#[derive(Debug)]
pub struct JsonRenderer {
    ticker: Ticker,
    /// Stage name → 1-based number, learnt from `stage_started`.
    numbers: Mutex<HashMap<String, usize>>,
}

impl JsonRenderer {
    /// A renderer on stdout.
    pub fn new() -> Self {
        let ticker = Ticker::start(Duration::from_secs(1), |label, counters| {
            let line = serde_json::json!({ "event": "progress", "ts": now(), "step": label, "counters": counters.snapshot() });
            print_line(&line.to_string());
        });
        Self {
            ticker,
            numbers: Mutex::default(),
        }
    }
}

impl Default for JsonRenderer {
    fn default() -> Self {
        Self::new()
    }
}

/// Now, as every line's `ts`.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl JsonRenderer {
    /// The event as JSON with `ts` and, where a stage is named, `stageNumber`.
    fn decorate(&self, event: &Event) -> serde_json::Result<serde_json::Value> {
        let mut value = serde_json::to_value(event)?;
        let mut numbers = self.numbers.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::RunStarted { stage_names, .. } => {
                for (i, name) in stage_names.iter().enumerate() {
                    numbers.insert(name.clone(), i + 1);
                }
            }
            Event::StageStarted { index, stage, .. } => {
                numbers.insert(stage.clone(), index + 1);
            }
            _ => {}
        }
        let number = |v: &mut serde_json::Value| {
            let n = v["stage"].as_str().and_then(|s| numbers.get(s)).copied();
            if let (Some(n), Some(obj)) = (n, v.as_object_mut()) {
                obj.insert("stageNumber".into(), n.into());
            }
        };
        number(&mut value);
        if value["summary"].is_object() {
            number(&mut value["summary"]);
        }
        if let Some(steps) = value["steps"].as_array_mut() {
            steps.iter_mut().for_each(number);
        }
        if let Some(obj) = value.as_object_mut() {
            obj.insert("ts".into(), now().into());
        }
        Ok(value)
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
        match self.decorate(&event) {
            Ok(line) => print_line(&line.to_string()),
            Err(e) => tracing::error!("cannot encode event: {e}"),
        }
    }
}
