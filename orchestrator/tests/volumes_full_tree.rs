//! Issue 15's odd tree at full size through the real binary: the odd tree
//! ([`volumes_tree::odd_tree`]: unicode names, 0600 files owned by another uid,
//! symlinks including a dangling one, empty and read-only directories, a hard link,
//! a FIFO) plus a 200 MiB file of non-zero bytes, a 200 MiB sparse file and 100,000
//! files of 1–200 bytes (100 to a directory), moved by `relocate volume pack` →
//! `restore` → `verify` through a staging bucket on s3s-fs, with the segment sizes a
//! mover pod uses by default.
//!
//! A restore into an empty claim writes every file and byte; a second restore, into
//! another claim, is killed (`SIGKILL`) while it writes the 200 MiB file, after every
//! tiny file is in place, and run again: the rerun fetches exactly the two files that
//! were missing and leaves the 100k others alone. Each restored tree verifies and
//! equals the source by `find -printf '%p %s %m %U %G %T@ %l'` and by an independent
//! walker with every regular file's SHA-256; the staging bucket holds a few dozen
//! objects for the 100k files (the bound is derived from the segment limits and
//! printed, with each step's time and the movers' peak memory).
//!
//! The claims are directories in `/dev/shm` when it has room (else the temp directory;
//! `RELOCATE_TEST_CLAIMS_DIR` chooses): on a disk other jobs share, making and deleting
//! 200k files took from 3 to 47 s by load. The tree is built as root (the odd tree
//! `chown`s, as all volume tests do): run as another user, it fails at its first
//! `chown`, saying so.

mod util;
mod volumes_tree;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orchestrator::volumes::PackOptions;
use util::Workspace;
use volumes_tree::{
    big_file, find_listing, listing, odd_tree, regular_files, sparse_file, tiny_files,
};

const TINY_FILES: u32 = 100_000;
const PER_DIR: u32 = 100;
const BIG: u64 = 200 << 20;

fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test servers (`source scripts/servers.sh && start_servers`) or run scripts/test.sh"
        )
    })
}

/// A plan whose workload stages its volumes in a fresh bucket on s3s-fs, and an order
/// for one claim in a local state store, with no segment overrides: the defaults a
/// mover pod uses.
struct Staging {
    ws: Workspace,
    state_store: String,
    key: String,
    secret: String,
    /// The bucket's directory on the s3s-fs server.
    bucket_dir: PathBuf,
    /// Holds the source and the target claim.
    claims: tempfile::TempDir,
    /// Where that is, said in the figures.
    claims_on: String,
}

const ORDER: &str = "volumes/db/gen-1/order.json";

fn staging() -> Staging {
    let (endpoint, root) = (
        server("RELOCATE_TEST_S3S_ENDPOINT"),
        server("RELOCATE_TEST_S3S_ROOT"),
    );
    let bucket = format!(
        "fulltree-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let bucket_dir = Path::new(&root).join(&bucket);
    std::fs::create_dir_all(&bucket_dir).expect("bucket");
    let ws = Workspace::new();
    let plan = format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: fulltree
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
  db:
    kubernetes:
      from: msk
      to: zrh
      namespace: analysis
      volumes: {{ copy: true, staging: staging }}
stages:
  - name: cutover
    steps: [ {{ freeze: db }}, {{ copy: db }}, {{ deploy: db }} ]
"#
    );
    let plan_path = ws.write("plan.yaml", &plan);
    let parsed = plans::parse(&plan, &plan_path).expect("plan is valid");
    let order = serde_json::json!({
        "version": 1,
        "planDigest": parsed.digest().to_string(),
        "planText": plan,
        "planPath": plan_path.to_string_lossy(),
        "workload": "db",
        "claims": ["data-db-0"],
    });
    ws.write(
        &format!("state/{ORDER}"),
        serde_json::to_vec_pretty(&order).expect("json"),
    );
    let state_store = serde_json::json!({
        "region": "zurich",
        "url": format!("file://{}/", ws.join("state").display()),
    })
    .to_string();
    let (claims, claims_on) = claims_dir();
    Staging {
        ws,
        state_store,
        key: server("RELOCATE_TEST_S3S_ACCESS_KEY"),
        secret: server("RELOCATE_TEST_S3S_SECRET_KEY"),
        bucket_dir,
        claims,
        claims_on,
    }
}

/// Room the three claims take in memory on tmpfs (~900 MB each: every tiny file is a
/// 4 KiB page), with a margin.
const TMPFS_ROOM: u64 = 6 << 30;

/// Where the claims live: `RELOCATE_TEST_CLAIMS_DIR` when set; else `/dev/shm` when it
/// has [`TMPFS_ROOM`] free; else the system's temp directory. A claim is a directory
/// either way; in memory, making and deleting 200k files does not wait on a disk the
/// machine's other jobs share (an ext4 mounted `discard` here took 3–47 s to make the
/// tree, by load).
fn claims_dir() -> (tempfile::TempDir, String) {
    let chosen = std::env::var_os("RELOCATE_TEST_CLAIMS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let shm = Path::new("/dev/shm");
            let free = rustix::fs::statvfs(shm)
                .map(|v| v.f_bavail.saturating_mul(v.f_frsize))
                .unwrap_or(0);
            (free >= TMPFS_ROOM).then(|| shm.to_path_buf())
        });
    match chosen {
        Some(dir) => {
            let claims = tempfile::Builder::new()
                .prefix("relocate-claims-")
                .tempdir_in(&dir)
                .unwrap_or_else(|e| panic!("a claims directory in {}: {e}", dir.display()));
            (claims, dir.display().to_string())
        }
        None => {
            let claims = tempfile::tempdir().expect("a claims directory");
            let on = std::env::temp_dir().display().to_string();
            (claims, on)
        }
    }
}

impl Staging {
    fn command(&self, task: &str, path: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"));
        cmd.current_dir(self.ws.path())
            .args(["volume", task, "--order", ORDER, "--path"])
            .arg(path)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("JOB_COMPLETION_INDEX", "0")
            .env("RELOCATE_STATE_STORE", &self.state_store)
            .env("STAGING_KEY_ID", &self.key)
            .env("STAGING_SECRET", &self.secret);
        cmd
    }

    /// Run `relocate volume TASK`; its exit must be 0. Its report, how long it took and
    /// its peak resident memory (the kernel's high-water mark, read while it runs).
    fn run(&self, task: &str, path: &Path) -> Moved {
        let (stdout, stderr) = (
            self.ws.join(&format!("{task}.stdout")),
            self.ws.join(&format!("{task}.stderr")),
        );
        let started = Instant::now();
        let mut child = self
            .command(task, path)
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("run relocate volume");
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak_kib = 0u64;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            peak_kib = peak_kib.max(high_water_kib(&status_file));
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = started.elapsed();
        let (out, err) = (
            std::fs::read_to_string(&stdout).unwrap_or_default(),
            std::fs::read_to_string(&stderr).unwrap_or_default(),
        );
        assert!(
            status.success(),
            "relocate volume {task}: {status}\nstdout: {out}\nstderr: {err}"
        );
        let report = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("relocate volume {task} printed no report ({e}): {out}\nstderr: {err}")
        });
        Moved {
            report,
            took,
            peak_kib,
        }
    }

    /// Every object in the bucket (s3s-fs keeps one file per object), by key.
    fn staged_objects(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("read the bucket") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(
                        path.strip_prefix(base)
                            .expect("under the bucket")
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.bucket_dir, &self.bucket_dir, &mut out);
        out.sort();
        out
    }
}

/// The bucket holds ~440 MB: removed with the test, passed or not.
impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.bucket_dir) {
            eprintln!("removing {}: {e}", self.bucket_dir.display());
        }
    }
}

/// One `relocate volume` run.
struct Moved {
    report: serde_json::Value,
    took: Duration,
    /// Peak resident memory, KiB (0 where `/proc` has no `VmHWM`).
    peak_kib: u64,
}

/// `VmHWM` of a `/proc/<pid>/status`, KiB; 0 once the process is gone.
fn high_water_kib(status_file: &str) -> u64 {
    std::fs::read_to_string(status_file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn u64_at(report: &serde_json::Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("the report has no {pointer}: {report}"))
}

/// The odd tree, 100k tiny files and two 200 MiB files (one sparse) under `root`. The
/// big files sort last in walk order (`vm/` after `store/`), so a restore killed while
/// it writes `vm/disk.img` has every tiny file in place.
fn full_tree(root: &Path) {
    std::fs::create_dir_all(root).expect("source claim");
    odd_tree(root);
    tiny_files(root, "store", TINY_FILES, PER_DIR);
    big_file(&root.join("vm/disk.img"), BIG);
    sparse_file(&root.join("vm/sparse.img"), BIG, &[0, 77 << 20, BIG - 4096]);
}

/// Start a restore into `dst` and SIGKILL it once `vm/disk.img` is partly written;
/// how long it ran.
fn restore_killed_mid_big_file(staging: &Staging, dst: &Path) -> Duration {
    let started = Instant::now();
    let disk = dst.join("vm/disk.img");
    let mut child = staging
        .command("restore", dst)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn restore");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let written = std::fs::symlink_metadata(&disk).map_or(0, |m| m.len());
        if written > 0 && written < BIG {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restore did not reach vm/disk.img in 10 minutes"
        );
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "the restore ended ({status}) before it could be killed inside vm/disk.img ({written} bytes of it written)"
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("kill -9 the restore");
    child.wait().expect("reap the restore");
    let ran = started.elapsed();
    let left = std::fs::symlink_metadata(&disk).map_or(0, |m| m.len());
    assert!(
        left < BIG,
        "the restore finished vm/disk.img before the kill landed ({left} bytes)"
    );
    assert!(
        !dst.join("vm/sparse.img").exists(),
        "the restore got past vm/disk.img before the kill landed"
    );
    ran
}

/// The restored tree at `dst` equals the source: by `find -printf` (when installed) and
/// by the walker with every file's SHA-256; the sparse file kept its holes. How long
/// the comparison took.
fn assert_same_tree(
    dst: &Path,
    before: &BTreeMap<String, String>,
    before_find: Option<&Vec<String>>,
) -> Duration {
    let comparing = Instant::now();
    assert_eq!(
        find_listing(dst).as_ref(),
        before_find,
        "{}: `find -printf '%P %y %s %m %U %G %T@ %l'` differs",
        dst.display()
    );
    let after = listing(dst);
    if after != *before {
        let differ: Vec<_> = before
            .iter()
            .filter(|(p, l)| after.get(*p) != Some(*l))
            .take(10)
            .collect();
        let extra: Vec<_> = after
            .keys()
            .filter(|p| !before.contains_key(*p))
            .take(10)
            .collect();
        panic!(
            "{}: the restored tree differs: {differ:?}; not in the source: {extra:?}",
            dst.display()
        );
    }
    let holes = std::fs::metadata(dst.join("vm/sparse.img")).expect("sparse.img");
    assert!(
        holes.blocks() * 512 < 1 << 20,
        "{}: vm/sparse.img was restored without its holes: {} bytes allocated",
        dst.display(),
        holes.blocks() * 512
    );
    comparing.elapsed()
}

#[test]
fn the_odd_tree_with_100k_tiny_files_and_200_mib_files_moves_whole_and_a_killed_restore_fetches_only_what_is_missing()
 {
    let staging = staging();
    let src = staging.claims.path().join("source-0");
    let started = Instant::now();
    full_tree(&src);
    let built = started.elapsed();
    let before = listing(&src);
    let before_find = find_listing(&src);
    let (files, bytes) = regular_files(&before);
    let (tree_entries, listed) = (before.len(), started.elapsed() - built);

    // Pack: every file, every byte, in few objects.
    let pack = staging.run("pack", &src);
    let packed = &pack.report;
    assert_eq!(packed["claim"], "data-db-0", "{packed}");
    assert!(files > u64::from(TINY_FILES), "the tree has {files} files");
    assert_eq!(u64_at(packed, "/packed/files"), files, "files packed");
    assert_eq!(u64_at(packed, "/packed/bytes"), bytes, "bytes packed");
    assert!(
        packed["packed"]["sparse"]
            .as_array()
            .is_some_and(|s| s.iter().any(|p| p == "vm/sparse.img")),
        "the sparse file is not named sparse: {}",
        packed["packed"]["sparse"]
    );
    let segments = packed["packed"]["segments"].as_array().map_or(0, Vec::len) as u64;
    // A segment closes once it holds segment_bytes or segment_files: at most
    // bytes/segment_bytes close on bytes, files/segment_files on files, plus the last.
    let limits = PackOptions::default();
    let segment_bound = bytes / limits.segment_bytes + files / limits.segment_files + 1;
    assert!(
        segments <= segment_bound,
        "{segments} segments for {files} files and {bytes} bytes: more than the {segment_bound} the limits allow"
    );
    let objects = staging.staged_objects();
    // Segments, manifest.ndjson, volume.json; the checkpoint's parts are removed.
    let object_bound = segment_bound + 2;
    assert!(
        objects.len() as u64 <= object_bound,
        "{} staged objects, more than {object_bound}: {objects:?}",
        objects.len()
    );
    assert!(
        (objects.len() as u64) * 1000 < files,
        "{} objects for {files} files is not batching",
        objects.len()
    );

    // A restore into an empty claim: every file written, then verified and compared.
    let clean = staging.claims.path().join("target-0");
    let first = staging.run("restore", &clean);
    let report = &first.report;
    assert_eq!(
        (
            u64_at(report, "/restored/filesWritten"),
            u64_at(report, "/restored/filesPresent"),
            u64_at(report, "/restored/bytesWritten"),
        ),
        (files, 0, bytes),
        "files written, present and bytes written: {report}"
    );
    assert_eq!(report["root"], packed["root"], "restored root");
    let verify = staging.run("verify", &clean);
    let compared = assert_same_tree(&clean, &before, before_find.as_ref());

    // A restore killed inside the 200 MiB file; the rerun fetches only what is missing.
    let dst = staging.claims.path().join("target-1");
    let killed_after = restore_killed_mid_big_file(&staging, &dst);
    let rerun = staging.run("restore", &dst);
    let restored = &rerun.report;
    let written = u64_at(restored, "/restored/filesWritten");
    let present = u64_at(restored, "/restored/filesPresent");
    assert_eq!(
        (written, present),
        (2, files - 2),
        "the rerun should fetch exactly vm/disk.img and vm/sparse.img: {restored}"
    );
    assert_eq!(u64_at(restored, "/restored/bytesWritten"), 2 * BIG);
    assert_eq!(restored["root"], packed["root"], "restored root");
    let verify_rerun = staging.run("verify", &dst);
    assert_same_tree(&dst, &before, before_find.as_ref());

    eprintln!(
        "full tree: {tree_entries} entries, {files} regular files, {bytes} bytes, claims in {} (built in {built:.1?}, listed in {listed:.1?})\n\
         staged as {} objects ({segments} segments; bound {object_bound} from {} MiB / {} files per segment)\n\
         pack {:.1?} (peak {} MiB); restore {:.1?} (peak {} MiB); verify {:.1?} (peak {} MiB); compared in {compared:.1?} (find listing: {})\n\
         restore killed after {killed_after:.1?}, rerun {:.1?} (peak {} MiB; {written} files fetched, {present} present); verify {:.1?}",
        staging.claims_on,
        objects.len(),
        limits.segment_bytes >> 20,
        limits.segment_files,
        pack.took,
        pack.peak_kib >> 10,
        first.took,
        first.peak_kib >> 10,
        verify.took,
        verify.peak_kib >> 10,
        if before_find.is_some() {
            "yes"
        } else {
            "find not installed, walker only"
        },
        rerun.took,
        rerun.peak_kib >> 10,
        verify_rerun.took,
    );
    let cleaning = Instant::now();
    drop(staging);
    eprintln!("claims and bucket removed in {:.1?}", cleaning.elapsed());
}
