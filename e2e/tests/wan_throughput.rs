//! Many small objects across a 40 ms round trip (s3s-fs behind the WAN proxy, relocate at
//! the target side): a fixed 16 in flight is stuck at 16 per round trip, a few hundred
//! objects per second; adaptive concurrency finds enough in flight to go several times
//! faster, without being told.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use connectors::store::{Access, open_store};
use e2e::wan::{Link, WanProxy, through};
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use orchestrator::state::Db;
use orchestrator::transfer::copy::{DEFAULT_MEMORY_BUDGET, Multipart};
use orchestrator::transfer::{CopyJob, Counters, KeyFilter, copy_workload};
use tokio_util::sync::CancellationToken;

const OBJECTS: usize = 1000;

async fn objects_per_second(concurrency: usize, adaptive: bool) -> f64 {
    let server = e2e::servers::s3s();
    let bucket = server.fresh_bucket().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let direct = open_store(
        "seed",
        &server.plan_store(&bucket, "data"),
        dir.path(),
        Access::Write,
    )
    .expect("open")
    .store;
    futures::stream::iter(0..OBJECTS)
        .for_each_concurrent(32, |i| {
            let direct = direct.clone();
            async move {
                let body = Bytes::from(vec![i as u8; 10 << 10]);
                direct
                    .put(&Path::from(format!("o/{i:05}")), PutPayload::from(body))
                    .await
                    .expect("seed");
            }
        })
        .await;
    let proxy = WanProxy::start(&server.endpoint, Link::rtt(Duration::from_millis(40)))
        .await
        .expect("proxy");
    let source = open_store(
        "source",
        &through(&server, &proxy).plan_store(&bucket, "data"),
        dir.path(),
        Access::Read,
    )
    .expect("open")
    .store;
    let target: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let db = Db::open(&dir.path().join("state.db")).expect("db");
    let job = CopyJob {
        workload: "w".into(),
        source_name: "s3s".into(),
        target_name: "memory".into(),
        source,
        target,
        filter: KeyFilter::all(),
        algorithm: plans::ChecksumAlgorithm::Sha256,
        concurrency,
        adaptive,
        multipart: Multipart::default(),
        limiter: None,
        range: None,
        prune: true,
        server_side: None,
        memory_budget: DEFAULT_MEMORY_BUDGET,
        local: Default::default(),
        symlinks: Default::default(),
        existing_target: Default::default(),
    };
    let start = Instant::now();
    let report = copy_workload(
        &job,
        &db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("copy");
    assert_eq!(report.copied as usize, OBJECTS);
    OBJECTS as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_concurrency_is_not_stuck_at_a_few_hundred_small_objects_per_second() {
    let fixed = objects_per_second(orchestrator::transfer::adaptive::FLOOR, false).await;
    let adaptive = objects_per_second(orchestrator::transfer::adaptive::CEILING, true).await;
    eprintln!(
        "1000 x 10 KiB across 40 ms: fixed 16 in flight {fixed:.0} objects/s, adaptive {adaptive:.0} objects/s"
    );
    assert!(
        fixed < 420.0,
        "16 in flight cannot beat 16 per round trip: {fixed:.0}/s"
    );
    assert!(
        adaptive >= 2.5 * fixed,
        "adaptive {adaptive:.0}/s against fixed {fixed:.0}/s"
    );
}
