//! The copy/verify behaviour suite, written once over `Arc<dyn ObjectStore>` and run for
//! pairs of real backends: local files, the in-memory store, moto (S3), s3s-fs (S3 with
//! real SigV4) and Azurite (Azure Blob). The servers come from `scripts/test.sh`; without
//! them these tests fail and say how to start them (never skipped silently).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use e2e::backends::{self, Backend};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use orchestrator::state::Db;
use orchestrator::transfer::copy::{DEFAULT_MEMORY_BUDGET, Multipart};
use orchestrator::transfer::{
    CopyJob, Counters, KeyFilter, ProblemKind, VerifyJob, copy_workload, verify_workload,
};
use tokio_util::sync::CancellationToken;

/// Keys of every shape the stores accept.
const ODD_KEYS: &[&str] = &[
    "plain.txt",
    "with space/and more spaces.bin",
    "ünï/cødé/日本語.txt",
    "deep/a/b/c/d/e/f/g/h/leaf",
    "empty",
    "dots.in.name/x.y.z",
];

fn body(i: usize, len: usize) -> Bytes {
    let mut x = (i as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn put(store: &Arc<dyn ObjectStore>, key: &str, data: Bytes) {
    store
        .put(&Path::from(key), PutPayload::from(data))
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

async fn contents(store: &Arc<dyn ObjectStore>) -> BTreeMap<String, Bytes> {
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

struct Harness {
    _dir: tempfile::TempDir,
    db: Db,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("state.db")).expect("db");
        Self { _dir: dir, db }
    }

    fn copy_job(&self, source: &Backend, target: &Backend) -> CopyJob {
        CopyJob {
            workload: "w".into(),
            source_name: source.name.into(),
            target_name: "target".into(),
            source: source.object_store.clone(),
            target: target.object_store.clone(),
            filter: KeyFilter::all(),
            algorithm: plans::ChecksumAlgorithm::Sha256,
            concurrency: 8,
            adaptive: false,
            // Small parts so the suite exercises multipart uploads on every backend.
            multipart: Multipart {
                threshold: 6 << 20,
                part_size: 5 << 20,
                concurrency: 2,
            },
            limiter: None,
            range: None,
            prune: true,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            local: local_ends(&source.handle, &target.handle),
            symlinks: Default::default(),
            existing_target: Default::default(),
            server_side: None,
        }
    }

    async fn copy(&self, source: &Backend, target: &Backend) -> orchestrator::transfer::CopyReport {
        let report = copy_workload(
            &self.copy_job(source, target),
            &self.db,
            &Arc::new(Counters::default()),
            &CancellationToken::new(),
        )
        .await
        .expect("copy");
        assert_eq!(
            report.failed, 0,
            "{} → {}: {:?}",
            source.name, target.name, report.failures
        );
        report
    }

    async fn verify(&self, target: &Backend) -> orchestrator::transfer::VerifyReport {
        let job = VerifyJob {
            workload: "w".into(),
            target_name: target.name.into(),
            target: target.object_store.clone(),
            filter: KeyFilter::all(),
            concurrency: 8,
            range: None,
            local: target.handle.local.clone(),
            checksums: None,
        };
        verify_workload(
            &job,
            &self.db,
            &Arc::new(Counters::default()),
            &CancellationToken::new(),
        )
        .await
        .expect("verify")
    }
}

/// The whole behaviour, for one source/target pair.
async fn suite(source: Backend, target: Backend) {
    let pair = format!("{} → {}", source.name, target.name);
    for (i, key) in ODD_KEYS.iter().enumerate() {
        let len = if *key == "empty" { 0 } else { 1000 + i * 517 };
        put(&source.object_store, key, body(i, len)).await;
    }
    // Above the multipart threshold: two full parts and a short last one.
    put(&source.object_store, "large/object.bin", body(99, 13 << 20)).await;
    let h = Harness::new();

    // Seed copy: every object, byte for byte, then verified.
    let first = h.copy(&source, &target).await;
    assert_eq!(first.copied as usize, ODD_KEYS.len() + 1, "{pair}");
    assert_eq!(
        contents(&source.object_store).await,
        contents(&target.object_store).await,
        "{pair}: target equals source"
    );
    let v = h.verify(&target).await;
    assert_eq!(
        (v.verified as usize, v.failed()),
        (ODD_KEYS.len() + 1, 0),
        "{pair}: {:?}",
        v.problems
    );

    // Delta: one changed, one new, one deleted at the source.
    put(
        &source.object_store,
        "plain.txt",
        Bytes::from_static(b"changed at the source"),
    )
    .await;
    put(
        &source.object_store,
        "new/arrival.txt",
        Bytes::from_static(b"new"),
    )
    .await;
    source
        .object_store
        .delete(&Path::from("dots.in.name/x.y.z"))
        .await
        .expect("delete");
    let delta = h.copy(&source, &target).await;
    assert_eq!(
        (delta.copied, delta.pruned),
        (2, 1),
        "{pair}: delta copies only what changed"
    );
    assert_eq!(delta.skipped as usize, ODD_KEYS.len() - 1, "{pair}");
    assert_eq!(
        contents(&source.object_store).await,
        contents(&target.object_store).await,
        "{pair}: delta converges"
    );
    let v = h.verify(&target).await;
    assert_eq!(v.failed(), 0, "{pair}: {:?}", v.problems);

    // Corruption, loss and an extra at the target are each caught and named.
    put(
        &target.object_store,
        "with space/and more spaces.bin",
        Bytes::from_static(b"bit rot"),
    )
    .await;
    target
        .object_store
        .delete(&Path::from("deep/a/b/c/d/e/f/g/h/leaf"))
        .await
        .expect("delete");
    put(&target.object_store, "stray.bin", Bytes::from_static(b"?")).await;
    let v = h.verify(&target).await;
    let found: BTreeMap<&str, ProblemKind> = v
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.kind))
        .collect();
    assert_eq!(
        found.get("with space/and more spaces.bin"),
        Some(&ProblemKind::Mismatch),
        "{pair}: {found:?}"
    );
    assert_eq!(
        found.get("deep/a/b/c/d/e/f/g/h/leaf"),
        Some(&ProblemKind::Missing),
        "{pair}: {found:?}"
    );
    assert_eq!(
        found.get("stray.bin"),
        Some(&ProblemKind::Unexpected),
        "{pair}: {found:?}"
    );

    // A rerun of the copy repairs what verify found bad (the extra stays: it is not ours).
    let repair = h.copy(&source, &target).await;
    assert_eq!(
        repair.copied, 2,
        "{pair}: re-copies the mismatched and the missing object"
    );
    target
        .object_store
        .delete(&Path::from("stray.bin"))
        .await
        .expect("delete");
    let v = h.verify(&target).await;
    assert_eq!(v.failed(), 0, "{pair}: {:?}", v.problems);

    fresh_state_over_a_filled_target(&source, &target, &pair).await;
}

/// Issue 13, finding 19: a fresh state over a target that already holds the workload's
/// objects refuses to copy over them, naming the count; with `existingTarget: adopt` it
/// keeps what matches by hash and copies the rest.
async fn fresh_state_over_a_filled_target(source: &Backend, target: &Backend, pair: &str) {
    let objects = contents(&target.object_store).await.len() as u64;
    let fresh = Harness::new();
    let err = copy_workload(
        &fresh.copy_job(source, target),
        &fresh.db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect_err("a fresh state over a filled target is refused");
    assert!(
        matches!(err, orchestrator::transfer::TransferError::ExistingTarget { objects: n, .. } if n == objects),
        "{pair}: {err}"
    );

    put(
        &target.object_store,
        "plain.txt",
        Bytes::from_static(b"differs"),
    )
    .await;
    let mut job = fresh.copy_job(source, target);
    job.existing_target = plans::ExistingTarget::Adopt;
    let adopted = copy_workload(
        &job,
        &fresh.db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("adopt");
    assert_eq!(
        (adopted.adopted, adopted.copied, adopted.failed),
        (objects - 1, 1, 0),
        "{pair}: {:?}",
        adopted.failures
    );
    assert_eq!(
        contents(&source.object_store).await,
        contents(&target.object_store).await,
        "{pair}: adopt converges"
    );
    let v = fresh.verify(target).await;
    assert_eq!(
        (v.verified, v.failed()),
        (objects, 0),
        "{pair}: {:?}",
        v.problems
    );
}

#[tokio::test]
async fn local_to_local() {
    suite(backends::local(), backends::local()).await;
}

#[tokio::test]
async fn memory_to_local() {
    suite(backends::memory(), backends::local()).await;
}

#[tokio::test]
async fn local_to_memory() {
    suite(backends::local(), backends::memory()).await;
}

#[tokio::test]
async fn local_to_moto() {
    suite(backends::local(), backends::moto().await).await;
}

#[tokio::test]
async fn local_to_s3s() {
    suite(backends::local(), backends::s3s().await).await;
}

#[tokio::test]
async fn moto_to_s3s_across_servers() {
    suite(backends::moto().await, backends::s3s().await).await;
}

#[tokio::test]
async fn moto_to_moto_across_buckets() {
    suite(backends::moto().await, backends::moto().await).await;
}

#[tokio::test]
async fn s3s_to_azurite() {
    suite(backends::s3s().await, backends::azurite().await).await;
}

#[tokio::test]
async fn azurite_to_local() {
    suite(backends::azurite().await, backends::local()).await;
}

#[tokio::test]
async fn local_to_azurite() {
    suite(backends::local(), backends::azurite().await).await;
}

/// Two prefixes of one bucket: the copy goes server-side and is still hashed and verified.
#[tokio::test]
async fn same_bucket_copies_server_side_and_still_verifies() {
    use connectors::store::{Access, open_store};
    use orchestrator::transfer::copy::ServerSide;
    let server = e2e::servers::moto();
    let bucket = server.fresh_bucket().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let src = open_store(
        "src",
        &server.plan_store(&bucket, "src/"),
        dir.path(),
        Access::Read,
    )
    .expect("src");
    let dst = open_store(
        "dst",
        &server.plan_store(&bucket, "dst/"),
        dir.path(),
        Access::Write,
    )
    .expect("dst");
    assert_eq!(src.same_account_key, dst.same_account_key);
    for (i, key) in ODD_KEYS.iter().enumerate() {
        put(&src.store, key, body(i, 100 + i * 1000)).await;
    }
    let h = Harness::new();
    let job = CopyJob {
        workload: "w".into(),
        source_name: "src".into(),
        target_name: "target".into(),
        source: src.store.clone(),
        target: dst.store.clone(),
        filter: KeyFilter::all(),
        algorithm: plans::ChecksumAlgorithm::Sha256,
        concurrency: 4,
        adaptive: false,
        multipart: Multipart::default(),
        limiter: None,
        range: None,
        prune: true,
        memory_budget: DEFAULT_MEMORY_BUDGET,
        local: local_ends(&src, &dst),
        symlinks: Default::default(),
        existing_target: Default::default(),
        server_side: Some(ServerSide {
            root: dst.root.clone(),
            source_prefix: src.prefix.clone(),
            target_prefix: dst.prefix.clone(),
        }),
    };
    let report = copy_workload(
        &job,
        &h.db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("copy");
    assert_eq!(
        (report.copied as usize, report.failed),
        (ODD_KEYS.len(), 0),
        "{:?}",
        report.failures
    );
    assert_eq!(contents(&src.store).await, contents(&dst.store).await);
    let vjob = VerifyJob {
        workload: "w".into(),
        target_name: "dst".into(),
        target: dst.store.clone(),
        filter: KeyFilter::all(),
        concurrency: 4,
        range: None,
        local: dst.local.clone(),
        checksums: None,
    };
    let v = verify_workload(
        &vjob,
        &h.db,
        &Arc::new(Counters::default()),
        &CancellationToken::new(),
    )
    .await
    .expect("verify");
    assert_eq!(
        (v.verified as usize, v.failed()),
        (ODD_KEYS.len(), 0),
        "{:?}",
        v.problems
    );
}

/// The ends that are local directories, as `relocate run` passes them: local pairs
/// take the engine's direct-file path, a local end alone its walk and its guards.
fn local_ends(
    source: &connectors::store::StoreHandle,
    target: &connectors::store::StoreHandle,
) -> orchestrator::transfer::local::LocalSides {
    orchestrator::transfer::local::LocalSides {
        source: source.local.clone(),
        target: target.local.clone(),
    }
}

/// GCS as a source, against fake-gcs-server (GCS's JSON API): the objects are seeded and
/// changed through the JSON API, since fake-gcs-server does not take object_store's
/// XML-API uploads (so GCS as a target stays unit-tested). Listed, read, copied to local
/// files byte for byte, verified; a delta copies what changed and prunes what went.
#[tokio::test]
async fn gcs_to_local() {
    let gcs = backends::gcs_source().await;
    let (source, target) = (&gcs.backend, backends::local());
    for (i, key) in ODD_KEYS.iter().enumerate() {
        let len = if *key == "empty" { 0 } else { 1000 + i * 517 };
        gcs.put(key, body(i, len)).await;
    }
    gcs.put("large/object.bin", body(99, 13 << 20)).await;
    let h = Harness::new();

    let first = h.copy(source, &target).await;
    assert_eq!(first.copied as usize, ODD_KEYS.len() + 1);
    let seeded = contents(&source.object_store).await;
    assert_eq!(
        seeded.len(),
        ODD_KEYS.len() + 1,
        "object_store lists every GCS object"
    );
    assert_eq!(
        seeded,
        contents(&target.object_store).await,
        "target equals source"
    );
    let v = h.verify(&target).await;
    assert_eq!(
        (v.verified as usize, v.failed()),
        (ODD_KEYS.len() + 1, 0),
        "{:?}",
        v.problems
    );

    gcs.put("plain.txt", Bytes::from_static(b"changed at the source"))
        .await;
    gcs.put("new/arrival.txt", Bytes::from_static(b"new")).await;
    gcs.delete("dots.in.name/x.y.z").await;
    let delta = h.copy(source, &target).await;
    assert_eq!(
        (delta.copied, delta.pruned, delta.skipped as usize),
        (2, 1, ODD_KEYS.len() - 1),
        "delta copies only what changed"
    );
    assert_eq!(
        contents(&source.object_store).await,
        contents(&target.object_store).await,
        "delta converges"
    );
    let v = h.verify(&target).await;
    assert_eq!(v.failed(), 0, "{:?}", v.problems);
}
