//! Store faults through the library API: the copy and verify engines over a
//! fault-injecting store ([`faulty_store::FaultyStore`]).
//!
//! What must hold: transient errors and dropped streams are retried to success;
//! a truncated body is never recorded as a copy; corruption at the target is caught by
//! verify; a dead store fails the copy naming the store and the keys, and a later copy
//! with the store healthy completes. Each test prints the faults it injected
//! (`cargo test -p orchestrator --test faults -- --nocapture`).

mod faulty_store;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faulty_store::{BodyFault, Faults, FaultyStore};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use orchestrator::state::{Db, ObjectStatus};
use orchestrator::transfer::copy::Multipart;
use orchestrator::transfer::{
    CopyJob, CopyReport, Counters, KeyFilter, ProblemKind, VerifyJob, VerifyReport, copy_workload,
    verify_workload,
};
use plans::ChecksumAlgorithm;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const WORKLOAD: &str = "data";

/// Deterministic object bodies of `size` bytes, one per key.
fn body(i: usize, size: usize) -> Bytes {
    let mut x = (i as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// An in-memory source with `n` objects of `size` bytes under `d<i%5>/f<i>.bin`.
async fn source(n: usize, size: usize) -> Arc<InMemory> {
    let store = Arc::new(InMemory::new());
    for i in 0..n {
        store
            .put(
                &Path::from(format!("d{}/f{i:04}.bin", i % 5)),
                PutPayload::from(body(i, size)),
            )
            .await
            .expect("seed source");
    }
    store
}

/// Every object of a store, key → bytes.
async fn contents(store: &dyn ObjectStore) -> BTreeMap<String, Bytes> {
    let metas: Vec<_> = store.list(None).try_collect().await.expect("list");
    let mut out = BTreeMap::new();
    for m in metas {
        let bytes = store
            .get(&m.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        out.insert(m.location.to_string(), bytes);
    }
    out
}

/// A copy job of the workload with 8 objects in flight.
fn job(
    source: Arc<dyn ObjectStore>,
    target: Arc<dyn ObjectStore>,
    multipart: Multipart,
) -> CopyJob {
    CopyJob {
        workload: WORKLOAD.into(),
        source_name: "src (memory://faulty)".into(),
        target_name: "target".into(),
        source,
        target,
        filter: KeyFilter::all(),
        algorithm: ChecksumAlgorithm::Sha256,
        concurrency: 8,
        adaptive: false,
        multipart,
        limiter: None,
        range: None,
        prune: true,
        server_side: None,
        memory_budget: orchestrator::transfer::copy::DEFAULT_MEMORY_BUDGET,
        local: Default::default(),
        symlinks: Default::default(),
        existing_target: Default::default(),
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    db: Db,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("state.db")).expect("state db");
        Self { _dir: dir, db }
    }

    async fn copy(
        &self,
        source: Arc<dyn ObjectStore>,
        target: Arc<dyn ObjectStore>,
        multipart: Multipart,
    ) -> CopyReport {
        copy_workload(
            &job(source, target, multipart),
            &self.db,
            &Arc::new(Counters::default()),
            &CancellationToken::new(),
        )
        .await
        .expect("copy runs to the end")
    }

    async fn verify(&self, target: Arc<dyn ObjectStore>) -> VerifyReport {
        let job = VerifyJob {
            workload: WORKLOAD.into(),
            target_name: "dst".into(),
            target,
            filter: KeyFilter::all(),
            concurrency: 8,
            range: None,
            local: None,
            checksums: None,
        };
        verify_workload(
            &job,
            &self.db,
            &Arc::new(Counters::default()),
            &CancellationToken::new(),
        )
        .await
        .expect("verify runs to the end")
    }

    /// No row is `copied`/`verified` with a hash other than that of the source's bytes.
    async fn assert_recorded_hashes_are_true(&self, source: &dyn ObjectStore) {
        for (key, bytes) in contents(source).await {
            let Some(row) = self.db.object(WORKLOAD, &key).expect("row") else {
                continue;
            };
            if matches!(row.status, ObjectStatus::Copied | ObjectStatus::Verified) {
                assert_eq!(
                    row.source_hash.as_deref(),
                    Some(hex::encode(Sha256::digest(&bytes)).as_str()),
                    "{key} recorded with a wrong hash"
                );
            }
        }
    }
}

fn small() -> Multipart {
    Multipart::default()
}

/// Objects of at least 64 KiB go through the multipart path in 16 KiB parts.
fn multipart() -> Multipart {
    Multipart {
        threshold: 64 << 10,
        part_size: 16 << 10,
        concurrency: 2,
    }
}

#[tokio::test]
async fn transient_errors_on_source_and_target_are_retried_to_success() {
    for (mp, size) in [(small(), 3000), (multipart(), 200 << 10)] {
        let src = source(40, size).await;
        let faulty_src = FaultyStore::new(
            src.clone(),
            Faults {
                transient_gets: 1,
                ..Faults::default()
            },
        );
        let dst = Arc::new(InMemory::new());
        let faulty_dst = FaultyStore::new(
            dst.clone(),
            Faults {
                transient_puts: 1,
                ..Faults::default()
            },
        );
        let h = Harness::new();
        let report = h.copy(faulty_src.clone(), faulty_dst.clone(), mp).await;
        let injected = faulty_src.injected() + faulty_dst.injected();
        eprintln!("transient ({size} B objects): {injected} faults injected, report {report:?}");
        assert_eq!(
            (report.copied, report.failed),
            (40, 0),
            "{:?}",
            report.failures
        );
        assert!(
            faulty_src.injected() >= 40,
            "every object's first read failed"
        );
        if size < mp.threshold as usize {
            assert_eq!(
                faulty_dst.injected(),
                40,
                "every object's first write failed"
            );
        }
        assert_eq!(
            contents(src.as_ref()).await,
            contents(dst.as_ref()).await,
            "target equals source"
        );
        h.assert_recorded_hashes_are_true(src.as_ref()).await;
        assert_eq!(h.verify(dst).await.verified, 40);
    }
}

#[tokio::test]
async fn a_body_dropped_mid_stream_is_retried_and_never_recorded_short() {
    for (mp, size) in [(small(), 3000), (multipart(), 200 << 10)] {
        let src = source(30, size).await;
        let faulty = FaultyStore::new(
            src.clone(),
            Faults {
                body_fault_gets: 2,
                body_fault: BodyFault::DropMidStream,
                ..Faults::default()
            },
        );
        let dst = Arc::new(InMemory::new());
        let h = Harness::new();
        let report = h.copy(faulty.clone(), dst.clone(), mp).await;
        eprintln!(
            "dropped streams ({size} B objects): {} faults injected",
            faulty.injected()
        );
        assert_eq!(faulty.injected(), 60, "two dropped bodies per object");
        assert_eq!(
            (report.copied, report.failed),
            (30, 0),
            "{:?}",
            report.failures
        );
        assert_eq!(contents(src.as_ref()).await, contents(dst.as_ref()).await);
        h.assert_recorded_hashes_are_true(src.as_ref()).await;
    }
}

#[tokio::test]
async fn a_truncated_body_is_never_accepted_as_a_copy() {
    for (mp, size) in [(small(), 3000), (multipart(), 200 << 10)] {
        let src = source(25, size).await;
        // Keys under d2/ are always served truncated (no error, fewer bytes than announced);
        // the others once, then intact.
        let faulty = FaultyStore::new(
            src.clone(),
            Faults {
                body_fault_gets: 1,
                body_fault: BodyFault::Truncate,
                ..Faults::default()
            },
        );
        let dst_dir = tempfile::tempdir().expect("tempdir");
        let dst: Arc<dyn ObjectStore> = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dst_dir.path())
                .expect("local target"),
        );
        let h = Harness::new();
        let first = h.copy(faulty.clone(), dst.clone(), mp).await;
        assert_eq!(
            (first.copied, first.failed),
            (25, 0),
            "one truncated read is retried: {:?}",
            first.failures
        );
        h.assert_recorded_hashes_are_true(src.as_ref()).await;

        // Change the d2/ objects at the source and truncate their every read from now on.
        let changed: Vec<usize> = (0..25).filter(|i| i % 5 == 2).collect();
        for &i in &changed {
            src.put(
                &Path::from(format!("d2/f{i:04}.bin")),
                PutPayload::from(body(i + 1000, size)),
            )
            .await
            .expect("update");
        }
        faulty.set(Faults {
            body_fault_gets: u32::MAX,
            body_fault: BodyFault::Truncate,
            only_keys_containing: "d2/".into(),
            ..Faults::default()
        });
        let second = h.copy(faulty.clone(), dst.clone(), mp).await;
        eprintln!(
            "truncation ({size} B objects): {} faults injected, second copy {second:?}",
            faulty.injected()
        );
        assert_eq!(second.failed, changed.len() as u64, "{second:?}");
        for (key, reason) in &second.failures {
            assert!(key.starts_with("d2/"), "{key}");
            assert!(
                reason.contains("announced"),
                "the reason says the body was short: {reason}"
            );
        }
        for &i in &changed {
            let key = format!("d2/f{i:04}.bin");
            let row =
                h.db.object(WORKLOAD, &key)
                    .expect("row")
                    .expect("row exists");
            assert_eq!(
                row.status,
                ObjectStatus::Failed,
                "{key} must not be trusted"
            );
            // The target still holds the complete old version, never a half of the new one.
            let at_target = dst
                .get(&Path::from(key.as_str()))
                .await
                .expect("old copy kept")
                .bytes()
                .await
                .expect("body");
            assert_eq!(
                at_target,
                body(i, size),
                "{key}: a truncated body reached the target"
            );
        }
        h.assert_recorded_hashes_are_true(src.as_ref()).await;
        let staging: Vec<String> = walk(dst_dir.path())
            .into_iter()
            .filter(|k| k.contains('#'))
            .collect();
        assert!(
            staging.is_empty(),
            "aborted uploads left staging files: {staging:?}"
        );

        // Healthy again: the rerun completes and the target equals the source.
        faulty.set(Faults::default());
        let third = h.copy(faulty.clone(), dst.clone(), mp).await;
        assert_eq!(
            (third.copied, third.failed),
            (changed.len() as u64, 0),
            "{third:?}"
        );
        assert_eq!(contents(src.as_ref()).await, contents(dst.as_ref()).await);
        assert_eq!(h.verify(dst.clone()).await.failed(), 0);
    }
}

/// Every file under a directory, relative paths.
fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .expect("prefix")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out
}

#[tokio::test]
async fn corruption_written_at_the_target_is_caught_by_verify() {
    let src = source(20, 4000).await;
    let dst = Arc::new(InMemory::new());
    let faulty_dst = FaultyStore::new(
        dst.clone(),
        Faults {
            corrupt_puts: true,
            only_keys_containing: "d3/".into(),
            ..Faults::default()
        },
    );
    let h = Harness::new();
    let report = h.copy(src.clone(), faulty_dst.clone(), small()).await;
    assert_eq!(
        report.copied, 20,
        "the copy cannot see a corrupting target: {report:?}"
    );
    let verify = h.verify(dst.clone()).await;
    eprintln!(
        "corrupting target: {} faults injected, verify {verify:?}",
        faulty_dst.injected()
    );
    assert_eq!(faulty_dst.injected(), 4);
    assert_eq!(
        (verify.verified, verify.mismatched, verify.missing),
        (16, 4, 0)
    );
    let mut flagged: Vec<&str> = verify
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Mismatch)
        .map(|p| p.key.as_str())
        .collect();
    flagged.sort_unstable();
    assert_eq!(
        flagged,
        [
            "d3/f0003.bin",
            "d3/f0008.bin",
            "d3/f0013.bin",
            "d3/f0018.bin"
        ]
    );
    assert_eq!(
        h.db.object(WORKLOAD, "d3/f0003.bin")
            .expect("row")
            .expect("row")
            .status,
        ObjectStatus::Mismatch
    );
}

#[tokio::test]
async fn corrupted_bytes_served_by_the_target_are_caught_by_verify() {
    let src = source(10, 4000).await;
    let dst = Arc::new(InMemory::new());
    let h = Harness::new();
    assert_eq!(h.copy(src.clone(), dst.clone(), small()).await.copied, 10);
    let faulty = FaultyStore::new(
        dst.clone(),
        Faults {
            body_fault_gets: u32::MAX,
            body_fault: BodyFault::Corrupt,
            only_keys_containing: "d1/".into(),
            ..Faults::default()
        },
    );
    let verify = h.verify(faulty.clone()).await;
    assert_eq!((verify.verified, verify.mismatched), (8, 2), "{verify:?}");
    // A truncated read at verify time is a problem too, never a pass.
    faulty.set(Faults {
        body_fault_gets: u32::MAX,
        body_fault: BodyFault::Truncate,
        only_keys_containing: "d4/".into(),
        ..Faults::default()
    });
    let verify = h.verify(faulty.clone()).await;
    eprintln!(
        "corrupt/truncated reads at verify: {} faults injected",
        faulty.injected()
    );
    assert_eq!((verify.verified, verify.failed()), (8, 2), "{verify:?}");
}

#[tokio::test]
async fn a_slow_store_still_copies_everything_with_requests_overlapping() {
    let src = source(40, 2000).await;
    let delay = Duration::from_millis(40);
    let faulty_src = FaultyStore::new(
        src.clone(),
        Faults {
            delay,
            ..Faults::default()
        },
    );
    let dst = Arc::new(InMemory::new());
    let faulty_dst = FaultyStore::new(
        dst.clone(),
        Faults {
            delay,
            ..Faults::default()
        },
    );
    let h = Harness::new();
    let start = Instant::now();
    let report = h
        .copy(faulty_src.clone(), faulty_dst.clone(), small())
        .await;
    let elapsed = start.elapsed();
    eprintln!("slow store: 40 objects in {elapsed:?} with {delay:?} per request");
    assert_eq!((report.copied, report.failed), (40, 0));
    // 80 requests of 40 ms one after the other would take 3.2 s; 8 in flight take ~0.4 s.
    assert!(
        elapsed < Duration::from_millis(1600),
        "requests did not overlap: {elapsed:?}"
    );
    assert_eq!(contents(src.as_ref()).await, contents(dst.as_ref()).await);
}

#[tokio::test]
async fn a_dead_store_fails_the_copy_by_name_and_key_and_a_later_copy_completes() {
    let src = source(15, 1000).await;
    let faulty = FaultyStore::new(src.clone(), Faults::default());
    let dst = Arc::new(InMemory::new());
    let h = Harness::new();

    // Dead from the start: the listing fails and the error names the store.
    faulty.kill(true);
    let job = job(faulty.clone(), dst.clone(), small());
    let err = copy_workload(
        &job,
        &h.db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect_err("a dead source fails the copy");
    let text = err.to_string();
    assert!(
        text.contains("src (memory://faulty)") && text.contains("connection refused"),
        "{text}"
    );

    // It lists, then dies for reads: every object fails, by key, with the reason.
    faulty.kill(false);
    faulty.set(Faults {
        transient_gets: u32::MAX,
        ..Faults::default()
    });
    let report = h.copy(faulty.clone(), dst.clone(), small()).await;
    assert_eq!((report.copied, report.failed), (0, 15), "{report:?}");
    for (key, reason) in &report.failures {
        assert!(
            contents(src.as_ref()).await.contains_key(key),
            "failure names a real key: {key}"
        );
        assert!(
            reason.contains("connection reset") && reason.contains("FaultyStore"),
            "{reason}"
        );
    }
    assert!(
        contents(dst.as_ref()).await.is_empty(),
        "nothing half-written at the target"
    );

    // The target dies for writes: same, the reason names the target side.
    faulty.set(Faults::default());
    let dead_dst = FaultyStore::new(dst.clone(), Faults::default());
    dead_dst.kill(true);
    let report = h.copy(faulty.clone(), dead_dst.clone(), small()).await;
    assert_eq!((report.copied, report.failed), (0, 15), "{report:?}");
    eprintln!(
        "dead stores: {} faults injected; a failure reads {:?}",
        faulty.injected() + dead_dst.injected(),
        report.failures.first()
    );

    // Healthy again: a later copy completes.
    let report = h.copy(faulty.clone(), dst.clone(), small()).await;
    assert_eq!((report.copied, report.failed), (15, 0), "{report:?}");
    assert_eq!(contents(src.as_ref()).await, contents(dst.as_ref()).await);
    assert_eq!(h.verify(dst).await.verified, 15);
}

/// Issue 13, finding 10: a delete the target refused was counted as pruned and its row
/// marked pruned, and that count went into the signed evidence. Now only a confirmed
/// delete counts; the failure is counted apart, kept on the row, and retried.
#[tokio::test]
async fn finding_10_a_failed_prune_is_not_counted_and_is_retried() {
    let src = source(6, 100).await;
    let dst = Arc::new(InMemory::new());
    let h = Harness::new();
    let first = h.copy(src.clone(), dst.clone(), small()).await;
    assert_eq!(first.copied, 6, "{first:?}");

    let gone = Path::from("d1/f0001.bin");
    src.delete(&gone).await.expect("delete at the source");
    let dead_dst = FaultyStore::new(dst.clone(), Faults::default());
    dead_dst.kill(true);
    let report = h.copy(src.clone(), dead_dst.clone(), small()).await;
    assert_eq!(
        (report.pruned, report.prune_failed),
        (0, 1),
        "a refused delete is not a prune: {report:?}"
    );
    let (key, reason) = report.failures.first().expect("the failure is reported");
    assert_eq!(key, gone.as_ref());
    assert!(
        reason.contains("could not remove") && reason.contains("injected outage"),
        "{reason}"
    );
    let row =
        h.db.object(WORKLOAD, gone.as_ref())
            .expect("row")
            .expect("kept");
    assert_ne!(
        row.status,
        ObjectStatus::Pruned,
        "the row is not marked pruned"
    );
    assert!(
        contents(dst.as_ref()).await.contains_key(gone.as_ref()),
        "still at the target"
    );

    // The target is back: the next copy removes it, and only then counts it.
    let again = h.copy(src.clone(), dst.clone(), small()).await;
    assert_eq!((again.pruned, again.prune_failed), (1, 0), "{again:?}");
    assert!(!contents(dst.as_ref()).await.contains_key(gone.as_ref()));
    let row =
        h.db.object(WORKLOAD, gone.as_ref())
            .expect("row")
            .expect("kept");
    assert_eq!(row.status, ObjectStatus::Pruned);
}

/// Issue 14 (part): verify committed its findings only at its very end, so a state that
/// could not be written was noticed after every object had been read. Now each page
/// is committed as the verify goes, and a write failure stops it at the next page.
#[tokio::test]
async fn finding_14_verify_commits_its_findings_as_it_goes() {
    let src = source(2_500, 8).await;
    let dst = Arc::new(InMemory::new());
    let h = Harness::new();
    assert_eq!(
        h.copy(src.clone(), dst.clone(), small()).await.copied,
        2_500
    );

    // From here on, every write of a verify finding fails (reads still work).
    let blocker = rusqlite::Connection::open(h._dir.path().join("state.db")).expect("open");
    blocker
        .execute_batch(
            "CREATE TRIGGER no_findings BEFORE UPDATE OF target_hash ON objects
             BEGIN SELECT RAISE(ABORT, 'injected: disk full'); END;",
        )
        .expect("trigger");
    let counted = FaultyStore::new(dst.clone(), Faults::default());
    let job = VerifyJob {
        workload: WORKLOAD.into(),
        target_name: "dst".into(),
        target: counted.clone(),
        filter: KeyFilter::all(),
        concurrency: 8,
        range: None,
        local: None,
        checksums: None,
    };
    let err = verify_workload(
        &job,
        &h.db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect_err("a state that cannot be written stops the verify");
    assert!(err.to_string().contains("disk full"), "{err}");
    let reads = counted.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        reads < 2_500,
        "stopped at the first page it could not commit, not after reading all: {reads} reads"
    );
}
