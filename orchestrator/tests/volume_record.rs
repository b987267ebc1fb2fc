//! Volume manifests in the auditor's record, end to end with genuine files: trees are
//! packed for real (`orchestrator::volumes::pack` into a local object store), their
//! staged manifests kept in the state directory and their volumes put in a signed
//! evidence line, as the coordinator does after each pack; then `relocate record
//! export` writes them beside the record and `relocate verify` checks them from their
//! bytes: an edited byte, a dropped or moved line, two volumes' files swapped and
//! evidence whose counts lie are each a `✘` naming the volume, with exit 7.

mod util;
mod volumes_tree;

use std::path::Path;
use std::sync::Arc;

use connectors::signoff::dsse::Envelope;
use connectors::signoff::keys::SecretKey;
use connectors::signoff::statement::{
    SignStatement, VolumeEvidence, WorkloadEvidence, evidence_digest, parse_evidence,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use orchestrator::state::{Db, StateDir};
use orchestrator::volumes::{PackOptions, VolumeSummary, pack};
use serde_json::Value;
use util::{Workspace, header, stderr, stdout};

const RECORD: &str = "move.intoto.jsonl";
const DATA: &str = "move.intoto.jsonl.manifests/analyzer.data.volume.ndjson";
const LOGS: &str = "move.intoto.jsonl.manifests/analyzer.logs.volume.ndjson";
const EVIDENCE: &str = "volume-evidence.intoto.json";

/// A genuine volume: its staged manifest's bytes and what the pack summed up.
struct Packed {
    manifest: Vec<u8>,
    summary: VolumeSummary,
}

fn pack_tree(claim: &str, fill: impl FnOnce(&Path)) -> Packed {
    let src = tempfile::tempdir().expect("src");
    fill(src.path());
    let staging = tempfile::tempdir().expect("staging");
    let store = Arc::new(LocalFileSystem::new_with_prefix(staging.path()).expect("store"));
    let prefix = ObjectPath::from(format!("volumes/{claim}"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let summary = rt
        .block_on(pack(
            src.path(),
            store,
            &prefix,
            claim,
            PackOptions::default(),
        ))
        .expect("pack");
    let manifest = std::fs::read(
        staging
            .path()
            .join(format!("volumes/{claim}/manifest.ndjson")),
    )
    .expect("staged manifest");
    Packed { manifest, summary }
}

/// The evidence of a volume, as the coordinator states it.
fn volume_evidence(p: &Packed) -> VolumeEvidence {
    let s = &p.summary;
    VolumeEvidence {
        claim: s.claim.clone(),
        namespace: "analysis".into(),
        entries: s.entries,
        files: s.files,
        bytes: s.bytes,
        root: format!("sha256:{}", s.root),
        manifest_digest: format!("sha256:{}", s.manifest_sha256),
        sparse: s.sparse.clone(),
        not_moved: s.not_moved.clone(),
        hard_links: s.hard_links,
        checked: "restored".into(),
        checked_in: None,
        packed_from: None,
    }
}

/// Two volumes: `data`, the odd tree (hard link, sparse file, socket, unicode and
/// newline names, 500 small files), and `logs`, a few plain files.
fn volumes() -> Vec<Packed> {
    vec![
        pack_tree("data", volumes_tree::odd_tree),
        pack_tree("logs", |root| {
            for i in 0..5 {
                std::fs::write(root.join(format!("log{i}")), format!("line {i}\n")).expect("log");
            }
        }),
    ]
}

/// A finished object move whose record also carries `volumes` (as a second attempt's
/// evidence, signed by the state's operator key, after `edit` of its predicate), the
/// state directory holding their manifests, and the record exported.
fn moved_with(volumes: &[Packed], edit: impl FnOnce(&mut Value)) -> Workspace {
    let ws = Workspace::new();
    ws.fill("src", 3, 50);
    ws.write(
        "plan.yaml",
        header("vols")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    let run = ws.run_plan("plain");
    assert!(run.status.success(), "{}\n{}", stdout(&run), stderr(&run));

    let state = StateDir::for_plan(Some(&ws.join("state")), "vols");
    for p in volumes {
        let to = state
            .volumes_dir()
            .join("analyzer")
            .join(format!("{}.manifest.ndjson", p.summary.claim));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::write(&to, &p.manifest).expect("state copy");
    }
    let db = Db::open(&state.db_path()).expect("db");
    let first = db.record().expect("record").remove(0);
    let envelope = Envelope::from_json(first.envelope.as_bytes()).expect("envelope");
    let (mut statement, mut predicate) = parse_evidence(&envelope).expect("evidence");
    let volumes: Vec<VolumeEvidence> = volumes.iter().map(volume_evidence).collect();
    statement
        .subject
        .extend(volumes.iter().map(|v| v.subject("analyzer")));
    predicate.attempt = 2;
    predicate.workloads.push(WorkloadEvidence {
        name: "analyzer".into(),
        kind: "kubernetes".into(),
        source: "msk-k8s".into(),
        target: "zrh-k8s".into(),
        algorithm: None,
        objects: 0,
        bytes: 0,
        manifest_root: None,
        manifest_digest: None,
        resources: Vec::new(),
        volumes,
    });
    statement.predicate = serde_json::to_value(&predicate).expect("predicate");
    edit(&mut statement.predicate);
    let key = SecretKey::load(&state.operator_key_stem().with_extension("key")).expect("key");
    let signed = statement.sign(&key);
    let json = String::from_utf8(signed.to_json_pretty()).expect("utf-8");
    ws.write(EVIDENCE, &json);
    db.append_record(
        "evidence",
        "seed",
        2,
        None,
        None,
        None,
        &evidence_digest(&signed),
        &json,
    )
    .expect("append");
    drop(db);
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

fn verify(ws: &Workspace) -> (Option<i32>, String) {
    let out = ws.relocate(&["verify", RECORD, "--plan", "plan.yaml"]);
    (out.status.code(), stdout(&out) + &stderr(&out))
}

/// `relocate verify` fails with exit 7 and a `✘` line holding every needle.
fn assert_refused(ws: &Workspace, needles: &[&str]) {
    let (code, text) = verify(ws);
    assert_eq!(code, Some(7), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with('✘') && needles.iter().all(|n| l.contains(n))),
        "no ✘ line with {needles:?}:\n{text}"
    );
}

#[test]
fn genuine_volume_manifests_are_exported_byte_for_byte_and_verify() {
    let packed = volumes();
    let ws = moved_with(&packed, |_| {});
    assert_eq!(
        std::fs::read(ws.join(DATA)).expect("exported data"),
        packed[0].manifest
    );
    assert_eq!(
        std::fs::read(ws.join(LOGS)).expect("exported logs"),
        packed[1].manifest
    );
    let (code, text) = verify(&ws);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("✔ volume manifest of `analyzer/data`")
            && text.contains(
                "✔ volume manifest of `analyzer/logs` (6 entries, 5 files, 35 bytes, restored)"
            ),
        "{text}"
    );
}

#[test]
fn one_edited_byte_of_a_volume_manifest_is_refused() {
    let ws = moved_with(&volumes(), |_| {});
    let mut bytes = std::fs::read(ws.join(DATA)).expect("manifest");
    // The first file's content hash: same length, still a well-formed line.
    let at = bytes
        .windows(10)
        .position(|w| w == b"\"sha256\":\"")
        .expect("a file entry")
        + 10;
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(ws.join(DATA), bytes).expect("write");
    assert_refused(
        &ws,
        &[
            "volume manifest of `analyzer/data` is not the one signed",
            "sha256",
            "root",
        ],
    );
}

#[test]
fn a_dropped_line_is_refused_naming_the_counts() {
    let ws = moved_with(&volumes(), |_| {});
    let text = std::fs::read_to_string(ws.join(LOGS)).expect("manifest");
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("\"log3\"")).collect();
    std::fs::write(ws.join(LOGS), kept.join("\n") + "\n").expect("write");
    assert_refused(
        &ws,
        &[
            "`analyzer/logs`",
            "entries 5 in the file, 6 signed",
            "files 4 in the file, 5 signed",
        ],
    );
}

#[test]
fn two_reordered_lines_are_refused_and_named_out_of_order() {
    let ws = moved_with(&volumes(), |_| {});
    let text = std::fs::read_to_string(ws.join(LOGS)).expect("manifest");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(2, 3);
    std::fs::write(ws.join(LOGS), lines.join("\n") + "\n").expect("write");
    assert_refused(&ws, &["`analyzer/logs` is not the one signed", "root"]);
    assert_refused(&ws, &["`analyzer/logs` is malformed", "out of order"]);
}

#[test]
fn two_volumes_files_swapped_are_both_refused() {
    let ws = moved_with(&volumes(), |_| {});
    let (data, logs) = (ws.join(DATA), ws.join(LOGS));
    let tmp = ws.join("swap");
    std::fs::rename(&data, &tmp).expect("swap");
    std::fs::rename(&logs, &data).expect("swap");
    std::fs::rename(&tmp, &logs).expect("swap");
    assert_refused(
        &ws,
        &[
            "`analyzer/data` is not the one signed",
            "entries 6 in the file",
        ],
    );
    assert_refused(
        &ws,
        &[
            "`analyzer/logs` is not the one signed",
            "in the file, 6 signed",
        ],
    );
}

#[test]
fn evidence_whose_counts_lie_is_refused_naming_each_count() {
    let ws = moved_with(&volumes(), |p| {
        let v = &mut p["workloads"][1]["volumes"][1];
        v["files"] = Value::from(6);
        v["bytes"] = Value::from(1_000_000);
        v["hardLinks"] = Value::from(2);
    });
    assert_refused(
        &ws,
        &[
            "`analyzer/logs` is not the one signed",
            "files 5 in the file, 6 signed",
            "bytes 35 in the file, 1000000 signed",
            "hard links 0 in the file, 2 signed",
        ],
    );
}

#[test]
fn a_volume_without_its_subject_or_file_is_refused() {
    let ws = moved_with(&volumes(), |p| {
        p["workloads"][1]["volumes"][0]["root"] = Value::from(format!("sha256:{}", "0".repeat(64)));
    });
    assert_refused(
        &ws,
        &[
            "volume `analyzer/data`",
            "is not the one subject `volume:analyzer/data` signs",
        ],
    );

    let ws = moved_with(&volumes(), |_| {});
    std::fs::remove_file(ws.join(LOGS)).expect("remove");
    assert_refused(
        &ws,
        &[
            "volume manifest of `analyzer/logs` is signed in stage `seed`'s evidence",
            "missing from the export",
        ],
    );
}

#[test]
fn export_fails_naming_a_volume_whose_manifest_the_state_lacks() {
    let packed = volumes();
    let ws = moved_with(&packed, |_| {});
    std::fs::remove_file(ws.join("state/volumes/analyzer/logs.manifest.ndjson")).expect("remove");
    let out = ws.relocate(&[
        "record",
        "export",
        "plan.yaml",
        "--state-dir",
        "state",
        "--out",
        "again.intoto.jsonl",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("volume `analyzer/logs`: its manifest")
            && stderr(&out).contains("logs.manifest.ndjson"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn evidence_show_and_the_transparency_report_list_each_volume() {
    let packed = volumes();
    let ws = moved_with(&packed, |_| {});
    let out = ws.relocate(&["evidence", "show", EVIDENCE, "--plan", "plan.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let data = &packed[0].summary;
    assert!(
        text.contains(&format!("analyzer: analysis/data: {} files, ", data.files))
            && text.contains(&format!("Merkle root sha256:{}", data.root))
            && text.contains("analyzer: analysis/logs: 5 files, ")
            && text.contains("(35 bytes), 6 entries, checked restored")
            && text.contains("1 hard links, kept as links")
            && text.contains("sparse (restored with holes): sparse.bin")
            && text.contains("not moved (sockets): app.sock"),
        "{text}"
    );

    let out = ws.relocate(&[
        "record",
        "report",
        RECORD,
        "--plan",
        "plan.yaml",
        "--out",
        "report.html",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let html = std::fs::read_to_string(ws.join("report.html")).expect("report");
    assert!(html.contains("class=\"verdict ok\""), "{html}");
    for p in &packed {
        assert!(
            html.contains(&format!("analysis/{}", p.summary.claim))
                && html.contains(&format!("sha256:{}", p.summary.root)),
            "{html}"
        );
    }
}
