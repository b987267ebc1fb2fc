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
