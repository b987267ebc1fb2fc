//! A real `relocate run` killed with SIGKILL mid-copy, then run again: nothing lost,
//! nothing corrupted, and little redone.

mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{Workspace, count, header, stderr, stdout, summary, tree};

/// Files at the target that are complete objects (not object_store's `name#N` staging files).
fn published(ws: &Workspace) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(&ws.join("dst"))
        .into_iter()
        .filter(|(k, _)| !is_staging(k))
        .collect()
}

fn is_staging(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn kill_9_mid_copy_then_rerun_finishes_with_nothing_lost() {
    const FILES: usize = 1200;
    let ws = Workspace::new();
    ws.fill("src", FILES, 32 * 1024);
    // A bandwidth cap makes the copy take ~3 s so the kill lands mid-copy.
    let plan = header("resume").replace(
        "objects: { from: src, to: dst }",
        "objects: { from: src, to: dst, bandwidth: 12MiB/s, concurrency: 8 }",
    ) + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n";
    ws.write("plan.yaml", plan);

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait until some objects have landed, then kill -9.
    let start = Instant::now();
    while published(&ws).len() < FILES / 5 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let landed = published(&ws).len();
    assert!(
        landed > 0 && landed < FILES,
        "the kill must land mid-copy (landed {landed} of {FILES})"
    );

    // What the state recorded as copied before the kill (the writer commits completions
    // in batches of up to 512 rows or 50 ms).
    let recorded: i64 = rusqlite::Connection::open_with_flags(
        ws.join("state/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the state")
    .query_row(
        "SELECT COUNT(*) FROM objects WHERE status = 'copied'",
        [],
        |r| r.get(0),
    )
    .expect("count copied rows");
    let recorded = usize::try_from(recorded).expect("a count");
    assert!(recorded <= landed, "recorded {recorded}, landed {landed}");

    let rerun = ws.run_plan("json");
    assert!(
        rerun.status.success(),
        "{}\n{}",
        stdout(&rerun),
        stderr(&rerun)
    );
    let s = summary(&rerun);
    let recopied = count(&s, "copy", "copied") as usize;
    // Exactly what the state had not recorded: nothing recorded is copied again.
    assert_eq!(
        recopied,
        FILES - recorded,
        "recorded {recorded} before the kill"
    );
    // What landed without being recorded is at most the objects in flight (8) and one
    // writer batch (512 rows); typically a handful (the writer commits every 50 ms, but a
    // loaded machine stretches that, so the bound is the row limit, not the clock).
    let redone = landed - recorded;
    assert!(
        redone <= 8 + 512,
        "rerun re-copied {redone} objects that had already landed"
    );
    assert_eq!(count(&s, "verify", "verified") as usize, FILES);
    // Byte for byte, and no staging file of an interrupted write left behind.
    assert_eq!(
        tree(&ws.join("src")),
        tree(&ws.join("dst")),
        "target equals source byte for byte"
    );
}

#[test]
fn a_second_run_of_the_same_state_is_refused_while_the_first_holds_it() {
    let ws = Workspace::new();
    ws.fill("src", 300, 32 * 1024);
    let plan = header("lock").replace(
        "objects: { from: src, to: dst }",
        "objects: { from: src, to: dst, bandwidth: 2MiB/s }",
    ) + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n";
    ws.write("plan.yaml", plan);
    let mut first = Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while !ws.join("state/lock").exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let second = ws.relocate(&["run", "plan.yaml", "--state-dir", "state"]);
    assert_eq!(second.status.code(), Some(6), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("another relocate run holds"),
        "{}",
        stderr(&second)
    );
    first.kill().expect("kill");
    first.wait().expect("reap");
    // The lock of a killed run is released by the kernel: the next run proceeds.
    let third = ws.run_plan("json");
    assert!(third.status.success(), "{}", stderr(&third));
}
