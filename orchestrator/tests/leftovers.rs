//! Findings left over after the issue-13 and issue-18 merges: the plan preview and the
//! digest-list check list local stores with relocate's own walker, so files named like
//! object_store's staging files (`name#digits`) are neither hidden nor unreadable.

mod util;

use util::{Workspace, header, stderr, stdout};

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Finding 4 (plan preview): object_store's listing hid `x#123`, so `plan show` predicted
/// a clean copy of 2 objects while the copy itself fails naming that file.
#[test]
fn finding_04_plan_show_counts_hash_digit_files() {
    let ws = Workspace::new();
    ws.write("src/a.txt", "aaaa");
    ws.write("src/sub/b.txt", "bbbb");
    ws.write("src/sub/x#123", "hidden by object_store");
    ws.write(
        "plan.yaml",
        header("hashes")
            + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    let out = ws.relocate(&["plan", "show", "plan.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("source has 3 objects (30 B); would copy 3"),
        "{text}"
    );
    assert!(
        text.contains("the copy would fail") && text.contains("`sub/x#123`"),
        "{text}"
    );
}

/// Finding 4 (digest lists): `verify --digests` on a local store neither reported an
/// unlisted `x#123` as extra nor could it read a listed one.
#[test]
fn finding_04_verify_digests_sees_hash_digit_files() {
    let ws = Workspace::new();
    ws.write("release/app.tar", b"the audited app");
    ws.write("release/x#123", b"planted, unlisted");
    let store = format!("file://{}/", ws.join("release").display());
    ws.write(
        "only-app.sha256sums",
        format!("{}  app.tar\n", hex_sha256(b"the audited app")),
    );
    let out = ws.relocate(&[
        "verify",
        "--digests",
        "only-app.sha256sums",
        "--store",
        &store,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(7), "{text}\n{}", stderr(&out));
    assert!(
        text.lines().any(|l| l.starts_with('✘')
            && l.contains("`x#123` is in the store but not in the digest list")),
        "{text}"
    );

    // Listed with its digest, the same file is found and matches.
    ws.write(
        "both.sha256sums",
        format!(
            "{}  app.tar\n{}  x#123\n",
            hex_sha256(b"the audited app"),
            hex_sha256(b"planted, unlisted")
        ),
    );
    let out = ws.relocate(&["verify", "--digests", "both.sha256sums", "--store", &store]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("all 2 objects of the digest list are present"),
        "{}",
        stdout(&out)
    );

    // A wrong digest for it is a mismatch, not a pass.
    ws.write(
        "wrong.sha256sums",
        format!(
            "{}  app.tar\n{}  x#123\n",
            hex_sha256(b"the audited app"),
            hex_sha256(b"something else")
        ),
    );
    let out = ws.relocate(&["verify", "--digests", "wrong.sha256sums", "--store", &store]);
    assert_eq!(out.status.code(), Some(7), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("`x#123` hashes to"),
        "{}",
        stdout(&out)
    );
}

fn kube_plan(extra: &str) -> String {
    format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: kube-words
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
clusters:
  msk: {{ region: moscow, context: src }}
  zrh: {{ region: zurich, context: dst }}
workloads:
  analyzer:
    kubernetes:
      from: msk
      to: zrh
      namespace: analysis
      selector: {{ app: analyzer }}
{extra}stages:
  - name: cutover
    steps: [ {{ freeze: analyzer }}, {{ deploy: analyzer }} ]
  - name: back
    steps: [ {{ rollback: analyzer }} ]
"#
    )
}

/// `plan show` explained freeze and rollback in the old words ("scale the source to
/// zero", "scale the target down"); it now says what they do.
#[test]
fn plan_show_explains_freeze_and_rollback_as_they_behave() {
    let ws = Workspace::new();
    ws.write("plan.yaml", kube_plan(""));
    let out = ws.relocate(&["plan", "show", "plan.yaml", "--offline"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("scale the source to zero"), "{text}");
    for words in [
        "pause KEDA ScaledObjects",
        "suspend CronJobs and Jobs",
        "`whenScaled: Delete` to Retain",
        "refuses writers it cannot stop (DaemonSets, GitOps-owned, uncontrolled)",
        "unless `leaveRunning` or `gitopsPaused` say so",
        "restore the source first",
        "then stop the target",
        "--source-only",
    ] {
        assert!(text.contains(words), "missing `{words}`:\n{text}");
    }

    ws.write(
        "plan.yaml",
        kube_plan("      leaveRunning: [DaemonSet/log-shipper]\n      gitopsPaused: true\n"),
    );
    let out = ws.relocate(&["plan", "show", "plan.yaml", "--offline"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("leaves running DaemonSet/log-shipper")
            && text.contains("GitOps reconciliation declared paused"),
        "{text}"
    );
}

/// The digest list is someone else's file: a listed `../x` must not read outside the
/// store now that a local store's files are opened directly.
#[test]
fn verify_digests_does_not_read_outside_a_local_store() {
    let ws = Workspace::new();
    ws.write("outside.txt", b"not in the store");
    ws.write("release/app.tar", b"the audited app");
    let store = format!("file://{}/", ws.join("release").display());
    ws.write(
        "escape.sha256sums",
        format!(
            "{}  app.tar\n{}  ../outside.txt\n",
            hex_sha256(b"the audited app"),
            hex_sha256(b"not in the store")
        ),
    );
    let out = ws.relocate(&[
        "verify",
        "--digests",
        "escape.sha256sums",
        "--store",
        &store,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(7), "{text}\n{}", stderr(&out));
    assert!(
        text.lines()
            .any(|l| l.starts_with('✘') && l.contains("`../outside.txt`")),
        "{text}"
    );
    assert!(!text.contains("all 2 objects"), "{text}");
}
