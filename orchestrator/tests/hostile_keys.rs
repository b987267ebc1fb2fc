//! Hostile input: object keys that try to leave the target directory, and approval or
//! evidence files that are truncated, huge or malformed.
//!
//! Keys: an in-memory source holds keys a bucket can really hold (`../x`, `/abs`,
//! `a/../../b`, percent-encoded dots and slashes, NUL, names longer than a file system
//! allows, object_store's own staging-file pattern) and is copied to a local target
//! nested a few directories deep; nothing may appear outside the target directory, and
//! every key that cannot be written is a per-key failure, not a panic.

mod util;

use std::collections::BTreeSet;
use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use orchestrator::state::Db;
use orchestrator::transfer::copy::Multipart;
use orchestrator::transfer::{CopyJob, Counters, KeyFilter, copy_workload};
use plans::ChecksumAlgorithm;
use tokio_util::sync::CancellationToken;
use util::{Workspace, header, stderr, stdout};

/// Every path under `root` (files and directories), relative, leaving out `skip`.
fn snapshot(root: &FsPath, skip: &FsPath) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.starts_with(skip) {
                continue;
            }
            out.insert(
                p.strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned(),
            );
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out
}

/// Keys as a source bucket can hold them, and how each was built into a `Path`:
/// `Path::from` percent-encodes what a segment may not hold, `Path::parse` keeps the
/// raw key (what object_store's S3 listing does with the keys it receives).
fn hostile_keys() -> Vec<(String, Path)> {
    let long_segment = "s".repeat(300);
    let long_total = "abcdefgh/".repeat(520) + "end";
    let mut keys: Vec<(String, Path)> = [
        "../escaped-dotdot",
        "a/../../escaped-a-dotdot",
        "/abs/escaped-absolute",
        "./dot/x",
        "nul\0key",
        "back\\slash\\..\\..\\escaped-backslash",
        "new\nline",
    ]
    .into_iter()
    .map(|k| (format!("from {k:?}"), Path::from(k)))
    .collect();
    for raw in [
        "%2E%2E/escaped-encoded",
        "x/%2e%2e/%2e%2e/escaped-encoded-lower",
        ".%2E/escaped-half-encoded",
        "..%2Fescaped-encoded-slash",
        "y/..%2F..%2F..%2Fescaped-deep",
        "report#2024",
        "ok/plain.txt",
    ] {
        keys.push((
            format!("parse {raw:?}"),
            Path::parse(raw).expect("a valid object_store path"),
        ));
    }
    keys.push((
        "300-byte segment".into(),
        Path::parse(format!("long/{long_segment}")).expect("valid"),
    ));
    keys.push((
        "4.6 KiB key".into(),
        Path::parse(&long_total).expect("valid"),
    ));
    keys
}

#[tokio::test]
async fn hostile_keys_never_write_outside_the_target_and_fail_per_key() {
    let root = tempfile::tempdir().expect("tempdir");
    // Four levels deep, so even an escape lands inside `root` where the test sees it.
    let target_dir = root.path().join("l1/l2/l3/dst");
    std::fs::create_dir_all(&target_dir).expect("mkdir");
    std::fs::write(root.path().join("l1/l2/l3/neighbour.txt"), "keep").expect("neighbour");
    let before = snapshot(root.path(), &target_dir);

    let source = Arc::new(InMemory::new());
    let keys = hostile_keys();
    for (i, (_, path)) in keys.iter().enumerate() {
        source
            .put(path, PutPayload::from(format!("object {i}")))
            .await
            .expect("seed");
    }
    let target: Arc<dyn ObjectStore> = Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(&target_dir).expect("local target"),
    );
    let state = tempfile::tempdir().expect("state dir");
    let db = Db::open(&state.path().join("state.db")).expect("db");
    let job = CopyJob {
        workload: "data".into(),
        source_name: "src".into(),
        target_name: "target".into(),
        source: source.clone(),
        target,
        filter: KeyFilter::all(),
        algorithm: ChecksumAlgorithm::Sha256,
        concurrency: 4,
        adaptive: false,
        multipart: Multipart::default(),
        limiter: None,
        range: None,
        prune: true,
        server_side: None,
        memory_budget: orchestrator::transfer::copy::DEFAULT_MEMORY_BUDGET,
        local: Default::default(),
        symlinks: Default::default(),
        existing_target: Default::default(),
    };
    let report = copy_workload(
        &job,
        &db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("the copy runs to the end");
    eprintln!(
        "hostile keys: {} listed, {} copied, {} failed",
        report.listed, report.copied, report.failed
    );
    for (key, reason) in &report.failures {
        eprintln!("  refused {key:?}: {reason}");
    }
    let after = snapshot(root.path(), &target_dir);
    let escaped: Vec<&String> = after.difference(&before).collect();
    assert!(
        escaped.is_empty(),
        "keys escaped the target directory: {escaped:?}"
    );
    assert_eq!(report.listed as usize, keys.len());
    assert_eq!(
        report.copied + report.failed,
        report.listed,
        "every key is copied or failed, none lost: {report:?}"
    );
    // What a file system cannot hold is a per-key failure, named.
    let failed: BTreeSet<&str> = report.failures.iter().map(|(k, _)| k.as_str()).collect();
    for must_fail in [
        format!("long/{}", "s".repeat(300)),
        "report#2024".to_owned(),
    ] {
        assert!(
            failed.contains(must_fail.as_str()),
            "{must_fail} should fail: {failed:?}"
        );
    }
    // A plain key among them is copied.
    assert_eq!(
        std::fs::read_to_string(target_dir.join("ok/plain.txt")).expect("copied"),
        format!("object {}", keys.len() - 3)
    );
}

/// `approve` pinned to the run's operator key, as an auditor handed a file would run it.
fn approve(ws: &Workspace, evidence: &str) -> std::process::Output {
    ws.relocate(&[
        "approve",
        "--key",
        "auditor.key",
        "--evidence",
        evidence,
        "--operator-key",
        "state/operator.pub",
    ])
}

/// A refusal with a message and a non-zero exit, never a panic.
fn assert_refused(out: &std::process::Output, what: &str) {
    let code = out.status.code();
    assert!(
        code.is_some_and(|c| c != 0 && c != 101),
        "{what}: exit {code:?}\n{}\n{}",
        stdout(out),
        stderr(out)
    );
    assert!(!stderr(out).contains("panicked"), "{what}: {}", stderr(out));
    assert!(
        stderr(out).contains("evidence"),
        "{what}: the message says what was wrong: {}",
        stderr(out)
    );
    assert!(
        stdout(out).trim().is_empty(),
        "{what}: nothing signed: {}",
        stdout(out)
    );
}

/// Real evidence from a gated run, kept by the hook.
fn real_evidence(ws: &Workspace) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt;
    let public = ws.keypair("auditor");
    ws.fill("src", 3, 100);
    let plan = header("hostile")
        + &format!(
            "approvers:\n  auditor:\n    publicKey: \"{public}\"\n    hook: {{ command: [\"./hook.sh\"] }}\nstages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n    signoff: [auditor]\n"
        );
    ws.write("plan.yaml", plan);
    let hook = ws.write("hook.sh", "#!/bin/sh\nset -e\ntee evidence.json | \"$RELOCATE_BIN\" approve --key auditor.key --evidence -\n");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = ws.relocate(&["run", "plan.yaml", "--state-dir", "state"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    std::fs::read(ws.join("evidence.json")).expect("evidence kept by the hook")
}

#[test]
fn truncated_huge_and_malformed_evidence_is_refused_by_approve() {
    let ws = Workspace::new();
    let evidence = real_evidence(&ws);
    // The real evidence signs.
    let ok = approve(&ws, "evidence.json");
    assert!(ok.status.success(), "{}", stderr(&ok));

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", evidence[..evidence.len() / 2].to_vec()),
        (
            "truncated by one byte",
            evidence[..evidence.len() - 2].to_vec(),
        ),
        ("not json", b"this is not evidence".to_vec()),
        ("json, not an envelope", br#"{"hello": "world"}"#.to_vec()),
        (
            "binary",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("deeply nested", "[".repeat(100_000).into_bytes()),
    ];
    let text = String::from_utf8(evidence.clone()).expect("utf-8 evidence");
    let flipped = text
        .replacen("\"payload\": \"", "\"payload\": \"A", 1)
        .replacen("\"payload\":\"", "\"payload\":\"A", 1);
    if flipped != text {
        cases.push(("payload altered", flipped.into_bytes()));
    }
    // Valid JSON, the real envelope, padded past 16 MiB: refused for its size, not
    // silently cut at the limit and signed.
    let mut huge = evidence.clone();
    huge.extend(std::iter::repeat_n(b' ', 17 << 20));
    cases.push(("huge (17 MiB)", huge));
    for (what, bytes) in &cases {
        ws.write("bad.json", bytes);
        let out = approve(&ws, "bad.json");
        eprintln!(
            "approve --evidence <{what}>: exit {:?}: {}",
            out.status.code(),
            stderr(&out).lines().next().unwrap_or_default()
        );
        assert_refused(&out, what);
    }
    // The same through stdin, as a command hook receives it.
    for (what, bytes) in &cases {
        let out = assert_cmd::Command::cargo_bin("relocate")
            .expect("binary")
            .current_dir(ws.path())
            .args(["approve", "--key", "auditor.key", "--evidence", "-"])
            .write_stdin(bytes.clone())
            .output()
            .expect("run");
        assert_refused(&out, &format!("{what} on stdin"));
    }
}

#[test]
fn truncated_huge_and_malformed_approvals_from_a_hook_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let public = ws.keypair("auditor");
    ws.fill("src", 3, 100);
    let plan = header("hostile-approval")
        + &format!(
            "approvers:\n  auditor:\n    publicKey: \"{public}\"\n    hook: {{ command: [\"./hook.sh\"] }}\nstages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n    signoff: [auditor]\n"
        );
    ws.write("plan.yaml", plan);
    let bodies = [
        ("empty", "true"),
        (
            "truncated approval",
            "\"$RELOCATE_BIN\" approve --key auditor.key --evidence - | head -c 200",
        ),
        ("garbage", "echo '{not json'"),
        (
            "envelope without signatures",
            "echo '{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"e30=\",\"signatures\":[]}'",
        ),
        (
            "huge",
            "cat > /dev/null; head -c 20000000 /dev/zero | tr '\\0' ' '; echo '{}'",
        ),
        ("the evidence echoed back", "cat"),
    ];
    for (what, body) in bodies {
        let hook = ws.write("hook.sh", format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let out = ws.run_plan("plain");
        eprintln!(
            "hook answers <{what}>: exit {:?}: {}",
            out.status.code(),
            stderr(&out).lines().next().unwrap_or_default()
        );
        assert_eq!(
            out.status.code(),
            Some(5),
            "{what}: the gate refuses\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("panicked"),
            "{what}: {}",
            stderr(&out)
        );
        assert!(
            stdout(&out).contains("auditor") || stderr(&out).contains("auditor"),
            "{what}: the refusal names the approver"
        );
    }
    // And a good approval afterwards passes: nothing was poisoned.
    let hook = ws.write(
        "hook.sh",
        "#!/bin/sh\n\"$RELOCATE_BIN\" approve --key auditor.key --evidence -\n",
    );
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = ws.relocate(&["run", "plan.yaml", "--state-dir", "state"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}
