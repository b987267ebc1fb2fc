//! A real S3 server (s3s-fs) killed and restarted in the middle of a copy: transient
//! failures are retried to success, and anything that still failed is copied by the
//! rerun; the target then equals the source and verifies.
//!
//! Starts its own s3s-fs (installed by `scripts/test.sh`) so it can kill it without
//! disturbing the shared servers; uses the shared server's credentials.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use connectors::store::{Access, open_store};
use e2e::servers::{self, ServerKind, TestServer};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use orchestrator::state::Db;
use orchestrator::transfer::copy::{DEFAULT_MEMORY_BUDGET, Multipart};
use orchestrator::transfer::ratelimit::RateLimiter;
use orchestrator::transfer::{
    CopyJob, Counters, KeyFilter, VerifyJob, copy_workload, verify_workload,
};
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Where `scripts/servers.sh` installs s3s-fs (`$CARGO_HOME/bin`), else `PATH`.
fn s3s_fs() -> std::path::PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")));
    cargo_home
        .map(|h| h.join("bin/s3s-fs"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "s3s-fs".into())
}

fn start(port: u16, root: &std::path::Path) -> Child {
    let shared = servers::s3s();
    let key = std::env::var(shared.access_key_env).expect("s3s access key");
    let secret = std::env::var(shared.secret_key_env).expect("s3s secret key");
    let child = Command::new(s3s_fs())
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            &key,
            "--secret-key",
            &secret,
        ])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3s-fs (installed by scripts/test.sh)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "s3s-fs did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_mid_copy_loses_nothing() {
    const OBJECTS: usize = 120;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("s3s-root");
    std::fs::create_dir_all(&root).expect("root");
    let port = free_port();
    let mut server = start(port, &root);
    let shared = servers::s3s();
    let private = TestServer {
        kind: ServerKind::S3s,
        endpoint: format!("http://127.0.0.1:{port}"),
        s3s_root: Some(root.clone()),
        ..shared
    };
    let bucket = private.fresh_bucket().await;
    let mut plan_store = private.plan_store(&bucket, "moved/");
    plan_store.retry = plans::RetryPolicy {
        max_retries: Some(20),
        timeout: Some(std::time::Duration::from_secs(60)),
    };
    let target = open_store("target", &plan_store, dir.path(), Access::Write).expect("target");

    let source_dir = dir.path().join("src");
    std::fs::create_dir_all(&source_dir).expect("src");
    let source = open_store(
        "source",
        &plans::StoreSpec::from_store(
            "source",
            &plans::Store {
                region: "a".into(),
                url: format!("file://{}/", source_dir.display()),
                options: Default::default(),
                multipart: None,
                retry: None,
                credentials: plans::Credentials::Options,
            },
        )
        .expect("valid source store"),
        dir.path(),
        Access::Read,
    )
    .expect("source");
    for i in 0..OBJECTS {
        let body: Vec<u8> = (0..128 * 1024)
            .map(|j| ((i * 31 + j * 7) % 251) as u8)
            .collect();
        source
            .store
            .put(
                &Path::from(format!("obj/{i:04}")),
                PutPayload::from(Bytes::from(body)),
            )
            .await
            .expect("put");
    }

    let db_dir = tempfile::tempdir().expect("state");
    let db = Db::open(&db_dir.path().join("state.db")).expect("db");
    let job = CopyJob {
        workload: "w".into(),
        source_name: "source".into(),
        target_name: "target".into(),
        source: source.store.clone(),
        target: target.store.clone(),
        filter: KeyFilter::all(),
        algorithm: plans::ChecksumAlgorithm::Sha256,
        concurrency: 4,
        adaptive: false,
        multipart: Multipart::default(),
        // ~15 MiB at 5 MiB/s: the copy is mid-way when the server dies.
        limiter: Some(Arc::new(RateLimiter::new(5 << 20))),
        range: None,
        prune: true,
        memory_budget: DEFAULT_MEMORY_BUDGET,
        local: Default::default(),
        symlinks: Default::default(),
        existing_target: Default::default(),
        server_side: None,
    };
    let counters = Arc::new(Counters::default());
    let copy = {
        let (job, db, counters) = (job.clone(), db.clone(), counters.clone());
        tokio::spawn(
            async move { copy_workload(&job, &db, &counters, &CancellationToken::new()).await },
        )
    };
    // Kill the server once a third has landed, keep it down for two seconds, restart it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while counters.snapshot().copied < (OBJECTS / 3) as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().expect("kill s3s-fs");
    server.wait().expect("reap");
    let killed_at = counters.snapshot().copied;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut server = start(port, &root);

    let first = copy.await.expect("join").expect("copy");
    eprintln!(
        "server killed after {killed_at} objects; first copy: {} copied, {} failed",
        first.copied, first.failed
    );
    assert!(killed_at < OBJECTS as u64, "the kill must land mid-copy");
    if first.failed > 0 {
        let rerun = copy_workload(
            &job,
            &db,
            &Arc::new(Counters::default()),
            &CancellationToken::new(),
        )
        .await
        .expect("rerun");
        assert_eq!(rerun.failed, 0, "{:?}", rerun.failures);
    }
    let vjob = VerifyJob {
        workload: "w".into(),
        target_name: "target".into(),
        target: target.store.clone(),
        filter: KeyFilter::all(),
        concurrency: 4,
        range: None,
        local: None,
        checksums: None,
    };
    let v = verify_workload(
        &vjob,
        &db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("verify");
    assert_eq!(
        (v.verified as usize, v.failed()),
        (OBJECTS, 0),
        "{:?}",
        v.problems
    );
    let listed: Vec<_> = target.store.list(None).try_collect().await.expect("list");
    assert_eq!(listed.len(), OBJECTS);
    server.kill().expect("stop s3s-fs");
    let _ = server.wait();
}
