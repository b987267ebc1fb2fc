//! Drawing the model: the stage timeline, the step in progress (objects and bytes
//! done of total, rate with a short history, ETA), the latest failures, and at a gate
//! who is awaited and the exact command they would run. Pure: a frame in, nothing
//! else touched, so the test backend renders exactly what a terminal would.

use bytesize::ByteSize;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, List, ListItem, Paragraph, Sparkline, Wrap};

use super::model::Model;

fn status_style(status: &str) -> Style {
    match status {
        "completed" => Style::default().fg(Color::Green),
        "running" => Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
        "awaiting sign-off" => Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
        "failed" | "rejected" => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        s if s.starts_with("interrupted") => Style::default().fg(Color::Magenta),
        _ => Style::default().fg(Color::Gray),
    }
}

/// Draw one frame.
pub fn draw(frame: &mut Frame<'_>, m: &Model) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let running = match &m.holder {
        Some(who) => format!("a run is going ({who})"),
        None => "no run holds the state".to_owned(),
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!("relocate · {} ", m.plan),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("· {running}")),
        ])),
        head,
    );
    let [timeline, right] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(30)]).areas(body);
    let items: Vec<ListItem<'_>> = m
        .stages
        .iter()
        .map(|s| {
            let attempt = s.attempt.map(|a| format!(" #{a}")).unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::raw(format!("{}{attempt} ", s.name)),
                Span::styled(s.status.clone(), status_style(&s.status)),
            ]))
        })
        .collect();
    frame.render_widget(
        List::new(items).block(Block::default().borders(Borders::ALL).title(" stages ")),
        timeline,
    );
    draw_right(frame, right, m);
    frame.render_widget(
        Paragraph::new("q quits · the view refreshes every second"),
        foot,
    );
}

fn draw_right(frame: &mut Frame<'_>, area: ratatui::layout::Rect, m: &Model) {
    let live = m.live.as_ref();
    let gate = live.and_then(|l| l.gate.as_ref());
    let [step_area, rate_area, lower] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(area);
    match live.and_then(|l| l.step.as_ref()) {
        Some(step) => {
            let title = format!(
                " {}: step {} {} {} ",
                step.stage,
                step.step,
                step.kind,
                step.workload.as_deref().unwrap_or("")
            );
            let block = Block::default().borders(Borders::ALL).title(title);
            match &step.counters {
                Some(c) => {
                    let total = c.discovered_bytes.max(1);
                    let done = c
                        .done_bytes
                        .max(c.skipped_bytes + c.transferred_bytes)
                        .min(total);
                    let rate = m.rates.last().copied().unwrap_or(0);
                    let eta = if rate > 0 && c.listing_complete {
                        humantime::format_duration(std::time::Duration::from_secs(
                            (total - done) / rate,
                        ))
                        .to_string()
                    } else {
                        "?".to_owned()
                    };
                    let more = if c.listing_complete { "" } else { "+" };
                    let label = format!(
                        "{}/{}{more} objects · {}/{}{more} · {}/s · ETA {eta}",
                        c.done_objects,
                        c.discovered_objects,
                        ByteSize::b(done).display().iec(),
                        ByteSize::b(c.discovered_bytes).display().iec(),
                        ByteSize::b(rate).display().iec(),
                    );
                    let detail = format!(
                        "in flight {}{}",
                        c.in_flight,
                        if c.failed > 0 {
                            format!(" · {} failed", c.failed)
                        } else {
                            String::new()
                        }
                    );
                    let inner = block.inner(step_area);
                    frame.render_widget(block, step_area);
                    let [bar, below] =
                        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
                    frame.render_widget(
                        Gauge::default()
                            .gauge_style(Style::default().fg(Color::Cyan))
                            .ratio(done as f64 / total as f64)
                            .label(label),
                        bar,
                    );
                    frame.render_widget(Paragraph::new(detail), below);
                }
                None => frame.render_widget(
                    Paragraph::new(step.description.clone()).block(block),
                    step_area,
                ),
            }
        }
        None => frame.render_widget(
            Paragraph::new(if live.is_some_and(|l| l.finished) {
                "the run ended"
            } else {
                "no step is running"
            })
            .block(Block::default().borders(Borders::ALL).title(" step ")),
            step_area,
        ),
    }
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(" rate "))
            .data(&m.rates),
        rate_area,
    );
    let text: Vec<Line<'_>> = match gate {
        Some(g) => {
            let mut lines = vec![
                Line::styled(
                    format!(
                        "waiting at the gate of {}: {} awaited ({} needed)",
                        g.stage,
                        g.awaiting.join(", "),
                        g.threshold
                    ),
                    Style::default()
                        .fg(Color::Yellow)
                        .add_modifier(Modifier::BOLD),
                ),
                Line::raw(format!("evidence: {}", g.evidence)),
                Line::raw(g.attests.clone()),
            ];
            lines.extend(g.asks.iter().map(|a| Line::raw(a.clone())));
            lines
        }
        None => {
            let problems = live.map(|l| l.problems.clone()).unwrap_or_default();
            if problems.is_empty() {
                vec![Line::raw("no failures")]
            } else {
                problems
                    .iter()
                    .map(|(k, p)| {
                        Line::styled(format!("{p}: {k}"), Style::default().fg(Color::Red))
                    })
                    .collect()
            }
        }
    };
    let title = if gate.is_some() {
        " sign-off "
    } else {
        " latest failures "
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title)),
        lower,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::transfer::counters::Snapshot;
    use crate::watch::live::{Live, LiveGate, LiveStep};
    use crate::watch::model::StageLine;

    fn screen(m: &Model, w: u16, h: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        terminal.draw(|f| draw(f, m)).expect("draw");
        let buffer = terminal.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn stages() -> Vec<StageLine> {
        vec![
            StageLine {
                name: "seed".into(),
                status: "completed".into(),
                attempt: Some(1),
            },
            StageLine {
                name: "cutover".into(),
                status: "running".into(),
                attempt: Some(1),
            },
            StageLine {
                name: "decommission".into(),
                status: "pending".into(),
                attempt: None,
            },
        ]
    }

    #[test]
    fn mid_copy_it_shows_the_timeline_counts_rate_and_failures() {
        let m = Model {
            plan: "zurich".into(),
            holder: Some("op@host pid 42".into()),
            stages: stages(),
            live: Some(Live {
                step: Some(LiveStep {
                    stage: "cutover".into(),
                    step: 1,
                    kind: "copy".into(),
                    workload: Some("telemetry".into()),
                    description: String::new(),
                    counters: Some(Snapshot {
                        discovered_objects: 2001,
                        discovered_bytes: 2001 << 20,
                        done_objects: 1000,
                        done_bytes: 1000 << 20,
                        transferred_bytes: 1000 << 20,
                        failed: 1,
                        listing_complete: true,
                        in_flight: 4,
                        ..Snapshot::default()
                    }),
                }),
                problems: vec![("logs/bad.gz".into(), "copy-failed".into())],
                ..Live::default()
            }),
            rates: vec![10 << 20, 12 << 20, 11 << 20],
        };
        let text = screen(&m, 120, 24);
        for needle in [
            "seed #1 completed",
            "cutover #1 running",
            "decommission pending",
            "1000/2001 objects",
            "in flight 4",
            "1 failed",
            "copy-failed: logs/bad.gz",
            "a run is going",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        // Resizing keeps it drawable.
        let small = screen(&m, 60, 12);
        assert!(small.contains("stages"), "{small}");
    }

    #[test]
    fn at_a_gate_it_names_who_is_awaited_and_the_command_they_run() {
        let mut stages = stages();
        stages[1].status = "awaiting sign-off".into();
        let m = Model {
            plan: "zurich".into(),
            holder: Some("op".into()),
            stages,
            live: Some(Live {
                gate: Some(LiveGate {
                    stage: "cutover".into(),
                    awaiting: vec!["auditor".into()],
                    threshold: 1,
                    evidence: "/s/evidence/02-cutover.attempt-1.intoto.json".into(),
                    attests: "4 objects of workload data are at dst".into(),
                    asks: vec!["auditor approves with: relocate approve --key auditor.key --evidence /s/e.json --out /s/approvals/cutover/auditor.json".into()],
                }),
                ..Live::default()
            }),
            rates: Vec::new(),
        };
        let text = screen(&m, 160, 24);
        assert!(text.contains("awaiting sign-off"), "{text}");
        assert!(text.contains("auditor awaited"), "{text}");
        assert!(
            text.contains("relocate approve --key auditor.key"),
            "{text}"
        );
    }

    #[test]
    fn without_a_run_it_says_so() {
        let m = Model {
            plan: "zurich".into(),
            holder: None,
            stages: stages(),
            live: None,
            rates: Vec::new(),
        };
        let text = screen(&m, 100, 20);
        assert!(text.contains("no run holds the state"), "{text}");
        assert!(text.contains("no step is running"), "{text}");
    }
}
