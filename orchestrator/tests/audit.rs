//! The auditor's side through the real binary: `relocate record export` then
//! `relocate verify`, on an untouched record (exit 0) and on a tamper suite where each
//! change must be caught with exit code 7 and a message that names it.

mod util;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use util::{Workspace, header, stderr, stdout};

const RECORD: &str = "move.intoto.jsonl";

fn hook(ws: &Workspace, name: &str, key: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = ws.write(
        name,
        format!("#!/bin/sh\nset -e\n\"$RELOCATE_BIN\" approve --key {key} --evidence -\n"),
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Two gated stages; `approvers` sign each with their own key through a command hook,
/// and `threshold` of them are needed.
fn gated_plan(ws: &Workspace, name: &str, approvers: &[&str], threshold: usize) -> String {
    let mut plan = header(name) + "approvers:\n";
    for a in approvers {
        let public = if ws.join(&format!("{a}.pub")).exists() {
            std::fs::read_to_string(ws.join(&format!("{a}.pub")))
                .expect("pub")
                .trim()
                .to_owned()
        } else {
            ws.keypair(a)
        };
        hook(ws, &format!("{a}-hook.sh"), &format!("{a}.key"));
        plan += &format!(
            "  {a}:\n    publicKey: \"{public}\"\n    hook: {{ command: [\"./{a}-hook.sh\"] }}\n"
        );
    }
    let gate = format!(
        "{{ approvers: [{}], threshold: {threshold} }}",
        approvers.join(", ")
    );
    plan += &format!(
        "stages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n    signoff: {gate}\n  - name: cutover\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n    signoff: {gate}\n"
    );
    plan
}

/// A finished move with its record exported to `move.intoto.jsonl`.
fn exported(approvers: &[&str], threshold: usize) -> Workspace {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    ws.write(
        "plan.yaml",
        gated_plan(&ws, "audited", approvers, threshold),
    );
    let run = ws.run_plan("plain");
    assert!(run.status.success(), "{}\n{}", stdout(&run), stderr(&run));
    let export = ws.relocate(&[
        "record",
        "export",
        "plan.yaml",
        "--state-dir",
        "state",
        "--out",
        RECORD,
    ]);
    assert!(
        export.status.success(),
        "{}\n{}",
        stdout(&export),
        stderr(&export)
    );
    ws
}

fn lines(ws: &Workspace) -> Vec<String> {
    std::fs::read_to_string(ws.join(RECORD))
        .expect("record")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(ws: &Workspace, lines: &[String]) {
    std::fs::write(ws.join(RECORD), lines.join("\n") + "\n").expect("write record");
}

fn payload(line: &str) -> serde_json::Value {
    let env: serde_json::Value = serde_json::from_str(line).expect("envelope");
    let bytes = STANDARD
        .decode(env["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&bytes).expect("statement")
}

/// `relocate verify ARGS`, asserting exit code 7 and that some ✘ line contains `needle`.
fn assert_caught(ws: &Workspace, args: &[&str], needle: &str) -> String {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    let out = ws.relocate(&all);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(7), "{text}\n{}", stderr(&out));
    assert!(
        text.lines()
            .any(|l| l.starts_with('✘') && l.contains(needle)),
        "no ✘ line names `{needle}`:\n{text}"
    );
    assert!(text.contains("verification FAILED"), "{text}");
    text
}

/// A fresh approval of `evidence` signed with `key`, as one compact JSON line.
fn approval_line(ws: &Workspace, key: &str, evidence: &str, reason: &str) -> String {
    let out = ws.relocate(&[
        "approve",
        "--key",
        key,
        "--evidence",
        evidence,
        "--reason",
        reason,
        "--operator-key",
        "state/operator.pub",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let env: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("approval json");
    env.to_string()
}

const SEED_EVIDENCE: &str = "state/evidence/01-seed.attempt-1.intoto.json";
const CUTOVER_EVIDENCE: &str = "state/evidence/02-cutover.attempt-1.intoto.json";

#[test]
fn an_untouched_record_and_target_verify_with_exit_0() {
    let ws = exported(&["auditor"], 1);
    let lines = lines(&ws);
    assert_eq!(
        lines.len(),
        5,
        "header, 2 × (evidence, approval): {lines:#?}"
    );
    let header = payload(&lines[0]);
    assert_eq!(header["predicateType"], "https://relocate.dev/record/v1");
    assert_eq!(
        header["predicate"]["entries"].as_array().map(Vec::len),
        Some(4)
    );
    assert!(
        header["predicate"]["approvers"]["auditor"]["publicKey"]
            .as_str()
            .is_some_and(|k| k.starts_with("ed25519:"))
    );
    assert_eq!(payload(&lines[1])["predicate"]["stage"], "seed");
    assert_eq!(payload(&lines[2])["predicate"]["decision"], "approve");
    assert!(
        ws.join("move.intoto.jsonl.manifests/data.sha256sums")
            .exists()
    );

    let out = ws.relocate(&["verify", RECORD, "--plan", "plan.yaml", "--target"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(!text.contains('✘'), "{text}");
    for needle in [
        "signed by operator key",
        "stage `seed`: signed off by auditor (1 of 1 needed)",
        "stage `cutover`: signed off by auditor",
        "exactly the 4 entries its signed header lists, in order",
        "the record is of plan",
        "all 3 objects at target store `dst` hash to their manifest entries; no extra object",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn object_proof_leads_to_the_signed_manifest_root() {
    let ws = exported(&["auditor"], 1);
    let out = ws.relocate(&["verify", RECORD, "--object", "d1/f00001.bin"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains(
            "✔ object `d1/f00001.bin` is entry 2 of 3 in the manifest of workload `data`"
        ),
        "{text}"
    );
    assert!(
        text.contains("leaf  sha256:") && text.contains("path  1.") && text.contains("path  2."),
        "{text}"
    );
    let root = payload(&lines(&ws)[3])["predicate"]["workloads"][0]["manifestRoot"]
        .as_str()
        .expect("root")
        .to_owned();
    assert!(
        text.contains(&format!("root  {root}")),
        "the printed root is the signed one ({root}):\n{text}"
    );
    assert!(
        text.contains("signed by the operator in the evidence of stage `seed`")
            && text.contains("stage `cutover`"),
        "{text}"
    );

    assert_caught(
        &ws,
        &[RECORD, "--object", "no/such/key"],
        "object `no/such/key` is in no exported manifest",
    );
}

#[test]
fn a_flipped_byte_at_the_target_is_a_mismatch() {
    let ws = exported(&["auditor"], 1);
    let path = ws.join("dst/d0/f00000.bin");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[10] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
    assert_caught(
        &ws,
        &[RECORD, "--plan", "plan.yaml", "--target"],
        "`d0/f00000.bin` hashes to",
    );
    assert_caught(
        &ws,
        &[RECORD, "--plan", "plan.yaml", "--target"],
        "(mismatch)",
    );
}

#[test]
fn a_removed_and_an_extra_object_at_the_target_are_named() {
    let ws = exported(&["auditor"], 1);
    std::fs::remove_file(ws.join("dst/d1/f00001.bin")).expect("remove");
    ws.write("dst/d1/intruder.bin", b"not audited");
    let text = assert_caught(
        &ws,
        &[RECORD, "--plan", "plan.yaml", "--target"],
        "`d1/f00001.bin` is missing at the target",
    );
    assert!(text.contains("✘ `dst`: `d1/intruder.bin` is at the target but in no manifest entry (extra object, 11 bytes)"), "{text}");
}

#[test]
fn an_edited_record_line_breaks_its_signature() {
    let ws = exported(&["auditor"], 1);
    let mut lines = lines(&ws);
    let mut env: serde_json::Value = serde_json::from_str(&lines[3]).expect("envelope");
    let statement = payload(&lines[3])
        .to_string()
        .replace("\"objects\":3", "\"objects\":2");
    assert!(statement.contains("\"objects\":2"), "the edit applies");
    env["payload"] = STANDARD.encode(statement).into();
    lines[3] = env.to_string();
    write_lines(&ws, &lines);
    let text = assert_caught(
        &ws,
        &[RECORD],
        "line 4: evidence is not validly signed by the operator key",
    );
    assert!(text.contains("changed after signing"), "{text}");
    assert!(
        text.contains(
            "header entry 3 (evidence of stage `cutover` (attempt 1)) is missing from the record"
        ),
        "{text}"
    );
}

#[test]
fn a_removed_line_is_missing_from_the_signed_header() {
    let ws = exported(&["auditor"], 1);
    let mut lines = lines(&ws);
    lines.remove(2);
    write_lines(&ws, &lines);
    let text = assert_caught(
        &ws,
        &[RECORD],
        "header entry 2 (approval of stage `seed` by auditor) is missing from the record",
    );
    assert!(
        text.contains("stage `seed`: sign-off threshold not met: 0 of 1"),
        "{text}"
    );
}

#[test]
fn reordered_lines_are_caught() {
    let ws = exported(&["auditor"], 1);
    let mut lines = lines(&ws);
    lines.swap(3, 4);
    write_lines(&ws, &lines);
    let text = assert_caught(&ws, &[RECORD], "lines were reordered");
    assert!(
        text.contains(
            "✘ line 4: approval by auditor after the evidence of stage `seed` is refused"
        ),
        "{text}"
    );
}

#[test]
fn a_duplicated_line_is_caught() {
    let ws = exported(&["auditor"], 1);
    let mut lines = lines(&ws);
    lines.insert(3, lines[2].clone());
    write_lines(&ws, &lines);
    assert_caught(&ws, &[RECORD], "line 4 duplicates line 3");
}

#[test]
fn an_approval_by_an_unknown_key_is_caught() {
    let ws = exported(&["auditor"], 1);
    ws.keypair("stranger");
    let forged = approval_line(&ws, "stranger.key", CUTOVER_EVIDENCE, "looks fine to me");
    let mut lines = lines(&ws);
    lines.push(forged);
    write_lines(&ws, &lines);
    let text = assert_caught(&ws, &[RECORD], "line 6: approval signed by unknown key");
    assert!(
        text.contains("line 6 ")
            && text.contains("is not listed in the signed header: it was inserted"),
        "{text}"
    );
}

#[test]
fn an_approval_replayed_from_another_stage_is_caught() {
    let ws = exported(&["auditor"], 1);
    let replay = approval_line(&ws, "auditor.key", SEED_EVIDENCE, "replayed");
    let mut lines = lines(&ws);
    lines.insert(4, replay);
    write_lines(&ws, &lines);
    assert_caught(
        &ws,
        &[RECORD],
        "approval is for stage `seed`, not `cutover` (an approval replayed from stage `seed`)",
    );
}

#[test]
fn a_record_of_another_plan_does_not_match_the_plan() {
    let ws = exported(&["auditor"], 1);
    ws.write(
        "other.yaml",
        gated_plan(&ws, "another-move", &["auditor"], 1),
    );
    assert_caught(
        &ws,
        &[RECORD, "--plan", "other.yaml"],
        "the record is of another plan",
    );
}

#[test]
fn a_threshold_not_met_is_caught() {
    let ws = exported(&["auditor", "notary"], 2);
    let mut lines = lines(&ws);
    assert_eq!(lines.len(), 7, "header, 2 × (evidence, 2 approvals)");
    let removed = lines.remove(5);
    assert_eq!(payload(&removed)["predicate"]["stage"], "cutover");
    write_lines(&ws, &lines);
    let text = assert_caught(
        &ws,
        &[RECORD, "--plan", "plan.yaml"],
        "stage `cutover`: sign-off threshold not met: 1 of 2 approvals",
    );
    assert!(
        text.contains("stage `seed`: signed off by auditor, notary (2 of 2 needed)"),
        "{text}"
    );
}

#[test]
fn digests_list_missing_extra_and_mismatching_objects() {
    let ws = Workspace::new();
    ws.write("release/app.tar", b"the audited app");
    ws.write("release/notes.txt", b"changed after the audit");
    ws.write("release/unlisted.bin", b"nobody reviewed this");
    let sha = |b: &[u8]| hex_sha256(b);
    let list = format!(
        "{}  app.tar\n{}  notes.txt\n{}  docs/manual.pdf\n",
        sha(b"the audited app"),
        sha(b"the notes as audited"),
        sha(b"a manual")
    );
    ws.write("audited.sha256sums", list);
    let store = format!("file://{}/", ws.join("release").display());
    let text = assert_caught(
        &ws,
        &["--digests", "audited.sha256sums", "--store", &store],
        "`notes.txt` hashes to",
    );
    assert!(
        text.contains("`docs/manual.pdf` is in the digest list but missing from the store"),
        "{text}"
    );
    assert!(
        text.contains(
            "`unlisted.bin` is in the store but not in the digest list (extra, 20 bytes)"
        ),
        "{text}"
    );
    assert!(
        !text.contains("`app.tar`"),
        "the matching object is not a problem:\n{text}"
    );

    // The same store checks clean against an in-toto statement's subjects.
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "app.tar", "digest": {"sha256": sha(b"the audited app")}},
            {"name": "notes.txt", "digest": {"sha256": sha(b"changed after the audit")}},
            {"name": "unlisted.bin", "digest": {"sha256": sha(b"nobody reviewed this")}},
        ],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {},
    });
    ws.write("release.intoto.json", statement.to_string());
    let out = ws.relocate(&[
        "verify",
        "--digests",
        "release.intoto.json",
        "--store",
        &store,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("all 3 objects of the digest list are present"),
        "{}",
        stdout(&out)
    );
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
