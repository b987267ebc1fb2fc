//! The `relocate` command line, tested from outside with temp directories.

mod util;

use util::{Workspace, count, header, stderr, stdout, summary, tree};

#[test]
fn validation_errors_name_file_line_column_and_fix() {
    let ws = Workspace::new();
    let plan = header("bad").replace(
        "objects: { from: src, to: dst }",
        "objects: { from: src, to: nowhere }",
    ) + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n";
    ws.write("bad.yaml", plan);
    let out = ws.relocate(&["plan", "validate", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:16:31:"), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert!(err.contains(" — "), "a fix is suggested: {err}");
}

#[test]
fn a_copy_moves_every_byte_verifies_and_a_rerun_changes_nothing() {
    let ws = Workspace::new();
    ws.fill("src", 40, 3000);
    ws.write("src/deep/a/b/c/d/ü nicode & spaces.txt", "hello");
    ws.write("src/empty", "");
    ws.write(
        "plan.yaml",
        header("copy")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let s = summary(&out);
    assert_eq!(count(&s, "copy", "copied"), 42);
    assert_eq!(count(&s, "verify", "verified"), 42);
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));

    let again = ws.run_plan("json");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        summary(&again)["outcome"]
            .as_str()
            .unwrap()
            .starts_with("nothing-to-do"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn a_later_stage_copies_only_the_delta_and_prunes_deletions() {
    let ws = Workspace::new();
    ws.fill("src", 20, 1000);
    // Between the stages, a `run` step changes the source as live traffic would.
    let plan = header("delta")
        + r#"stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
  - name: cutover
    steps:
      - run: ["sh", "-c", "printf changed > src/d0/f00000.bin && printf new > src/new.txt && rm src/d1/f00001.bin"]
      - copy: data
      - verify: data
"#;
    ws.write("plan.yaml", plan);
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let steps = summary(&out)["steps"].as_array().unwrap().clone();
    let delta = steps
        .iter()
        .find(|s| s["stage"] == "cutover" && s["kind"] == "copy")
        .unwrap();
    assert_eq!(delta["copied"], 2, "{delta}");
    assert_eq!(delta["skipped"], 18, "{delta}");
    assert_eq!(delta["pruned"], 1, "{delta}");
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
}

#[test]
fn verify_catches_a_corrupted_target_object_and_names_it() {
    let ws = Workspace::new();
    ws.fill("src", 10, 500);
    let plan = header("corrupt")
        + r#"stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
  - name: audit
    steps:
      - run: ["sh", "-c", "printf X >> dst/d3/f00003.bin && printf extra > dst/extra.bin && rm dst/d4/f00004.bin"]
      - verify: data
"#;
    ws.write("plan.yaml", plan);
    let out = ws.run_plan("plain");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("mismatch") && text.contains("d3/f00003.bin"),
        "{text}"
    );
    assert!(
        text.contains("missing") && text.contains("d4/f00004.bin"),
        "{text}"
    );
    assert!(
        text.contains("unexpected") && text.contains("extra.bin"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("1 mismatched, 1 missing, 1 unexpected"),
        "{}",
        stderr(&out)
    );
    let status = ws.relocate(&["status", "plan.yaml", "--state-dir", "state"]);
    assert!(
        stdout(&status).contains("stage audit: failed"),
        "{}",
        stdout(&status)
    );
}

#[test]
fn a_failing_run_step_fails_the_stage_and_a_rerun_resumes() {
    let ws = Workspace::new();
    ws.fill("src", 5, 100);
    let plan = header("cmd")
        + r#"stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
  - name: cutover
    steps:
      - run: ["sh", "-c", "test -f go"]
"#;
    ws.write("plan.yaml", plan);
    let out = ws.relocate(&["run", "plan.yaml", "--state-dir", "state"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    ws.write("go", "");
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}", stderr(&out));
    let s = summary(&out);
    // The completed seed stage is not run again.
    assert_eq!(count(&s, "copy", "copied"), 0);
    assert!(
        s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["stage"] == "cutover"),
        "{s}"
    );
}

#[test]
fn keys_generate_writes_a_private_key_only_the_owner_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let public = ws.keypair("auditor");
    assert!(public.starts_with("ed25519:"), "{public}");
    let mode = std::fs::metadata(ws.join("auditor.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = ws.relocate(&["keys", "generate", "--out", "auditor"]);
    assert!(!again.status.success(), "overwriting a key must be refused");
}

#[test]
fn plan_schema_is_json_and_show_lists_what_would_move() {
    let ws = Workspace::new();
    let out = ws.relocate(&["plan", "schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json schema");
    assert!(schema["properties"]["stages"].is_object(), "{schema}");

    ws.fill("src", 7, 1024);
    ws.write(
        "plan.yaml",
        header("show")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    let out = ws.relocate(&["plan", "show", "plan.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("source has 7 objects (7.0 KiB); would copy 7"),
        "{}",
        stdout(&out)
    );
    assert!(!ws.join("dst").exists(), "show must not create the target");
    assert!(!ws.join(".relocate").exists(), "show must not create state");
}

/// The README's main job, run as a user would: the shipped quickstart plan, its demo
/// data, its demo auditor key and hook, end to end; then again, changing nothing.
#[test]
fn the_quickstart_runs_end_to_end_and_a_second_run_has_nothing_to_do() {
    let ws = Workspace::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans/examples");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&examples)
        .arg(ws.join("examples"))
        .status()
        .expect("cp");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(ws.join("examples/.demo-target"));
    let _ = std::fs::remove_dir_all(ws.join("examples/.relocate"));
    let out = ws.relocate(&[
        "run",
        "examples/quickstart.yaml",
        "--state-dir",
        "state",
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let s = summary(&out);
    assert_eq!(s["outcome"], "succeeded");
    let approvals = stdout(&out)
        .lines()
        .filter(|l| l.contains("\"approval_received\""))
        .count();
    assert_eq!(approvals, 2, "both gates signed by the demo auditor");
    assert!(
        stdout(&out).contains("switching traffic to zurich"),
        "the cutover step ran"
    );
    assert_eq!(
        tree(&ws.join("examples/demo/source")),
        tree(&ws.join("examples/.demo-target/zurich"))
    );

    let again = ws.relocate(&[
        "run",
        "examples/quickstart.yaml",
        "--state-dir",
        "state",
        "--output",
        "plain",
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("nothing-to-do"),
        "{}",
        stdout(&again)
    );
}

/// A secret typed literally on `verify --option` is refused and never echoed.
#[test]
fn verify_refuses_a_literal_secret_option_without_echoing_it() {
    let ws = Workspace::new();
    ws.write("sums", "");
    let out = ws.relocate(&[
        "verify",
        "--digests",
        "sums",
        "--store",
        "s3://bucket/",
        "--option",
        "secret_access_key=hunter2-literal",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("give secrets as ${env:NAME}"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2") && !stdout(&out).contains("hunter2"));
}

/// Pairs of `relocate run` started at the same moment on one fresh state directory:
/// one runs, the other is refused as locked (6) or finds nothing left to do (0);
/// never a half-created state ("operator.key already exists", "database is locked").
/// `RELOCATE_LOCK_PAIRS` sets how many pairs (default 60).
#[test]
fn finding_08_simultaneous_runs_on_a_fresh_state_exit_0_or_6() {
    use std::process::{Command, Stdio};
    let pairs: usize = std::env::var("RELOCATE_LOCK_PAIRS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let bin = assert_cmd::cargo::cargo_bin("relocate");
    let mut failures = Vec::new();
    for batch in (0..pairs).collect::<Vec<_>>().chunks(10) {
        let runs: Vec<_> = batch
            .iter()
            .map(|i| {
                let ws = Workspace::new();
                ws.fill("src", 2, 100);
                ws.write(
                    "plan.yaml",
                    header(&format!("race{i}"))
                        + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
                );
                let spawn = || {
                    Command::new(&bin)
                        .current_dir(ws.path())
                        .args(["run", "plan.yaml", "--state-dir", "state", "--output", "plain"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("spawn relocate")
                };
                let pair = (spawn(), spawn());
                (ws, pair)
            })
            .collect();
        for (ws, (a, b)) in runs {
            let (a, b) = (
                a.wait_with_output().expect("wait"),
                b.wait_with_output().expect("wait"),
            );
            let codes = (a.status.code(), b.status.code());
            let ok = |c: Option<i32>| matches!(c, Some(0 | 6));
            if !ok(codes.0) || !ok(codes.1) || codes == (Some(6), Some(6)) {
                failures.push(format!(
                    "{codes:?}: {} | {}",
                    stderr(&a).trim(),
                    stderr(&b).trim()
                ));
            }
            drop(ws);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {pairs} pairs did not exit 0 or 6:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Commands whose reader goes away (`relocate status --json | head`) stop quietly:
/// no panic, exit 141 as after SIGPIPE.
#[test]
fn finding_20_a_closed_stdout_ends_a_command_quietly() {
    use std::process::{Command, Stdio};
    let ws = Workspace::new();
    ws.fill("src", 2, 100);
    ws.write(
        "plan.yaml",
        header("pipe")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    assert!(ws.run_plan("plain").status.success());
    for args in [
        &["status", "plan.yaml", "--state-dir", "state", "--json"][..],
        &["status", "plan.yaml", "--state-dir", "state"],
        &[
            "plan",
            "show",
            "plan.yaml",
            "--state-dir",
            "state",
            "--offline",
        ],
        &["plan", "validate", "plan.yaml"],
        &["plan", "schema"],
    ] {
        // The reader is gone before the command starts: its first write meets a
        // closed pipe, whatever the timing (dropping a piped stdout after the spawn
        // raced a fast command that had already written into the pipe's buffer).
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let child = Command::new(assert_cmd::cargo::cargo_bin("relocate"))
            .current_dir(ws.path())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn relocate");
        let out = child.wait_with_output().expect("wait");
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} says nothing: {err}");
    }
}

#[test]
fn finding_14_a_run_step_that_outlives_its_timeout_is_killed_and_fails() {
    let ws = Workspace::new();
    ws.fill("src", 2, 100);
    ws.write(
        "plan.yaml",
        header("slow")
            + r#"stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
  - name: switch
    steps:
      - run: { command: ["sh", "-c", "echo started; exec sleep 60"], timeout: 1s }
"#,
    );
    let started = std::time::Instant::now();
    let out = ws.run_plan("plain");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let err = stderr(&out);
    assert!(
        err.contains("still running after the step's timeout of 1s"),
        "{err}"
    );
    assert!(stdout(&out).contains("started"), "{}", stdout(&out));
    // The old form still reads.
    let plan = std::fs::read_to_string(ws.join("plan.yaml")).expect("plan");
    ws.write(
        "plan.yaml",
        plan.replace(
            r#"{ command: ["sh", "-c", "echo started; exec sleep 60"], timeout: 1s }"#,
            r#"["sh", "-c", "echo done"]"#,
        ),
    );
    let out = ws.relocate(&["plan", "validate", "plan.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
