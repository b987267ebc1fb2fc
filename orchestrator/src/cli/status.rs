//! `relocate status PLAN`: where the move stands, from the state database, read-only
//! (safe while a run is writing: SQLite's WAL lets readers in).
//!
//! The rows say what the last run was doing; the run lock says whether a run is still
//! doing it. A stage left `running` or `awaiting-signoff` by a run that is gone (killed
//! with `kill -9`, a lost machine) is shown as **interrupted**, with the command that
//! resumes it. Approvers are listed as awaited only once the stage has reached its
//! gate, with the evidence, what it attests and how to answer. `--watch` redraws the
//! whole report in place every few seconds.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

mod live;

use super::{StateArgs, load_plan};
use crate::cli::output::outln;
use crate::engine::guide;
use crate::exit;
use crate::state::{Db, RunLock, StageStatus, StateDir, StepStatus};

/// `relocate status` arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// State directory.
    #[command(flatten)]
    pub state: StateArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Redraw in place every SECS seconds (default 2) until interrupted.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<u64>,
}

/// Print the status (again and again with `--watch`).
pub(crate) fn status(args: &StatusArgs) -> anyhow::Result<u8> {
    let plan = load_plan(&args.plan)?;
    let dir = super::state_dir(&args.state, &plan);
    let Some(every) = args.watch else {
        return once(args, &plan, &dir);
    };
    let every = std::time::Duration::from_secs(every.max(1));
    loop {
        // Home and clear, then the whole report: a plain redraw, no terminal UI. With
        // `--json`, one document after the other (for a script, nothing to clear).
        if !args.json {
            outln!("\x1b[H\x1b[2J{}", chrono::Utc::now().format("%H:%M:%S UTC"));
        }
        once(args, &plan, &dir)?;
        std::thread::sleep(every);
    }
}

fn once(args: &StatusArgs, plan: &plans::ValidatedPlan, dir: &StateDir) -> anyhow::Result<u8> {
    if !dir.exists() {
        if args.json {
            outln!("{}", json!({ "plan": plan.name(), "started": false }));
        } else {
            outln!(
                "plan {} ({}): not started (no state in {})",
                plan.name(),
                plan.digest(),
                dir.root().display()
            );
        }
        return Ok(exit::SUCCESS);
    }
    let db = Db::open_read_only(&dir.db_path())
        .with_context(|| format!("reading {}", dir.db_path().display()))?;
    let report =
        build(plan, dir, &db).with_context(|| format!("reading {}", dir.db_path().display()))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(exit::SUCCESS)
}

fn build(
    plan: &plans::ValidatedPlan,
    dir: &StateDir,
    db: &Db,
) -> anyhow::Result<serde_json::Value> {
    let record = db.record()?;
    let holder = RunLock::holder(&dir.lock_path());
    let live_view = live::read(dir, holder.as_deref());
    let mut stages = Vec::new();
    for (i, stage) in plan.plan().stages.iter().enumerate() {
        let rec = db.stage(i)?;
        let recorded = rec.as_ref().map_or("pending", |r| r.status.as_str());
        let unfinished = rec.as_ref().is_some_and(|r| {
            matches!(
                r.status,
                StageStatus::Running | StageStatus::AwaitingSignoff
            )
        });
        // Rows left unfinished by a run that no longer holds the lock: interrupted.
        let status = if unfinished && holder.is_none() {
            "interrupted"
        } else {
            recorded
        };
        let mut steps = Vec::new();
        for (j, step) in stage.steps.iter().enumerate() {
            let s = db.step(i, j)?;
            let summary: serde_json::Value = s
                .as_ref()
                .and_then(|s| s.summary.as_deref())
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            // A sharded step's fan-out: how each shard stands.
            let shards: Option<serde_json::Value> = match step.workload() {
                Some(w) if matches!(step.kind(), "copy" | "verify") => db
                    .workload_state(w, &crate::scaleout::coordinator::fanout_key(i, j))?
                    .and_then(|v| serde_json::from_str(&v).ok()),
                _ => None,
            };
            // A step left `started` by a run that is gone is interrupted; the one a
            // live run is in shows its counters from the run's live file.
            let step_status = match s.as_ref().map(|s| s.status) {
                None => "pending",
                Some(StepStatus::Started) if holder.is_none() => "interrupted",
                Some(StepStatus::Started) => "running",
                Some(other) => other.as_str(),
            };
            let running = live::step(
                live_view.as_ref(),
                &stage.name,
                j,
                s.as_ref().map(|s| s.started_at.as_str()),
            )
            .filter(|_| step_status == "running");
            steps.push(json!({
                "kind": step.kind(),
                "workload": step.workload(),
                "status": step_status,
                "recorded": s.as_ref().map(|s| s.status.as_str()),
                "live": running,
                "summary": summary,
                "error": s.as_ref().and_then(|s| s.error.clone()),
                "fanOut": shards,
            }));
        }
        let gate = stage.signoff.as_ref().map(|signoff| {
            let digest = rec.as_ref().and_then(|r| r.evidence_digest.clone());
            let answers: Vec<_> = record
                .iter()
                .filter(|e| e.kind == "approval" && e.stage == stage.name && Some(&e.digest) == digest.as_ref())
                .collect();
            let signed: Vec<String> = answers.iter().filter(|e| e.decision.as_deref() == Some("approve")).filter_map(|e| e.approver.clone()).collect();
            let rejected: Vec<String> = answers.iter().filter(|e| e.decision.as_deref() == Some("reject")).filter_map(|e| e.approver.clone()).collect();
            let awaiting: Vec<&String> = signoff.approvers().iter().filter(|a| !signed.contains(a) && !rejected.contains(a)).collect();
            // Awaited only once the stage has reached its gate.
            let at_gate = rec.as_ref().is_some_and(|r| r.status == StageStatus::AwaitingSignoff);
            let awaiting: Vec<String> = if at_gate { awaiting.into_iter().cloned().collect() } else { Vec::new() };
            let evidence_path = rec.as_ref().and_then(|r| r.evidence_path.clone());
            let (attests, asks) = match (&evidence_path, at_gate) {
                (Some(path), true) => guide_of(plan, dir, &stage.name, &awaiting, path),
                _ => (None, Vec::new()),
            };
            json!({ "threshold": signoff.threshold(), "approvers": signoff.approvers(), "signed": signed, "rejected": rejected,
                    "awaiting": awaiting, "evidence": digest, "attests": attests, "asks": asks })
        });
        stages.push(json!({
            "name": stage.name,
            "status": status,
            "recorded": recorded,
            "attempt": rec.as_ref().map(|r| r.attempt),
            "startedAt": rec.as_ref().and_then(|r| r.started_at.clone()),
            "finishedAt": rec.as_ref().and_then(|r| r.finished_at.clone()),
            "detail": rec.as_ref().and_then(|r| r.detail.clone()),
            "evidencePath": rec.as_ref().and_then(|r| r.evidence_path.clone()),
            "steps": steps,
            "signoff": gate,
        }));
    }
    let mut workloads = serde_json::Map::new();
    for name in plan.plan().workloads.keys() {
        if plan.object_workload(name).is_some() {
            let mut counts = serde_json::to_value(db.workload_counts(name)?)?;
            // Rows marked `copying` are announced copies, not copies in flight: a
            // page's intents are committed before its copies start, and a killed run
            // leaves its own behind. What is in flight is the live run's count.
            counts["inFlight"] = live::in_flight(live_view.as_ref(), name).into();
            counts["active"] = holder.is_some().into();
            workloads.insert(name.clone(), counts);
        }
    }
    let run = json!({ "active": holder.is_some(), "holder": holder });
    Ok(
        json!({ "plan": plan.name(), "planDigest": plan.digest().to_string(), "started": true, "run": run, "stages": stages, "workloads": workloads }),
    )
}

/// What the evidence at `path` attests, and how each awaited approver answers.
fn guide_of(
    plan: &plans::ValidatedPlan,
    dir: &StateDir,
    stage: &str,
    awaiting: &[String],
    path: &str,
) -> (Option<String>, Vec<String>) {
    let attests = std::fs::read(path)
        .ok()
        .and_then(|bytes| connectors::signoff::Envelope::from_json(&bytes).ok())
        .and_then(|env| connectors::signoff::check_evidence(&env, None).ok())
        .map(|(_, predicate)| guide::attests(&predicate));
    let asks = guide::asks(plan, dir, stage, awaiting, std::path::Path::new(path));
    (attests, asks)
}

/// `, 1.2 MiB in 3.4s (360 KiB/s)` from a step summary's bytes and seconds.
fn volume(sum: &serde_json::Value) -> String {
    let bytes = sum["bytes"].as_u64().unwrap_or(0);
    let seconds = sum["seconds"].as_f64().unwrap_or(0.0);
    let size = bytesize::ByteSize::b(bytes).display().iec();
    if seconds > 0.0 {
        let rate = bytesize::ByteSize::b((bytes as f64 / seconds) as u64)
            .display()
            .iec();
        format!(", {size} in {seconds:.1}s ({rate}/s)")
    } else {
        format!(", {size}")
    }
}

/// One line per shard of a sharded step: its range, where it stands, why it failed.
fn print_shards(fan_out: &serde_json::Value) {
    let Some(shards) = fan_out["shards"].as_array() else {
        return;
    };
    let done = shards.iter().filter(|s| s["status"] == "done").count();
    outln!(
        "       {} shard(s) on {} workers, {done} done (order {})",
        shards.len(),
        fan_out["executor"].as_str().unwrap_or_default(),
        fan_out["order"].as_str().unwrap_or_default()
    );
    for s in shards {
        let bound = |k: &str| {
            s[k].as_str()
                .map_or_else(|| "…".to_owned(), |v| format!("{v:?}"))
        };
        let error = s["error"]
            .as_str()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        outln!(
            "         shard {} ({}, {}]: {}{error}",
            s["index"],
            bound("after"),
            bound("through"),
            s["status"].as_str().unwrap_or_default()
        );
    }
}

fn print_text(r: &serde_json::Value) {
    outln!(
        "plan {} ({})",
        r["plan"].as_str().unwrap_or_default(),
        r["planDigest"].as_str().unwrap_or_default()
    );
    match r["run"]["holder"].as_str() {
        Some(holder) => outln!("a run is going ({holder})"),
        None => outln!("no run is going"),
    }
    for s in r["stages"].as_array().into_iter().flatten() {
        let attempt = s["attempt"]
            .as_u64()
            .map(|a| format!(", attempt {a}"))
            .unwrap_or_default();
        outln!(
            "stage {}: {}{attempt}",
            s["name"].as_str().unwrap_or_default(),
            s["status"].as_str().unwrap_or_default()
        );
        if let Some(d) = s["detail"].as_str() {
            outln!("    {d}");
        }
        if s["status"] == "interrupted" {
            outln!(
                "    the run that was {} stopped without finishing; `relocate run` resumes it",
                s["recorded"].as_str().unwrap_or_default()
            );
        }
        for (j, st) in s["steps"].as_array().into_iter().flatten().enumerate() {
            let w = st["workload"]
                .as_str()
                .map(|w| format!(" {w}"))
                .unwrap_or_default();
            let sum = &st["summary"];
            let counts = if sum.is_object() && st["kind"] == "copy" {
                format!(
                    " — {} copied, {} unchanged, {} failed{}",
                    sum["copied"],
                    sum["skipped"],
                    sum["failed"],
                    volume(sum)
                )
            } else if sum.is_object() && st["kind"] == "verify" {
                format!(
                    " — {} verified, {} failed{}",
                    sum["verified"],
                    sum["failed"],
                    volume(sum)
                )
            } else if st["live"].is_object() {
                live::step_text(st["kind"].as_str().unwrap_or_default(), &st["live"])
            } else {
                String::new()
            };
            outln!(
                "  {}. {}{w}: {}{counts}",
                j + 1,
                st["kind"].as_str().unwrap_or_default(),
                st["status"].as_str().unwrap_or_default()
            );
            if let Some(e) = st["error"].as_str() {
                outln!("       error: {e}");
            }
            print_shards(&st["fanOut"]);
        }
        if s["signoff"].is_object() {
            let g = &s["signoff"];
            let list = |k: &str| {
                g[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            let before_gate = matches!(s["recorded"].as_str(), Some("running" | "pending"));
            if before_gate {
                outln!(
                    "  sign-off ({} of [{}] needed): gate not reached yet",
                    g["threshold"],
                    list("approvers")
                );
            } else {
                outln!(
                    "  sign-off ({} needed): signed [{}], rejected [{}], awaiting [{}]",
                    g["threshold"],
                    list("signed"),
                    list("rejected"),
                    list("awaiting")
                );
            }
            if let (Some(path), false) = (
                s["evidencePath"].as_str(),
                g["asks"].as_array().is_none_or(Vec::is_empty),
            ) {
                outln!("    evidence: {path}");
                if let Some(attests) = g["attests"].as_str() {
                    outln!("    it attests: {attests}");
                }
                for ask in g["asks"].as_array().into_iter().flatten() {
                    outln!("    {}", ask.as_str().unwrap_or_default());
                }
            }
        }
    }
    if let Some(w) = r["workloads"].as_object() {
        for (name, c) in w {
            let in_flight = c["inFlight"].as_u64().unwrap_or(0);
            let announced = c["copying"].as_u64().unwrap_or(0).saturating_sub(in_flight);
            let unfinished = match (announced, c["active"] == true) {
                (0, _) => String::new(),
                (n, true) => format!(", {n} announced and not copied yet"),
                (n, false) => format!(", {n} interrupted (the next run copies them again)"),
            };
            outln!(
                "workload {name}: {} objects in manifest ({} bytes), {} verified, {in_flight} in flight{unfinished}, {} failed, {} bad at target",
                c["manifest_objects"],
                c["manifest_bytes"],
                c["verified"],
                c["failed"],
                c["bad"]
            );
        }
    }
}
