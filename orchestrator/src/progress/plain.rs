//! Plain lines for logs, CI and pipes: a line per event and a progress line every few
//! seconds for the running object step.

use std::io::Write;
use std::time::Duration;

use bytesize::ByteSize;

use super::ticker::Ticker;
use super::{Event, EventSink, StepSummary};
use crate::transfer::counters::Snapshot;

/// Prints human-readable lines on stdout.
#[derive(Debug)]
pub struct PlainRenderer {
    ticker: Ticker,
}

impl PlainRenderer {
    /// A renderer on stdout.
    pub fn new() -> Self {
        let ticker = Ticker::start(Duration::from_secs(5), |label, counters| {
            line(&format!(
                "  … {label}: {}",
                progress_text(&counters.snapshot())
            ));
        });
        Self { ticker }
    }
}

impl Default for PlainRenderer {
    fn default() -> Self {
        Self::new()
    }
}

fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// `120/400 objects, 1.2 MiB/3.4 MiB` style progress (`400+` while the listing is
/// still being read; bytes count what is in flight, as the bar does).
pub fn progress_text(s: &Snapshot) -> String {
    let more = if s.listing_complete { "" } else { "+" };
    let view = super::tty::BarView::of(s);
    format!(
        "{}/{}{more} objects, {}/{}{more}, {} failed",
        s.done_objects,
        s.discovered_objects,
        ByteSize::b(view.position).display().iec(),
        ByteSize::b(s.discovered_bytes).display().iec(),
        s.failed
    )
}

/// One line describing a finished step.
pub fn summary_text(s: &StepSummary) -> String {
    let what = match s.kind.as_str() {
        "copy" => {
            let mut line = format!(
                "{} copied, {} unchanged, {} pruned, {} failed",
                s.copied, s.skipped, s.pruned, s.failed
            );
            for (n, what) in [
                (s.adopted, "adopted"),
                (s.prune_failed, "not pruned"),
                (s.symlinks_skipped, "symlinks skipped"),
            ] {
                if let Some(n) = n.filter(|n| *n > 0) {
                    line.push_str(&format!(", {n} {what}"));
                }
            }
            line
        }
        "verify" => format!("{} verified, {} failed", s.verified, s.failed),
        _ => String::new(),
    };
    let bytes = if s.bytes > 0 {
        format!(", {}", ByteSize::b(s.bytes).display().iec())
    } else {
        String::new()
    };
    let target = s
        .workload
        .as_deref()
        .map(|w| format!(" {w}"))
        .unwrap_or_default();
    format!(
        "{} {}{}: {}{}{} in {:.1}s",
        mark(&s.outcome),
        s.kind,
        target,
        s.outcome,
        if what.is_empty() {
            String::new()
        } else {
            format!(" — {what}")
        },
        bytes,
        s.seconds
    )
}

fn mark(outcome: &str) -> &'static str {
    match outcome {
        "succeeded" | "completed" => "✔",
        "skipped" => "↷",
        "interrupted" => "■",
        _ => "✘",
    }
}

/// The line for one event (shared with the TTY renderer for its static lines).
pub fn event_text(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted {
            plan,
            plan_digest,
            state_dir,
            stages,
            ..
        } => {
            format!(
                "relocate: plan {plan} ({plan_digest}), {stages} stage(s), state in {state_dir}"
            )
        }
        Event::StageSkipped { stage, reason } => format!("↷ stage {stage}: {reason}"),
        Event::StageStarted {
            stage,
            attempt,
            resumed,
            ..
        } => {
            let how = if *resumed { " (resuming)" } else { "" };
            format!("▶ stage {stage}, attempt {attempt}{how}")
        }
        Event::StepStarted {
            kind, description, ..
        } => format!("  ▸ {kind}: {description}"),
        Event::ObjectProblem {
            workload,
            key,
            problem,
            detail,
            ..
        } => format!("  ✘ {workload}: {problem}: {key:?}: {detail}"),
        Event::CommandOutput { line, .. } => format!("    | {line}"),
        Event::StepFinished { summary, error } => {
            let mut t = format!("  {}", summary_text(summary));
            if let Some(e) = error {
                t.push_str(&format!("\n    error: {e}"));
            }
            t
        }
        Event::EvidenceWritten { digest, path, .. } => {
            format!("  ▸ evidence {digest} written to {path}")
        }
        Event::GateWaiting {
            awaiting,
            threshold,
            evidence,
            attests,
            asks,
            ..
        } => {
            let mut text = format!(
                "  ⏳ sign-off: waiting for {} ({} of {} needed)\n     evidence: {evidence}",
                awaiting.join(", "),
                threshold,
                awaiting.len()
            );
            if !attests.is_empty() {
                text.push_str(&format!("\n     it attests: {attests}"));
            }
            for ask in asks {
                text.push_str(&format!("\n     {ask}"));
            }
            text
        }
        Event::ApprovalReceived {
            approver,
            decision,
            reason,
            ..
        } => {
            let why = reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let verb = if decision == "approve" {
                "✔ approved by"
            } else {
                "✘ rejected by"
            };
            format!("  {verb} {approver}{why}")
        }
        Event::ApprovalRefused {
            approver, reason, ..
        } => format!("  ✘ approval from {approver} refused: {reason}"),
        Event::StageFinished { stage, outcome } => {
            format!("{} stage {stage}: {outcome}", mark(outcome))
        }
        // The error itself goes to stderr with its causes.
        Event::Summary { outcome, .. } => format!("relocate: {outcome}"),
    })
}

impl EventSink for PlainRenderer {
    fn emit(&self, event: Event) {
        match &event {
            Event::StepStarted {
                stage,
                kind,
                workload,
                counters: Some(c),
                ..
            } => {
                self.ticker.set(Some((
                    format!("{stage}/{kind} {}", workload.as_deref().unwrap_or("")),
                    c.clone(),
                )));
            }
            Event::StepFinished { .. } => self.ticker.set(None),
            _ => {}
        }
        if let Some(text) = event_text(&event) {
            line(&text);
        }
    }
}
