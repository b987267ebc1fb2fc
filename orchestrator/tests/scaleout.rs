//! Sharded workloads end to end with the real binary and the local executor: the
//! manifest and Merkle root equal an in-process run's, a worker killed with `kill -9`
//! resumes from its checkpoint, a coordinator killed and rerun reuses the finished
//! shards, and a shard that fails for good fails the step by name and is the only one
//! a rerun runs again.

mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use util::{Workspace, header, stderr, summary, tree};

fn plan(name: &str, objects: &str) -> String {
    plan_with_stages(
        name,
        objects,
        "  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    )
}

fn plan_with_stages(name: &str, objects: &str, stages: &str) -> String {
    let head = header(name).replace(
        "    objects: { from: src, to: dst }\n",
        &format!("    objects: {objects}\n"),
    );
    assert!(head.contains(objects));
    format!("{head}stages:\n{stages}")
}

/// Keys that straddle range boundaries and whose byte order differs from their
/// character order (`z` < `é` in UTF-8 bytes, `é` < `z` alphabetically).
fn fill_awkward(ws: &Workspace) {
    ws.fill("src/bulk", 120, 3000);
    for (i, key) in [
        "z",
        "é",
        "éz",
        "zé",
        "Z",
        "ü/ber",
        "a b",
        "a#b",
        "日本/語",
        "..dots",
        "d/..x",
    ]
    .iter()
    .enumerate()
    {
        ws.write(
            &format!("src/{key}"),
            format!("{key}:{i}").repeat(i * 50 + 1),
        );
    }
}

/// The directory of the one fan-out of step `step` (e.g. `step-1-copy`) of plan `plan`.
fn fanout_dir(ws: &Workspace, plan: &str, step: &str) -> std::path::PathBuf {
    let parent = ws.join(&format!(
        "state/exchange/relocate/{plan}/data/01-seed/{step}"
    ));
    let dirs: Vec<_> = std::fs::read_dir(&parent)
        .unwrap_or_else(|e| panic!("{}: {e}", parent.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "one fan-out: {dirs:?}");
    dirs.into_iter().next().expect("one")
}

/// The fan-out record of the seed stage's step `step` (from 0), from `status --json`.
fn fanout_record(ws: &Workspace, step: usize) -> serde_json::Value {
    let out = ws.relocate(&["status", "plan.yaml", "--state-dir", "state", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    v["stages"][0]["steps"][step]["fanOut"].clone()
}

fn evidence_predicate(ws: &Workspace) -> serde_json::Value {
    let dir = ws.join("state/evidence");
    let file = std::fs::read_dir(&dir)
        .expect("evidence dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".intoto.json"))
        .expect("an evidence file");
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file).expect("read")).expect("json");
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    let statement: serde_json::Value = serde_json::from_slice(&payload).expect("statement");
    statement["predicate"].clone()
}

fn manifest(ws: &Workspace) -> Vec<u8> {
    std::fs::read(ws.join("state/manifests/data.sha256sums")).expect("manifest")
}

#[test]
fn a_sharded_run_computes_the_in_process_manifest_and_root_byte_for_byte() {
    let sharded = Workspace::new();
    fill_awkward(&sharded);
    sharded.write(
        "plan.yaml",
        plan(
            "scale",
            "{ from: src, to: dst, shards: 8, workers: { local: { parallelism: 3 } } }",
        ),
    );
    let out = sharded.run_plan("json");
    assert!(out.status.success(), "{}", stderr(&out));
    let in_process = Workspace::new();
    fill_awkward(&in_process);
    in_process.write("plan.yaml", plan("scale", "{ from: src, to: dst }"));
    let out2 = in_process.run_plan("json");
    assert!(out2.status.success(), "{}", stderr(&out2));

    assert_eq!(tree(&sharded.join("src")), tree(&sharded.join("dst")));
    assert_eq!(manifest(&sharded), manifest(&in_process));
    let (a, b) = (
        evidence_predicate(&sharded),
        evidence_predicate(&in_process),
    );
    assert_eq!(
        a["workloads"][0]["manifestRoot"],
        b["workloads"][0]["manifestRoot"]
    );
    assert_eq!(a["workloads"][0]["objects"], 131);
    // The evidence names every shard with the digest of the rows it returned, and the
    // ranges are contiguous.
    let shards = a["steps"][0]["detail"]["shards"]
        .as_array()
        .expect("shards");
    assert!(shards.len() >= 4, "{shards:?}");
    for pair in shards.windows(2) {
        assert_eq!(pair[0]["through"], pair[1]["after"]);
    }
    assert!(shards.iter().all(|s| {
        s["resultDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    }));
    let s = summary(&out);
    assert_eq!(util::count(&s, "copy", "copied"), 131);
    assert_eq!(util::count(&s, "verify", "verified"), 131);

    // The auditor's verifier accepts the sharded record against the target.
    let export = sharded.relocate(&[
        "record",
        "export",
        "plan.yaml",
        "--state-dir",
        "state",
        "--out",
        "move.intoto.jsonl",
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    let verify = sharded.relocate(&[
        "verify",
        "move.intoto.jsonl",
        "--plan",
        "plan.yaml",
        "--target",
    ]);
    assert!(
        verify.status.success(),
        "{}{}",
        util::stdout(&verify),
        stderr(&verify)
    );
}

#[test]
fn a_later_sharded_copy_is_a_delta_and_prunes_range_by_range() {
    let ws = Workspace::new();
    fill_awkward(&ws);
    let src = ws.join("src");
    let change = format!(
        "printf changed > {0}/bulk/d1/f00001.bin && rm {0}/z && mkdir -p {0}/new && printf new > {0}/new/one",
        src.display()
    );
    ws.write(
        "plan.yaml",
        plan_with_stages(
            "delta",
            "{ from: src, to: dst, shards: 4, workers: { local: { parallelism: 2 } } }",
            &format!(
                "  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n  - name: cutover\n    steps: [ {{ run: [sh, -c, {change:?}] }}, {{ copy: data }}, {{ verify: data }} ]\n"
            ),
        ),
    );
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}", stderr(&out));
    let s = summary(&out);
    let cutover_copy = s["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|st| st["stage"] == "cutover" && st["kind"] == "copy")
        .expect("cutover copy")
        .clone();
    assert_eq!(cutover_copy["copied"], 2, "{cutover_copy}");
    assert_eq!(cutover_copy["pruned"], 1, "{cutover_copy}");
    assert_eq!(cutover_copy["skipped"], 129, "{cutover_copy}");
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

fn files_in(dir: &Path) -> usize {
    tree(dir).keys().filter(|k| !k.contains('#')).count()
}

fn spawn_run(ws: &Workspace) -> std::process::Child {
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
        .env("RELOCATE_CHECKPOINT_SECONDS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_killed_mid_shard_resumes_from_its_last_checkpoint() {
    let ws = Workspace::new();
    // 48 objects of 128 KiB at 1 MiB/s: about 6 s, checkpoints every second.
    ws.fill("src", 48, 128 << 10);
    ws.write(
        "plan.yaml",
        plan(
            "killworker",
            "{ from: src, to: dst, concurrency: 2, bandwidth: 1MiB/s, shards: 1, workers: { local: { parallelism: 1 } } }",
        ),
    );
    let run = spawn_run(&ws);
    wait_until("a worker", Duration::from_secs(20), || {
        !children_of(run.id()).is_empty()
    });
    wait_until("a third of the objects", Duration::from_secs(30), || {
        files_in(&ws.join("dst")) >= 16
    });
    // Let a checkpoint land, then kill the worker with no chance to save anything.
    std::thread::sleep(Duration::from_millis(1500));
    let worker = children_of(run.id())[0];
    let at_kill = files_in(&ws.join("dst"));
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &worker.to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let out = run.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
    let s = summary(&out);
    let copy = &s["steps"][0];
    // The restarted worker's report: what it found done (skipped) came from the
    // checkpoints; what it copied again is at most one interval's worth plus the
    // objects in flight (1 MiB/s × 1 s = 8 objects, 2 in flight, 5 s stamp slack
    // sends rows twice but never loses them).
    let skipped = copy["skipped"].as_u64().expect("skipped");
    let redone = at_kill as u64 - skipped.min(at_kill as u64);
    assert!(skipped > 0, "the restarted worker resumed nothing: {copy}");
    assert!(
        redone <= 12,
        "redid {redone} of the {at_kill} objects done at the kill: {copy}"
    );
    assert_eq!(
        copy["copied"].as_u64().expect("copied") + skipped,
        48,
        "{copy}"
    );
}

#[test]
fn a_coordinator_killed_and_rerun_reuses_the_order_and_the_finished_shards() {
    let ws = Workspace::new();
    ws.fill("src", 64, 64 << 10);
    ws.write(
        "plan.yaml",
        plan(
            "killcoord",
            "{ from: src, to: dst, concurrency: 2, bandwidth: 2MiB/s, shards: 4, workers: { local: { parallelism: 1 } } }",
        ),
    );
    let mut run = spawn_run(&ws);
    let exchange = ws.join("state/exchange/relocate/killcoord/data/01-seed/step-1-copy");
    wait_until("the order", Duration::from_secs(60), || {
        std::fs::read_dir(&exchange).is_ok_and(|mut d| d.next().is_some())
    });
    let result0 = fanout_dir(&ws, "killcoord", "step-1-copy").join("shard-0/result.json");
    wait_until("shard 0's result", Duration::from_secs(60), || {
        result0.exists()
    });
    let first_result = std::fs::read(&result0).expect("result");
    let _ = run.kill();
    let _ = run.wait();
    // The orphaned worker stops by itself (it watches its parent).
    std::thread::sleep(Duration::from_millis(1500));
    let out = spawn_run(&ws).wait_with_output().expect("rerun");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
    let generations: Vec<_> = std::fs::read_dir(&exchange)
        .expect("dir")
        .flatten()
        .collect();
    assert_eq!(generations.len(), 1, "a second fan-out was started");
    assert_eq!(
        std::fs::read(&result0).expect("result"),
        first_result,
        "a finished shard ran again"
    );
}

/// A workspace whose first run fails one shard for good: a source file named like
/// object_store's staging files (`name#digits`), which a local target cannot hold, is
/// refused by name. Returns the workspace and the first run's stderr; removing
/// `src/d9/zz#1` fixes it.
fn run_with_a_failing_shard(name: &str) -> (Workspace, String) {
    let ws = Workspace::new();
    ws.fill("src", 40, 1000);
    ws.write("src/d9/zz#1", b"a name a local target cannot hold");
    ws.write(
        "plan.yaml",
        plan(
            name,
            "{ from: src, to: dst, shards: 4, workers: { local: { parallelism: 2 } } }",
        ),
    );
    let out = ws.run_plan("plain");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    (ws, stderr(&out))
}

#[test]
fn a_shard_that_fails_for_good_fails_the_step_by_name_and_only_it_reruns() {
    let (ws, err) = run_with_a_failing_shard("failshard");
    assert!(err.contains("1 of 4 shard(s) failed"), "{err}");
    assert!(
        err.contains("shard 3 (\"d"),
        "names the shard and its range: {err}"
    );
    assert!(err.contains("\"d9/zz#1\""), "names the object: {err}");
    let exchange = fanout_dir(&ws, "failshard", "step-1-copy");
    let kept = std::fs::read(exchange.join("shard-0/result.json")).expect("shard 0");
    std::fs::remove_file(ws.join("src/d9/zz#1")).expect("rm");
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
    assert_eq!(
        std::fs::read(exchange.join("shard-0/result.json")).expect("shard 0"),
        kept,
        "a finished shard ran again"
    );
    let rerun: serde_json::Value = serde_json::from_slice(
        &std::fs::read(exchange.join("shard-3/result.json")).expect("shard 3"),
    )
    .expect("json");
    assert_eq!(rerun["copy"]["failed"], 0, "{rerun}");
    assert_eq!(
        rerun["copy"]["copied"], 0,
        "its other objects were checkpointed: {rerun}"
    );
}

#[test]
fn a_worker_refuses_an_order_rewritten_in_the_state_store_even_a_consistent_one() {
    let ws = Workspace::new();
    ws.fill("src", 10, 100);
    ws.write(
        "plan.yaml",
        plan(
            "forged",
            "{ from: src, to: dst, shards: 2, workers: { local: { parallelism: 1 } } }",
        ),
    );
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", stderr(&out));
    let record = fanout_record(&ws, 0);
    let (order_path, order_digest) = (
        record["order"].as_str().expect("order").to_owned(),
        record["orderDigest"].as_str().expect("digest").to_owned(),
    );
    // Someone who can write the state store rewrites the order: another target, and
    // the plan digest recomputed to match (a consistent forgery).
    let forged = ws.write(
        "forged.yaml",
        std::fs::read_to_string(ws.join("plan.yaml"))
            .expect("plan")
            .replace("file://./dst/", "file://./elsewhere/"),
    );
    let validated = ws.relocate(&["plan", "validate", "forged.yaml"]);
    let text = util::stdout(&validated);
    let at = text.find("(sha256:").expect("the forged plan's digest") + 1;
    let digest = text[at..at + 71].to_owned();
    let order_file = ws.join("state/exchange").join(&order_path);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&order_file).expect("order")).expect("json");
    doc["planText"] = std::fs::read_to_string(&forged).expect("forged").into();
    doc["planDigest"] = digest.into();
    std::fs::write(&order_file, serde_json::to_vec_pretty(&doc).expect("json")).expect("write");
    std::fs::remove_file(fanout_dir(&ws, "forged", "step-1-copy").join("shard-0/result.json"))
        .expect("rm");
    let state = serde_json::json!({
        "region": "zurich",
        "url": url_of(&ws.join("state/exchange")),
    });
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(ws.path())
        .args([
            "worker",
            "--order",
            &order_path,
            "--order-digest",
            &order_digest,
            "--index",
            "0",
        ])
        .env("RELOCATE_STATE_STORE", state.to_string())
        .output()
        .expect("worker");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the order was changed after the coordinator wrote it"),
        "{}",
        stderr(&out)
    );
    assert!(
        !ws.join("elsewhere").exists(),
        "nothing was written where the forgery pointed"
    );
}

fn url_of(p: &Path) -> String {
    format!("file://{}/", p.display())
}

#[test]
fn status_shows_each_shard_with_its_range_and_outcome() {
    let ws = Workspace::new();
    ws.fill("src", 30, 500);
    ws.write(
        "plan.yaml",
        plan(
            "status",
            "{ from: src, to: dst, shards: 3, workers: { local: { parallelism: 3 } } }",
        ),
    );
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", stderr(&out));
    let status = ws.relocate(&["status", "plan.yaml", "--state-dir", "state"]);
    let text = util::stdout(&status);
    assert!(
        text.contains("3 shard(s) on local workers, 3 done"),
        "{text}"
    );
    assert!(text.contains("shard 0 (…, \"d"), "{text}");
    assert!(text.contains(", …]: done"), "{text}");
    let json = ws.relocate(&["status", "plan.yaml", "--state-dir", "state", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(
        v["stages"][0]["steps"][0]["fanOut"]["shards"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[test]
fn the_worker_image_runs_as_the_uid_the_job_asks_for() {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile"))
            .expect("Dockerfile at the repository root");
    let uid = connectors::kube::workers::WORKER_UID;
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "{dockerfile}"
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/relocate\"]"));
    assert!(dockerfile.contains("cargo build --release --locked -p orchestrator"));
}

#[test]
fn a_shard_result_edited_in_the_state_store_is_refused_not_merged() {
    // One shard fails, so the fan-out stays open for a rerun.
    let (ws, _) = run_with_a_failing_shard("tampered");
    std::fs::remove_file(ws.join("src/d9/zz#1")).expect("rm");
    // Someone with write access to the state store edits a finished shard's rows.
    let rows = fanout_dir(&ws, "tampered", "step-1-copy").join("shard-0/result.ndjson");
    let text = std::fs::read_to_string(&rows).expect("rows");
    let first_hash = text.split("\"sourceHash\":\"").nth(1).expect("a hash")[..64].to_owned();
    std::fs::write(&rows, text.replacen(&first_hash, &"0".repeat(64), 1)).expect("write");
    let out = ws.run_plan("plain");
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("not merged"), "{err}");
    assert!(err.contains("shard-0/result.ndjson"), "{err}");
    assert!(
        !ws.join("state/evidence")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false),
        "no evidence over forged rows"
    );
}

#[test]
fn a_sharded_verify_finds_a_changed_and_an_unexpected_object_in_its_ranges() {
    let ws = Workspace::new();
    ws.fill("src", 40, 1000);
    let dst = ws.join("dst");
    let tamper = format!(
        "printf evil > {0}/d3/f00013.bin && printf extra > {0}/d7/zz-planted",
        dst.display()
    );
    ws.write(
        "plan.yaml",
        plan_with_stages(
            "shardverify",
            "{ from: src, to: dst, shards: 4, workers: { local: { parallelism: 2 } } }",
            &format!(
                "  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n  - name: audit\n    steps: [ {{ run: [sh, -c, {tamper:?}] }}, {{ verify: data }} ]\n"
            ),
        ),
    );
    let out = ws.run_plan("json");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let problems: Vec<serde_json::Value> = util::stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "object_problem" || v["event"] == "objectProblem")
        .collect();
    let named = |key: &str, kind: &str| {
        problems
            .iter()
            .any(|p| p["key"] == key && p["problem"] == kind)
    };
    assert!(
        named("d3/f00013.bin", "mismatch"),
        "{problems:#?}\n{}",
        util::stdout(&out)
    );
    assert!(named("d7/zz-planted", "unexpected"), "{problems:#?}");
    let s = summary(&out);
    let audit = s["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|st| st["stage"] == "audit" && st["kind"] == "verify")
        .expect("the audit verify")
        .clone();
    assert_eq!(audit["failed"], 2, "{audit}");
    assert_eq!(audit["verified"], 39, "{audit}");
}
