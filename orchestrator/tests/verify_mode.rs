//! `verify: { mode: … }` as a user writes it: the signed evidence of the verify step says
//! which mode verified the workload and how many objects the store's own checksum
//! covered; a target that keeps no checksum relocate can read (local files) is re-read
//! in full, and the plan without the key keeps `reread`.

mod util;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use util::{Workspace, header, stderr, stdout};

const COPY_VERIFY: &str =
    "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n";

fn plan(extra: &str) -> String {
    let objects = format!("objects: {{ from: src, to: dst{extra} }}");
    header("verify-mode").replace("objects: { from: src, to: dst }", &objects) + COPY_VERIFY
}

/// The verify step's detail in the signed evidence of stage `seed`.
fn evidence_verify_detail(ws: &Workspace) -> serde_json::Value {
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
        .find(|s| s["kind"] == "verify")
        .expect("verify step")["detail"]
        .clone()
}

fn run(extra: &str) -> serde_json::Value {
    let ws = Workspace::new();
    ws.fill("src", 5, 1000);
    ws.write("plan.yaml", plan(extra));
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    evidence_verify_detail(&ws)
}

#[test]
fn the_evidence_records_which_mode_verified_the_workload() {
    let default = run("");
    assert_eq!(default["verify_mode"], "reread", "{default}");
    assert_eq!(default["verified"], 5);
    assert!(default.get("verified_by_checksum").is_none(), "{default}");

    let checksum = run(", verify: { mode: checksum }");
    assert_eq!(checksum["verify_mode"], "checksum", "{checksum}");
    assert_eq!(checksum["verified"], 5);
    // Local files keep no checksum: every object was re-read, and the evidence says so.
    assert_eq!(checksum["verified_by_checksum"], 0, "{checksum}");
}

#[test]
fn a_checksum_verify_over_a_blake3_manifest_is_refused_before_anything_moves() {
    let ws = Workspace::new();
    ws.fill("src", 2, 10);
    ws.write(
        "plan.yaml",
        plan(", checksum: blake3, verify: { mode: checksum }"),
    );
    let out = ws.relocate(&["plan", "validate", "plan.yaml"]);
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("verify: { mode: checksum }") && text.contains("checksum: sha256"),
        "{text}"
    );
}
