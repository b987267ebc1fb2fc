//! `relocate record report`: the transparency report of a real run (the quickstart plan,
//! two signed stages), rendered by headless Chromium (Debian's `chromium`, installed by
//! scripts/test.sh): the DOM holds the verdict, the stage names and the Merkle root the
//! evidence signs, and a screenshot is produced. A tampered record gives a report that
//! says so at the top, in red, never a clean one.

mod util;

use std::path::Path;
use std::process::Command;

use util::{Workspace, stderr, stdout};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// The quickstart run to its end in a workspace, its record exported.
fn quickstart_record() -> Workspace {
    let ws = Workspace::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans/examples");
    for file in [
        "quickstart.yaml",
        "demo-auditor-hook.sh",
        "demo-auditor.key",
        "demo-auditor.pub",
    ] {
        std::fs::copy(examples.join(file), ws.join(file)).expect("copy example");
    }
    copy_dir(&examples.join("demo"), &ws.join("demo"));
    let bin = assert_cmd::cargo::cargo_bin("relocate");
    let run = Command::new(&bin)
        .current_dir(ws.path())
        .args([
            "run",
            "quickstart.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .env("RELOCATE_BIN", &bin)
        .output()
        .expect("run");
    assert!(run.status.success(), "{}\n{}", stdout(&run), stderr(&run));
    let export = ws.relocate(&[
        "record",
        "export",
        "quickstart.yaml",
        "--state-dir",
        "state",
        "--out",
        "move.intoto.jsonl",
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    ws
}

fn chromium(ws: &Workspace, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile");
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .current_dir(ws.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run chromium ({e}): scripts/test.sh installs it (apt-get install chromium)"
            )
        })
}

/// The Merkle root the seed stage's evidence signs for the demo workload.
fn signed_root(ws: &Workspace) -> String {
    let record = std::fs::read_to_string(ws.join("move.intoto.jsonl")).expect("record");
    use base64::Engine;
    for line in record.lines().skip(1) {
        let env: serde_json::Value = serde_json::from_str(line).expect("json");
        let payload = base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().expect("payload"))
            .expect("base64");
        let st: serde_json::Value = serde_json::from_slice(&payload).expect("statement");
        if let Some(root) = st["predicate"]["workloads"][0]["manifestRoot"].as_str() {
            return root.to_owned();
        }
    }
    panic!("no evidence with a manifest root in the record");
}

#[test]
fn the_report_of_a_verified_record_renders_its_stages_and_roots_in_chromium() {
    let ws = quickstart_record();
    let out = ws.relocate(&[
        "record",
        "report",
        "move.intoto.jsonl",
        "--plan",
        "quickstart.yaml",
        "--out",
        "report.html",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let html = std::fs::read_to_string(ws.join("report.html")).expect("report");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
        "self-contained, no script"
    );
    let root = signed_root(&ws);
    let dom = chromium(
        &ws,
        &[
            "--dump-dom",
            &format!("file://{}", ws.join("report.html").display()),
        ],
    );
    let dom_text = stdout(&dom);
    assert!(
        dom.status.success() && dom_text.contains("</html>"),
        "{}",
        stderr(&dom)
    );
    assert!(dom_text.contains("class=\"verdict ok\""), "{dom_text}");
    assert!(
        dom_text.contains("id=\"stage-seed\"") && dom_text.contains("id=\"stage-cutover\""),
        "{dom_text}"
    );
    assert!(dom_text.contains(&root), "the signed root {root} is shown");
    assert!(
        dom_text.contains("demo-auditor (key"),
        "who approved, with the key id"
    );
    assert!(
        dom_text.contains("relocate verify move.intoto.jsonl --plan quickstart.yaml"),
        "how to re-verify"
    );
    let shot = chromium(
        &ws,
        &[
            "--screenshot=report.png",
            "--window-size=1280,2400",
            "report.html",
        ],
    );
    assert!(shot.status.success(), "{}", stderr(&shot));
    let png = std::fs::read(ws.join("report.png")).expect("a screenshot");
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "a real PNG"
    );
}

#[test]
fn a_tampered_record_gives_a_report_that_says_so_in_red_and_never_a_clean_one() {
    let ws = quickstart_record();
    // Flip one character of the seed evidence's payload.
    let path = ws.join("move.intoto.jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .expect("record")
        .lines()
        .map(str::to_owned)
        .collect();
    let at = lines[1].find("\"payload\":\"").expect("payload") + 40;
    let flipped = if &lines[1][at..=at] == "A" { "B" } else { "A" };
    lines[1].replace_range(at..=at, flipped);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let out = ws.relocate(&[
        "record",
        "report",
        "move.intoto.jsonl",
        "--plan",
        "quickstart.yaml",
        "--out",
        "report.html",
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let html = std::fs::read_to_string(ws.join("report.html")).expect("report");
    let verdict = html.find("id=\"verdict\"").expect("a verdict");
    assert!(
        html[..verdict + 60].contains("verdict bad"),
        "the verdict comes first, in red"
    );
    assert!(html.contains("NOT VERIFIED"));
    assert!(!html.contains("verdict ok") && !html.contains("Verified: every check"));
    assert!(
        !html.contains("id=\"stage-seed\""),
        "nothing of the record is shown as if it held"
    );
}
