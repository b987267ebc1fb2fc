//! Evidence in words, for the people at a gate: the one paragraph saying what a stage's
//! evidence attests ([`attests`]), the whole statement made readable ([`render`], for
//! `relocate evidence show` and `relocate approve`), and the exact commands an approver
//! behind a file hook runs ([`approve_commands`]). The run's waiting line, `status` and
//! `approve` all print from here, so the auditor reads the same words everywhere.
//!
//! The commands never guess where the approver's private key is (a guessed
//! `auditor.key` may not exist, or be someone else's): they name the public key the
//! plan pins and leave [`KEY_PLACEHOLDER`] for the approver to fill.

use std::fmt::Write as _;
use std::path::Path;

use bytesize::ByteSize;
use connectors::signoff::Envelope;
use connectors::signoff::statement::{EvidencePredicate, StepEvidence};

/// One paragraph: what signing this evidence means.
pub fn attests(e: &EvidencePredicate) -> String {
    let mut text = format!(
        "Evidence of stage {} (attempt {}) of plan {} ({}), run by {} from {} to {}: ",
        e.stage, e.attempt, e.plan, e.plan_digest, e.operator, e.started_at, e.finished_at
    );
    let parts: Vec<String> = e
        .workloads
        .iter()
        .map(|w| match &w.manifest_root {
            Some(root) => format!(
                "{} objects ({}) of workload {} are at {} in region {}, each re-read and hashed there, Merkle root {root}",
                w.objects,
                ByteSize::b(w.bytes).display().iec(),
                w.name,
                w.target,
                e.target_region
            ),
            None => format!(
                "{} Kubernetes resources of workload {} were applied to {}",
                w.resources.len(),
                w.name,
                w.target
            ),
        })
        .collect();
    if parts.is_empty() {
        text.push_str("no workload data");
    } else {
        text.push_str(&parts.join("; "));
    }
    let failed = e.steps.iter().filter(|s| s.outcome != "succeeded").count();
    let _ = write!(
        text,
        ". {} step(s) ran, {}.",
        e.steps.len(),
        if failed == 0 {
            "all succeeded".to_owned()
        } else {
            format!("{failed} did not succeed")
        }
    );
    if let Some(prev) = &e.previous_evidence {
        let _ = write!(text, " It chains to the previous evidence {prev}.");
    }
    text.push_str(" Approving signs exactly this statement, bound to the plan's digest.");
    text
}

/// The evidence statement made readable, several lines; `envelope` adds who signed it.
pub fn render(e: &EvidencePredicate, envelope: Option<&Envelope>) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "plan      {} ({})", e.plan, e.plan_digest);
    let _ = writeln!(
        t,
        "stage     {} (stage {}, attempt {})",
        e.stage,
        e.stage_index + 1,
        e.attempt
    );
    let _ = writeln!(t, "move      {} → {}", e.source_region, e.target_region);
    let _ = writeln!(t, "operator  {}", e.operator);
    if let Some(env) = envelope {
        let _ = writeln!(t, "signed by operator key {}", env.key_ids().join(", "));
    }
    let _ = writeln!(t, "ran       {} → {}", e.started_at, e.finished_at);
    let _ = writeln!(
        t,
        "previous  {}",
        e.previous_evidence
            .as_deref()
            .unwrap_or("none (first evidence of the move)")
    );
    let _ = writeln!(t, "workloads");
    for w in &e.workloads {
        match &w.manifest_root {
            Some(root) => {
                let _ = writeln!(
                    t,
                    "  {}: {} objects, {} ({} bytes), {} → {}",
                    w.name,
                    w.objects,
                    ByteSize::b(w.bytes).display().iec(),
                    w.bytes,
                    w.source,
                    w.target
                );
                let _ = writeln!(
                    t,
                    "    Merkle root ({}) {root}",
                    w.algorithm.as_deref().unwrap_or("sha256")
                );
                if let Some(d) = &w.manifest_digest {
                    let _ = writeln!(t, "    manifest {d}");
                }
            }
            None => {
                let _ = writeln!(
                    t,
                    "  {}: {} Kubernetes resources, {} → {}",
                    w.name,
                    w.resources.len(),
                    w.source,
                    w.target
                );
                for r in &w.resources {
                    let ns = if r.namespace.is_empty() {
                        String::new()
                    } else {
                        format!("{}/", r.namespace)
                    };
                    let _ = writeln!(t, "    {} {ns}{} {}", r.kind, r.name, r.digest);
                }
            }
        }
    }
    t.push_str(&render_volumes(e));
    let _ = writeln!(t, "steps");
    for (i, s) in e.steps.iter().enumerate() {
        render_step(&mut t, i + 1, s);
    }
    t
}

/// The persistent volumes the evidence signs, per workload: claim, counts, Merkle root,
/// manifest digest, the check that last matched the root, and what was not kept as is.
/// Empty when the evidence names no volume.
fn render_volumes(e: &EvidencePredicate) -> String {
    let mut t = String::new();
    for w in e.workloads.iter().filter(|w| !w.volumes.is_empty()) {
        if t.is_empty() {
            t.push_str("volumes\n");
        }
        for v in &w.volumes {
            let _ = writeln!(
                t,
                "  {}: {}/{}: {} files, {} ({} bytes), {} entries, checked {}",
                w.name,
                v.namespace,
                v.claim,
                v.files,
                ByteSize::b(v.bytes).display().iec(),
                v.bytes,
                v.entries,
                match &v.checked_in {
                    Some(at) => format!("{} in {at}", v.checked),
                    None => v.checked.clone(),
                }
            );
            match v.packed_from.as_deref() {
                Some("live") => {
                    let _ = writeln!(t, "    packed from the running source: not point-in-time");
                }
                Some("snapshot") => {
                    let _ = writeln!(t, "    packed from a CSI snapshot (point-in-time)");
                }
                Some(_) => {
                    let _ = writeln!(t, "    packed from the frozen source (point-in-time)");
                }
                None => {}
            }
            let _ = writeln!(t, "    Merkle root {}", v.root);
            let _ = writeln!(t, "    manifest {}", v.manifest_digest);
            if v.hard_links > 0 {
                let _ = writeln!(t, "    {} hard links, kept as links", v.hard_links);
            }
            if !v.sparse.is_empty() {
                let _ = writeln!(
                    t,
                    "    sparse (restored with holes): {}",
                    v.sparse.join(", ")
                );
            }
            if !v.not_moved.is_empty() {
                let _ = writeln!(t, "    not moved (sockets): {}", v.not_moved.join(", "));
            }
        }
    }
    t
}

fn render_step(t: &mut String, n: usize, s: &StepEvidence) {
    let workload = s
        .workload
        .as_deref()
        .map(|w| format!(" {w}"))
        .unwrap_or_default();
    let d = &s.detail;
    let num = |k: &str| d[k].as_u64().unwrap_or(0);
    let counts = match s.kind.as_str() {
        "copy" if d.is_object() => format!(
            ": {} copied, {} unchanged, {} failed, {}",
            num("copied"),
            num("skipped"),
            num("failed"),
            ByteSize::b(num("bytes")).display().iec()
        ),
        "verify" if d.is_object() => {
            format!(": {} verified, {} failed", num("verified"), num("failed"))
        }
        _ => String::new(),
    };
    let _ = writeln!(t, "  {n}. {}{workload} — {}{counts}", s.kind, s.outcome);
    for shard in d["shards"].as_array().into_iter().flatten() {
        let bound = |k: &str| {
            shard[k]
                .as_str()
                .map_or_else(|| "…".to_owned(), |v| format!("{v:?}"))
        };
        let _ = writeln!(
            t,
            "       shard {} ({}, {}]: {} rows, result {}",
            shard["index"],
            bound("after"),
            bound("through"),
            shard["rows"],
            shard["resultDigest"].as_str().unwrap_or_default()
        );
    }
}

/// What the approver puts after `--key`: only they know where their private key is,
/// so the command says which key (the one the plan pins) and leaves the path to them.
pub const KEY_PLACEHOLDER: &str = "<your private key>";

/// The commands an approver behind a file hook runs: approve, then reject, with
/// [`KEY_PLACEHOLDER`] for their private key. `pin` is how the approver pins the
/// operator's key: `--plan PLAN` when the plan pins it, else
/// `--operator-key <state>/operator.pub`.
pub fn approve_commands(evidence: &Path, pin: &str, drop: &Path) -> [String; 2] {
    let base = format!(
        "relocate approve --key {KEY_PLACEHOLDER} --evidence {} {pin} --out {}",
        quote(&evidence.display().to_string()),
        quote(&drop.display().to_string())
    );
    [base.clone(), format!("{base} --reject --reason \"…\"")]
}

/// Quote a path for a POSIX shell when it needs it.
fn quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Where a file hook expects `approver`'s answer for `stage`; `None` for other hooks.
pub fn drop_path(
    plan: &plans::ValidatedPlan,
    state: &crate::state::StateDir,
    stage: &str,
    approver: &str,
) -> Option<std::path::PathBuf> {
    let dir = match &plan.hook(approver)?.kind {
        plans::HookKind::File { dir: Some(d) } => plan.base_dir().join(d),
        plans::HookKind::File { dir: None } => state.approvals_dir(),
        _ => return None,
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    Some(dir.join(stage).join(format!("{approver}.json")))
}

/// How each awaited approver answers, one line each: the commands for a file hook,
/// the hook that asks them otherwise.
pub fn asks(
    plan: &plans::ValidatedPlan,
    state: &crate::state::StateDir,
    stage: &str,
    approvers: &[String],
    evidence: &Path,
) -> Vec<String> {
    let evidence = std::path::absolute(evidence).unwrap_or_else(|_| evidence.to_path_buf());
    let pin = if plan.plan().operator.is_some() {
        let p = std::path::absolute(plan.path()).unwrap_or_else(|_| plan.path().to_path_buf());
        format!("--plan {}", quote(&p.display().to_string()))
    } else {
        let p = state.operator_key_stem().with_extension("pub");
        let p = std::path::absolute(&p).unwrap_or(p);
        format!("--operator-key {}", quote(&p.display().to_string()))
    };
    let mut lines = Vec::new();
    for approver in approvers {
        match drop_path(plan, state, stage, approver) {
            Some(drop) => {
                let [approve, reject] = approve_commands(&evidence, &pin, &drop);
                if let Some(key) = plan.approver_key(approver) {
                    let key = connectors::signoff::PublicKey::from(*key);
                    lines.push(format!(
                        "{approver} signs with the private key of {key} (key id {}), as the plan pins it",
                        key.key_id()
                    ));
                }
                lines.push(format!("{approver} approves with:  {approve}"));
                lines.push(format!("{approver} rejects with:   {reject}"));
            }
            None => {
                let how = match plan.hook(approver).map(|h| &h.kind) {
                    Some(plans::HookKind::Command { argv }) => {
                        format!("its command hook `{}`", argv.join(" "))
                    }
                    Some(plans::HookKind::Webhook { url, .. }) => format!("its webhook {url}"),
                    _ => "its hook".to_owned(),
                };
                lines.push(format!("{approver} is asked through {how}"));
            }
        }
    }
    lines
}
