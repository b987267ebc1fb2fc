//! `verify: { mode: checksum }` against real S3 servers, counted through the WAN proxy:
//! single-part objects are checked with one `HEAD` each against the SHA-256 the server
//! stored (relocate's uploads send `x-amz-checksum-sha256`), never downloaded; the
//! multipart object, whose stored checksum is a composite of its parts', is re-read; and
//! a corrupted or missing object is still caught. moto keeps no checksum for a single
//! `PUT` that sends `x-amz-checksum-sha256` without `x-amz-sdk-checksum-algorithm` (as
//! object_store's do), so there every object falls back to a re-read: the test asserts
//! that fallback too (no false mismatch, nothing skipped).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use connectors::store::{Access, StoreHandle, open_store};
use e2e::wan::{Link, RequestKind, WanProxy, through};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use orchestrator::state::Db;
use orchestrator::transfer::copy::{DEFAULT_MEMORY_BUDGET, Multipart};
use orchestrator::transfer::stored::StoredChecksums;
use orchestrator::transfer::{
    CopyJob, Counters, KeyFilter, ProblemKind, VerifyJob, VerifyReport, copy_workload,
    verify_workload,
};
use tokio_util::sync::CancellationToken;

const SMALL: u64 = 12;

async fn verify(db: &Db, target: &StoreHandle, checksums: bool) -> VerifyReport {
    let job = VerifyJob {
        workload: "w".into(),
        target_name: "target".into(),
        target: target.store.clone(),
        filter: KeyFilter::all(),
        concurrency: 8,
        range: None,
        local: None,
        checksums: checksums.then(|| {
            let signer = target.signer.clone().expect("an S3 store has a signer");
            Arc::new(StoredChecksums::new(signer, target.prefix.clone()))
        }),
    };
    verify_workload(
        &job,
        db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("verify")
}

/// `stores_checksums`: whether the server keeps the SHA-256 of a single-part upload.
async fn checksum_verify_reads_no_single_part_object(
    server: e2e::TestServer,
    stores_checksums: bool,
) {
    let by_checksum = if stores_checksums { SMALL } else { 0 };
    let kind = format!("{:?}", server.kind);
    let bucket = server.fresh_bucket().await;
    let proxy = WanProxy::start(&server.endpoint, Link::rtt(Duration::from_millis(10)))
        .await
        .expect("proxy");
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = through(&server, &proxy).plan_store(&bucket, "data");
    let target = open_store("target", &spec, dir.path(), Access::Write).expect("open");

    let source: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    for i in 0..SMALL {
        let body = Bytes::from(vec![i as u8; 4096 + i as usize]);
        let key = Path::from(format!("small/{i:02}"));
        source
            .put(&key, PutPayload::from(body))
            .await
            .expect("seed");
    }
    let big = Bytes::from(vec![3u8; 11 << 20]);
    source
        .put(&Path::from("big.bin"), PutPayload::from(big))
        .await
        .expect("seed");

    let db = Db::open(&dir.path().join("state.db")).expect("db");
    let job = CopyJob {
        workload: "w".into(),
        source_name: "memory".into(),
        target_name: "target".into(),
        source,
        target: target.store.clone(),
        filter: KeyFilter::all(),
        algorithm: plans::ChecksumAlgorithm::Sha256,
        concurrency: 8,
        adaptive: false,
        multipart: Multipart {
            threshold: 6 << 20,
            part_size: 5 << 20,
            concurrency: 2,
        },
        limiter: None,
        range: None,
        prune: true,
        server_side: None,
        memory_budget: DEFAULT_MEMORY_BUDGET,
        local: Default::default(),
        symlinks: Default::default(),
        existing_target: Default::default(),
    };
    let copied = copy_workload(
        &job,
        &db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("copy");
    assert_eq!((copied.copied, copied.failed), (SMALL + 1, 0), "{kind}");
    proxy.take_counts();

    let report = verify(&db, &target, true).await;
    assert_eq!(
        (report.verified, report.by_checksum, report.failed()),
        (SMALL + 1, by_checksum, 0),
        "{kind}: {:?}",
        report.problems
    );
    let counts = proxy.take_counts();
    let expected: BTreeMap<RequestKind, u64> = [
        (RequestKind::Head, SMALL + 1),
        // Only what has no stored whole-object SHA-256 is downloaded.
        (RequestKind::Get, SMALL + 1 - by_checksum),
        (RequestKind::List, 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts.requests, expected, "{kind}: {:#?}", counts.lines);
    assert!(
        !stores_checksums || counts.bytes_down < (11 << 20) + 200_000,
        "{kind}: {} bytes down: only the multipart object was read",
        counts.bytes_down
    );

    // Corrupt one object and remove another at the target: both are caught by checksum.
    target
        .store
        .put(&Path::from("small/03"), PutPayload::from_static(b"bit rot"))
        .await
        .expect("corrupt");
    target
        .store
        .delete(&Path::from("small/07"))
        .await
        .expect("delete");
    let report = verify(&db, &target, true).await;
    let found: BTreeMap<&str, ProblemKind> = report
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.kind))
        .collect();
    assert_eq!(
        found,
        BTreeMap::from([
            ("small/03", ProblemKind::Mismatch),
            ("small/07", ProblemKind::Missing)
        ]),
        "{kind}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.detail.contains("stored SHA-256") == stores_checksums),
        "{kind}: the mismatch names the stored checksum: {:?}",
        report.problems
    );

    // The default mode still re-reads everything.
    proxy.take_counts();
    let reread = verify(&db, &target, false).await;
    assert_eq!(reread.by_checksum, 0);
    let counts = proxy.take_counts();
    assert_eq!(counts.get(RequestKind::Head), 0, "{kind}");
    // Every manifest object is asked for, the missing one too (a 404).
    assert_eq!(counts.get(RequestKind::Get), SMALL + 1, "{kind}");
}

#[tokio::test]
async fn checksum_verify_on_moto_falls_back_to_rereading_what_has_no_stored_checksum() {
    checksum_verify_reads_no_single_part_object(e2e::servers::moto(), false).await;
}

#[tokio::test]
async fn checksum_verify_on_s3s_reads_only_what_has_no_stored_checksum() {
    checksum_verify_reads_no_single_part_object(e2e::servers::s3s(), true).await;
}
