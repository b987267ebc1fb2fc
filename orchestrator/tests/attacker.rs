//! The attacker's suite against the auditor's side (issue 13): a finished, signed-off
//! move is exported, then an attacker who holds (or replaced) the operator key forges
//! and strips headers, edits manifests, replaces the operator key everywhere and hands
//! edited evidence to `approve`. Every attempt must end in a refusal or a `✘` with
//! exit 7, never in a clean verdict that an auditor would trust.

mod util;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use connectors::signoff::dsse::{Envelope, SignEnvelope};
use connectors::signoff::keys::SecretKey;
use connectors::signoff::statement::PAYLOAD_TYPE;
use serde_json::Value;
use util::{Workspace, header, stderr, stdout};

const RECORD: &str = "move.intoto.jsonl";
const SUMS: &str = "move.intoto.jsonl.manifests/data.sha256sums";
const SEED_EVIDENCE: &str = "state/evidence/01-seed.attempt-1.intoto.json";

fn hook(ws: &Workspace, name: &str, key: &str) {
    ws.script(
        name,
        &format!("set -e\n\"$RELOCATE_BIN\" approve --key {key} --evidence -"),
    );
}

/// Two gated stages signed by `auditor`; `operator` pins the operator key when given.
fn plan_text(ws: &Workspace, name: &str, operator: Option<&str>) -> String {
    let auditor = match std::fs::read_to_string(ws.join("auditor.pub")) {
        Ok(text) => text.trim().to_owned(),
        Err(_) => ws.keypair("auditor"),
    };
    hook(ws, "auditor-hook.sh", "auditor.key");
    let mut plan = header(name);
    plan += &format!(
        "approvers:\n  auditor:\n    publicKey: \"{auditor}\"\n    hook: {{ command: [\"./auditor-hook.sh\"] }}\n"
    );
    if let Some(key) = operator {
        plan += &format!("operator:\n  publicKey: \"{key}\"\n");
    }
    plan += "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n    signoff: [auditor]\n  - name: cutover\n    steps: [ { copy: data }, { verify: data } ]\n    signoff: [auditor]\n";
    plan
}

/// A finished move, exported to `move.intoto.jsonl`; with `pinned`, the plan pins the
/// operator key `operator.pub` and the run installs `operator.key`.
fn finished(pinned: bool) -> Workspace {
    let ws = Workspace::new();
    ws.fill("src", 3, 100);
    let operator = pinned.then(|| ws.keypair("operator"));
    ws.write("plan.yaml", plan_text(&ws, "attacked", operator.as_deref()));
    let mut args = vec![
        "run",
        "plan.yaml",
        "--state-dir",
        "state",
        "--output",
        "plain",
    ];
    if pinned {
        args.extend(["--operator-key", "operator.key"]);
    }
    let run = ws.relocate(&args);
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
    assert!(export.status.success(), "{}", stderr(&export));
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

fn statement(line: &str) -> Value {
    let env: Value = serde_json::from_str(line).expect("envelope");
    let bytes = STANDARD
        .decode(env["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&bytes).expect("statement")
}

/// `line`'s statement edited by `edit` and signed by `key` alone (a forger's line).
fn resign(line: &str, key: &SecretKey, edit: impl FnOnce(&mut Value)) -> String {
    let mut st = statement(line);
    edit(&mut st);
    let payload = serde_json::to_vec(&st).expect("json");
    serde_json::to_string(&Envelope::sign(PAYLOAD_TYPE, payload, key)).expect("envelope json")
}

fn operator_key(ws: &Workspace) -> SecretKey {
    SecretKey::load(&ws.join("state/operator.key")).expect("the state's operator key")
}

/// `relocate verify ARGS`: exit code and stdout.
fn verify(ws: &Workspace, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    let out = ws.relocate(&all);
    (out.status.code(), stdout(&out) + &stderr(&out))
}

/// The closing verdict line of `verify`'s output.
fn verdict_line(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("verified") || l.starts_with("verification FAILED"))
        .unwrap_or_else(|| panic!("no verdict line in:\n{text}"))
        .to_owned()
}

fn assert_caught(ws: &Workspace, args: &[&str], needle: &str) -> String {
    let (code, text) = verify(ws, args);
    assert_eq!(code, Some(7), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with('✘') && l.contains(needle)),
        "no ✘ line names `{needle}`:\n{text}"
    );
    text
}

fn flip_target_byte(ws: &Workspace) {
    let path = ws.join("dst/d0/f00000.bin");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[10] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
}

#[test]
fn finding_01_a_header_resigned_with_no_manifests_still_checks_the_target() {
    let ws = finished(false);
    let mut lines = lines(&ws);
    lines[0] = resign(&lines[0], &operator_key(&ws), |st| {
        st["predicate"]["manifests"] = Value::Array(Vec::new());
    });
    write_lines(&ws, &lines);
    flip_target_byte(&ws);
    let text = assert_caught(
        &ws,
        &[RECORD, "--plan", "plan.yaml", "--target"],
        "`d0/f00000.bin` hashes to",
    );
    assert!(!text.contains("nothing to check at a target"), "{text}");
}

#[test]
fn finding_01_one_edited_hash_in_the_exported_sums_fails_without_target() {
    let ws = finished(false);
    let sums = std::fs::read_to_string(ws.join(SUMS)).expect("sums");
    let first = sums.lines().next().expect("a line");
    let forged_hash = "0".repeat(64);
    let edited = sums.replacen(&first[..64], &forged_hash, 1);
    assert_ne!(edited, sums, "the edit applies");
    ws.write(SUMS, edited);
    assert_caught(
        &ws,
        &[RECORD],
        "manifest of workload `data` (3 objects, root",
    );
    assert_caught(
        &ws,
        &[RECORD],
        "is not the one signed in stage `cutover`'s evidence",
    );
}

#[test]
fn finding_01_a_header_forged_to_match_an_edited_manifest_is_not_trusted() {
    let ws = finished(false);
    let sums = std::fs::read_to_string(ws.join(SUMS)).expect("sums");
    let edited = sums.replacen(&sums[..64], &"1".repeat(64), 1);
    ws.write(SUMS, &edited);
    let digest = format!("sha256:{}", hex_sha256(edited.as_bytes()));
    let mut lines = lines(&ws);
    lines[0] = resign(&lines[0], &operator_key(&ws), |st| {
        st["predicate"]["manifests"][0]["digest"] = Value::String(digest);
    });
    write_lines(&ws, &lines);
    assert_caught(
        &ws,
        &[RECORD],
        "is not the one signed in stage `cutover`'s evidence",
    );
}

#[test]
fn finding_01_a_manifest_the_evidence_names_but_the_export_lacks_fails() {
    let ws = finished(false);
    std::fs::remove_file(ws.join(SUMS)).expect("remove");
    let mut lines = lines(&ws);
    lines[0] = resign(&lines[0], &operator_key(&ws), |st| {
        st["predicate"]["manifests"] = Value::Array(Vec::new());
    });
    write_lines(&ws, &lines);
    assert_caught(
        &ws,
        &[RECORD],
        "manifest of workload `data` is signed in stage `cutover`'s evidence (line 4) but missing from the export",
    );
    std::fs::remove_dir_all(ws.join("move.intoto.jsonl.manifests")).expect("remove dir");
    assert_caught(&ws, &[RECORD], "but missing from the export");
}

#[test]
fn finding_01_a_file_no_evidence_names_in_the_export_fails() {
    let ws = finished(false);
    ws.write(
        "move.intoto.jsonl.manifests/other.sha256sums",
        format!("{}  planted.bin\n", "2".repeat(64)),
    );
    assert_caught(
        &ws,
        &[RECORD],
        "other.sha256sums is in the export but no signed evidence names it",
    );
}

#[test]
fn attack_a_stripped_header_is_refused() {
    let ws = finished(false);
    let mut lines = lines(&ws);
    lines.remove(0);
    write_lines(&ws, &lines);
    assert_caught(&ws, &[RECORD], "line 1 is not a relocate record header");
}

#[test]
fn attack_a_header_resigned_by_a_stranger_is_refused() {
    let ws = finished(false);
    let stranger = SecretKey::from_seed(&[42; 32]);
    let mut lines = lines(&ws);
    lines[0] = resign(&lines[0], &stranger, |_| {});
    write_lines(&ws, &lines);
    assert_caught(&ws, &[RECORD], "line 1 (record header)");
}

/// An attacker holding the operator key forges the manifest, re-signs the evidence to
/// match it and the header to list the new line: the auditor's approval no longer
/// binds the evidence, so the gate fails.
#[test]
fn attack_evidence_resigned_to_match_a_forged_manifest_loses_its_approval() {
    let ws = finished(false);
    let sums = std::fs::read_to_string(ws.join(SUMS)).expect("sums");
    ws.write(SUMS, sums.replacen(&sums[..64], &"3".repeat(64), 1));
    let forged = relocate_verifier::manifest::summarize(
        &ws.join("move.intoto.jsonl.manifests"),
        &relocate_verifier::record::ManifestRef {
            workload: "data".to_owned(),
            algorithm: "sha256".to_owned(),
            objects: 3,
            digest: String::new(),
            root: String::new(),
        },
    )
    .expect("the forged manifest reads");
    let (_, root, digest) = forged;
    let key = operator_key(&ws);
    let mut lines = lines(&ws);
    lines[3] = resign(&lines[3], &key, |st| {
        st["predicate"]["workloads"][0]["manifestRoot"] = Value::String(root.clone());
        st["predicate"]["workloads"][0]["manifestDigest"] = Value::String(digest.clone());
        st["subject"][0]["digest"]["sha256"] =
            Value::String(root.trim_start_matches("sha256:").to_owned());
    });
    let new_digest = format!(
        "sha256:{}",
        hex_sha256(
            &STANDARD
                .decode(
                    serde_json::from_str::<Value>(&lines[3]).expect("json")["payload"]
                        .as_str()
                        .expect("payload")
                )
                .expect("base64")
        )
    );
    lines[0] = resign(&lines[0], &key, |st| {
        st["predicate"]["entries"][2]["digest"] = Value::String(new_digest);
    });
    write_lines(&ws, &lines);
    let text = assert_caught(
        &ws,
        &[RECORD],
        "stage `cutover`: sign-off threshold not met",
    );
    assert!(text.contains("approval is over other evidence"), "{text}");
}

/// The attacker's record: every line the operator signed re-signed by `forger`, the
/// header naming `forger`'s key. Approvals still bind the (unchanged) payloads.
fn replace_operator_everywhere(ws: &Workspace, forger: &SecretKey) {
    let mut lines = lines(ws);
    let forged_key = forger.public().to_string();
    for line in lines.iter_mut() {
        let st = statement(line);
        let kind = st["predicateType"].as_str().unwrap_or_default().to_owned();
        if kind.contains("/record/") {
            let key = forged_key.clone();
            *line = resign(line, forger, move |st| {
                st["predicate"]["operatorKey"] = Value::String(key);
            });
        } else if kind.contains("/evidence/") {
            let env: Value = serde_json::from_str(line).expect("envelope");
            let payload = STANDARD
                .decode(env["payload"].as_str().expect("payload"))
                .expect("base64");
            *line = serde_json::to_string(&Envelope::sign(PAYLOAD_TYPE, payload, forger))
                .expect("json");
        }
    }
    write_lines(ws, &lines);
}

#[test]
fn finding_02_a_replaced_operator_key_fails_under_the_plans_pin() {
    let ws = finished(true);
    let real = std::fs::read_to_string(ws.join("operator.pub")).expect("pub");
    let forger = SecretKey::from_seed(&[7; 32]);
    replace_operator_everywhere(&ws, &forger);

    let (code, text) = verify(&ws, &[RECORD]);
    assert_eq!(
        code,
        Some(0),
        "the forgery is internally consistent:\n{text}"
    );
    let verdict = verdict_line(&text);
    assert!(
        verdict.contains("integrity only: operator key not pinned"),
        "the verdict names its limit: {verdict}"
    );

    let text = assert_caught(
        &ws,
        &[RECORD, "--plan", "plan.yaml"],
        "not by the pinned key",
    );
    let real_id = connectors::signoff::keys::PublicKey::parse(real.trim())
        .expect("key")
        .key_id();
    assert!(
        text.contains(&real_id) && text.contains(&forger.public().key_id()),
        "both key ids are named:\n{text}"
    );
    assert_caught(
        &ws,
        &[RECORD, "--operator-key", "operator.pub"],
        "not by the pinned key",
    );
}

#[test]
fn finding_02_verify_json_says_integrity_only_when_nothing_is_pinned() {
    let ws = finished(true);
    let out = ws.relocate(&["verify", RECORD, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["verified"], true);
    assert_eq!(doc["integrityOnly"], true);
    assert!(
        doc["verdict"]
            .as_str()
            .is_some_and(|v| v.contains("integrity only: operator key not pinned")),
        "{doc:#}"
    );
    assert_eq!(doc["stages"][0]["operator"]["pinned"], false);

    let out = ws.relocate(&["verify", RECORD, "--plan", "plan.yaml", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["integrityOnly"], false);
    assert_eq!(doc["limits"], Value::Array(Vec::new()));
    assert_eq!(doc["stages"][1]["stage"], "cutover");
    assert_eq!(doc["stages"][1]["operator"]["pinned"], true);
    assert_eq!(doc["stages"][1]["approvals"][0]["approver"], "auditor");
    assert_eq!(doc["stages"][1]["approvals"][0]["pinned"], true);
}

#[test]
fn finding_02_verify_lists_per_stage_the_pinned_keys_that_attest_it() {
    let ws = finished(true);
    let (code, text) = verify(&ws, &[RECORD, "--plan", "plan.yaml"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("stage `seed`: evidence (line 2) signed by operator key")
            && text.contains("(pinned by the plan's operator.publicKey); approved by auditor, key"),
        "{text}"
    );
    let verdict = verdict_line(&text);
    assert!(
        verdict.starts_with("verified: all ") && !verdict.contains("integrity only"),
        "{verdict}"
    );
}

#[test]
fn finding_02_run_refuses_a_state_whose_operator_key_is_not_the_pinned_one() {
    let ws = Workspace::new();
    ws.fill("src", 2, 10);
    let pinned = ws.keypair("operator");
    ws.keypair("other");
    ws.write("plan.yaml", plan_text(&ws, "pinned", Some(&pinned)));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ];
        args.extend_from_slice(extra);
        ws.relocate(&args)
    };
    let id = |name: &str| {
        let text = std::fs::read_to_string(ws.join(&format!("{name}.pub"))).expect("pub");
        connectors::signoff::keys::PublicKey::parse(text.trim())
            .expect("key")
            .key_id()
    };

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has no operator key yet") && stderr(&out).contains(&id("operator")),
        "{}",
        stderr(&out)
    );
    assert!(
        !ws.join("state/operator.key").exists(),
        "no key was invented"
    );

    let out = run(&["--operator-key", "other.key"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&id("other")) && stderr(&out).contains(&id("operator")),
        "both key ids are named: {}",
        stderr(&out)
    );

    std::fs::copy(ws.join("other.key"), ws.join("state/operator.key")).expect("plant");
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&id("other")) && stderr(&out).contains(&id("operator")),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(ws.join("state/operator.key")).expect("unplant");

    let out = run(&["--operator-key", "operator.key"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read(ws.join("state/operator.key")).expect("installed"),
        std::fs::read(ws.join("operator.key")).expect("given")
    );
    let again = run(&[]);
    assert!(
        again.status.success(),
        "the installed key is used: {}",
        stderr(&again)
    );
}

/// `relocate approve` with `args`: exit code, stdout, stderr.
fn approve(ws: &Workspace, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["approve", "--key", "auditor.key"];
    all.extend_from_slice(args);
    let out = ws.relocate(&all);
    (out.status.code(), stdout(&out), stderr(&out))
}

/// The seed evidence with its payload edited to claim 999999 objects, written to
/// `edited.json` (the operator's signature left as it was).
fn edited_evidence(ws: &Workspace) {
    let mut env: Value =
        serde_json::from_slice(&std::fs::read(ws.join(SEED_EVIDENCE)).expect("evidence"))
            .expect("json");
    let mut st = statement(&env.to_string());
    st["predicate"]["workloads"][0]["objects"] = Value::from(999_999);
    env["payload"] = STANDARD
        .encode(serde_json::to_vec(&st).expect("json"))
        .into();
    ws.write("edited.json", env.to_string());
}

#[test]
fn finding_17_approve_refuses_evidence_edited_to_claim_999999_objects() {
    let ws = finished(true);
    edited_evidence(&ws);
    for pin in [
        &["--plan", "plan.yaml"][..],
        &["--operator-key", "operator.pub"][..],
    ] {
        let mut args = vec!["--evidence", "edited.json"];
        args.extend_from_slice(pin);
        let (code, out, err) = approve(&ws, &args);
        assert_eq!(code, Some(5), "{err}");
        assert!(out.trim().is_empty(), "nothing was signed: {out}");
        assert!(
            err.contains("changed after the operator signed it"),
            "{err}"
        );
        assert!(
            !err.contains("999999"),
            "the forged claim is not summarised: {err}"
        );
    }
    let (code, out, err) = approve(&ws, &["--evidence", "edited.json"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(out.trim().is_empty() && err.contains("not pinned"), "{err}");

    let (code, out, err) = approve(&ws, &["--evidence", SEED_EVIDENCE, "--plan", "plan.yaml"]);
    assert_eq!(code, Some(0), "the untouched evidence is signed: {err}");
    assert!(out.contains("payloadType"), "{out}");
    assert!(
        err.contains("pinned by the plan's operator.publicKey"),
        "{err}"
    );
}

#[test]
fn finding_17_approve_refuses_unsigned_and_foreign_evidence() {
    let ws = finished(true);
    let mut env: Value =
        serde_json::from_slice(&std::fs::read(ws.join(SEED_EVIDENCE)).expect("evidence"))
            .expect("json");
    env["signatures"] = Value::Array(Vec::new());
    ws.write("unsigned.json", env.to_string());
    let (code, _, err) = approve(&ws, &["--evidence", "unsigned.json", "--unpinned"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("not signed"), "{err}");

    let forger = SecretKey::from_seed(&[9; 32]);
    let raw = std::fs::read_to_string(ws.join(SEED_EVIDENCE)).expect("evidence");
    let forged = resign(
        &serde_json::from_str::<Value>(&raw)
            .expect("json")
            .to_string(),
        &forger,
        |st| {
            st["predicate"]["workloads"][0]["objects"] = Value::from(999_999);
        },
    );
    ws.write("forged.json", forged);
    let (code, out, err) = approve(&ws, &["--evidence", "forged.json", "--plan", "plan.yaml"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(out.trim().is_empty(), "{out}");
    assert!(
        err.contains("not signed by the pinned operator key"),
        "{err}"
    );
}

#[test]
fn finding_17_approve_refuses_evidence_of_another_plan_and_shows_the_statement() {
    let ws = finished(true);
    let pinned = std::fs::read_to_string(ws.join("operator.pub")).expect("pub");
    ws.write(
        "other.yaml",
        plan_text(&ws, "another-move", Some(pinned.trim())),
    );
    let (code, _, err) = approve(&ws, &["--evidence", SEED_EVIDENCE, "--plan", "other.yaml"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("is of plan digest"), "{err}");

    let (code, _, err) = approve(
        &ws,
        &["--evidence", SEED_EVIDENCE, "--plan", "plan.yaml", "--show"],
    );
    assert_eq!(code, Some(0), "{err}");
    for needle in [
        "\"predicateType\"",
        "\"manifestRoot\"",
        "\"previousEvidence\"",
        "\"subject\"",
    ] {
        assert!(
            err.contains(needle),
            "--show prints the whole statement ({needle}):\n{err}"
        );
    }
}

#[test]
fn finding_09_an_approvals_signed_at_is_shown_as_claimed_by_the_signer() {
    let ws = finished(false);
    let (code, text) = verify(&ws, &[RECORD]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.lines()
            .filter(|l| l.contains("approval of stage"))
            .all(|l| l.contains("(claimed by the signer, not a trusted time)")),
        "{text}"
    );
    assert!(text.contains("claimed by the signer"), "{text}");
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
