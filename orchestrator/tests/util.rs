//! Helpers for the CLI tests: a temp workspace with a plan, source data, keys, and a
//! way to run the real `relocate` binary in it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A temporary directory holding a plan, its data and its state.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
        p
    }

    /// `relocate ARGS` run in the workspace.
    pub fn relocate(&self, args: &[&str]) -> Output {
        Command::cargo_bin("relocate")
            .expect("binary")
            .current_dir(self.path())
            .args(args)
            .output()
            .expect("run relocate")
    }

    /// `relocate run plan.yaml --state-dir state --output OUTPUT`: the usual run of a test.
    pub fn run_plan(&self, output: &str) -> Output {
        self.relocate(&[
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            output,
        ])
    }

    /// Write an executable script (a hook or a command step).
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.write(rel, format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    /// Generate a key pair NAME.key/NAME.pub; return the public key line.
    pub fn keypair(&self, name: &str) -> String {
        let out = self.relocate(&["keys", "generate", "--out", name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(self.join(&format!("{name}.pub")))
            .expect("pub")
            .trim()
            .to_owned()
    }

    /// Fill `rel` with `n` files of `size` bytes of deterministic content.
    pub fn fill(&self, rel: &str, n: usize, size: usize) {
        for i in 0..n {
            let mut data = vec![0u8; size];
            let mut x: u64 = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for b in data.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            self.write(&format!("{rel}/d{}/f{i:05}.bin", i % 10), data);
        }
    }
}

/// Every file under `root`, relative path → bytes.
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                // A file may vanish between listing and reading while a run is writing.
                if let Ok(bytes) = std::fs::read(&p) {
                    out.insert(rel, bytes);
                }
            }
        }
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `summary` event of a `--output json` run.
pub fn summary(o: &Output) -> serde_json::Value {
    stdout(o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary in: {}\n{}", stdout(o), stderr(o)))
}

/// Sum a counter over the summary's steps of a kind.
pub fn count(summary: &serde_json::Value, kind: &str, field: &str) -> u64 {
    summary["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| s[field].as_u64().unwrap_or(0))
        .sum()
}

/// A two-region plan header with source `src/` and target `dst/` stores.
pub fn header(name: &str) -> String {
    format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: {name}
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
residency:
  allowedTargetJurisdictions: [CH]
stores:
  src: {{ region: moscow, url: "file://./src/" }}
  dst: {{ region: zurich, url: "file://./dst/" }}
workloads:
  data:
    objects: {{ from: src, to: dst }}
"#
    )
}
