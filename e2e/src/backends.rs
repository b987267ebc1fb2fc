//! One fresh, empty location on every backend, opened through `connectors::store::open_store`
//! exactly as the engine opens a plan's store: behaviour suites loop over [`all_backends`].

use std::path::PathBuf;
use std::sync::Arc;

use connectors::store::{Access, StoreHandle, open_store};
use object_store::ObjectStore;

use crate::servers::{self, TestServer};

/// A fresh location on one backend.
pub struct Backend {
    /// `local`, `memory`, `moto`, `s3s` or `azurite`.
    pub name: &'static str,
    /// The store as a plan gives it (credentials as `${env:…}` references).
    pub store: plans::StoreSpec,
    /// The store opened for writing, rooted at the location: keys are relative to it.
    pub object_store: Arc<dyn ObjectStore>,
    /// The whole handle (display URL, multipart settings, account key) for engine tests.
    pub handle: StoreHandle,
    /// The directory relative `file:` URLs and `${file:…}` secrets resolve against.
    pub base_dir: PathBuf,
    /// Keeps the local backend's directory alive as long as the backend.
    _dir: Arc<tempfile::TempDir>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("url", &self.handle.display_url)
            .finish_non_exhaustive()
    }
}

impl Backend {
    fn open(name: &'static str, store: plans::StoreSpec, dir: Arc<tempfile::TempDir>) -> Self {
        let base_dir = dir.path().to_path_buf();
        let handle = open_store(name, &store, &base_dir, Access::Write)
            .unwrap_or_else(|e| panic!("open_store for backend {name}: {e}"));
        Backend {
            name,
            object_store: Arc::clone(&handle.store),
            store,
            handle,
            base_dir,
            _dir: dir,
        }
    }

    /// Open this backend's store again (a second, independent client), e.g. for reading.
    /// The memory backend has no second client: its data lives in `object_store` only.
    pub fn reopen(&self, mode: Access) -> StoreHandle {
        open_store(self.name, &self.store, &self.base_dir, mode)
            .unwrap_or_else(|e| panic!("reopen backend {}: {e}", self.name))
    }
}

fn tempdir() -> Arc<tempfile::TempDir> {
    Arc::new(tempfile::tempdir().expect("create a temporary directory"))
}

fn plain_store(url: String) -> plans::StoreSpec {
    let store = plans::Store {
        region: "test".into(),
        url,
        options: Default::default(),
        multipart: None,
        retry: None,
        credentials: plans::Credentials::Options,
    };
    // A relative path stays relative: `open_store` joins it to the backend's directory.
    plans::StoreSpec::from_store("test", &store)
        .unwrap_or_else(|e| panic!("test store is invalid: {e}"))
}

/// A fresh local directory (a relative `file://./data` URL under a temporary plan directory).
pub fn local() -> Backend {
    let dir = tempdir();
    Backend::open("local", plain_store("file://./data".into()), dir)
}

/// A fresh in-memory store.
pub fn memory() -> Backend {
    Backend::open("memory", plain_store("memory:///data".into()), tempdir())
}

async fn on_server(name: &'static str, server: TestServer) -> Backend {
    let bucket = server.fresh_bucket().await;
    Backend::open(name, server.plan_store(&bucket, "data"), tempdir())
}

/// A fresh bucket on moto. Panics when the servers are not running.
pub async fn moto() -> Backend {
    on_server("moto", servers::moto()).await
}

/// A fresh bucket on s3s-fs. Panics when the servers are not running.
pub async fn s3s() -> Backend {
    on_server("s3s", servers::s3s()).await
}

/// A fresh container on Azurite. Panics when the servers are not running.
pub async fn azurite() -> Backend {
    on_server("azurite", servers::azurite()).await
}

/// A fresh bucket on fake-gcs-server, as a source: GCS joins the suite as a source only
/// (fake-gcs-server does not take object_store's XML-API uploads, so GCS as a target stays
/// unit-tested). Objects are seeded and changed through [`GcsSource`]. Panics when the
/// servers are not running.
pub async fn gcs_source() -> GcsSource {
    let server = servers::gcs();
    let bucket = server.fresh_bucket().await;
    let backend = Backend::open("gcs", server.plan_store(&bucket, "data"), tempdir());
    GcsSource {
        backend,
        server,
        bucket,
    }
}

/// A GCS source and the JSON-API writes that seed and change it.
#[derive(Debug)]
pub struct GcsSource {
    /// The source, opened as a plan opens it.
    pub backend: Backend,
    server: TestServer,
    bucket: String,
}

impl GcsSource {
    /// Write `key` (relative to the backend's `data/` prefix).
    pub async fn put(&self, key: &str, body: bytes::Bytes) {
        self.server
            .gcs_upload(&self.bucket, &format!("data/{key}"), body)
            .await;
    }

    /// Delete `key` (relative to the backend's `data/` prefix).
    pub async fn delete(&self, key: &str) {
        self.server
            .gcs_delete(&self.bucket, &format!("data/{key}"))
            .await;
    }
}

/// One fresh location on each backend: local, memory, moto, s3s, azurite. Panics (with how to
/// start them) when the servers are not running: no backend is ever silently left out.
pub async fn all_backends() -> Vec<Backend> {
    vec![
        local(),
        memory(),
        moto().await,
        s3s().await,
        azurite().await,
    ]
}
