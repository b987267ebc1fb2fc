//! The operator's and the auditor's chairs (issue 17), driven through the real binary:
//! what fails early, where the state is found, what `status` says, what a gate shows,
//! and the command line's edges.

mod util;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use util::{Workspace, header, stderr, stdout};

/// `relocate ARGS` started in `dir`, NDJSON to `log`, stderr to `log.err`.
fn spawn(dir: &Path, args: &[&str], log: &Path) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(dir)
        .args(args)
        .stdout(std::fs::File::create(log).expect("log"))
        .stderr(std::fs::File::create(log.with_extension("err")).expect("err log"))
        .spawn()
        .expect("spawn relocate")
}

fn wait_for(what: &str, deadline: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait for a child with a deadline; kill it and fail when it does not end.
fn finish(mut child: Child, deadline: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            panic!("relocate did not finish in {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plan whose `seed` stage is gated by `auditor` through the file hook.
fn gated_plan(ws: &Workspace, name: &str) -> String {
    let public = ws.keypair("auditor");
    header(name)
        + &format!(
            r#"approvers:
  auditor:
    publicKey: "{public}"
    hook: {{ file: {{}} }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
    signoff: [auditor]
"#
        )
}

// ---- 4. Nothing fails late that could fail early -------------------------------------

#[test]
fn missing_hook_and_run_programs_stop_the_run_before_anything_moves() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    ws.write("switch-dns.sh", "#!/bin/sh\necho switched\n"); // not executable
    let plan = header("early")
        + &format!(
            r#"approvers:
  auditor:
    publicKey: "{public}"
    hook: {{ command: ["./auditor-hook.sh"] }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
    signoff: [auditor]
  - name: cutover
    steps: [ {{ run: ["./switch-dns.sh"] }}, {{ run: ["no-such-program-anywhere"] }} ]
"#
        );
    ws.write("plan.yaml", plan);

    let show = ws.relocate(&["plan", "show", "plan.yaml", "--offline"]);
    assert_eq!(show.status.code(), Some(1), "{}", stdout(&show));
    let text = stdout(&show);
    for expected in [
        "hook program `./auditor-hook.sh`",
        "does not exist",
        "program `./switch-dns.sh`",
        "is not executable",
        "`no-such-program-anywhere` is not found on PATH",
    ] {
        assert!(
            text.contains(expected),
            "plan show lacks {expected:?}:\n{text}"
        );
    }

    let out = ws.run_plan("plain");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("pre-flight") && err.contains("./auditor-hook.sh"),
        "{err}"
    );
    assert!(
        !ws.join("dst").exists(),
        "nothing may be copied before the pre-flight passes"
    );

    // Fixed, the same checks pass.
    ws.script("auditor-hook.sh", "exit 1");
    ws.script("switch-dns.sh", "echo switched");
    let plan = std::fs::read_to_string(ws.join("plan.yaml"))
        .expect("plan")
        .replace(", { run: [\"no-such-program-anywhere\"] }", "");
    ws.write("plan.yaml", plan);
    let show = ws.relocate(&["plan", "show", "plan.yaml", "--offline"]);
    assert!(show.status.success(), "{}", stdout(&show));
    assert!(
        stdout(&show).contains("pre-flight: every program"),
        "{}",
        stdout(&show)
    );
}

#[test]
fn a_missing_secret_file_stops_the_run_before_anything_moves() {
    let ws = Workspace::new();
    ws.fill("src", 2, 10);
    let plan = header("secret").replace(
        r#"dst: { region: zurich, url: "file://./dst/" }"#,
        r#"dst: { region: zurich, url: "s3://bucket/zurich/", options: { endpoint: "http://127.0.0.1:9", allow_http: "true", access_key_id: "${file:secrets/zrh-id}", secret_access_key: "${file:secrets/zrh-token}" } }"#,
    ) + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n";
    ws.write("plan.yaml", plan);
    ws.write("secrets/zrh-id", "AKIA");
    let out = ws.run_plan("plain");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("zrh-id, which"),
        "the present file is fine: {err}"
    );
    assert!(
        err.contains("secret file") && err.contains("zrh-token") && err.contains("does not exist"),
        "{err}"
    );
    assert!(
        err.contains("pre-flight") && !err.contains("127.0.0.1"),
        "stopped before any store is contacted: {err}"
    );
}

#[test]
fn garbage_and_wrong_key_files_in_the_drop_zone_are_set_aside_and_the_gate_waits_on() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let plan = gated_plan(&ws, "dropzone");
    ws.keypair("mallory");
    ws.write("plan.yaml", plan);
    let log = ws.join("run.ndjson");
    let child = spawn(
        ws.path(),
        &[
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "json",
        ],
        &log,
    );
    wait_for("the gate wait", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("\"gate_waiting\""))
    });
    let evidence = "state/evidence/01-seed.attempt-1.intoto.json";
    let drop = "state/approvals/seed/auditor.json";
    let rejected = || {
        std::fs::read_dir(ws.join("state/approvals/seed"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".rejected"))
                    .count()
            })
            .unwrap_or(0)
    };
    // Anyone who can write to the drop zone: garbage first, then a forged signature.
    ws.write(drop, "not an approval");
    wait_for("garbage set aside", Duration::from_secs(30), || {
        rejected() == 1
    });
    let forged = ws.relocate(&[
        "approve",
        "--key",
        "mallory.key",
        "--evidence",
        evidence,
        "--operator-key",
        "state/operator.pub",
        "--out",
        drop,
    ]);
    assert!(forged.status.success(), "{}", stderr(&forged));
    wait_for("forgery set aside", Duration::from_secs(30), || {
        rejected() == 2
    });
    assert!(
        std::fs::read_to_string(&log)
            .expect("log")
            .contains("set aside"),
        "the refusal is reported"
    );
    // The run is still waiting; the real approval passes the gate.
    let real = ws.relocate(&[
        "approve",
        "--key",
        "auditor.key",
        "--evidence",
        evidence,
        "--operator-key",
        "state/operator.pub",
        "--out",
        drop,
    ]);
    assert!(real.status.success(), "{}", stderr(&real));
    let status = finish(child, Duration::from_secs(60));
    assert!(
        status.success(),
        "{}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
    );
    assert_eq!(util::tree(&ws.join("src")), util::tree(&ws.join("dst")));
}

// ---- 5. State found where the plan is --------------------------------------------------

fn plan_in_subdir(ws: &Workspace, name: &str) {
    ws.fill("plans/src", 3, 50);
    ws.write(
        "plans/move.yaml",
        header(name) + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    std::fs::create_dir_all(ws.join("elsewhere")).expect("mkdir");
}

#[test]
fn the_same_plan_run_from_another_directory_finds_its_state() {
    let ws = Workspace::new();
    plan_in_subdir(&ws, "wherever");
    let out = ws.relocate(&["run", "plans/move.yaml", "--output", "plain"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        ws.join("plans/.relocate/wherever/state.db").exists(),
        "state beside the plan"
    );
    assert!(
        !ws.join(".relocate").exists(),
        "no state in the current directory"
    );

    let elsewhere = ws.join("elsewhere");
    let status = Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(&elsewhere)
        .args(["status", "../plans/move.yaml"])
        .output()
        .expect("status");
    assert!(
        stdout(&status).contains("stage seed: completed"),
        "{}",
        stdout(&status)
    );
    let again = Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(&elsewhere)
        .args(["run", "../plans/move.yaml", "--output", "json"])
        .output()
        .expect("run");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        util::summary(&again)["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("nothing-to-do")),
        "{}",
        stdout(&again)
    );
    assert!(
        !elsewhere.join(".relocate").exists(),
        "never a second state"
    );
}

#[test]
fn an_old_state_in_the_current_directory_is_used_with_a_notice() {
    let ws = Workspace::new();
    plan_in_subdir(&ws, "legacy");
    // Where earlier versions kept it: ./.relocate/<name> under the current directory.
    let out = ws.relocate(&[
        "run",
        "plans/move.yaml",
        "--state-dir",
        ".relocate/legacy",
        "--output",
        "plain",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = ws.relocate(&["status", "plans/move.yaml"]);
    assert!(
        stdout(&status).contains("stage seed: completed"),
        "{}",
        stdout(&status)
    );
    let notice = stderr(&status);
    assert!(
        notice.contains("notice") && notice.contains("mv .relocate/legacy"),
        "{notice}"
    );
    assert!(
        !ws.join("plans/.relocate").exists(),
        "no second state started"
    );
    // --state-dir still wins.
    let explicit = ws.relocate(&["status", "plans/move.yaml", "--state-dir", "nowhere"]);
    assert!(
        stdout(&explicit).contains("not started"),
        "{}",
        stdout(&explicit)
    );
}

// ---- 2. `status` tells the truth; 6. a guided gate -------------------------------------

fn status_text(ws: &Workspace) -> String {
    stdout(&ws.relocate(&["status", "plan.yaml", "--state-dir", "state"]))
}

#[test]
fn status_tells_the_truth_before_at_and_after_a_killed_gate_and_guides_the_approver() {
    let ws = Workspace::new();
    ws.fill("src", 4, 1000);
    ws.script(
        "hold.sh",
        "touch holding\nwhile [ ! -f go ]; do sleep 0.05; done",
    );
    let plan = gated_plan(&ws, "truth").replace(
        "steps: [ { copy: data }, { verify: data } ]",
        "steps: [ { copy: data }, { verify: data }, { run: [\"./hold.sh\"] } ]",
    );
    ws.write("plan.yaml", plan);
    let log = ws.join("run.log");
    let mut child = spawn(
        ws.path(),
        &[
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ],
        &log,
    );
    wait_for("the held step", Duration::from_secs(60), || {
        ws.join("holding").exists()
    });

    // Steps still running: nobody is awaited yet.
    let text = status_text(&ws);
    assert!(text.contains("a run is going (pid"), "{text}");
    assert!(text.contains("stage seed: running"), "{text}");
    assert!(
        text.contains("sign-off (1 of [auditor] needed): gate not reached yet")
            && !text.contains("awaiting [auditor]"),
        "not at the gate yet:\n{text}"
    );
    assert!(
        text.contains("4 copied, 0 unchanged, 0 failed, 3.9 KiB"),
        "{text}"
    );
    assert!(text.contains("4 verified, 0 failed, 3.9 KiB"), "{text}");

    // At the gate: the evidence, what it attests, the exact commands.
    ws.write("go", "");
    wait_for("the gate", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("sign-off: waiting"))
    });
    let text = status_text(&ws);
    assert!(text.contains("stage seed: awaiting-signoff"), "{text}");
    assert!(text.contains("awaiting [auditor]"), "{text}");
    assert!(
        text.contains("evidence: ") && text.contains("01-seed.attempt-1.intoto.json"),
        "{text}"
    );
    assert!(
        text.contains("it attests: Evidence of stage seed (attempt 1) of plan truth")
            && text.contains("4 objects (3.9 KiB) of workload data")
            && text.contains("Merkle root"),
        "{text}"
    );
    let drop = ws.join("state/approvals/seed/auditor.json");
    let approve_line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("auditor approves with:"))
        .unwrap_or_else(|| panic!("no approve command in:\n{text}"))
        .trim()
        .to_owned();
    assert!(
        approve_line.ends_with(&format!("--out {}", drop.display())),
        "{approve_line}"
    );
    assert!(
        text.contains("auditor rejects with:") && text.contains("--reject"),
        "{text}"
    );
    let waiting = std::fs::read_to_string(&log).expect("log");
    assert!(
        waiting.contains(&approve_line),
        "the waiting line shows it too:\n{waiting}"
    );

    // kill -9: the rows still say awaiting-signoff, but no run holds the state.
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let text = status_text(&ws);
    assert!(text.contains("no run is going"), "{text}");
    assert!(text.contains("stage seed: interrupted"), "{text}");
    assert!(text.contains("`relocate run` resumes it"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(
        &ws.relocate(&["status", "plan.yaml", "--state-dir", "state", "--json"])
            .stdout,
    )
    .expect("json");
    assert_eq!(json["run"]["active"], false);
    assert_eq!(json["stages"][0]["status"], "interrupted");
    assert_eq!(json["stages"][0]["recorded"], "awaiting-signoff");

    // The command shown is the command that works.
    let approve = Command::new("sh")
        .current_dir(ws.path())
        .args([
            "-c",
            &approve_line
                .replacen(
                    "relocate",
                    &assert_cmd::cargo::cargo_bin("relocate")
                        .display()
                        .to_string(),
                    1,
                )
                .replace("<your private key>", "auditor.key"),
        ])
        .output()
        .expect("sh");
    assert!(approve.status.success(), "{}", stderr(&approve));
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(status_text(&ws).contains("stage seed: completed"));
}

#[test]
fn status_watch_redraws_in_place() {
    let ws = Workspace::new();
    ws.fill("src", 2, 10);
    ws.write(
        "plan.yaml",
        header("watched")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    assert!(ws.run_plan("plain").status.success());
    let log = ws.join("watch.log");
    let mut child = spawn(
        ws.path(),
        &[
            "status",
            "plan.yaml",
            "--state-dir",
            "state",
            "--watch",
            "1",
        ],
        &log,
    );
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().expect("stop watching");
    child.wait().expect("reap");
    let text = std::fs::read_to_string(&log).expect("log");
    let redraws = text.matches("\x1b[H\x1b[2J").count();
    assert!(redraws >= 2, "{redraws} redraws:\n{text}");
    assert!(text.matches("stage seed: completed").count() >= 2, "{text}");
}

// ---- 7. `relocate evidence show FILE` ---------------------------------------------------

#[test]
fn evidence_show_reads_a_sharded_stage_in_words_and_approve_show_says_the_same() {
    let ws = Workspace::new();
    ws.fill("src", 30, 200);
    let public = ws.keypair("auditor");
    ws.script(
        "auditor-hook.sh",
        "exec \"$RELOCATE_BIN\" approve --key auditor.key --evidence -",
    );
    let plan = header("readable").replace(
        "    objects: { from: src, to: dst }\n",
        "    objects: { from: src, to: dst, shards: 2, workers: { local: { parallelism: 2 } } }\n",
    ) + &format!(
        r#"approvers:
  auditor:
    publicKey: "{public}"
    hook: {{ command: ["./auditor-hook.sh"] }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
    signoff: [auditor]
  - name: again
    steps: [ {{ copy: data }}, {{ verify: data }} ]
    signoff: [auditor]
"#
    );
    ws.write("plan.yaml", plan);
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let file = "state/evidence/02-again.attempt-1.intoto.json";

    let shown = ws.relocate(&[
        "evidence",
        "show",
        file,
        "--operator-key",
        "state/operator.pub",
    ]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    let operator_id = {
        let pubkey = std::fs::read_to_string(ws.join("state/operator.pub")).expect("pub");
        let key: connectors::signoff::keys::PublicKey = pubkey.trim().parse().expect("key");
        key.key_id()
    };
    for expected in [
        "plan      readable (sha256:",
        "stage     again (stage 2, attempt 1)",
        "move      moscow → zurich",
        "data: 30 objects, 5.9 KiB (6000 bytes)",
        "Merkle root (sha256)",
        "1. copy data — succeeded: 0 copied, 30 unchanged, 0 failed",
        "2. verify data — succeeded: 30 verified, 0 failed",
        "shard 0 (…, ",
        "shard 1 (",
        "previous  sha256:",
        &format!("signed by pinned operator key {operator_id}"),
        "what approving means:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    // Unpinned, it says so; pinned to another key, it refuses.
    let unpinned = stdout(&ws.relocate(&["evidence", "show", file]));
    assert!(unpinned.contains("signature NOT checked"), "{unpinned}");
    let wrong = ws.relocate(&["evidence", "show", file, "--operator-key", "auditor.pub"]);
    assert_eq!(wrong.status.code(), Some(5), "{}", stdout(&wrong));

    // `approve --show` prints the same rendering before signing.
    let approve = ws.relocate(&[
        "approve",
        "--key",
        "auditor.key",
        "--evidence",
        file,
        "--operator-key",
        "state/operator.pub",
        "--show",
    ]);
    assert!(approve.status.success(), "{}", stderr(&approve));
    let before = stderr(&approve);
    let rendered: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("signature"))
        .collect();
    assert!(
        before.contains(&rendered.join("\n")),
        "approve --show differs:\n{before}"
    );
}

// ---- 9. CLI rough edges -----------------------------------------------------------------

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let ws = Workspace::new();
    // A world-readable secret file: `plan validate` warns through the log.
    let plan = header("plain-stderr").replace(
        r#"dst: { region: zurich, url: "file://./dst/" }"#,
        r#"dst: { region: zurich, url: "s3://bucket/zurich/", options: { access_key_id: "${env:ZRH_ID}", secret_access_key: "${file:zrh-secret}" } }"#,
    ) + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n";
    ws.write("plan.yaml", plan);
    ws.write("zrh-secret", "s3cr3t");
    let out = ws.relocate(&["plan", "validate", "plan.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("WARN") && err.contains("readable by every user"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err:?}");
}

#[test]
fn an_error_is_one_line_with_its_cause_not_repeated() {
    let ws = Workspace::new();
    ws.fill("src", 2, 10);
    ws.write(
        "plan.yaml",
        header("oneline")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    ws.write("state/state.db", vec![0xAB; 8192]);
    let out = ws.relocate(&["status", "plan.yaml", "--state-dir", "state"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("relocate: error: ") && !err.contains("caused by"),
        "{err}"
    );
    assert!(err.contains("state.db"), "the cause names the file: {err}");
}

#[test]
fn rollback_says_when_there_is_nothing_to_roll_back_or_no_such_stage() {
    let ws = Workspace::new();
    ws.fill("src", 2, 10);
    ws.write(
        "plan.yaml",
        header("undo")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    let out = ws.relocate(&[
        "rollback",
        "plan.yaml",
        "--stage",
        "sead",
        "--state-dir",
        "state",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("has no stage `sead`") && err.contains("its stages are: seed"),
        "{err}"
    );
    assert!(!err.contains("step 0"), "{err}");
    let out = ws.relocate(&[
        "rollback",
        "plan.yaml",
        "--stage",
        "seed",
        "--state-dir",
        "state",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stage seed has nothing to roll back"),
        "{}",
        stderr(&out)
    );
    assert!(
        !ws.join("state").exists(),
        "a rollback with nothing to do creates no state"
    );
}

#[test]
fn json_events_carry_a_timestamp_and_one_based_stage_and_step_numbers() {
    let ws = Workspace::new();
    ws.fill("src", 3, 10);
    ws.write(
        "plan.yaml",
        header("numbered")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n  - name: again\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    for e in &events {
        let ts = e["ts"].as_str().unwrap_or_else(|| panic!("no ts: {e}"));
        chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|_| panic!("bad ts {ts}"));
    }
    let numbered = |event: &str, stage: &str| -> Vec<&serde_json::Value> {
        events
            .iter()
            .filter(|e| e["event"] == event && e["stage"] == stage)
            .collect()
    };
    assert_eq!(numbered("stage_started", "again")[0]["stageNumber"], 2);
    assert_eq!(numbered("step_started", "seed")[0]["stageNumber"], 1);
    let steps: Vec<(u64, u64)> = numbered("step_started", "again")
        .iter()
        .map(|e| {
            (
                e["stageNumber"].as_u64().expect("n"),
                e["step"].as_u64().expect("step"),
            )
        })
        .collect();
    assert_eq!(steps, [(2, 1), (2, 2)]);
    let summary = util::summary(&out);
    let last = summary["steps"]
        .as_array()
        .and_then(|s| s.last())
        .expect("steps");
    assert_eq!(
        (last["stageNumber"].as_u64(), last["step"].as_u64()),
        (Some(2), Some(2))
    );
    // A rerun skips both stages, still numbered.
    let again = ws.run_plan("json");
    let skipped: Vec<serde_json::Value> = stdout(&again)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "stage_skipped")
        .map(|e| e["stageNumber"].clone())
        .collect();
    assert_eq!(skipped, [1, 2]);
}

#[test]
fn the_operator_falls_back_to_the_os_user_when_user_is_unset() {
    let ws = Workspace::new();
    ws.fill("src", 2, 10);
    let public = ws.keypair("auditor");
    ws.script(
        "auditor-hook.sh",
        "exec \"$RELOCATE_BIN\" approve --key auditor.key --evidence -",
    );
    ws.write(
        "plan.yaml",
        header("who")
            + &format!(
                "approvers:\n  auditor:\n    publicKey: \"{public}\"\n    hook: {{ command: [\"./auditor-hook.sh\"] }}\nstages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n    signoff: [auditor]\n"
            ),
    );
    let out = Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let me = Command::new("id").arg("-un").output().expect("id -un");
    let me = String::from_utf8_lossy(&me.stdout).trim().to_owned();
    let shown = stdout(&ws.relocate(&[
        "evidence",
        "show",
        "state/evidence/01-seed.attempt-1.intoto.json",
    ]));
    assert!(
        shown.contains(&format!("operator  {me}@")),
        "expected {me}@…:\n{shown}"
    );
}

// ---- 10. completions, man page, top-level help ----------------------------------------

#[test]
fn completions_man_page_and_a_help_that_says_what_relocate_is() {
    let ws = Workspace::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef relocate"),
        ("fish", "complete -c relocate"),
    ] {
        let out = ws.relocate(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(
            text.contains("evidence") && text.contains("status"),
            "{shell} lacks commands"
        );
    }
    let bad = ws.relocate(&["completions", "cmd.exe"]);
    assert_eq!(bad.status.code(), Some(2));

    let man = stdout(&ws.relocate(&["man"]));
    assert!(
        man.starts_with(".ie") || man.contains(".TH relocate"),
        "{man}"
    );
    assert!(
        man.contains("relocate\\-evidence") || man.contains("evidence"),
        "{man}"
    );

    let help = stdout(&ws.relocate(&["--help"]));
    assert!(
        help.contains("Move object stores and Kubernetes workloads between regions"),
        "{help}"
    );
    assert!(
        help.contains("Examples:") && help.contains("relocate run move.yaml"),
        "{help}"
    );
    let short = stdout(&ws.relocate(&["-h"]));
    assert!(
        short
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("Move object stores")),
        "{short}"
    );
}

// ---- 12. the Zurich example ships what it names; DNS switches after approval ----------

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans/examples")
}

#[test]
fn the_zurich_example_switches_dns_only_after_the_approval_of_the_verified_wave() {
    let plan = plans::load(&examples().join("zurich-relocation.yaml")).expect("valid example");
    let stages = &plan.plan().stages;
    let waves = [
        ("eu", "telemetry-europe"),
        ("na", "telemetry-north-america"),
        ("apac", "telemetry-asia-pacific"),
    ];
    for (geo, workload) in waves {
        let at = stages
            .iter()
            .position(|s| {
                s.steps.iter().any(
                    |st| matches!(st, plans::Step::Run(r) if r.argv().iter().any(|a| a == geo)),
                )
            })
            .unwrap_or_else(|| panic!("no DNS switch for {geo}"));
        let switch = &stages[at];
        assert_eq!(
            switch.steps.len(),
            1,
            "the switch of {geo} is a stage of its own"
        );
        let before = &stages[at - 1];
        assert!(
            before
                .steps
                .iter()
                .any(|s| matches!(s, plans::Step::Verify(w) if w == workload)),
            "stage {} before the {geo} switch verifies {workload}",
            before.name
        );
        assert!(
            before
                .signoff
                .as_ref()
                .is_some_and(|s| s.approvers().iter().any(|a| a == "swiss-auditor")),
            "the auditor approves {} before the {geo} switch",
            before.name
        );
    }
}

#[test]
fn the_zurich_example_ships_its_hook_and_scripts_and_shows_each_selection() {
    let ws = Workspace::new();
    let plan = examples().join("zurich-relocation.yaml");
    let show = ws.relocate(&["plan", "show", &plan.display().to_string(), "--offline"]);
    let text = stdout(&show);
    for (include, exclude) in [
        ("`customers/eu/**`", "`**/*.tmp`"),
        ("`customers/na/**`", "`**/*.tmp`"),
        ("`customers/apac/**`", "`**/*.tmp`"),
    ] {
        assert!(
            text.contains(&format!("keys: include {include}, exclude {exclude}")),
            "{include}:\n{text}"
        );
    }
    // The database's volume steps say what they move and whether the copy is
    // point-in-time, the deploy that claims are restored before anything starts.
    for needle in [
        "copy analysis-db: pack every claim of msk-k8s/analysis",
        "from `csi-snapclass` snapshots (point-in-time)",
        "the source is frozen: the final, point-in-time copy",
        "deploy analysis-db: create the claims at zrh-k8s/analysis, restore each from relocate-staging",
        "verify analysis-db: re-read every claim at zrh-k8s/analysis",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
    // Only the secret, which is the user's to provide, is missing.
    let problems: Vec<&str> = text.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(problems.len(), 1, "{text}");
    assert!(problems[0].contains("secrets/zrh-s3-secret"), "{text}");
    for (script, args) in [
        ("scripts/switch-ingest-dns.sh", vec!["eu", "zurich"]),
        ("scripts/retire-source.sh", vec!["--region", "moscow"]),
    ] {
        let out = Command::new(examples().join(script))
            .args(&args)
            .env("DRY_RUN", "1")
            .output()
            .expect(script);
        assert!(out.status.success(), "{script}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with("DRY_RUN: would"),
            "{script}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn the_zurich_example_auditor_hook_signs_a_real_gate() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    let hook = examples().join("hooks/swiss-auditor.sh");
    ws.write(
        "plan.yaml",
        header("example-hook")
            + &format!(
                "approvers:\n  swiss-auditor:\n    publicKey: \"{public}\"\n    hook: {{ command: [\"{}\"], timeout: 1m }}\nstages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n    signoff: [swiss-auditor]\n",
                hook.display()
            ),
    );
    let out = Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .env("SWISS_AUDITOR_KEY", ws.join("auditor.key"))
        .env_remove("AUDITOR_SSH")
        .env_remove("DRY_RUN")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("swiss-auditor"), "{}", stdout(&out));
}
