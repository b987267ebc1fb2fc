//! A measurement, not a timed test (`--run-ignored all --no-capture`): how much of a
//! 200 Mbit/s, 40 ms link relocate fills, copying from s3s-fs behind the WAN proxy to
//! memory (relocate at the target side), with the engine's defaults (adaptive objects in
//! flight up to 256, 32 MiB multipart threshold, 8 MiB parts, 64 MiB byte budget).

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
use orchestrator::transfer::adaptive::CEILING;
use orchestrator::transfer::copy::{DEFAULT_MEMORY_BUDGET, Multipart};
use orchestrator::transfer::{CopyJob, Counters, KeyFilter, copy_workload};
use tokio_util::sync::CancellationToken;

const MBIT: u64 = 200;

async fn utilisation(objects: usize, size: usize) -> (f64, f64) {
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
    futures::stream::iter(0..objects)
        .for_each_concurrent(16, |i| {
            let direct = direct.clone();
            async move {
                let body = Bytes::from(vec![i as u8; size]);
                direct
                    .put(&Path::from(format!("o/{i:05}")), PutPayload::from(body))
                    .await
                    .expect("seed");
            }
        })
        .await;
    let link = Link::rtt(Duration::from_millis(40)).mbit(MBIT);
    let proxy = WanProxy::start(&server.endpoint, link)
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
        concurrency: CEILING,
        adaptive: true,
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
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(report.copied as usize, objects);
    let rate = link.rate.expect("shaped") as f64;
    let bytes = proxy.counts().bytes_down as f64;
    (bytes / seconds / rate, seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --run-ignored all --no-capture"]
async fn link_utilisation_at_40ms_200mbit() {
    for (objects, size, what) in [(4, 64 << 20, "4 x 64 MiB"), (200, 1 << 20, "200 x 1 MiB")] {
        let (used, seconds) = utilisation(objects, size).await;
        eprintln!(
            "{what} across 40 ms at {MBIT} Mbit/s: {:.0}% of the link ({seconds:.1} s)",
            used * 100.0
        );
    }
}
