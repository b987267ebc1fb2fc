//! Sign-off gates through the real binary: approvals pass, forged, replayed and
//! rejected ones stop the run with exit code 5 and the reason.

mod util;

use util::{Workspace, header, stderr, stdout, summary};

/// A plan whose two stages are gated by `auditor` through `hook.sh`.
fn gated_plan(ws: &Workspace, pinned: &str) {
    let plan = header("gated")
        + &format!(
            r#"approvers:
  auditor:
    publicKey: "{pinned}"
    hook: {{ command: ["./hook.sh"] }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
    signoff: [auditor]
  - name: cutover
    steps: [ {{ copy: data }}, {{ verify: data }} ]
    signoff: [auditor]
"#
        );
    ws.write("plan.yaml", plan);
}

fn hook(ws: &Workspace, body: &str) {
    ws.script("hook.sh", &format!("set -e\n{body}"));
}

#[test]
fn an_approval_by_the_pinned_key_passes_every_gate() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    gated_plan(&ws, &public);
    hook(
        &ws,
        r#""$RELOCATE_BIN" approve --key auditor.key --evidence -"#,
    );
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let approvals = stdout(&out)
        .lines()
        .filter(|l| l.contains("\"approval_received\"") && l.contains("\"approve\""))
        .count();
    assert_eq!(approvals, 2, "{}", stdout(&out));
    let status = ws.relocate(&["status", "plan.yaml", "--state-dir", "state"]);
    assert!(
        stdout(&status).contains("signed [auditor]"),
        "{}",
        stdout(&status)
    );
    // The approver's tool shows what is being signed before signing it.
    let approve = ws.relocate(&[
        "approve",
        "--key",
        "auditor.key",
        "--evidence",
        "state/evidence/01-seed.attempt-1.intoto.json",
        "--operator-key",
        "state/operator.pub",
    ]);
    assert!(approve.status.success(), "{}", stderr(&approve));
    let shown = stderr(&approve);
    assert!(
        shown.contains("signing stage seed (attempt 1) of plan gated"),
        "{shown}"
    );
    assert!(
        shown.contains("data: 3 objects, 300 bytes, manifest root sha256:"),
        "{shown}"
    );
}

#[test]
fn an_approval_signed_by_another_key_is_refused() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    ws.keypair("impostor");
    gated_plan(&ws, &public);
    hook(
        &ws,
        r#""$RELOCATE_BIN" approve --key impostor.key --evidence -"#,
    );
    let out = ws.run_plan("plain");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("approval from auditor refused"), "{text}");
    assert!(
        text.to_lowercase().contains("key"),
        "the reason names the key problem: {text}"
    );
}

#[test]
fn an_approval_replayed_from_another_stage_is_refused() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    gated_plan(&ws, &public);
    hook(
        &ws,
        r#"if [ "$RELOCATE_STAGE" = seed ]; then "$RELOCATE_BIN" approve --key auditor.key --evidence - | tee seed-approval.json; else cat seed-approval.json; fi"#,
    );
    let out = ws.run_plan("plain");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("approved by auditor"),
        "the seed gate passed: {text}"
    );
    assert!(
        text.contains("approval from auditor refused") && text.contains("seed"),
        "{text}"
    );
}

#[test]
fn an_approval_of_an_earlier_attempt_is_refused_as_a_replay() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    gated_plan(&ws, &public);
    // First attempt: sign, keep the approval, but fail the hook. Second attempt: replay it.
    hook(
        &ws,
        r#"if [ -f saved.json ]; then cat saved.json; else "$RELOCATE_BIN" approve --key auditor.key --evidence - > saved.json; exit 1; fi"#,
    );
    let first = ws.relocate(&["run", "plan.yaml", "--state-dir", "state"]);
    assert_eq!(first.status.code(), Some(5), "{}", stderr(&first));
    let second = ws.run_plan("plain");
    assert_eq!(
        second.status.code(),
        Some(5),
        "{}\n{}",
        stdout(&second),
        stderr(&second)
    );
    let text = stdout(&second);
    assert!(text.contains("attempt 2"), "{text}");
    assert!(
        text.contains("approval from auditor refused") && text.contains("evidence"),
        "{text}"
    );
}

#[test]
fn a_rejection_stops_the_run_and_a_later_approval_resumes_it() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    gated_plan(&ws, &public);
    hook(
        &ws,
        r#""$RELOCATE_BIN" approve --key auditor.key --evidence - --reject --reason "not before the maintenance window""#,
    );
    let out = ws.run_plan("json");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(summary(&out)["outcome"], "rejected");
    assert!(
        stderr(&out).contains("not before the maintenance window"),
        "{}",
        stderr(&out)
    );

    hook(
        &ws,
        r#""$RELOCATE_BIN" approve --key auditor.key --evidence -"#,
    );
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}

/// Start `relocate run` in its own process group (as a shell runs a foreground job),
/// NDJSON events into `log`.
fn spawn_in_group(ws: &Workspace, log: &std::path::Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "json",
        ])
        .stdout(std::fs::File::create(log).expect("log"))
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn relocate")
}

/// What Ctrl-C at a terminal does: SIGINT to the whole foreground process group.
fn ctrl_c(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .expect("kill(1)");
    assert!(status.success());
}

fn wait_for(what: &str, deadline: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < deadline, "{what} never happened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn finding_16_ctrl_c_at_a_gate_wait_keeps_the_evidence_and_the_approvals() {
    use orchestrator::state::{Db, StageStatus};
    use std::time::Duration;

    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    let plan = header("gate-ctrl-c")
        + &format!(
            r#"approvers:
  auditor:
    publicKey: "{public}"
    hook: {{ file: {{}} }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
    signoff: [auditor]
  - name: cutover
    steps: [ {{ copy: data }}, {{ verify: data }} ]
"#
        );
    ws.write("plan.yaml", plan);
    let evidence_files = || {
        std::fs::read_dir(ws.join("state/evidence"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    // Three runs stopped while they wait at the gate; the last one by Ctrl-C twice.
    for round in 0..3 {
        let log = ws.join(&format!("run-{round}.ndjson"));
        let mut child = spawn_in_group(&ws, &log);
        wait_for("the gate wait", Duration::from_secs(60), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("\"gate_waiting\""))
        });
        std::thread::sleep(Duration::from_millis(200));
        ctrl_c(&child);
        if round == 2 {
            std::thread::sleep(Duration::from_millis(20));
            ctrl_c(&child);
        }
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(130), "round {round}");
        let db = Db::open_read_only(&ws.join("state/state.db")).expect("state");
        let seed = db.stage(0).expect("read").expect("seed recorded");
        assert_eq!(
            (seed.status, seed.attempt),
            (StageStatus::AwaitingSignoff, 1),
            "round {round}: the interrupted gate still awaits sign-off of attempt 1"
        );
        let evidence = db
            .record()
            .expect("record")
            .into_iter()
            .filter(|r| r.kind == "evidence")
            .count();
        assert_eq!(evidence, 1, "round {round}: one evidence for one attempt");
        assert_eq!(evidence_files(), 1, "round {round}");
    }
    // The auditor drops an approval while no run is going; the resumed run takes it.
    let approve = ws.relocate(&[
        "approve",
        "--key",
        "auditor.key",
        "--evidence",
        "state/evidence/01-seed.attempt-1.intoto.json",
        "--operator-key",
        "state/operator.pub",
        "--out",
        "state/approvals/seed/auditor.json",
    ]);
    assert!(approve.status.success(), "{}", stderr(&approve));
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let stale: Vec<_> = std::fs::read_dir(ws.join("state/approvals/seed"))
        .expect("drop zone")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("stale"))
        .collect();
    assert!(
        stale.is_empty(),
        "a valid approval was set aside: {stale:?}"
    );
    let export = ws.relocate(&[
        "record",
        "export",
        "plan.yaml",
        "--state-dir",
        "state",
        "--out",
        "record.jsonl",
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    let verify = ws.relocate(&["verify", "record.jsonl", "--plan", "plan.yaml"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&verify),
        stderr(&verify)
    );
}

#[test]
fn finding_07_two_approvers_pinning_one_key_cannot_make_an_all_of_2_gate() {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    let plan = header("same-key")
        + &format!(
            r#"approvers:
  auditor:
    publicKey: "{public}"
    hook: {{ command: ["./hook.sh"] }}
  second:
    publicKey: "{public}"
    hook: {{ command: ["./hook.sh"] }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
    signoff: [auditor, second]
"#
        );
    ws.write("plan.yaml", plan);
    hook(
        &ws,
        r#""$RELOCATE_BIN" approve --key auditor.key --evidence -"#,
    );
    for args in [
        &["plan", "validate", "plan.yaml"][..],
        &["run", "plan.yaml", "--state-dir", "state"],
    ] {
        let out = ws.relocate(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "plan.yaml:22:16: approver `second` pins the same public key as approver `auditor`"
            ),
            "{}",
            stderr(&out)
        );
    }
    assert!(!ws.join("dst").exists(), "nothing moved");
}
