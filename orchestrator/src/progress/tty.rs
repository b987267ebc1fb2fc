//! Bars on a terminal: one indicatif bar per running object step with objects, bytes,
//! rate and ETA; finished steps and gate states stay above as lines.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plain::event_text;
use super::ticker::Ticker;
use super::{Event, EventSink};

/// Draws on stderr with indicatif.
#[derive(Debug)]
pub struct TtyRenderer {
    multi: MultiProgress,
    bar: std::sync::Arc<Mutex<Option<ProgressBar>>>,
    ticker: Ticker,
}

impl TtyRenderer {
    /// A renderer on the terminal.
    pub fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let bar: std::sync::Arc<Mutex<Option<ProgressBar>>> = Default::default();
        let bar2 = bar.clone();
        let ticker = Ticker::start(Duration::from_millis(100), move |_label, counters| {
            let s = counters.snapshot();
            if let Some(b) = bar2.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                b.set_length(s.discovered_bytes.max(1));
                b.set_position(s.done_bytes);
                b.set_message(format!(
                    "{}/{} objects{}",
                    s.done_objects,
                    s.discovered_objects,
                    if s.failed > 0 {
                        format!(", {} failed", s.failed)
                    } else {
                        String::new()
                    }
                ));
            }
        });
        Self { multi, bar, ticker }
    }

    fn println(&self, text: &str) {
        if self.multi.println(text).is_err() {
            eprintln!("{text}");
        }
    }
}

impl Default for TtyRenderer {
    fn default() -> Self {
        Self::new()
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("  {spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} — {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl EventSink for TtyRenderer {
    fn emit(&self, event: Event) {
        let mut slot = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match &event {
            Event::StepStarted {
                stage,
                kind,
                workload,
                counters,
                ..
            } => {
                if let Some(text) = event_text(&event) {
                    self.println(&text);
                }
                let b = self.multi.add(ProgressBar::new(1));
                b.set_style(style());
                b.set_prefix(format!(
                    "{stage}/{kind} {}",
                    workload.as_deref().unwrap_or("")
                ));
                b.enable_steady_tick(Duration::from_millis(120));
                *slot = Some(b);
                self.ticker
                    .set(counters.as_ref().map(|c| (kind.clone(), c.clone())));
                return;
            }
            Event::StepFinished { .. } => {
                self.ticker.set(None);
                if let Some(b) = slot.take() {
                    b.finish_and_clear();
                    self.multi.remove(&b);
                }
            }
            _ => {}
        }
        drop(slot);
        if let Some(text) = event_text(&event) {
            self.println(&text);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}
