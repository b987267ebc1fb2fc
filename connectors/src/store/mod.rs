//! Opening the object stores a plan names: URL plus options in, a ready client out.
//!
//! [`open_store`] takes a store as validation typed it (`plans::StoreSpec`: location, options,
//! credentials policy, settings), resolves its secret references, builds the backend (local
//! files, memory, S3 and S3-compatible servers, Azure Blob, GCS), and roots the client at the
//! URL's prefix so callers speak in keys relative to it. Every cloud client is wrapped so that
//! its errors are redacted where they are made (`redacting`): no credential reaches a message,
//! a log line or the state database.
//! [`preflight`] asks the store for one page of its listing, so a wrong endpoint, refused
//! credentials or a missing bucket are reported before any stage starts.
//!
//! The GCS path is only unit-tested (it builds a client from a service-account key): no GCS
//! emulator that speaks object_store's XML/JSON API can be installed here. S3 (moto, s3s-fs) and
//! Azure (Azurite) are tested against real servers in `e2e/tests/stores.rs`.

mod build;
mod error;
mod location;
mod preflight;
mod redacting;
mod secrets;
mod settings;

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;

pub use error::StoreError;
pub use location::display_url;
pub use plans::MultipartSettings;
pub use preflight::preflight;
pub use secrets::Redactor;

use build::{BuildInput, build_cloud, probe_retry};
use location::same_account_key;
use plans::{StoreLocation, StoreSpec};
use redacting::RedactingStore;

/// What the caller will do with a store: a missing local directory is created for writing and
/// an error for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The store is a source (or is only verified).
    Read,
    /// The store is a target.
    Write,
}

/// An opened store, ready for the copy engine.
///
/// Its `Debug` leaves the clients out: object_store's own `Debug` prints access key ids.
#[derive(Clone)]
pub struct StoreHandle {
    /// The plan's name for the store.
    pub name: String,
    /// The URL without credentials, for messages and evidence.
    pub display_url: String,
    /// The client, rooted at the URL's prefix: keys are relative to it.
    pub store: Arc<dyn ObjectStore>,
    /// The client at the bucket's root, for server-side copies between two prefixes of one
    /// account (see [`StoreHandle::same_account_key`]); `prefix` locates `store` inside it.
    pub root: Arc<dyn ObjectStore>,
    /// The URL's prefix inside `root` (empty for local directories: `root` is the directory).
    pub prefix: ObjectPath,
    /// Multipart upload tuning.
    pub multipart: MultipartSettings,
    /// Scheme, endpoint and bucket: two handles with equal keys can copy server-side.
    pub same_account_key: String,
    /// The same store as `store` when it is a local directory: the copy engine reads and
    /// writes local files directly (whole objects per blocking call) instead of through
    /// the generic client's per-chunk thread hand-offs.
    pub local: Option<Arc<LocalFileSystem>>,
    /// S3 only: presigns requests object_store makes no call for, such as a `HEAD` asking
    /// for the stored `x-amz-checksum-sha256` (`verify: { mode: checksum }`). Paths are
    /// relative to `root`.
    pub signer: Option<Arc<dyn object_store::signer::Signer>>,
    /// A client that gives up within seconds, used by [`preflight`].
    probe: Arc<dyn ObjectStore>,
    redactor: Redactor,
}

impl StoreHandle {
    /// Whether the store lists keys in the byte order of their UTF-8, so a listing of a
    /// key range may stop at the first key past it: S3 general-purpose buckets (not
    /// directory buckets, `--x-s3`, which list unordered), GCS and the memory store.
    /// Azure lists in UTF-16 order (and hierarchical-namespace accounts by directory),
    /// a local tree in no order.
    pub fn lists_in_byte_order(&self) -> bool {
        let key = &self.same_account_key;
        (key.starts_with("s3|") && !key.ends_with("--x-s3"))
            || key.starts_with("gcs|")
            || key.starts_with("memory://")
    }
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("name", &self.name)
            .field("display_url", &self.display_url)
            .field("prefix", &self.prefix)
            .field("multipart", &self.multipart)
            .field("same_account_key", &self.same_account_key)
            .finish_non_exhaustive()
    }
}

impl StoreHandle {
    /// `text` with every secret value of this store blanked out: run any error text from the
    /// client library through this before showing or storing it.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }
}

/// Open store `name` as validation typed it; `base_dir` is the plan's directory (for
/// `${file:…}` secrets).
pub fn open_store(
    name: &str,
    store: &StoreSpec,
    base_dir: &Path,
    mode: Access,
) -> Result<StoreHandle, StoreError> {
    open_store_with_env(name, store, base_dir, mode, &|var| std::env::var_os(var))
}

/// [`open_store`] with an explicit environment lookup (tests cannot set variables: the
/// workspace forbids the `unsafe` that edition 2024 demands for `set_var`).
pub(crate) fn open_store_with_env(
    name: &str,
    store: &StoreSpec,
    base_dir: &Path,
    mode: Access,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<StoreHandle, StoreError> {
    let display = store.display_url.clone();
    let location = store.location.clone().resolve(base_dir);
    let options = secrets::resolve_options(name, &store.options, base_dir, env)?;
    let multipart = store.multipart;
    let retry = settings::retry(&store.retry);
    let endpoint = options.get(&[
        "endpoint",
        "aws_endpoint",
        "aws_endpoint_url",
        "azure_storage_endpoint",
        "azure_endpoint",
    ]);
    let account_key = same_account_key(name, &location, endpoint);
    let redactor = Arc::new(options.redactor.clone());
    let guard = |store: Arc<dyn ObjectStore>| RedactingStore::wrap(store, Arc::clone(&redactor));
    let mut local = None;
    let mut signer = None;
    let (root, prefix, probe_root, display) = match &location {
        StoreLocation::Local(dir) => {
            reject_options(name, &options.pairs, "local")?;
            let fs = open_local(name, dir, mode)?;
            local = Some(fs.clone());
            let root: Arc<dyn ObjectStore> = fs;
            (
                root.clone(),
                ObjectPath::default(),
                root,
                format!("file://{}", dir.display()),
            )
        }
        StoreLocation::Memory { prefix } => {
            reject_options(name, &options.pairs, "memory")?;
            let root: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            (
                root.clone(),
                object_prefix(name, &display, prefix)?,
                root,
                display,
            )
        }
        StoreLocation::Cloud { cloud, url, prefix } => {
            let input = BuildInput {
                store: name,
                display_url: &display,
                url,
                options: &options.pairs,
                retry,
                redactor: &options.redactor,
                credentials: store.credentials,
            };
            let root = guard(build_cloud(*cloud, &input, false)?);
            if *cloud == plans::Cloud::S3 {
                signer = Some(build::s3_signer(&input)?);
            }
            let probe = guard(build_cloud(
                *cloud,
                &BuildInput {
                    retry: probe_retry(),
                    ..input
                },
                true,
            )?);
            (root, object_prefix(name, &display, prefix)?, probe, display)
        }
    };
    Ok(StoreHandle {
        name: name.to_owned(),
        display_url: display,
        store: rooted(&root, &prefix),
        probe: rooted(&probe_root, &prefix),
        root,
        prefix,
        multipart,
        same_account_key: account_key,
        local,
        signer,
        redactor: options.redactor,
    })
}

/// The validated prefix as an object path (validation checked its segments as object_store
/// does; an error here would be a bug, reported rather than panicking).
fn object_prefix(name: &str, url: &str, prefix: &str) -> Result<ObjectPath, StoreError> {
    ObjectPath::parse(prefix).map_err(|e| StoreError::InvalidUrl {
        store: name.to_owned(),
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

fn rooted(root: &Arc<dyn ObjectStore>, prefix: &ObjectPath) -> Arc<dyn ObjectStore> {
    if prefix.as_ref().is_empty() {
        Arc::clone(root)
    } else {
        Arc::new(PrefixStore::new(Arc::clone(root), prefix.clone()))
    }
}

/// A local directory as a store; created when writing, required when reading.
fn open_local(name: &str, dir: &Path, mode: Access) -> Result<Arc<LocalFileSystem>, StoreError> {
    let io = |source| StoreError::Io {
        store: name.to_owned(),
        path: dir.to_path_buf(),
        source,
    };
    match mode {
        Access::Write => std::fs::create_dir_all(dir).map_err(io)?,
        Access::Read if !dir.is_dir() => {
            return Err(StoreError::NotFound {
                store: name.to_owned(),
                url: format!("file://{}", dir.display()),
                reason: format!("directory {} does not exist", dir.display()),
            });
        }
        Access::Read => {}
    }
    let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| StoreError::Build {
        store: name.to_owned(),
        url: format!("file://{}", dir.display()),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(fs))
}

/// Local and memory stores take no options: say so rather than ignore them.
fn reject_options(
    name: &str,
    options: &[(String, String)],
    backend: &'static str,
) -> Result<(), StoreError> {
    match options.first() {
        Some((key, _)) => Err(StoreError::UnknownOption {
            store: name.to_owned(),
            key: key.clone(),
            backend,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
