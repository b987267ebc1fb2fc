//! Store conformance against every backend the test script starts: odd keys round-trip through
//! `open_store`, wrong credentials are `Denied` without leaking them, a closed port is
//! `Unreachable`, a missing bucket is `NotFound`.

use std::collections::BTreeSet;

use connectors::store::{Access, StoreError, open_store, preflight};
use e2e::backends::{self, Backend};
use e2e::servers::{self, TestServer};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

/// Keys that trip up naive implementations, with their contents (one empty).
fn odd_objects() -> Vec<(Path, Vec<u8>)> {
    vec![
        (Path::from("plain.txt"), b"plain".to_vec()),
        (Path::from("with space/file name.txt"), b"spaces".to_vec()),
        (
            Path::from("unicode/\u{fc}n\u{ef}c\u{f8}d\u{e9}-\u{65e5}\u{672c}.bin"),
            vec![0, 159, 146, 150],
        ),
        (
            Path::from("deep/a/b/c/d/e/f/g/h/leaf"),
            (0..=255u8).collect(),
        ),
        (Path::from("empty"), Vec::new()),
    ]
}

async fn roundtrip(backend: Backend) {
    let store = &backend.object_store;
    let name = backend.name;
    for (key, body) in odd_objects() {
        store
            .put(&key, PutPayload::from(body.clone()))
            .await
            .unwrap_or_else(|e| panic!("{name}: put {key}: {e}"));
    }
    for (key, body) in odd_objects() {
        let got = store
            .get(&key)
            .await
            .unwrap_or_else(|e| panic!("{name}: get {key}: {e}"));
        let bytes = got
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{name}: read {key}: {e}"));
        assert_eq!(bytes.as_ref(), body.as_slice(), "{name}: bytes of {key}");
        let meta = store
            .head(&key)
            .await
            .unwrap_or_else(|e| panic!("{name}: head {key}: {e}"));
        assert_eq!(meta.size, body.len() as u64, "{name}: size of {key}");
    }
    let listed: BTreeSet<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{name}: list: {e}"));
    let expected: BTreeSet<String> = odd_objects()
        .into_iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(
        listed, expected,
        "{name}: listing is relative to the store's prefix"
    );

    // A second client opened from the plan sees the same objects (not for memory: one instance).
    if name != "memory" {
        let reader = backend.reopen(Access::Read);
        preflight(&reader)
            .await
            .unwrap_or_else(|e| panic!("{name}: preflight: {e}"));
        let got = reader
            .store
            .get(&Path::from("plain.txt"))
            .await
            .expect("second client reads");
        assert_eq!(got.bytes().await.expect("bytes").as_ref(), b"plain");
    }

    for (key, _) in odd_objects() {
        store
            .delete(&key)
            .await
            .unwrap_or_else(|e| panic!("{name}: delete {key}: {e}"));
    }
    let left: Vec<_> = store
        .list(None)
        .try_collect()
        .await
        .expect("list after delete");
    assert!(
        left.is_empty(),
        "{name}: objects left after delete: {left:?}"
    );
}

#[tokio::test]
async fn local_roundtrip() {
    roundtrip(backends::local()).await;
}

#[tokio::test]
async fn memory_roundtrip() {
    roundtrip(backends::memory()).await;
}

#[tokio::test]
async fn moto_roundtrip() {
    roundtrip(backends::moto().await).await;
}

#[tokio::test]
async fn s3s_roundtrip() {
    roundtrip(backends::s3s().await).await;
}

#[tokio::test]
async fn azurite_roundtrip() {
    roundtrip(backends::azurite().await).await;
}

#[tokio::test]
async fn all_backends_yields_each_backend_once() {
    let names: Vec<&str> = backends::all_backends()
        .await
        .iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["local", "memory", "moto", "s3s", "azurite"]);
}

#[tokio::test]
async fn wrong_secret_on_s3s_is_denied_without_leaking_credentials() {
    let server = servers::s3s();
    let bucket = server.fresh_bucket().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong_secret = "definitely-not-the-secret-7f3a";
    std::fs::write(dir.path().join("wrong-secret"), format!("{wrong_secret}\n"))
        .expect("write secret file");
    let store = server.plan_store_with(
        &bucket,
        "data",
        &format!("${{env:{}}}", server.access_key_env),
        "${file:wrong-secret}",
    );
    let handle = open_store("s3s-wrong", &store, dir.path(), Access::Read).expect("opens");
    let err = preflight(&handle)
        .await
        .expect_err("wrong secret must be refused");
    assert!(matches!(err, StoreError::Denied { .. }), "{err:?}");
    let access_key = std::env::var(server.access_key_env).expect("access key set by servers.sh");
    let real_secret = std::env::var(server.secret_key_env).expect("secret set by servers.sh");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("s3s-wrong") && text.contains(&format!("s3://{bucket}/data")),
        "{text}"
    );
    for leaked in [wrong_secret, access_key.as_str(), real_secret.as_str()] {
        assert!(
            !text.contains(leaked),
            "error text leaks a credential: {text}"
        );
    }
}

#[tokio::test]
async fn unreachable_endpoint_is_reported_as_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let server = TestServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        ..servers::s3s()
    };
    let handle = open_store(
        "gone",
        &server.plan_store("bucket", ""),
        std::path::Path::new("."),
        Access::Read,
    )
    .expect("opens");
    let err = preflight(&handle).await.expect_err("nothing listens there");
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
}

async fn assert_missing_bucket_not_found(server: TestServer) {
    let store = server.plan_store(&servers::unique_name("missing"), "");
    let handle =
        open_store("missing", &store, std::path::Path::new("."), Access::Read).expect("opens");
    let err = preflight(&handle).await.expect_err("bucket does not exist");
    assert!(
        matches!(err, StoreError::NotFound { .. }),
        "{:?}: {err:?}",
        server.kind
    );
}

#[tokio::test]
async fn missing_bucket_is_not_found() {
    assert_missing_bucket_not_found(servers::moto()).await;
    assert_missing_bucket_not_found(servers::s3s()).await;
    assert_missing_bucket_not_found(servers::azurite()).await;
}
