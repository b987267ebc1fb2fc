//! The auditor at a file-hook gate (issue 17, points 4 and 6), through the real binary:
//! the command the run prints names the key the plan pins and leaves the private key to
//! the auditor (never a guessed `auditor.key`); `approve` without `--key` says which
//! flag is missing; and files dropped into the drop zone again and again cannot hold
//! the gate open past its timeout.

mod util;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use util::{Workspace, header, stderr};

fn spawn_run(dir: &Path, log: &Path) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(dir)
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "json",
        ])
        .stdout(std::fs::File::create(log).expect("log"))
        .stderr(std::fs::File::create(log.with_extension("err")).expect("err log"))
        .spawn()
        .expect("spawn relocate")
}

/// A plan whose `seed` stage `auditor` signs off through the file hook; `timeout` is
/// the hook's, if any. Returns the auditor's public key.
fn gated(ws: &Workspace, timeout: Option<&str>) -> String {
    ws.fill("src", 3, 100);
    let public = ws.keypair("auditor");
    let timeout = timeout
        .map(|t| format!(", timeout: {t}"))
        .unwrap_or_default();
    ws.write(
        "plan.yaml",
        header("guided")
            + &format!(
                "approvers:\n  auditor:\n    publicKey: \"{public}\"\n    hook: {{ file: {{}}{timeout} }}\nstages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n    signoff: [auditor]\n"
            ),
    );
    public
}

/// The `gate_waiting` event of the run logging NDJSON to `log`.
fn gate_waiting(log: &Path) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(event) = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "gate_waiting")
        {
            return event;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never reached its gate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(mut child: Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_printed_approve_command_names_the_pinned_key_and_guesses_no_key_file() {
    let ws = Workspace::new();
    let public = gated(&ws, None);
    let log = ws.join("run.ndjson");
    let run = spawn_run(ws.path(), &log);
    let event = gate_waiting(&log);
    let asks: Vec<&str> = event["asks"]
        .as_array()
        .expect("asks")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    let key_id = public.clone();
    let which = asks
        .iter()
        .find(|a| a.starts_with("auditor signs with the private key of "))
        .unwrap_or_else(|| panic!("no line naming the pinned key in {asks:?}"));
    assert!(
        which.contains(&format!("of {key_id} (key id ")) && which.ends_with("as the plan pins it"),
        "{which}"
    );
    let approve = asks
        .iter()
        .find_map(|a| a.strip_prefix("auditor approves with:"))
        .unwrap_or_else(|| panic!("no approve command in {asks:?}"))
        .trim();
    assert!(
        approve.starts_with("relocate approve --key <your private key> --evidence "),
        "{approve}"
    );
    for line in &asks {
        assert!(!line.contains("auditor.key"), "a guessed key path: {line}");
    }
    // Filled in by the auditor, the command passes the gate.
    let bin = assert_cmd::cargo::cargo_bin("relocate");
    let filled = approve
        .replacen("relocate", &bin.display().to_string(), 1)
        .replace("<your private key>", "auditor.key");
    let out = Command::new("sh")
        .current_dir(ws.path())
        .args(["-c", &filled])
        .output()
        .expect("sh");
    assert!(out.status.success(), "{}", stderr(&out));
    let status = finish(run, Duration::from_secs(60)).expect("the run ends");
    assert!(status.success(), "{status:?}");
}

#[test]
fn approve_without_key_names_the_flag() {
    let ws = Workspace::new();
    ws.write("evidence.json", "{}");
    let out = ws.relocate(&["approve", "--evidence", "evidence.json", "--unpinned"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--key FILE is required: your private key"),
        "{err}"
    );
    assert!(err.contains("relocate keys generate"), "{err}");
}

#[test]
fn files_dropped_every_200ms_do_not_hold_a_gate_open_past_its_1s_timeout() {
    let ws = Workspace::new();
    gated(&ws, Some("1s"));
    ws.keypair("mallory");
    let log = ws.join("run.ndjson");
    let run = spawn_run(ws.path(), &log);
    let event = gate_waiting(&log);
    let at_gate = Instant::now();
    let evidence = event["evidence"].as_str().expect("evidence").to_owned();
    // A well-formed approval of this very evidence, by a key the plan does not pin.
    let forged = ws.relocate(&[
        "approve",
        "--key",
        "mallory.key",
        "--evidence",
        &evidence,
        "--operator-key",
        "state/operator.pub",
    ]);
    assert!(forged.status.success(), "{}", stderr(&forged));
    let drop = ws.join("state/approvals/seed/auditor.json");
    std::fs::create_dir_all(drop.parent().expect("parent")).expect("mkdir");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dropper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body: &[u8] = if i % 2 == 0 {
                    &forged.stdout
                } else {
                    b"{ not an approval"
                };
                let _ = std::fs::write(&drop, body);
                i += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let status = finish(run, Duration::from_secs(20));
    let took = at_gate.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    dropper.join().expect("dropper");
    let status = status.expect("the gate held open by the drops: the run did not end in 20s");
    assert_eq!(status.code(), Some(5), "sign-off not obtained");
    let err = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
        + &std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        err.contains("approver `auditor`: no approval within 1s"),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(4),
        "the gate ended after {took:?}"
    );
}
