//! The report as one HTML file: inline CSS, no script, no external asset (it must open
//! offline, years later, on a customer's machine), every value escaped.

use std::fmt::Write;

use super::Transparency;

/// Escape text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1b1f24;line-height:1.45}\
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code,.mono{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all}\
.verdict{padding:1rem 1.2rem;border-radius:.4rem;font-size:1.15rem;font-weight:600}\
.ok{background:#dafbe1;border:2px solid #1a7f37;color:#0f5323}.bad{background:#ffebe9;border:3px solid #cf222e;color:#a40e26}\
.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:600}.muted{color:#57606a}";

/// Render the report.
pub fn render(t: &Transparency) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Transparency report: {}</title><style>{STYLE}</style></head><body>",
        esc(&t.plan)
    );
    if t.verified {
        let _ = write!(
            h,
            "<div id=\"verdict\" class=\"verdict ok\">Verified: every check of this record holds. {}</div>",
            esc(&t.summary)
        );
    } else {
        let failed = t.checks.iter().filter(|c| !c.holds).count();
        let _ = write!(
            h,
            "<div id=\"verdict\" class=\"verdict bad\">NOT VERIFIED: {failed} check(s) of this record failed. Nothing below is attested; do not rely on this record. {}</div>",
            esc(&t.summary)
        );
    }
    let _ = write!(
        h,
        "<h1>Relocation of <em>{}</em></h1><p>Plan digest <code>{}</code>; record exported {}; operator key <code>{}</code>.</p>",
        esc(&t.plan),
        esc(&t.plan_digest),
        esc(&t.exported_at),
        esc(t.operator.as_deref().unwrap_or("(not established)"))
    );
    if !t.limits.is_empty() {
        h.push_str("<p class=\"fail\">What this verdict does not cover:</p><ul>");
        for l in &t.limits {
            let _ = write!(h, "<li>{}</li>", esc(l));
        }
        h.push_str("</ul>");
    }
    stages(&mut h, t);
    places(&mut h, t);
    h.push_str("<h2>Every check</h2><table id=\"checks\"><tr><th></th><th>check</th></tr>");
    for c in &t.checks {
        let (class, mark) = if c.holds {
            ("pass", "✔")
        } else {
            ("fail", "✘")
        };
        let _ = write!(
            h,
            "<tr><td class=\"{class}\">{mark}</td><td>{}</td></tr>",
            esc(&c.text)
        );
    }
    h.push_str("</table><h2>Verify it yourself</h2><p>With relocate (or the <code>relocate-verifier</code> crate) and this record, on any machine:</p><pre>");
    for c in &t.commands {
        let _ = writeln!(h, "{}", esc(c));
    }
    h.push_str("</pre></body></html>\n");
    h
}

fn stages(h: &mut String, t: &Transparency) {
    if t.stages.is_empty() {
        return;
    }
    h.push_str("<h2>Stages</h2>");
    for s in &t.stages {
        let _ = write!(
            h,
            "<section class=\"stage\" id=\"stage-{}\"><h3>{}</h3><p class=\"muted\">attempt {}, {} → {}; evidence <code>{}</code></p>",
            esc(&s.name),
            esc(&s.name),
            s.attempt.map_or("-".to_owned(), |a| a.to_string()),
            esc(&s.started),
            esc(&s.finished),
            esc(s.evidence.as_deref().unwrap_or("(none)"))
        );
        if s.threshold > 0 {
            let who: Vec<String> = s
                .approved_by
                .iter()
                .map(|(n, k)| format!("{} (key {})", esc(n), esc(k)))
                .collect();
            let _ = write!(
                h,
                "<p>Approved by {} of {} needed: {}</p>",
                s.approved_by.len(),
                s.threshold,
                if who.is_empty() {
                    "nobody".to_owned()
                } else {
                    who.join(", ")
                }
            );
            if !s.rejected_by.is_empty() {
                let _ = write!(
                    h,
                    "<p class=\"fail\">Rejected by {}</p>",
                    esc(&s.rejected_by.join(", "))
                );
            }
        }
        h.push_str("<table><tr><th>step</th><th>workload</th><th>outcome</th></tr>");
        for (kind, workload, outcome) in &s.steps {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(kind),
                esc(workload.as_deref().unwrap_or("")),
                esc(outcome)
            );
        }
        h.push_str("</table>");
        if !s.workloads.is_empty() {
            h.push_str("<table><tr><th>workload</th><th>from → to</th><th>objects</th><th>bytes</th><th>Merkle root</th></tr>");
            for w in &s.workloads {
                let root = match (&w.root, w.kind.as_str()) {
                    (Some(r), _) => format!("<code class=\"root\">{}</code>", esc(r)),
                    (None, "kubernetes") => format!("{} resources deployed", w.resources),
                    (None, _) => String::new(),
                };
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{root}</td></tr>",
                    esc(&w.name),
                    esc(&w.source),
                    esc(&w.target),
                    w.objects,
                    w.bytes
                );
            }
            h.push_str("</table>");
            volumes(h, s);
        }
        h.push_str("</section>");
    }
}

/// The persistent volumes of a stage's workloads, when any.
fn volumes(h: &mut String, s: &super::StageView) {
    if s.workloads.iter().all(|w| w.volumes.is_empty()) {
        return;
    }
    h.push_str("<table class=\"volumes\"><tr><th>workload</th><th>volume (claim)</th><th>files</th><th>bytes</th><th>Merkle root</th><th>checked</th></tr>");
    for w in &s.workloads {
        for v in &w.volumes {
            let notes = if v.notes.is_empty() {
                String::new()
            } else {
                format!(
                    "<br><span class=\"muted\">{}</span>",
                    esc(&v.notes.join("; "))
                )
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}/{}{notes}</td><td>{}</td><td>{}</td><td><code class=\"root\">{}</code></td><td>{}</td></tr>",
                esc(&w.name),
                esc(&v.namespace),
                esc(&v.claim),
                v.files,
                v.bytes,
                esc(&v.root),
                esc(&v.checked)
            );
        }
    }
    h.push_str("</table>");
}

fn places(h: &mut String, t: &Transparency) {
    h.push_str("<h2>Where the data is</h2><table id=\"residency\"><tr><th>store or cluster</th><th>region</th><th>jurisdiction</th><th>written by the move</th></tr>");
    for p in &t.places {
        let _ = write!(
            h,
            "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.kind,
            esc(&p.name),
            esc(&p.region),
            esc(&p.jurisdiction),
            if p.written { "yes" } else { "no (read only)" }
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
