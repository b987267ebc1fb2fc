//! The requests relocate makes per object, counted by the WAN proxy in front of each end
//! (moto as the source, s3s-fs as the target, a 10 ms round trip): a copy is one GET at
//! the source and one PUT (or the multipart calls) at the target, a delta with nothing
//! changed is one listing page and nothing else, and a verify is one GET per object at
//! the target and one listing page. No HEAD anywhere: the listing already gives size,
//! ETag and modification time. These are the figures of the README's "Requests per
//! object" table; a request added to the copy engine fails this test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use connectors::store::{Access, open_store};
use e2e::wan::{Counts, Link, RequestKind, WanProxy, through};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use orchestrator::state::Db;
use orchestrator::transfer::copy::{DEFAULT_MEMORY_BUDGET, Multipart};
use orchestrator::transfer::{
    CopyJob, Counters, KeyFilter, VerifyJob, copy_workload, verify_workload,
};
use tokio_util::sync::CancellationToken;

const SMALL: usize = 30;

struct End {
    proxy: WanProxy,
    store: Arc<dyn ObjectStore>,
    _dir: tempfile::TempDir,
}

async fn behind_proxy(server: e2e::TestServer) -> End {
    let bucket = server.fresh_bucket().await;
    let proxy = WanProxy::start(&server.endpoint, Link::rtt(Duration::from_millis(10)))
        .await
        .expect("proxy");
    let spec = through(&server, &proxy).plan_store(&bucket, "data");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store("end", &spec, dir.path(), Access::Write)
        .expect("open store")
        .store;
    End {
        proxy,
        store,
        _dir: dir,
    }
}

fn job(source: &End, target: &End) -> CopyJob {
    CopyJob {
        workload: "w".into(),
        source_name: "moto".into(),
        target_name: "s3s".into(),
        source: source.store.clone(),
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
    }
}

fn requests(counts: &Counts) -> BTreeMap<RequestKind, u64> {
    counts.requests.clone()
}

fn expect(pairs: &[(RequestKind, u64)]) -> BTreeMap<RequestKind, u64> {
    pairs.iter().copied().collect()
}

#[tokio::test]
async fn copy_delta_and_verify_make_the_fewest_requests_per_object() {
    let source = behind_proxy(e2e::servers::moto()).await;
    let target = behind_proxy(e2e::servers::s3s()).await;
    for i in 0..SMALL {
        let body = Bytes::from(vec![i as u8; 2048 + i]);
        source
            .store
            .put(&Path::from(format!("small/{i:03}")), PutPayload::from(body))
            .await
            .expect("seed");
    }
    // Above the 6 MiB threshold: three 5 MiB parts (two full, one short).
    let big = Bytes::from(vec![9u8; 13 << 20]);
    source
        .store
        .put(&Path::from("big.bin"), PutPayload::from(big))
        .await
        .expect("seed");
    let objects = SMALL as u64 + 1;
    source.proxy.take_counts();

    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("state.db")).expect("db");
    let job = job(&source, &target);
    let run = || async {
        copy_workload(
            &job,
            &db,
            &Arc::new(Counters::default()),
            &CancellationToken::new(),
        )
        .await
        .expect("copy")
    };

    // Copy: one GET per object at the source, one PUT per small object at the target.
    let first = run().await;
    assert_eq!((first.copied, first.failed), (objects, 0));
    let (src, dst) = (source.proxy.take_counts(), target.proxy.take_counts());
    assert_eq!(
        requests(&src),
        expect(&[(RequestKind::List, 1), (RequestKind::Get, objects)]),
        "source, copy: {:#?}",
        src.lines
    );
    assert_eq!(
        requests(&dst),
        expect(&[
            // The first copy checks that the target holds nothing of this workload yet.
            (RequestKind::List, 1),
            (RequestKind::Put, SMALL as u64),
            (RequestKind::CreateMultipart, 1),
            (RequestKind::UploadPart, 3),
            (RequestKind::CompleteMultipart, 1),
        ]),
        "target, copy: {:#?}",
        dst.lines
    );
    assert!(src.bytes_down >= (13 << 20) && dst.bytes_up >= (13 << 20));

    // Delta with nothing changed: one listing page at the source, nothing at the target.
    let delta = run().await;
    assert_eq!((delta.copied, delta.skipped), (0, objects));
    let (src, dst) = (source.proxy.take_counts(), target.proxy.take_counts());
    assert_eq!(
        requests(&src),
        expect(&[(RequestKind::List, 1)]),
        "source, delta: {:#?}",
        src.lines
    );
    assert_eq!(
        requests(&dst),
        expect(&[]),
        "target, delta: {:#?}",
        dst.lines
    );

    // Verify: one GET per object at the target and one listing page; the source untouched.
    let verify = VerifyJob {
        workload: "w".into(),
        target_name: "s3s".into(),
        target: target.store.clone(),
        filter: KeyFilter::all(),
        concurrency: 8,
        range: None,
        local: None,
        checksums: None,
    };
    let report = verify_workload(
        &verify,
        &db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("verify");
    assert_eq!((report.verified, report.failed()), (objects, 0));
    let (src, dst) = (source.proxy.take_counts(), target.proxy.take_counts());
    assert_eq!(
        requests(&src),
        expect(&[]),
        "source, verify: {:#?}",
        src.lines
    );
    assert_eq!(
        requests(&dst),
        expect(&[(RequestKind::Get, objects), (RequestKind::List, 1)]),
        "target, verify: {:#?}",
        dst.lines
    );
}
