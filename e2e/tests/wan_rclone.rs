//! A measurement, not a timed test (`--run-ignored all --no-capture`): the requests
//! `rclone` makes at an S3 source for the same objects as `wan_requests.rs` (30 small and
//! one of 13 MiB on s3s-fs, behind the WAN proxy), for the README's "Requests per object"
//! table. Needs `rclone` on the PATH.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use connectors::store::{Access, open_store};
use e2e::wan::{Counts, Link, WanProxy};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

fn rclone(proxy: &WanProxy, args: &[&str]) {
    let out = Command::new("rclone")
        .args(args)
        // The proxy is plain HTTP; a CA bundle from the environment only confuses the SDK.
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_SRC_TYPE", "s3")
        .env("RCLONE_CONFIG_SRC_PROVIDER", "Other")
        .env("RCLONE_CONFIG_SRC_ENDPOINT", proxy.endpoint())
        .env("RCLONE_CONFIG_SRC_REGION", "us-east-1")
        .env(
            "RCLONE_CONFIG_SRC_ACCESS_KEY_ID",
            std::env::var("RELOCATE_TEST_S3S_ACCESS_KEY").expect("servers"),
        )
        .env(
            "RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY",
            std::env::var("RELOCATE_TEST_S3S_SECRET_KEY").expect("servers"),
        )
        .output()
        .expect("run rclone (is it installed?)");
    assert!(
        out.status.success(),
        "rclone {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn show(what: &str, c: &Counts) {
    eprintln!(
        "rclone {what}: {:?} (total {}, {} bytes down)",
        c.requests,
        c.total(),
        c.bytes_down
    );
    // Requests no S3 kind names (rclone 1.60 lists with ListObjects v1, no `list-type=2`).
    for line in c
        .lines
        .iter()
        .filter(|l| !l.starts_with("HEAD") && !l.contains("/small/") && !l.contains("/big.bin"))
    {
        eprintln!("  {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement against rclone: run with --run-ignored all --no-capture"]
async fn rclone_requests_per_object_at_the_source() {
    let server = e2e::servers::s3s();
    let bucket = server.fresh_bucket().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(
        "seed",
        &server.plan_store(&bucket, "data"),
        dir.path(),
        Access::Write,
    )
    .expect("open")
    .store;
    for i in 0..30 {
        let body = Bytes::from(vec![i as u8; 2048 + i]);
        store
            .put(&Path::from(format!("small/{i:03}")), PutPayload::from(body))
            .await
            .expect("seed");
    }
    store
        .put(
            &Path::from("big.bin"),
            PutPayload::from(vec![9u8; 13 << 20]),
        )
        .await
        .expect("seed");
    let proxy = WanProxy::start(&server.endpoint, Link::rtt(Duration::from_millis(10)))
        .await
        .expect("proxy");
    let source = format!("src:{bucket}/data");
    let target = dir.path().join("copy");
    let target = target.to_str().expect("utf-8 path");
    // rclone blocks this thread while the proxy runs on the other.
    let run = |args: &[&str]| tokio::task::block_in_place(|| rclone(&proxy, args));
    run(&["copy", &source, target]);
    show("copy (defaults)", &proxy.take_counts());
    run(&["copy", &source, target]);
    show("copy again, nothing changed", &proxy.take_counts());
    run(&["check", "--download", &source, target]);
    show("check --download", &proxy.take_counts());
    run(&["check", &source, target]);
    show("check (hashes)", &proxy.take_counts());
}
