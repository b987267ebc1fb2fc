//! Sharded workloads against the real servers the test script starts: a source on
//! moto, s3s-fs and Azurite copied to local files by 8 shards of local workers gives
//! the manifest (and so the Merkle root) an in-process run computes, byte for byte.

use e2e::servers::{ServerKind, TestServer, azurite, moto, s3s};
use object_store::{ObjectStoreExt, PutPayload};

/// The plan's YAML for `bucket/prefix/` on `server`, credentials by `${env:…}`.
fn store_yaml(server: &TestServer, bucket: &str, prefix: &str) -> String {
    let (access, secret) = (server.access_key_env, server.secret_key_env);
    match server.kind {
        ServerKind::Azurite => format!(
            "{{ region: moscow, url: \"az://{bucket}/{prefix}/\", options: {{ endpoint: \"{}\", allow_http: \"true\", account_name: \"${{env:{access}}}\", access_key: \"${{env:{secret}}}\" }} }}",
            server.endpoint
        ),
        _ => format!(
            "{{ region: moscow, url: \"s3://{bucket}/{prefix}/\", options: {{ endpoint: \"{}\", allow_http: \"true\", region: us-east-1, access_key_id: \"${{env:{access}}}\", secret_access_key: \"${{env:{secret}}}\" }} }}",
            server.endpoint
        ),
    }
}

fn plan(source: &str, workload_extra: &str) -> String {
    format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: shards
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
stores:
  src: {source}
  dst: {{ region: zurich, url: "file://./dst/" }}
workloads:
  data:
    objects: {{ from: src, to: dst{workload_extra} }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
"#
    )
}

/// The `relocate` binary beside this test's (the workspace's test run builds it for
/// the orchestrator's own integration tests).
fn relocate_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("relocate"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p orchestrator` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn run(dir: &std::path::Path) -> Vec<u8> {
    let out = std::process::Command::new(relocate_bin())
        .current_dir(dir)
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "json",
        ])
        .output()
        .expect("run relocate");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("state/manifests/data.sha256sums")).expect("manifest")
}

async fn sharded_equals_in_process(server: TestServer) {
    let bucket = server.fresh_bucket().await;
    let handle = connectors::store::open_store(
        "src",
        &server.plan_store(&bucket, "data"),
        std::path::Path::new("/"),
        connectors::store::Access::Write,
    )
    .expect("open the source");
    // Keys whose byte order differs from their character order, and sizes that make
    // the ranges uneven by count.
    let mut keys: Vec<String> = (0..150)
        .map(|i| format!("logs/{:03}/part-{i:04}", i % 7))
        .collect();
    keys.extend(["z", "é", "éz", "zé", "Z", "ü/ber", "a b", "日本/語"].map(str::to_owned));
    for (i, key) in keys.iter().enumerate() {
        let body = vec![(i % 251) as u8; 100 + (i * 997) % 20_000];
        handle
            .store
            .put(&key.as_str().into(), PutPayload::from(body))
            .await
            .expect("put");
    }
    let source = store_yaml(&server, &bucket, "data");
    let sharded = tempfile::tempdir().expect("dir");
    std::fs::write(
        sharded.path().join("plan.yaml"),
        plan(
            &source,
            ", shards: 8, workers: { local: { parallelism: 4 } }",
        ),
    )
    .expect("plan");
    let in_process = tempfile::tempdir().expect("dir");
    std::fs::write(in_process.path().join("plan.yaml"), plan(&source, "")).expect("plan");
    let a = tokio::task::spawn_blocking({
        let p = sharded.path().to_path_buf();
        move || run(&p)
    });
    let a = a.await.expect("sharded run");
    let b = tokio::task::spawn_blocking({
        let p = in_process.path().to_path_buf();
        move || run(&p)
    })
    .await
    .expect("in-process run");
    assert_eq!(a, b, "the sharded manifest differs from the in-process one");
    assert_eq!(
        String::from_utf8_lossy(&a).lines().count(),
        keys.len(),
        "every object is in the manifest"
    );
}

#[tokio::test]
async fn sharded_on_moto_equals_in_process() {
    sharded_equals_in_process(moto()).await;
}

#[tokio::test]
async fn sharded_on_s3s_equals_in_process() {
    sharded_equals_in_process(s3s()).await;
}

#[tokio::test]
async fn sharded_on_azurite_equals_in_process() {
    sharded_equals_in_process(azurite()).await;
}
