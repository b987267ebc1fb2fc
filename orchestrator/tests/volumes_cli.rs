//! `relocate volume pack|restore|verify` through the real binary, ordered through a
//! state store like a mover pod, with the staging store on the s3s-fs server the test
//! script starts (credentials only by the plan's `${env:…}` references): the odd tree
//! moves byte for byte; a verify of a tampered target fails with exit 7 naming the
//! claim; a file the mover cannot read fails the pack naming it.

mod util;
mod volumes_tree;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;

use util::Workspace;
use volumes_tree::{listing, odd_tree};

fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test servers (`source scripts/servers.sh && start_servers`) or run scripts/test.sh"
        )
    })
}

struct Movers {
    ws: Workspace,
    state_store: String,
    order: String,
    key: String,
    secret: String,
    /// Where s3s-fs keeps the workload's staged volumes.
    staged: std::path::PathBuf,
}

/// A plan whose workload moves its volumes through a bucket on s3s-fs, and an order
/// for two claims written to a local state store.
fn movers() -> Movers {
    let (endpoint, root) = (
        server("RELOCATE_TEST_S3S_ENDPOINT"),
        server("RELOCATE_TEST_S3S_ROOT"),
    );
    let bucket = format!(
        "staging-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    std::fs::create_dir_all(Path::new(&root).join(&bucket)).expect("bucket");
    let ws = Workspace::new();
    let plan = format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: volumes
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
residency: {{ allowedTargetJurisdictions: [CH] }}
stores:
  staging:
    region: zurich
    url: "s3://{bucket}/relocate/"
    options: {{ endpoint: "{endpoint}", allow_http: "true", region: us-east-1, access_key_id: "${{env:STAGING_KEY_ID}}", secret_access_key: "${{env:STAGING_SECRET}}" }}
clusters:
  msk: {{ region: moscow, context: msk }}
  zrh: {{ region: zurich, context: zrh }}
workloads:
  analyzer:
    kubernetes:
      from: msk
      to: zrh
      namespace: analysis
      volumes: {{ copy: true, staging: staging }}
stages:
  - name: cutover
    steps: [ {{ freeze: analyzer }}, {{ copy: analyzer }}, {{ deploy: analyzer }} ]
"#
    );
    let plan_path = ws.write("plan.yaml", &plan);
    let parsed = plans::parse(&plan, &plan_path).expect("plan is valid");
    let order = serde_json::json!({
        "version": 1,
        "planDigest": parsed.digest().to_string(),
        "planText": plan,
        "planPath": plan_path.to_string_lossy(),
        "workload": "analyzer",
        "claims": ["data-analyzer-0", "data-analyzer-1"],
        "segmentBytes": 1 << 20,
        "segmentFiles": 100,
    });
    ws.write(
        "state/volumes/analyzer/gen-1/order.json",
        serde_json::to_vec_pretty(&order).expect("json"),
    );
    // Movers running as another user read the order and the binary.
    for dir in [ws.path().to_path_buf(), ws.join("state")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let state_store = serde_json::json!({
        "region": "zurich",
        "url": format!("file://{}/", ws.join("state").display()),
    })
    .to_string();
    Movers {
        ws,
        state_store,
        order: "volumes/analyzer/gen-1/order.json".into(),
        key: server("RELOCATE_TEST_S3S_ACCESS_KEY"),
        secret: server("RELOCATE_TEST_S3S_SECRET_KEY"),
        staged: Path::new(&root)
            .join(&bucket)
            .join("relocate/volumes/analyzer"),
    }
}

impl Movers {
    fn command(&self, task: &str, index: u32, path: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"));
        cmd.current_dir(self.ws.path())
            .args(["volume", task, "--order", &self.order, "--path"])
            .arg(path)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("RELOCATE_STATE_STORE", &self.state_store)
            .env("STAGING_KEY_ID", &self.key)
            .env("STAGING_SECRET", &self.secret);
        cmd
    }

    fn run(&self, task: &str, index: u32, path: &Path) -> Output {
        self.command(task, index, path)
            .output()
            .expect("run relocate volume")
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_odd_tree_moves_through_the_binary_and_a_tampered_target_fails_verify() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    std::fs::create_dir_all(&src).expect("src");
    odd_tree(&src);
    let before = listing(&src);

    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));
    let report: serde_json::Value = serde_json::from_slice(&packed.stdout).expect("report");
    assert_eq!(report["claim"], "data-analyzer-0");
    assert!(
        report["packed"]["segments"]
            .as_array()
            .is_some_and(|s| s.len() > 5),
        "{report}"
    );
    assert!(
        m.ws.join("state/volumes/analyzer/gen-1/pack-0.json")
            .exists(),
        "no result in the state store"
    );
    assert!(!String::from_utf8_lossy(&packed.stderr).contains(&m.secret));

    let restored = m.run("restore", 0, &dst);
    assert_eq!(restored.status.code(), Some(0), "{}", text(&restored));
    assert_eq!(listing(&dst), before, "the restored tree differs");

    let verified = m.run("verify", 0, &dst);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));

    std::fs::write(dst.join("small/0042"), b"tampered").expect("tamper");
    let tampered = m.run("verify", 0, &dst);
    assert_eq!(tampered.status.code(), Some(7), "{}", text(&tampered));
    assert!(
        String::from_utf8_lossy(&tampered.stderr)
            .contains("claim data-analyzer-0: the target volume's root is"),
        "{}",
        text(&tampered)
    );
    // A rerun of the restore repairs exactly that file.
    let again = m.run("restore", 0, &dst);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("report");
    assert_eq!(report["restored"]["filesWritten"], 1, "{report}");
    assert_eq!(listing(&dst), before);
}

#[test]
fn a_file_the_mover_cannot_read_fails_the_pack_naming_it() {
    let m = movers();
    let src = m.ws.join("claims/source-1");
    std::fs::create_dir_all(src.join("db")).expect("src");
    for dir in [m.ws.join("claims"), src.clone(), src.join("db")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::write(src.join("db/readable"), b"ok").expect("write");
    std::fs::set_permissions(
        src.join("db/readable"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    std::fs::write(src.join("db/WiredTiger.wt"), b"collection").expect("write");
    std::fs::set_permissions(
        src.join("db/WiredTiger.wt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");

    // The mover runs as nobody: the root-owned 0600 file is unreadable to it.
    let out = m
        .command("pack", 1, &src)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("claim data-analyzer-1: cannot read db/WiredTiger.wt"),
        "{}",
        text(&out)
    );
    assert!(
        !m.ws
            .join("state/volumes/analyzer/gen-1/pack-1.json")
            .exists(),
        "a failed pack left a result"
    );
}

#[test]
fn an_order_for_a_claim_it_does_not_have_is_refused_as_invalid() {
    let m = movers();
    let dir = m.ws.join("claims/none");
    std::fs::create_dir_all(&dir).expect("dir");
    let out = m.run("pack", 5, &dir);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("it has no claim 5 (it has 2)"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_restore_without_root_names_the_ownership_it_could_not_restore() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    std::fs::create_dir_all(&src).expect("src");
    odd_tree(&src);
    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));
    let packed: serde_json::Value = serde_json::from_slice(&packed.stdout).expect("report");

    // The target claim belongs to the mover's user, which is not root.
    std::fs::create_dir_all(&dst).expect("dst");
    std::os::unix::fs::chown(&dst, Some(65534), Some(65534)).expect("chown");
    for dir in [
        m.ws.join("claims"),
        m.ws.join("state/volumes/analyzer/gen-1"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let out = m
        .command("restore", 0, &dst)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    let restored = &report["restored"];
    // Device nodes need root to be made: named, not made.
    let devices: Vec<serde_json::Value> = if src.join("null.dev").exists() {
        vec![serde_json::json!("null.dev")]
    } else {
        vec![]
    };
    assert_eq!(
        restored["notRecreated"],
        serde_json::json!(devices),
        "{report}"
    );
    assert_eq!(
        restored["ownershipNotRestored"].as_u64(),
        packed["packed"]["entries"]
            .as_u64()
            .map(|n| n - devices.len() as u64),
        "every other entry belongs to root or uid 1234: {report}"
    );
    assert!(
        restored["ownershipSample"]
            .as_array()
            .is_some_and(|s| s.contains(&serde_json::json!("data/a.txt"))),
        "{report}"
    );
    // Bytes, modes and times are there all the same; only owners differ.
    let strip_owner = |l: &str| {
        let mut f: Vec<&str> = l.split(' ').collect();
        if f.len() > 5 {
            f.drain(3..5);
        } else {
            f.truncate(2);
        }
        f.join(" ")
    };
    let (before, after) = (listing(&src), listing(&dst));
    for (path, line) in before.iter().filter(|(p, _)| p.as_str() != "null.dev") {
        let got = after.get(path).map(|l| strip_owner(l));
        assert_eq!(got, Some(strip_owner(line)), "{path:?}");
    }
}

#[test]
fn a_restore_killed_mid_volume_resumes_with_only_what_is_missing() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    for d in 0..20 {
        let dir = src.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).expect("dir");
        for i in 0..1000 {
            std::fs::write(dir.join(format!("f{i:04}")), format!("{d}/{i}")).expect("file");
        }
    }
    let before = listing(&src);
    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));

    let mut child = m
        .command("restore", 0, &dst)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn restore");
    // Kill -9 once part of the tree is there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(dst.join("d01")).map_or(0, |d| d.count()) < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never got going"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the restore finished before it could be killed: make the tree larger"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    let rerun = m.run("restore", 0, &dst);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    let report: serde_json::Value = serde_json::from_slice(&rerun.stdout).expect("report");
    let (written, present) = (
        report["restored"]["filesWritten"]
            .as_u64()
            .expect("written"),
        report["restored"]["filesPresent"]
            .as_u64()
            .expect("present"),
    );
    assert_eq!(written + present, 20_000, "{report}");
    // 1,200 entries existed at the kill; the last few may have been cut mid-write
    // (rewritten by the rerun, not counted present): a margin, not an exact count.
    assert!(
        present >= 1000 && written > 0,
        "nothing was resumed: {report}"
    );
    assert_eq!(listing(&dst), before, "the resumed restore differs");
}

#[test]
fn a_pack_killed_mid_volume_resumes_from_its_checkpoint() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    for d in 0..20 {
        let dir = src.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).expect("dir");
        for i in 0..1000 {
            std::fs::write(dir.join(format!("f{i:04}")), format!("{d}/{i}")).expect("file");
        }
    }
    let before = listing(&src);
    let parts = m.staged.join("data-analyzer-0/manifest-parts");
    let mut child = m
        .command("pack", 0, &src)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn pack");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&parts).map_or(0, |d| d.count()) < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pack never checkpointed"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the pack finished before it could be killed: make the tree larger"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(m.staged.join("data-analyzer-0/checkpoint.json").exists());
    assert!(!m.staged.join("data-analyzer-0/volume.json").exists());

    let rerun = m.run("pack", 0, &src);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    let report: serde_json::Value = serde_json::from_slice(&rerun.stdout).expect("report");
    let resumed = report["packed"]["resumedEntries"].as_u64().unwrap_or(0);
    // The checkpoint lags the staged parts by up to a segment: at least one is resumed.
    assert!(resumed >= 100, "nothing was resumed: {resumed} entries");
    assert_eq!(report["packed"]["files"], 20_000, "{report}");
    assert!(
        !m.staged.join("data-analyzer-0/checkpoint.json").exists(),
        "a complete pack left its checkpoint"
    );

    let restored = m.run("restore", 0, &dst);
    assert_eq!(restored.status.code(), Some(0), "{}", text(&restored));
    assert_eq!(
        listing(&dst),
        before,
        "the resumed pack restores a different tree"
    );
    let verified = m.run("verify", 0, &src);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "the source's own root differs: {}",
        text(&verified)
    );
}

#[test]
fn an_order_naming_a_claim_that_is_not_a_kubernetes_name_is_refused() {
    let m = movers();
    let order = m.ws.join("state/volumes/analyzer/gen-1/order.json");
    let mut body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&order).expect("order")).expect("json");
    body["claims"][0] = "../../other-plan/x".into();
    std::fs::write(&order, serde_json::to_vec(&body).expect("json")).expect("write");
    let dir = m.ws.join("claims/none");
    std::fs::create_dir_all(&dir).expect("dir");
    let out = m.run("pack", 0, &dir);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a Kubernetes object name"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_mover_refuses_an_order_changed_after_the_coordinator_pinned_it_or_naming_another_claim() {
    let m = movers();
    let dir = m.ws.join("claims/pinned");
    std::fs::create_dir_all(&dir).expect("dir");
    let order = m.ws.join(&format!("state/{}", m.order));
    let bytes = std::fs::read(&order).expect("order");
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    // Someone who can write the state store rewrites the order after the pin.
    std::fs::write(
        &order,
        String::from_utf8_lossy(&bytes).replace("data-analyzer-0", "data-analyzer-9"),
    )
    .expect("tamper");
    let out = m
        .command("pack", 0, &dir)
        .args(["--order-digest", &digest])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("the order was changed after the coordinator wrote it"),
        "{}",
        text(&out)
    );
    // The order as written, but the Job was started for another claim.
    std::fs::write(&order, &bytes).expect("restore");
    let out = m
        .command("pack", 0, &dir)
        .args(["--order-digest", &digest, "--claim", "data-analyzer-1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains(
            "its claim 0 is data-analyzer-0, not the data-analyzer-1 this mover was started for"
        ),
        "{}",
        text(&out)
    );
}

/// Write `entries` as the staged manifest under `dir` and make `volume.json` agree
/// (its SHA-256 and Merkle root), as someone who can write the staging store could.
fn resign(dir: &Path, entries: &[orchestrator::volumes::Entry]) {
    let mut body = Vec::new();
    let mut tree = relocate_verifier::merkle::MerkleBuilder::default();
    for e in entries {
        body.extend(serde_json::to_vec(e).expect("json"));
        body.push(b'\n');
        tree.push(e.leaf());
    }
    std::fs::write(dir.join("manifest.ndjson"), &body).expect("forge");
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("volume.json")).expect("summary"))
            .expect("json");
    summary["manifestSha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)).into();
    summary["root"] = hex::encode(tree.root()).into();
    std::fs::write(
        dir.join("volume.json"),
        serde_json::to_vec(&summary).expect("json"),
    )
    .expect("re-sign");
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, bytes).expect("write");
}

#[test]
fn a_restore_removes_what_the_manifest_does_not_name_without_following_a_link() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    let outside = m.ws.join("outside");
    write(&src, "keep.txt", b"the staged bytes");
    write(&src, "dir/inner.txt", b"inner");
    write(&src, "was-file/x", b"a directory in the manifest");
    write(&src, "was-dir", b"a file in the manifest");
    write(&src, "linkdir/y", b"a directory in the manifest");
    write(&src, "odd\n#name.txt", b"newline and hash");
    let before = listing(&src);
    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));

    // Outside the claim: a sentinel next to it (behind `..`) and one behind the links.
    write(&m.ws.join("claims"), "sentinel", b"next to the claim");
    write(&outside, "sentinel", b"behind the links");
    let outside_before = listing(&outside);
    // The target claim holds an earlier attempt's leftovers and entries of the wrong kind.
    write(&dst, "keep.txt", b"an older version");
    write(&dst, "dir/inner.txt", b"inner");
    write(&dst, "dir/stray-inner", b"stray");
    write(&dst, "stray.txt", b"stray");
    write(&dst, "stray\n#name", b"stray with a newline and a hash");
    write(&dst, "old-cache/a/b/c.bin", b"deep stray");
    write(&dst, "old-cache/d", b"stray");
    std::os::unix::fs::symlink("/", dst.join("old-cache/root")).expect("symlink");
    std::os::unix::fs::symlink("/", dst.join("root-link")).expect("symlink");
    std::os::unix::fs::symlink("..", dst.join("parent")).expect("symlink");
    std::os::unix::fs::symlink("..", dst.join("dir/up")).expect("symlink");
    write(
        &dst,
        "was-file",
        b"a file where the manifest has a directory",
    );
    write(
        &dst,
        "was-dir/z",
        b"a directory where the manifest has a file",
    );
    std::os::unix::fs::symlink(&outside, dst.join("was-dir/escape")).expect("symlink");
    std::os::unix::fs::symlink(&outside, dst.join("linkdir")).expect("symlink");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dst.join("stray.fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let strays = [
        "dir/stray-inner",
        "dir/up",
        "linkdir",
        "old-cache",
        "parent",
        "root-link",
        "stray\n#name",
        "stray.fifo",
        "stray.txt",
        "was-dir",
        "was-file",
    ];

    let restored = m.run("restore", 0, &dst);
    assert_eq!(restored.status.code(), Some(0), "{}", text(&restored));
    let got = report(&restored);
    assert_eq!(got["restored"]["removed"], strays.len(), "{got}");
    let mut named: Vec<String> =
        serde_json::from_value(got["restored"]["removedPaths"].clone()).expect("paths");
    named.sort();
    assert_eq!(named, strays, "{got}");
    // keep.txt (changed) and was-file/x, was-dir, linkdir/y, the odd name (new).
    assert_eq!(got["restored"]["filesWritten"], 5, "{got}");
    assert_eq!(got["restored"]["filesPresent"], 1, "{got}");
    assert_eq!(
        listing(&dst),
        before,
        "the claim does not equal the manifest"
    );
    let verified = m.run("verify", 0, &dst);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));

    assert_eq!(
        std::fs::read(m.ws.join("claims/sentinel")).expect("sentinel next to the claim"),
        b"next to the claim"
    );
    assert_eq!(listing(&outside), outside_before, "behind the links");
    assert_eq!(
        std::fs::read(outside.join("sentinel")).expect("sentinel behind the links"),
        b"behind the links"
    );
    assert!(
        Path::new("/etc/passwd").exists(),
        "the link to / was followed"
    );
    assert!(src.join("keep.txt").exists(), "the source was touched");
}

#[test]
fn a_restore_over_an_earlier_tree_leaves_the_claim_equal_to_the_new_one_writing_only_what_changed()
{
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    // Tree A: what an earlier deploy restored.
    for d in ["a", "b", "gone"] {
        for i in 0..10 {
            write(&src, &format!("{d}/{i}"), format!("{d}{i}").as_bytes());
        }
    }
    write(&src, "shared.txt", b"AAAA");
    std::os::unix::fs::symlink("a/1", src.join("link")).expect("symlink");
    std::os::unix::fs::symlink("b", src.join("dirlink")).expect("symlink");
    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));
    let first = m.run("restore", 0, &dst);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(report(&first)["restored"]["filesWritten"], 31);

    // Tree B: the source after the rollback, then the delta after a new freeze.
    std::fs::remove_dir_all(src.join("gone")).expect("rm gone");
    for i in [3, 7] {
        std::fs::remove_file(src.join(format!("a/{i}"))).expect("rm");
    }
    std::fs::remove_file(src.join("dirlink")).expect("rm link");
    std::fs::create_dir(src.join("dirlink")).expect("a directory where a link was");
    write(&src, "dirlink/n", b"new");
    write(&src, "new/x", b"new");
    write(&src, "b/10", b"new");
    write(&src, "shared.txt", b"BBBB");
    let b = listing(&src);
    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));

    let second = m.run("restore", 0, &dst);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let got = report(&second);
    // Written: dirlink/n, new/x, b/10 (new) and shared.txt (changed); the rest present.
    assert_eq!(got["restored"]["filesWritten"], 4, "{got}");
    assert_eq!(got["restored"]["filesPresent"], 8 + 10, "{got}");
    // Removed: a/3, a/7, the link where B has a directory, and gone/ with its files.
    assert_eq!(got["restored"]["removed"], 4, "{got}");
    assert_eq!(
        got["restored"]["removedPaths"],
        serde_json::json!(["a/3", "a/7", "dirlink", "gone"]),
        "{got}"
    );
    assert_eq!(listing(&dst), b, "the claim does not equal tree B");
    let verified = m.run("verify", 0, &dst);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
}

#[test]
fn a_manifest_out_of_walk_order_is_refused_before_anything_is_removed() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    write(&src, "a", b"a");
    write(&src, "b/c", b"c");
    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));
    write(&dst, "a", b"earlier");
    write(&dst, "z", b"stray");

    // Someone who can write the staging store moves `a` after `b/` and re-signs the
    // manifest: a merge trusting that order would remove `a` before meeting it.
    let dir = m.staged.join("data-analyzer-0");
    let text_of = std::fs::read_to_string(dir.join("manifest.ndjson")).expect("manifest");
    let mut entries: Vec<orchestrator::volumes::Entry> = text_of
        .lines()
        .map(|l| serde_json::from_str(l).expect("entry"))
        .collect();
    let a = entries.remove(1);
    assert_eq!(a.path, "a");
    entries.push(a);
    resign(&dir, &entries);

    let out = m.run("restore", 0, &dst);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(text(&out).contains("walk order"), "{}", text(&out));
    assert_eq!(std::fs::read(dst.join("a")).expect("a"), b"earlier");
    assert_eq!(std::fs::read(dst.join("z")).expect("z"), b"stray");
    assert!(!dst.join("b").exists(), "the forged manifest was restored");
}

/// The copy after `freeze` is a delta: a pack after a complete one reads and hashes
/// every file again but uploads only those whose bytes changed (one new segment, the
/// size of the changed files); the unchanged keep the seed's segments, which stay in
/// place, and the restore from the mixed manifest equals the new tree.
#[test]
fn a_pack_after_a_complete_one_uploads_only_the_files_that_changed() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    let body = |d: usize, i: usize, v: u8| -> Vec<u8> {
        (0..20_000u32)
            .map(|k| (k as u8) ^ (d as u8) ^ (i as u8).wrapping_mul(7) ^ v)
            .collect()
    };
    for d in 0..5 {
        for i in 0..10 {
            write(&src, &format!("d{d}/f{i}"), &body(d, i, 0));
        }
    }
    let seed = m.run("pack", 0, &src);
    assert_eq!(seed.status.code(), Some(0), "{}", text(&seed));
    assert_eq!(
        report(&seed)["packed"]["unchangedFiles"],
        serde_json::Value::Null
    );
    let segments_dir = m.staged.join("data-analyzer-0/segments");
    let segments = || -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(&segments_dir)
            .expect("segments")
            .map(|e| {
                let e = e.expect("entry");
                let name = e.file_name().to_string_lossy().into_owned();
                (name, e.metadata().expect("meta").len())
            })
            .filter(|(n, _)| n.ends_with(".seg"))
            .collect();
        v.sort();
        v
    };
    let seeded = segments();

    // While frozen: one file rewritten (same size), one grown, one new, one gone.
    write(&src, "d1/f1", &body(1, 1, 0xff));
    let mut grown = body(2, 2, 0);
    grown.extend_from_slice(b"appended");
    write(&src, "d2/f2", &grown);
    write(&src, "d5/new", &body(5, 0, 1));
    std::fs::remove_file(src.join("d3/f3")).expect("rm");
    let delta = m.run("pack", 0, &src);
    assert_eq!(delta.status.code(), Some(0), "{}", text(&delta));
    let packed = &report(&delta)["packed"];
    assert_eq!(packed["files"], 50, "{packed}");
    assert_eq!(packed["unchangedFiles"], 47, "{packed}");
    assert_eq!(packed["unchangedBytes"], 47 * 20_000, "{packed}");
    // The seed's segments are untouched; one new one holds exactly the changed bytes.
    let now = segments();
    assert_eq!(
        &now[..seeded.len()],
        &seeded[..],
        "a seed segment was rewritten"
    );
    assert_eq!(now.len(), seeded.len() + 1, "{now:?}");
    assert_eq!(
        now[seeded.len()].1,
        20_000 + (20_000 + 8) + 20_000,
        "{now:?}"
    );

    let restored = m.run("restore", 0, &dst);
    assert_eq!(restored.status.code(), Some(0), "{}", text(&restored));
    assert_eq!(
        listing(&dst),
        listing(&src),
        "the restore differs from the frozen tree"
    );
    let verified = m.run("verify", 0, &dst);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
}

/// A mover running as the volume's user (`runAsUser`) restores over an earlier restore
/// whose directories are read-only (0555, as the source has them): it owns them, so it
/// may lift the mode to remove a stray, replace a changed file or remove a stray tree
/// holding a read-only directory, and the second pass puts every mode back.
#[test]
fn a_restore_as_the_volumes_user_over_read_only_directories_replaces_and_prunes_in_them() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    write(&src, "ro/f", b"first");
    write(&src, "ro/gone", b"removed at the source");
    write(&src, "ro/old/deep/x", b"a tree removed at the source");
    for d in ["ro/old/deep", "ro/old", "ro"] {
        std::fs::set_permissions(src.join(d), std::fs::Permissions::from_mode(0o555))
            .expect("chmod");
    }
    std::fs::create_dir_all(&dst).expect("dst");
    std::os::unix::fs::chown(&dst, Some(65534), Some(65534)).expect("chown");
    for dir in [
        m.ws.join("claims"),
        m.ws.join("state/volumes/analyzer/gen-1"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let as_user = |task: &str, path: &Path| {
        m.command(task, 0, path)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run as the volume's user")
    };
    // The volume's files belong to its user, as a database's do.
    let own = |root: &Path| {
        let out = std::process::Command::new("chown")
            .args(["-R", "-h", "65534:65534"])
            .arg(root)
            .output()
            .expect("chown");
        assert!(out.status.success(), "{}", text(&out));
    };
    own(&src);
    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));
    let first = as_user("restore", &dst);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // The source changes under a new freeze: a file rewritten, one removed, a tree gone.
    std::fs::set_permissions(src.join("ro"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::set_permissions(src.join("ro/old"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::remove_dir_all(src.join("ro/old")).expect("rm tree");
    std::fs::remove_file(src.join("ro/gone")).expect("rm");
    write(&src, "ro/f", b"second");
    std::fs::set_permissions(src.join("ro"), std::fs::Permissions::from_mode(0o555))
        .expect("chmod");
    own(&src);
    let packed = m.run("pack", 0, &src);
    assert_eq!(packed.status.code(), Some(0), "{}", text(&packed));

    let second = as_user("restore", &dst);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let got = report(&second);
    assert_eq!(got["restored"]["filesWritten"], 1, "{got}");
    assert_eq!(
        got["restored"]["removedPaths"],
        serde_json::json!(["ro/gone", "ro/old"]),
        "{got}"
    );
    assert_eq!(std::fs::read(dst.join("ro/f")).expect("f"), b"second");
    let mode = std::fs::metadata(dst.join("ro"))
        .expect("ro")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o7777,
        0o555,
        "the directory's mode was not put back"
    );
    let verified = as_user("verify", &dst);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
}

/// Someone who can write the staging store re-signs the seed's manifest so that file
/// `b`'s entry (its true hash) points at `a`'s bytes. The delta pack finds `b`
/// unchanged and keeps that entry: the forgery can only be carried, never restored:
/// the restore re-hashes `b` from the staged bytes, refuses it (exit 7) naming it, and
/// leaves no file with the wrong bytes.
#[test]
fn a_forged_seed_manifest_is_carried_by_the_delta_but_never_restored_wrong() {
    let m = movers();
    let src = m.ws.join("claims/source-0");
    let dst = m.ws.join("claims/target-0");
    write(&src, "a", b"AAAAA");
    write(&src, "b", b"BBBBB");
    let seed = m.run("pack", 0, &src);
    assert_eq!(seed.status.code(), Some(0), "{}", text(&seed));
    let dir = m.staged.join("data-analyzer-0");
    let manifest = std::fs::read_to_string(dir.join("manifest.ndjson")).expect("manifest");
    let mut entries: Vec<orchestrator::volumes::Entry> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).expect("entry"))
        .collect();
    let a = entries.iter().position(|e| e.path == "a").expect("a");
    let b = entries.iter().position(|e| e.path == "b").expect("b");
    entries[b].segment = entries[a].segment;
    entries[b].offset = entries[a].offset;
    resign(&dir, &entries);

    let delta = m.run("pack", 0, &src);
    assert_eq!(delta.status.code(), Some(0), "{}", text(&delta));
    assert_eq!(report(&delta)["packed"]["unchangedFiles"], 2);
    let out = m.run("restore", 0, &dst);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(
        text(&out).contains("b: its bytes from segment"),
        "{}",
        text(&out)
    );
    assert_ne!(
        std::fs::read(dst.join("b")).ok().as_deref(),
        Some(&b"AAAAA"[..]),
        "the forged bytes were restored as b"
    );
}
