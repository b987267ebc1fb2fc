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
    for (i, key) in ["z", "é", "éz", "zé", "Z", "ü/ber", "a b", "a#b", "日本/語"]
        .iter()
        .enumerate()
    {
        ws.write(&format!("src/{key}"), format!("{key}:{i}").repeat(i * 50 + 1));
    }
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
    let (a, b) = (evidence_predicate(&sharded), evidence_predicate(&in_process));
    assert_eq!(a["workloads"][0]["manifestRoot"], b["workloads"][0]["manifestRoot"]);
    assert_eq!(a["workloads"][0]["objects"], 129);
    // The evidence names every shard with the digest of the rows it returned, and the
    // ranges are contiguous.
    let shards = a["steps"][0]["detail"]["shards"].as_array().expect("shards");
    assert!(shards.len() >= 4, "{shards:?}");
    for pair in shards.windows(2) {
        assert_eq!(pair[0]["through"], pair[1]["after"]);
    }
    assert!(shards.iter().all(|s| s["resultDigest"].as_str().is_some_and(|d| d.starts_with("sha256:"))));
    let s = summary(&out);
    assert_eq!(util::count(&s, "copy", "copied"), 129);
    assert_eq!(util::count(&s, "verify", "verified"), 129);

    // The auditor's verifier accepts the sharded record against the target.
    let export = sharded.relocate(&["record", "export", "plan.yaml", "--state-dir", "state", "--out", "move.intoto.jsonl"]);
    assert!(export.status.success(), "{}", stderr(&export));
    let verify = sharded.relocate(&["verify", "move.intoto.jsonl", "--plan", "plan.yaml", "--target"]);
    assert!(verify.status.success(), "{}{}", util::stdout(&verify), stderr(&verify));
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
    assert_eq!(cutover_copy["skipped"], 127, "{cutover_copy}");
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
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
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
        .args(["run", "plan.yaml", "--state-dir", "state", "--output", "json"])
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
    let mut run = spawn_run(&ws);
    wait_until("a worker", Duration::from_secs(20), || !children_of(run.id()).is_empty());
    wait_until("a third of the objects", Duration::from_secs(30), || {
        files_in(&ws.join("dst")) >= 16
    });
    // Let a checkpoint land, then kill the worker with no chance to save anything.
    std::thread::sleep(Duration::from_millis(1500));
    let worker = children_of(run.id())[0];
    let at_kill = files_in(&ws.join("dst"));
    assert!(std::process::Command::new("kill").args(["-9", &worker.to_string()]).status().expect("kill").success());
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
    assert!(redone <= 12, "redid {redone} of the {at_kill} objects done at the kill: {copy}");
    assert_eq!(copy["copied"].as_u64().expect("copied") + skipped, 48, "{copy}");
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
    let result0 = exchange.join("gen-1/shard-0/result.json");
    wait_until("shard 0's result", Duration::from_secs(60), || result0.exists());
    let first_result = std::fs::read(&result0).expect("result");
    let _ = run.kill();
    let _ = run.wait();
    // The orphaned worker stops by itself (it watches its parent).
    std::thread::sleep(Duration::from_millis(1500));
    let out = spawn_run(&ws).wait_with_output().expect("rerun");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
    let generations: Vec<_> = std::fs::read_dir(&exchange).expect("dir").flatten().collect();
    assert_eq!(generations.len(), 1, "a second fan-out was started");
    assert_eq!(
        std::fs::read(&result0).expect("result"),
        first_result,
        "a finished shard ran again"
    );
}

#[test]
fn a_shard_that_fails_for_good_fails_the_step_by_name_and_only_it_reruns() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.fill("src", 40, 1000);
    ws.write(
        "plan.yaml",
        plan(
            "failshard",
            "{ from: src, to: dst, shards: 4, workers: { local: { parallelism: 2 } } }",
        ),
    );
    let locked = ws.join("src/d9/f00039.bin");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if std::fs::read(&locked).is_ok() {
        eprintln!("running as root: an unreadable file cannot be made; skipping");
        return;
    }
    let out = ws.run_plan("plain");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("1 of 4 shard(s) failed"), "{err}");
    assert!(err.contains("shard 3 (\"d"), "names the shard and its range: {err}");
    let exchange = ws.join("state/exchange/relocate/failshard/data/01-seed/step-1-copy/gen-1");
    let kept = std::fs::read(exchange.join("shard-0/result.json")).expect("shard 0");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = ws.run_plan("json");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
    assert_eq!(std::fs::read(exchange.join("shard-0/result.json")).expect("shard 0"), kept);
    assert_eq!(util::count(&summary(&out), "copy", "copied"), 1);
}

#[test]
fn a_worker_refuses_an_order_whose_plan_was_edited() {
    let ws = Workspace::new();
    ws.fill("src", 10, 100);
    ws.write(
        "plan.yaml",
        plan("forged", "{ from: src, to: dst, shards: 2, workers: { local: { parallelism: 1 } } }"),
    );
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", stderr(&out));
    let order = ws.join("state/exchange/relocate/forged/data/01-seed/step-1-copy/gen-1/order.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&order).expect("order")).expect("json");
    let text = doc["planText"].as_str().expect("plan").replace("dst/", "elsewhere/");
    doc["planText"] = text.into();
    std::fs::write(&order, serde_json::to_vec(&doc).expect("json")).expect("write");
    let state = serde_json::json!({
        "region": "zurich",
        "url": url_of(&ws.join("state/exchange")),
    });
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(ws.path())
        .args(["worker", "--order", "relocate/forged/data/01-seed/step-1-copy/gen-1/order.json", "--index", "0"])
        .env("RELOCATE_STATE_STORE", state.to_string())
        .output()
        .expect("worker");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("not the sha256:"), "{}", stderr(&out));
    assert!(!ws.join("elsewhere").exists());
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
        plan("status", "{ from: src, to: dst, shards: 3, workers: { local: { parallelism: 3 } } }"),
    );
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}", stderr(&out));
    let status = ws.relocate(&["status", "plan.yaml", "--state-dir", "state"]);
    let text = util::stdout(&status);
    assert!(text.contains("3 shard(s) on local workers, 3 done"), "{text}");
    assert!(text.contains("shard 0 (…, \"d"), "{text}");
    assert!(text.contains(", …]: done"), "{text}");
    let json = ws.relocate(&["status", "plan.yaml", "--state-dir", "state", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["stages"][0]["steps"][0]["fanOut"]["shards"].as_array().map(Vec::len), Some(3));
}
