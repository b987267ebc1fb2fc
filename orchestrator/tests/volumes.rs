//! The volume mover library end to end over a local object store: a tree with odd
//! content packs into segments and restores byte for byte with its metadata; a
//! corrupted segment is caught; a rerun restores only what is missing.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use orchestrator::volumes::{PackOptions, VolumeError, pack, restore, scan};

mod volumes_tree;

use volumes_tree::{listing, odd_tree};

struct Staging {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<dyn ObjectStore>,
}

fn staging() -> Staging {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalFileSystem::new_with_prefix(dir.path()).expect("store");
    Staging {
        path: dir.path().to_path_buf(),
        _dir: dir,
        store: Arc::new(store),
    }
}

fn small_segments() -> PackOptions {
    PackOptions {
        segment_bytes: 1 << 20,
        segment_files: 100,
    }
}

fn prefix() -> ObjectPath {
    ObjectPath::from("volumes/analysis/data-analyzer-0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odd_tree_moves_byte_for_byte_with_its_metadata() {
    let src = tempfile::tempdir().expect("src");
    let dst = tempfile::tempdir().expect("dst");
    odd_tree(src.path());
    let before = listing(src.path());
    let staging = staging();

    let packed = pack(
        src.path(),
        staging.store.clone(),
        &prefix(),
        "data-analyzer-0",
        small_segments(),
    )
    .await
    .expect("pack");
    assert_eq!(listing(src.path()), before, "packing changed the source");
    assert_eq!(packed.hard_links, 1);
    assert_eq!(packed.symlinks, 2);
    assert_eq!(packed.sparse, vec!["sparse.bin".to_owned()]);
    assert_eq!(
        packed.not_moved,
        vec!["app.sock".to_owned()],
        "the socket is named"
    );
    // 500 small files and 11 MB of larger ones: batched, not one object each.
    assert!(
        (7..=20).contains(&packed.segments.len()),
        "{} segments for {} files",
        packed.segments.len(),
        packed.files
    );

    let target = dst.path().join("claim");
    let restored = restore(staging.store.clone(), &prefix(), &target)
        .await
        .expect("restore");
    assert_eq!(restored.root, packed.root);
    assert_eq!(restored.files_written, packed.files);
    assert_eq!(restored.ownership_not_restored, 0, "tests run as root");

    let after = listing(&target);
    for (path, line) in &before {
        assert_eq!(after.get(path), Some(line), "{path:?} differs");
    }
    assert_eq!(after.len(), before.len(), "extra paths at the target");
    let sparse = std::fs::metadata(target.join("sparse.bin")).expect("sparse");
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "restored sparse file is not sparse: {} blocks",
        sparse.blocks()
    );
    let (a, hard) = (
        std::fs::metadata(target.join("data/a.txt")).expect("a"),
        std::fs::metadata(target.join("data/hard")).expect("hard"),
    );
    assert_eq!(a.ino(), hard.ino(), "the hard link is a copy, not a link");

    let scanned = tokio::task::spawn_blocking(move || scan(&target))
        .await
        .expect("join")
        .expect("scan");
    assert_eq!(
        scanned.root, packed.root,
        "verify of the target finds a different root"
    );
    let source_scan = scan(src.path()).expect("scan source");
    assert_eq!(source_scan.root, packed.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_byte_changes_the_scanned_root() {
    let src = tempfile::tempdir().expect("src");
    odd_tree(src.path());
    let before = scan(src.path()).expect("scan").root;
    std::fs::set_permissions(
        src.path().join("exec.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let mode_changed = scan(src.path()).expect("scan").root;
    assert_ne!(before, mode_changed, "a lost setuid bit went unnoticed");
    std::fs::write(src.path().join("small/0007"), b"file 8").expect("write");
    assert_ne!(mode_changed, scan(src.path()).expect("scan").root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_segment_fails_the_restore_naming_the_file() {
    let src = tempfile::tempdir().expect("src");
    let dst = tempfile::tempdir().expect("dst");
    odd_tree(src.path());
    let staging = staging();
    let packed = pack(
        src.path(),
        staging.store.clone(),
        &prefix(),
        "c",
        small_segments(),
    )
    .await
    .expect("pack");
    // Flip one byte in the middle of the first segment.
    let first = staging
        .path
        .join(prefix().to_string())
        .join(&packed.segments[0].name);
    let mut bytes = std::fs::read(&first).expect("segment");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&first, bytes).expect("corrupt");

    let err = restore(staging.store.clone(), &prefix(), dst.path())
        .await
        .expect_err("corrupt");
    let text = err.to_string();
    assert!(matches!(err, VolumeError::Corrupt { .. }), "{err:?}");
    assert!(text.contains("from segment 0 hash to"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_manifest_is_refused_before_anything_is_written() {
    let src = tempfile::tempdir().expect("src");
    let dst = tempfile::tempdir().expect("dst");
    odd_tree(src.path());
    let staging = staging();
    pack(
        src.path(),
        staging.store.clone(),
        &prefix(),
        "c",
        PackOptions::default(),
    )
    .await
    .expect("pack");
    let manifest = staging
        .path
        .join(prefix().to_string())
        .join("manifest.ndjson");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("\"mode\":384", "\"mode\":420")).expect("tamper");
    let target = dst.path().join("claim");
    let err = restore(staging.store.clone(), &prefix(), &target)
        .await
        .expect_err("tampered");
    assert!(err.to_string().contains("volume.json says"), "{err}");
    assert!(
        !target.exists(),
        "restore wrote before checking the manifest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_restores_only_what_is_missing_or_different() {
    let src = tempfile::tempdir().expect("src");
    let dst = tempfile::tempdir().expect("dst");
    odd_tree(src.path());
    let staging = staging();
    let packed = pack(
        src.path(),
        staging.store.clone(),
        &prefix(),
        "c",
        small_segments(),
    )
    .await
    .expect("pack");
    restore(staging.store.clone(), &prefix(), dst.path())
        .await
        .expect("restore");

    // One file lost, one changed; then every segment but theirs removed from staging:
    // a rerun that fetched anything else would fail.
    std::fs::remove_file(dst.path().join("small/0003")).expect("rm");
    std::fs::write(dst.path().join("small/0450"), b"changed").expect("change");
    let manifest = std::fs::read_to_string(
        staging
            .path
            .join(prefix().to_string())
            .join("manifest.ndjson"),
    )
    .expect("manifest");
    let segment_of = |path: &str| -> u64 {
        manifest
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("line"))
            .find(|v| v["path"] == path)
            .and_then(|v| v["segment"].as_u64())
            .expect("segment")
    };
    let keep = [segment_of("small/0003"), segment_of("small/0450")];
    for (i, seg) in packed.segments.iter().enumerate() {
        if !keep.contains(&(i as u64)) {
            std::fs::remove_file(staging.path.join(prefix().to_string()).join(&seg.name))
                .expect("rm seg");
        }
    }
    let rerun = restore(staging.store.clone(), &prefix(), dst.path())
        .await
        .expect("rerun");
    assert_eq!(rerun.files_written, 2);
    assert_eq!(rerun.files_present, packed.files - 2);
    assert_eq!(scan(dst.path()).expect("scan").root, packed.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_what_was_never_packed_says_so() {
    let staging = staging();
    let dst = tempfile::tempdir().expect("dst");
    let err = restore(staging.store.clone(), &prefix(), dst.path())
        .await
        .expect_err("nothing");
    assert!(matches!(err, VolumeError::NotPacked { .. }), "{err:?}");
    assert!(err.to_string().contains("pack it first"), "{err}");
}

#[test]
fn a_claim_smaller_than_the_data_is_refused() {
    let err =
        orchestrator::volumes::staged::capacity_fits(Path::new("/mnt/claim"), 2 << 30, 1 << 30)
            .expect_err("too small");
    assert!(err.to_string().contains("make the claim larger"), "{err}");
    orchestrator::volumes::staged::capacity_fits(Path::new("/mnt/claim"), 1 << 30, 2 << 30)
        .expect("fits");
}

/// Peak memory and files per second for many tiny files (not a pass/fail test):
/// `RELOCATE_VOLUME_BENCH_FILES=1000000 cargo nextest run -p orchestrator --test volumes
/// --run-ignored only measure_many_small_files --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn measure_many_small_files() {
    fn peak_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
    let n: usize = std::env::var("RELOCATE_VOLUME_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let src = tempfile::tempdir().expect("src");
    for d in 0..n.div_ceil(1000) {
        let dir = src.path().join(format!("d{d:04}"));
        std::fs::create_dir(&dir).expect("dir");
        for i in 0..1000.min(n - d * 1000) {
            std::fs::write(dir.join(format!("f{i:04}")), [b'x'; 100]).expect("file");
        }
    }
    let staging = staging();
    let before = peak_kib();
    let t = std::time::Instant::now();
    let packed = pack(
        src.path(),
        staging.store.clone(),
        &prefix(),
        "bench",
        PackOptions::default(),
    )
    .await
    .expect("pack");
    let pack_s = t.elapsed().as_secs_f64();
    let after_pack = peak_kib();
    let dst = tempfile::tempdir().expect("dst");
    let t = std::time::Instant::now();
    restore(staging.store.clone(), &prefix(), dst.path())
        .await
        .expect("restore");
    let restore_s = t.elapsed().as_secs_f64();
    println!(
        "{n} files of 100 B: {} segments; pack {pack_s:.1}s ({:.0} files/s), restore {restore_s:.1}s ({:.0} files/s); peak RSS {} MiB before, {} MiB after pack, {} MiB after restore",
        packed.segments.len(),
        n as f64 / pack_s,
        n as f64 / restore_s,
        before / 1024,
        after_pack / 1024,
        peak_kib() / 1024
    );
}

/// Rewrite the staged manifest with `forge` and re-sign it in `volume.json` (sha and
/// root), as someone with write access to the staging store could.
fn forge_manifest(staging: &Staging, forge: impl Fn(&mut Vec<orchestrator::volumes::Entry>)) {
    let dir = staging.path.join(prefix().to_string());
    let text = std::fs::read_to_string(dir.join("manifest.ndjson")).expect("manifest");
    let mut entries: Vec<orchestrator::volumes::Entry> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("entry"))
        .collect();
    forge(&mut entries);
    let mut body = Vec::new();
    let mut tree = relocate_verifier::merkle::MerkleBuilder::default();
    for e in &entries {
        body.extend(serde_json::to_vec(e).expect("json"));
        body.push(b'\n');
        tree.push(e.leaf());
    }
    std::fs::write(dir.join("manifest.ndjson"), &body).expect("write manifest");
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("volume.json")).expect("summary"))
            .expect("json");
    summary["manifestSha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)).into();
    summary["root"] = hex::encode(tree.root()).into();
    std::fs::write(
        dir.join("volume.json"),
        serde_json::to_vec(&summary).expect("json"),
    )
    .expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_manifest_cannot_write_outside_the_volume() {
    let src = tempfile::tempdir().expect("src");
    std::fs::create_dir(src.path().join("dir")).expect("dir");
    std::fs::write(src.path().join("dir/file"), b"payload").expect("file");
    std::os::unix::fs::symlink("/", src.path().join("link")).expect("symlink");
    let outside = tempfile::tempdir().expect("outside");
    for (name, forge) in [
        (
            "dotdot",
            Box::new(|e: &mut Vec<orchestrator::volumes::Entry>| {
                e.iter_mut()
                    .find(|e| e.path == "dir/file")
                    .expect("file")
                    .path = "dir/../../escape".into();
            }) as Box<dyn Fn(&mut Vec<orchestrator::volumes::Entry>)>,
        ),
        (
            "through a symlink",
            Box::new(|e: &mut Vec<orchestrator::volumes::Entry>| {
                // `link` (-> /) is restored first, then a file "under" it.
                let mut file = e
                    .iter()
                    .find(|e| e.path == "dir/file")
                    .expect("file")
                    .clone();
                file.path = "link/tmp/escape".into();
                e.push(file);
            }),
        ),
    ] {
        let staging = staging();
        pack(
            src.path(),
            staging.store.clone(),
            &prefix(),
            "c",
            PackOptions::default(),
        )
        .await
        .expect("pack");
        forge_manifest(&staging, forge);
        let target = outside.path().join("volume");
        let err = restore(staging.store.clone(), &prefix(), &target)
            .await
            .expect_err(name);
        assert!(
            matches!(err, VolumeError::Corrupt { .. }),
            "{name}: {err:?}"
        );
        assert!(
            !outside.path().join("escape").exists(),
            "{name}: wrote outside the volume"
        );
        assert!(
            !Path::new("/tmp/escape").exists(),
            "{name}: wrote through the symlink"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_reached_through_a_link_is_restored_into_not_replaced() {
    let src = tempfile::tempdir().expect("src");
    std::fs::write(src.path().join("f"), b"data").expect("file");
    std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    let dst = tempfile::tempdir().expect("dst");
    let real = dst.path().join("real");
    std::fs::create_dir(&real).expect("real");
    std::os::unix::fs::symlink(&real, dst.path().join("mount")).expect("link");
    let staging = staging();
    let packed = pack(
        src.path(),
        staging.store.clone(),
        &prefix(),
        "c",
        PackOptions::default(),
    )
    .await
    .expect("pack");
    restore(staging.store.clone(), &prefix(), &dst.path().join("mount"))
        .await
        .expect("restore");
    assert!(
        std::fs::symlink_metadata(dst.path().join("mount"))
            .expect("mount")
            .file_type()
            .is_symlink(),
        "the mount link was replaced"
    );
    assert_eq!(std::fs::read(real.join("f")).expect("restored"), b"data");
    assert_eq!(
        std::fs::metadata(&real).expect("real").mode() & 0o7777,
        0o750
    );
    assert_eq!(
        scan(&dst.path().join("mount")).expect("scan").root,
        packed.root
    );
}
