//! `relocate status PLAN`: where the move stands, from the state database, read-only
//! (safe while a run is writing: SQLite's WAL lets readers in).

use std::path::PathBuf;

use serde_json::json;

use super::{StateArgs, load_plan};
use crate::cli::output::outln;
use crate::exit;
use crate::state::{Db, StageStatus, StateDir};

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
}

/// Print the status.
pub(crate) fn status(args: &StatusArgs) -> anyhow::Result<u8> {
    let plan = load_plan(&args.plan)?;
    let dir = StateDir::for_plan(args.state.state_dir.as_deref(), plan.name());
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
    let db = Db::open_read_only(&dir.db_path())?;
    let report = build(&plan, &db)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(exit::SUCCESS)
}

fn build(plan: &plans::ValidatedPlan, db: &Db) -> anyhow::Result<serde_json::Value> {
    let record = db.record()?;
    let mut stages = Vec::new();
    for (i, stage) in plan.plan().stages.iter().enumerate() {
        let rec = db.stage(i)?;
        let status = rec.as_ref().map_or("pending", |r| r.status.as_str());
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
            steps.push(json!({
                "kind": step.kind(),
                "workload": step.workload(),
                "status": s.as_ref().map_or("pending", |s| s.status.as_str()),
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
            json!({ "threshold": signoff.threshold(), "approvers": signoff.approvers(), "signed": signed, "rejected": rejected,
                    "awaiting": if rec.as_ref().is_some_and(|r| r.status == StageStatus::Completed) { Vec::new() } else { awaiting } , "evidence": digest })
        });
        stages.push(json!({
            "name": stage.name,
            "status": status,
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
            workloads.insert(
                name.clone(),
                serde_json::to_value(db.workload_counts(name)?)?,
            );
        }
    }
    Ok(
        json!({ "plan": plan.name(), "planDigest": plan.digest().to_string(), "started": true, "stages": stages, "workloads": workloads }),
    )
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
        let bound = |k: &str| s[k].as_str().map_or_else(|| "…".to_owned(), |v| format!("{v:?}"));
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
        for (j, st) in s["steps"].as_array().into_iter().flatten().enumerate() {
            let w = st["workload"]
                .as_str()
                .map(|w| format!(" {w}"))
                .unwrap_or_default();
            let sum = &st["summary"];
            let counts = if sum.is_object() && st["kind"] == "copy" {
                format!(
                    " — {} copied, {} unchanged, {} failed",
                    sum["copied"], sum["skipped"], sum["failed"]
                )
            } else if sum.is_object() && st["kind"] == "verify" {
                format!(" — {} verified, {} failed", sum["verified"], sum["failed"])
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
            outln!(
                "  sign-off ({} needed): signed [{}], rejected [{}], awaiting [{}]",
                g["threshold"],
                list("signed"),
                list("rejected"),
                list("awaiting")
            );
        }
    }
    if let Some(w) = r["workloads"].as_object() {
        for (name, c) in w {
            outln!(
                "workload {name}: {} objects in manifest ({} bytes), {} verified, {} in flight, {} failed, {} bad at target",
                c["manifest_objects"],
                c["manifest_bytes"],
                c["verified"],
                c["copying"],
                c["failed"],
                c["bad"]
            );
        }
    }
}
