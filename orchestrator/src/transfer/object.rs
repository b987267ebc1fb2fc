//! One object's transfer: server-side when both ends share an account, else streamed
//! from source to target with the hash computed as the bytes pass; retried a few
//! times on transient errors, and every failure names the store and the side (reading
//! or writing) it came from.

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload, WriteMultipart};

use super::Counters;
use super::copy::{CopyFailure, CopyJob, ServerSide, part_size};
use super::hash::ObjectHasher;

/// Which end of a transfer an error came from, so a failure names the right store.
#[derive(Debug)]
enum Side {
    Source(object_store::Error),
    Target(object_store::Error),
}

impl Side {
    fn error(&self) -> &object_store::Error {
        match self {
            Side::Source(e) | Side::Target(e) => e,
        }
    }

    fn describe(&self, job: &CopyJob) -> String {
        match self {
            Side::Source(e) => format!("reading from {}: {e}", job.source_name),
            Side::Target(e) => format!("writing to {}: {e}", job.target_name),
        }
    }

    fn into_failure(self, job: &CopyJob) -> CopyFailure {
        match self {
            Side::Source(e) => CopyFailure::read(&job.source_name, e),
            Side::Target(e) => CopyFailure::write(&job.target_name, e),
        }
    }
}

/// Copy one object with a few retries; returns the hex hash of the bytes read.
pub(super) async fn copy_one(
    job: &CopyJob,
    meta: &ObjectMeta,
    counters: &Counters,
) -> Result<String, CopyFailure> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        match stream_object(job, &meta.location, counters).await {
            Ok(hash) => return Ok(hash),
            Err(Side::Source(object_store::Error::NotFound { .. })) => {
                return Err(CopyFailure::Vanished);
            }
            Err(e) if attempt < ATTEMPTS && retryable(e.error()) => {
                tracing::debug!(key = %meta.location, attempt, "retrying after: {}", e.describe(job));
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into_failure(job)),
        }
    }
}

fn retryable(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. }
    )
}

/// Copy one object server-side when possible, else stream it; returns the source hash.
async fn stream_object(job: &CopyJob, key: &Path, counters: &Counters) -> Result<String, Side> {
    if let Some(ss) = &job.server_side {
        match ss
            .root
            .copy(
                &ServerSide::join(&ss.source_prefix, key),
                &ServerSide::join(&ss.target_prefix, key),
            )
            .await
        {
            Ok(()) => return hash_source(job, key, counters).await.map_err(Side::Source),
            Err(e @ object_store::Error::NotFound { .. }) => return Err(Side::Source(e)),
            // Too large for a single server-side copy, or not allowed: stream it instead.
            Err(e) => {
                tracing::debug!(key = %key, "server-side copy refused, streaming instead: {e}")
            }
        }
    }
    stream_through(job, key, counters).await
}

/// Read the source object once to hash it (after a server-side copy).
async fn hash_source(
    job: &CopyJob,
    key: &Path,
    counters: &Counters,
) -> object_store::Result<String> {
    let got = job.source.get(key).await?;
    let size = got.meta.size;
    let mut hasher = ObjectHasher::new(job.algorithm);
    let mut stream = super::read::body_stream(got);
    let mut read = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        read += chunk.len() as u64;
        hasher.update(&chunk);
        Counters::add(&counters.transferred_bytes, chunk.len() as u64);
    }
    check_length(key, size, read)?;
    Ok(hasher.finish_hex())
}

/// Stream one object from source to target, hashing as the bytes pass.
async fn stream_through(job: &CopyJob, key: &Path, counters: &Counters) -> Result<String, Side> {
    let got = job.source.get(key).await.map_err(Side::Source)?;
    guard_local_target(job, key).await.map_err(Side::Target)?;
    let size = got.meta.size;
    let mut hasher = ObjectHasher::new(job.algorithm);
    let mut stream = super::read::body_stream(got);
    let mut read: u64 = 0;
    if size < job.multipart.threshold {
        let mut parts: Vec<Bytes> = Vec::new();
        while let Some(chunk) = stream.try_next().await.map_err(Side::Source)? {
            read += chunk.len() as u64;
            take(job, &chunk, &mut hasher, counters).await;
            parts.push(chunk);
        }
        check_length(key, size, read).map_err(Side::Source)?;
        job.target
            .put(key, PutPayload::from_iter(parts))
            .await
            .map_err(Side::Target)?;
    } else {
        let upload = job.target.put_multipart(key).await.map_err(Side::Target)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size(job, size) as usize);
        let streamed: Result<(), Side> = async {
            while let Some(chunk) = stream.try_next().await.map_err(Side::Source)? {
                read += chunk.len() as u64;
                take(job, &chunk, &mut hasher, counters).await;
                writer
                    .wait_for_capacity(job.multipart.concurrency.max(1))
                    .await
                    .map_err(Side::Target)?;
                writer.put(chunk);
            }
            check_length(key, size, read).map_err(Side::Source)
        }
        .await;
        match streamed {
            Ok(()) => {
                writer.finish().await.map_err(Side::Target)?;
            }
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        }
    }
    Ok(hasher.finish_hex())
}

/// At a local target (written here through object_store, which follows links), make
/// sure no directory on the object's way is a symbolic link, creating the missing ones
/// without following any (see `local::confine`). object_store then writes into that
/// tree; a link planted between this check and the write is the one case left open,
/// and the copy between two local directories, which writes relative to the directories
/// opened here, does not have it.
async fn guard_local_target(job: &CopyJob, key: &Path) -> object_store::Result<()> {
    let Some(fs) = &job.local.target else {
        return Ok(());
    };
    let root = super::local::root(fs)?;
    let path = fs.path_to_filesystem(key)?;
    let checked = tokio::task::spawn_blocking(move || {
        super::local::confine::parent(&root, &path, true).map(drop)
    })
    .await;
    let failed = |message: String| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: message.into(),
    };
    match checked {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(e),
        }),
        Err(e) => Err(failed(e.to_string())),
    }
}

async fn take(job: &CopyJob, chunk: &Bytes, hasher: &mut ObjectHasher, counters: &Counters) {
    if let Some(l) = &job.limiter {
        l.acquire(chunk.len() as u64).await;
    }
    hasher.update(chunk);
    Counters::add(&counters.transferred_bytes, chunk.len() as u64);
}

/// A body shorter or longer than the store announced is a broken transfer, not data.
fn check_length(key: &Path, expected: u64, read: u64) -> object_store::Result<()> {
    if expected == read {
        return Ok(());
    }
    Err(object_store::Error::Generic {
        store: "source",
        source: format!("{key}: read {read} bytes but the source announced {expected}").into(),
    })
}
