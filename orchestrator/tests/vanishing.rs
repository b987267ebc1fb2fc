//! What moves and what could vanish, tried as a user would (issue 13, findings 4, 5, 6,
//! 10, 15 and 19): files object_store hides, links in a source and in a target, a
//! prune the target refuses, loops between sibling links, and a fresh state over a
//! finished target. Nothing may disappear or be overwritten without a word.

mod util;

use std::os::unix::fs::symlink;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use util::{Workspace, count, header, stderr, stdout, summary, tree};

const COPY_VERIFY: &str =
    "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n";

/// A plan whose workload carries `extra` keys (e.g. `symlinks: follow`).
fn plan(name: &str, extra: &str) -> String {
    let objects = if extra.is_empty() {
        "objects: { from: src, to: dst }".to_owned()
    } else {
        format!("objects: {{ from: src, to: dst, {extra} }}")
    };
    header(name).replace("objects: { from: src, to: dst }", &objects) + COPY_VERIFY
}

fn both(out: &std::process::Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

/// The copy step's counts in the signed evidence of stage `seed`.
fn evidence_copy_detail(ws: &Workspace) -> serde_json::Value {
    let text = std::fs::read_to_string(ws.join("state/evidence/01-seed.attempt-1.intoto.json"))
        .expect("evidence");
    let envelope: serde_json::Value = serde_json::from_str(&text).expect("envelope");
    let payload = STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    let statement: serde_json::Value = serde_json::from_slice(&payload).expect("statement");
    statement["predicate"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "copy")
        .expect("copy step")["detail"]
        .clone()
}

/// Finding 4: object_store's local store hides `name#digits` (its staging files), so
/// the copy said "1 copied", verify passed and the file was in no manifest. Now the
/// copy fails naming it, and a planted one at the target is seen by verify.
#[test]
fn finding_04_hash_digit_names_are_named_not_skipped() {
    let ws = Workspace::new();
    ws.write("src/a.txt", "a");
    ws.write("src/x#123", "hidden by object_store");
    ws.write("plan.yaml", plan("hashes", ""));
    let out = ws.run_plan("plain");
    assert!(!out.status.success(), "{}", both(&out));
    let text = both(&out);
    assert!(
        text.contains("x#123") && text.contains("staging file"),
        "the step fails naming the file: {text}"
    );

    // A clean move, then a file of that shape planted at the target: the run's verify
    // and the auditor's `verify --target` both see it.
    std::fs::remove_file(ws.join("src/x#123")).expect("rm");
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    let export = ws.relocate(&[
        "record",
        "export",
        "plan.yaml",
        "--state-dir",
        "state",
        "--out",
        "move.intoto.jsonl",
    ]);
    assert!(export.status.success(), "{}", both(&export));
    ws.write("dst/x#123", "planted");
    let out = ws.relocate(&[
        "verify",
        "move.intoto.jsonl",
        "--plan",
        "plan.yaml",
        "--target",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", both(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with('✘') && l.contains("x#123")),
        "{}",
        both(&out)
    );
}

/// Finding 5: with `dst/sub` replaced by a link to another directory, the copy wrote
/// there and the delta's prune deleted a file outside the target. Now any link below
/// the target's root is refused, naming it, and nothing outside is touched.
#[test]
fn finding_05_a_link_inside_the_target_is_never_followed() {
    let ws = Workspace::new();
    ws.write("src/sub/old", "old");
    ws.write("src/keep", "keep");
    let plan = header("links")
        + r#"stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
  - name: cutover
    steps:
      - run: ["sh", "-c", "mkdir outside && printf victim > outside/old && rm -r dst/sub && ln -s ../outside dst/sub && rm src/sub/old && printf new > src/sub/new"]
      - copy: data
      - verify: data
"#;
    ws.write("plan.yaml", plan);
    let out = ws.run_plan("plain");
    assert!(!out.status.success(), "{}", both(&out));
    assert!(
        both(&out).contains("symbolic link inside the target"),
        "{}",
        both(&out)
    );
    assert_eq!(
        std::fs::read(ws.join("outside/old")).expect("the file outside is still there"),
        b"victim"
    );
    assert!(
        !ws.join("outside/new").exists(),
        "nothing was written outside the target"
    );
}

/// Finding 6: source links were followed without a word, out of the tree too (a link
/// to a file outside was copied). Now `skip` (the default) leaves them with a notice
/// and counts them in the summary and the signed evidence; `error` fails naming them;
/// `follow` follows links inside the source's root only.
#[test]
fn finding_06_source_links_are_skipped_counted_or_refused() {
    let ws = Workspace::new();
    ws.write("src/a.txt", "a");
    ws.write("secret/passwd", "root:x:0:0");
    symlink(ws.join("secret/passwd"), ws.join("src/passwd")).expect("link");
    symlink(ws.join("src/a.txt"), ws.join("src/alias")).expect("link");
    ws.write("plan.yaml", plan("links", ""));
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(count(&summary(&out), "copy", "symlinks_skipped"), 2);
    assert!(
        stderr(&out).contains("skipping symbolic link"),
        "{}",
        both(&out)
    );
    assert_eq!(
        tree(&ws.join("dst")).keys().collect::<Vec<_>>(),
        ["a.txt"],
        "no link followed"
    );
    assert_eq!(evidence_copy_detail(&ws)["symlinks_skipped"], 2);

    let ws2 = Workspace::new();
    ws2.write("src/a.txt", "a");
    symlink(ws.join("secret/passwd"), ws2.join("src/passwd")).expect("link");
    ws2.write("plan.yaml", plan("links", "symlinks: error"));
    let out = ws2.run_plan("plain");
    assert!(!out.status.success(), "{}", both(&out));
    assert!(both(&out).contains("symlinks: error"), "{}", both(&out));

    ws2.write("plan.yaml", plan("links", "symlinks: follow"));
    let out = ws2.relocate(&["run", "plan.yaml", "--state-dir", "s2", "--output", "plain"]);
    assert!(!out.status.success(), "{}", both(&out));
    assert!(
        both(&out).contains("leads out of the source root"),
        "{}",
        both(&out)
    );
    assert!(
        !ws2.join("dst/passwd").exists(),
        "nothing outside the root copied"
    );

    std::fs::remove_file(ws2.join("src/passwd")).expect("rm");
    symlink(ws2.join("src/a.txt"), ws2.join("src/alias")).expect("link");
    let out = ws2.relocate(&["run", "plan.yaml", "--state-dir", "s3", "--output", "plain"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        std::fs::read(ws2.join("dst/alias")).expect("followed"),
        b"a"
    );
}

/// Finding 6: the setting is checked like every plan key: a misspelled value is refused
/// by `plan validate`, naming it.
#[test]
fn finding_06_a_misspelled_symlinks_value_is_refused() {
    let ws = Workspace::new();
    ws.write("plan.yaml", plan("links", "symlinks: folow"));
    let out = ws.relocate(&["plan", "validate", "plan.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    assert!(
        stderr(&out).contains("`folow`") && stderr(&out).contains("`follow`"),
        "{}",
        both(&out)
    );
    ws.write("plan.yaml", plan("links", "existingTarget: overwrite"));
    let out = ws.relocate(&["plan", "validate", "plan.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    assert!(stderr(&out).contains("`overwrite`"), "{}", both(&out));
}

/// Finding 10: a prune the target refused was counted as pruned (and signed as such).
/// Here the object's path at the target has become a directory: the delete fails, the
/// step fails, and the count of pruned objects stays at 0.
#[test]
fn finding_10_a_refused_prune_fails_the_step_and_is_not_counted() {
    let ws = Workspace::new();
    ws.fill("src", 4, 100);
    let plan = header("prune")
        + r#"stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
  - name: cutover
    steps:
      - run: ["sh", "-c", "rm src/d0/f00000.bin && rm dst/d0/f00000.bin && mkdir dst/d0/f00000.bin && printf x > dst/d0/f00000.bin/inside"]
      - copy: data
      - verify: data
"#;
    ws.write("plan.yaml", plan);
    let out = ws.run_plan("json");
    assert!(!out.status.success(), "{}", both(&out));
    let steps = summary(&out)["steps"].as_array().expect("steps").clone();
    let delta = steps
        .iter()
        .find(|s| s["stage"] == "cutover" && s["kind"] == "copy")
        .expect("delta");
    assert_eq!(delta["pruned"], 0, "{delta}");
    assert_eq!(delta["prune_failed"], 1, "{delta}");
    assert!(
        both(&out).contains("could not be removed from the target"),
        "{}",
        both(&out)
    );
}

/// Finding 15: links between siblings (a/l → b, b/l → a) were walked until the
/// kernel's ELOOP. Followed on request, they now fail the step at once as a loop.
#[test]
fn finding_15_sibling_link_loops_fail_the_copy_at_once() {
    let ws = Workspace::new();
    ws.write("src/a/f", "a");
    ws.write("src/b/f", "b");
    symlink(ws.join("src/b"), ws.join("src/a/l")).expect("link");
    symlink(ws.join("src/a"), ws.join("src/b/l")).expect("link");
    ws.write("plan.yaml", plan("loop", "symlinks: follow"));
    let out = ws.run_plan("plain");
    assert!(!out.status.success(), "{}", both(&out));
    assert!(both(&out).contains("file system loop"), "{}", both(&out));
    assert!(
        !ws.join("dst/a/l/l/f").exists(),
        "nothing copied through the loop"
    );
}

/// Finding 19: the same plan run from another state directory started afresh and
/// copied everything again over a finished target. Now a first copy over a target
/// holding objects is refused with the count and the fix, or, with
/// `existingTarget: adopt`, keeps what matches by hash and copies the rest.
#[test]
fn finding_19_a_fresh_state_over_a_filled_target_refuses_or_adopts() {
    let ws = Workspace::new();
    ws.fill("src", 10, 500);
    ws.write("plan.yaml", plan("again", ""));
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", both(&out));
    let before = tree(&ws.join("dst"));

    let out = ws.relocate(&[
        "run",
        "plan.yaml",
        "--state-dir",
        "other",
        "--output",
        "plain",
    ]);
    assert!(!out.status.success(), "{}", both(&out));
    let text = both(&out);
    assert!(
        text.contains("already holds 10 object(s)") && text.contains("existingTarget: adopt"),
        "{text}"
    );
    assert_eq!(tree(&ws.join("dst")), before, "nothing overwritten");

    // One object differs at the target: adopt keeps the 9 that match, copies it.
    ws.write("dst/d3/f00003.bin", "tampered");
    ws.write("plan.yaml", plan("again", "existingTarget: adopt"));
    let out = ws.relocate(&[
        "run",
        "plan.yaml",
        "--state-dir",
        "third",
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", both(&out));
    let s = summary(&out);
    assert_eq!(count(&s, "copy", "adopted"), 9, "{s}");
    assert_eq!(count(&s, "copy", "copied"), 1, "{s}");
    assert_eq!(count(&s, "verify", "verified"), 10, "{s}");
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
}

/// Finding 4, the run's own verify: a `name#digits` file planted at a local target is an
/// unexpected object (object_store's listing hid it, so verify passed).
#[tokio::test]
async fn finding_04_the_verify_step_sees_a_planted_hash_digit_file() {
    use std::sync::Arc;

    use object_store::local::LocalFileSystem;
    use orchestrator::state::Db;
    use orchestrator::transfer::local::LocalSides;
    use orchestrator::transfer::{
        CopyJob, Counters, KeyFilter, ProblemKind, VerifyJob, copy_workload, verify_workload,
    };
    use tokio_util::sync::CancellationToken;

    let ws = Workspace::new();
    ws.write("src/a.txt", "a");
    std::fs::create_dir_all(ws.join("dst")).expect("mkdir");
    let db = Db::open(&ws.join("state.db")).expect("db");
    let src = Arc::new(LocalFileSystem::new_with_prefix(ws.join("src")).expect("src"));
    let dst = Arc::new(LocalFileSystem::new_with_prefix(ws.join("dst")).expect("dst"));
    let job = CopyJob {
        workload: "w".into(),
        source_name: "src".into(),
        target_name: "dst".into(),
        source: src.clone(),
        target: dst.clone(),
        filter: KeyFilter::all(),
        algorithm: plans::ChecksumAlgorithm::Sha256,
        concurrency: 4,
        adaptive: false,
        multipart: Default::default(),
        limiter: None,
        range: None,
        prune: true,
        server_side: None,
        memory_budget: orchestrator::transfer::copy::DEFAULT_MEMORY_BUDGET,
        local: LocalSides {
            source: Some(src),
            target: Some(dst.clone()),
        },
        symlinks: Default::default(),
        existing_target: Default::default(),
    };
    let (counters, cancel) = (Arc::new(Counters::default()), CancellationToken::new());
    let copied = copy_workload(&job, &db, &counters, &cancel)
        .await
        .expect("copy");
    assert_eq!(copied.copied, 1);
    ws.write("dst/sub/x#123", "planted");
    let verify = VerifyJob {
        workload: "w".into(),
        target_name: "dst".into(),
        target: dst.clone(),
        filter: KeyFilter::all(),
        concurrency: 4,
        range: None,
        local: Some(dst),
        checksums: None,
    };
    let report = verify_workload(&verify, &db, &counters, &cancel)
        .await
        .expect("verify");
    assert_eq!(report.unexpected, 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].key, "sub/x#123");
    assert_eq!(report.problems[0].kind, ProblemKind::Unexpected);
}
