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
            let view = BarView::of(&counters.snapshot());
            if let Some(b) = bar2.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                b.set_length(view.length);
                b.set_position(view.position);
                b.set_message(view.message);
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

/// What the bar shows for a step's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BarView {
    /// Bytes in all (at least 1).
    pub length: u64,
    /// Bytes done, counting the bytes of objects still in flight (a 100 MB object
    /// half copied is 50 MB of progress, and of rate and ETA), never past the length.
    pub position: u64,
    /// `done/total obj`; `total+` while the listing is still being read.
    pub message: String,
}

impl BarView {
    pub(crate) fn of(s: &crate::transfer::counters::Snapshot) -> Self {
        let length = s.discovered_bytes.max(1);
        let position = s
            .done_bytes
            .max(s.skipped_bytes + s.transferred_bytes)
            .min(length);
        let more = if s.listing_complete { "" } else { "+" };
        let failed = if s.failed > 0 {
            format!(", {} failed", s.failed)
        } else {
            String::new()
        };
        Self {
            length,
            position,
            message: format!(
                "{}/{}{more} obj{failed}",
                s.done_objects, s.discovered_objects
            ),
        }
    }
}

/// One line that fits 80 columns: the prefix is cut at 18, the bar takes what is left.
fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:18!} {wide_bar} {percent:>3}% {binary_bytes_per_sec:>11} ETA {eta:>3} {msg}",
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::counters::Snapshot;

    #[test]
    fn bytes_in_flight_count_and_an_unfinished_listing_says_so() {
        // A 100 MB object half copied, under a listing still being read.
        let s = Snapshot {
            discovered_objects: 1,
            discovered_bytes: 100 << 20,
            transferred_bytes: 50 << 20,
            ..Snapshot::default()
        };
        let v = BarView::of(&s);
        assert_eq!((v.length, v.position), (100 << 20, 50 << 20));
        assert_eq!(v.message, "0/1+ obj");
        let done = Snapshot {
            discovered_objects: 2001,
            discovered_bytes: 10,
            done_objects: 320,
            done_bytes: 4,
            skipped_bytes: 4,
            transferred_bytes: 9,
            failed: 2,
            listing_complete: true,
            ..Snapshot::default()
        };
        let v = BarView::of(&done);
        assert_eq!(v.position, 10, "never past the length");
        assert_eq!(v.message, "320/2001 obj, 2 failed");
    }

    /// A terminal 80 columns wide that keeps what is written.
    #[derive(Debug, Default)]
    struct Term80(Mutex<Vec<String>>);

    impl indicatif::TermLike for Term80 {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_owned());
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_owned());
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_line_fits_80_columns() {
        let term = std::sync::Arc::new(Term80::default());
        let target = ProgressDrawTarget::term_like(Box::new(ArcTerm(term.clone())));
        let bar = ProgressBar::with_draw_target(Some(100 << 20), target);
        bar.set_position(40 << 20);
        bar.set_style(style());
        bar.set_prefix("cutover-wave-2/copy telemetry-europe-archive");
        bar.set_message("123456/1234567+ obj, 12 failed");
        bar.tick();
        let lines = term.0.lock().unwrap().clone();
        let drawn: Vec<&String> = lines.iter().filter(|l| l.contains("obj")).collect();
        assert!(!drawn.is_empty(), "{lines:?}");
        for line in drawn {
            let width = line.chars().count();
            assert!(width <= 80, "{width} columns: {line:?}");
            assert!(
                line.contains("40%") && line.contains("cutover-wave-2/cop"),
                "{line:?}"
            );
        }
    }

    /// The terminal shared with the test.
    #[derive(Debug)]
    struct ArcTerm(std::sync::Arc<Term80>);

    impl indicatif::TermLike for ArcTerm {
        fn width(&self) -> u16 {
            self.0.width()
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.0.move_cursor_up(n)
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.0.move_cursor_down(n)
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.0.move_cursor_right(n)
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.0.move_cursor_left(n)
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.write_line(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.write_str(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.0.clear_line()
        }
        fn flush(&self) -> std::io::Result<()> {
            self.0.flush()
        }
    }
}
