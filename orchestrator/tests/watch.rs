//! `relocate watch` driven in a pseudo-terminal (`script` from util-linux): attached to
//! a run waiting at a file-hook gate, it shows the stage awaiting sign-off and the
//! exact command the auditor would run, and `q` quits with exit 0 while the run keeps
//! waiting, undisturbed.

mod util;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{Workspace, header};

#[test]
fn watch_shows_the_gate_and_quits_on_q_without_disturbing_the_run() {
    let ws = Workspace::new();
    ws.fill("src", 5, 1000);
    let public = ws.keypair("auditor");
    ws.write(
        "plan.yaml",
        header("watched")
            + &format!(
                "approvers:\n  auditor:\n    publicKey: \"{public}\"\n    hook: {{ file: {{}}, timeout: 10m }}\nstages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n    signoff: [auditor]\n"
            ),
    );
    let bin = assert_cmd::cargo::cargo_bin("relocate");
    let mut run = Command::new(&bin)
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let live = ws.join("state/live.json");
    let start = Instant::now();
    while !std::fs::read_to_string(&live).is_ok_and(|t| t.contains("\"gate\"")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never reached its gate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut watch = Command::new("script")
        .current_dir(ws.path())
        .args(["-qfec"])
        .arg(format!(
            "stty cols 160 rows 30; exec {} watch plan.yaml --state-dir state",
            bin.display()
        ))
        .arg("/dev/null")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the watch in a pseudo-terminal");
    let mut out = watch.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = out.read_to_end(&mut all);
        all
    });
    std::thread::sleep(Duration::from_secs(3));
    watch
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"q")
        .expect("q");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = watch.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = watch.kill();
            panic!("watch did not quit on q");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let screen = text_of(&String::from_utf8_lossy(&reader.join().expect("reader")));
    assert!(status.success(), "{status:?}\n{screen}");
    for needle in [
        "awaiting sign-off",
        "auditor awaited",
        "relocate approve",
        "a run is going",
    ] {
        assert!(
            screen.contains(needle),
            "no {needle:?} on screen:\n{screen}"
        );
    }
    // The run is still waiting at its gate: watching did not disturb it.
    assert!(run.try_wait().expect("wait").is_none(), "the run stopped");
    let _ = run.kill();
    let _ = run.wait();
}

/// The screen's text: escape sequences (cursor moves stand in for runs of spaces)
/// become one space each, and runs of spaces one.
fn text_of(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter or `~`).
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() || d == '~' {
                        break;
                    }
                }
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
