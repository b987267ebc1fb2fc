//! Local directories: whole objects, and batches of small ones, per blocking call.
//!
//! Through object_store a local object costs three or more thread hand-offs (the open,
//! every read, the put), and on a million small files the hand-offs cost more than the
//! I/O (the profile of a 1M-object verify was mostly context switches). Here one
//! blocking call takes a batch of objects and, for each, opens it, reads it in 1 MiB
//! chunks into one reused buffer, hashes it and, for a copy, writes a staging file it
//! then renames into place.
//!
//! Keys map to paths through object_store's own `LocalFileSystem::path_to_filesystem`
//! (same encoding, same refusals), and staging files follow its `name#N` scheme, so both
//! paths write the same tree and the crash sweep finds the same leftovers.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::ObjectMeta;
use object_store::local::LocalFileSystem;
use plans::ChecksumAlgorithm;
use tokio_util::sync::CancellationToken;

use super::Counters;
use super::copy::CopyFailure;
use super::hash::ObjectHasher;

/// Bytes per read.
const CHUNK: usize = super::read::LOCAL_CHUNK;

/// A batch holds at most this many objects…
const BATCH_OBJECTS: usize = 64;

/// …and at most this many bytes (a larger object goes alone).
const BATCH_BYTES: u64 = 4 << 20;

/// Split objects (in listing order) into batches for one blocking call each.
pub(super) fn batches<T>(items: Vec<T>, size: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = 0u64;
    for item in items {
        let n = size(&item);
        if !current.is_empty() && (current.len() >= BATCH_OBJECTS || bytes + n > BATCH_BYTES) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += n;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Both ends of a copy as local directories.
#[derive(Debug, Clone)]
pub struct LocalEnds {
    /// The source directory.
    pub source: Arc<LocalFileSystem>,
    /// The target directory.
    pub target: Arc<LocalFileSystem>,
}

/// Names for messages, the hash and the stop signal of one batch.
#[derive(Debug, Clone)]
pub(super) struct BatchContext {
    pub source_name: String,
    pub target_name: String,
    pub algorithm: ChecksumAlgorithm,
    pub counters: Arc<Counters>,
    pub cancel: CancellationToken,
}

/// Copy a batch; `None` for the objects not started because the run is stopping (their
/// intents stay, so the rerun copies them).
pub(super) fn copy_batch(
    ends: &LocalEnds,
    batch: Vec<ObjectMeta>,
    cx: &BatchContext,
) -> Vec<(ObjectMeta, Option<Result<String, CopyFailure>>)> {
    let mut buf = vec![0u8; CHUNK];
    batch
        .into_iter()
        .map(|meta| {
            if cx.cancel.is_cancelled() {
                return (meta, None);
            }
            let result = copy_object(ends, &meta, cx, &mut buf);
            (meta, Some(result))
        })
        .collect()
}

fn copy_object(
    ends: &LocalEnds,
    meta: &ObjectMeta,
    cx: &BatchContext,
    buf: &mut [u8],
) -> Result<String, CopyFailure> {
    let reading = |e: &dyn std::fmt::Display| {
        CopyFailure::Failed(format!("reading from {}: {e}", cx.source_name))
    };
    let writing =
        |e: &dyn std::fmt::Display| CopyFailure::Failed(format!("writing to {}: {e}", cx.target_name));
    let from = ends
        .source
        .path_to_filesystem(&meta.location)
        .map_err(|e| reading(&e))?;
    let to = ends
        .target
        .path_to_filesystem(&meta.location)
        .map_err(|e| writing(&e))?;
    let mut src = match File::open(&from) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(CopyFailure::Vanished),
        Err(e) => return Err(reading(&format!("{}: {e}", from.display()))),
    };
    let (mut dst, staging) = staging_file(&to).map_err(|e| writing(&e))?;
    let mut hasher = ObjectHasher::new(cx.algorithm);
    let mut read = 0u64;
    let streamed = loop {
        let n = match src.read(buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break Err(reading(&format!("{}: {e}", from.display()))),
        };
        hasher.update(&buf[..n]);
        if let Err(e) = dst.write_all(&buf[..n]) {
            break Err(writing(&format!("{}: {e}", to.display())));
        }
        read += n as u64;
        Counters::add(&cx.counters.transferred_bytes, n as u64);
    };
    let published = streamed
        .and_then(|()| {
            if read == meta.size {
                Ok(())
            } else {
                Err(reading(&format!(
                    "{}: read {read} bytes but the source announced {}",
                    meta.location, meta.size
                )))
            }
        })
        .and_then(|()| {
            drop(dst);
            std::fs::rename(&staging, &to)
                .map_err(|e| writing(&format!("{}: {e}", to.display())))
        });
    match published {
        Ok(()) => Ok(hasher.finish_hex()),
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            Err(e)
        }
    }
}

/// A new staging file beside `dest`, named like object_store's (`dest#N`), creating the
/// parent directories when missing.
fn staging_file(dest: &FsPath) -> std::io::Result<(File, PathBuf)> {
    let mut n = 1u32;
    let mut created_parents = false;
    loop {
        let mut name = dest.as_os_str().to_owned();
        name.push(format!("#{n}"));
        let path = PathBuf::from(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && n < 1_000 => n += 1,
            Err(e) if e.kind() == ErrorKind::NotFound && !created_parents => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", parent.display()))
                    })?;
                }
                created_parents = true;
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ));
            }
        }
    }
}

/// Hash a batch of target files: `(key, result)` per key, in order; `None` for the keys
/// not read because the run is stopping.
pub(super) fn hash_batch<T>(
    target: &LocalFileSystem,
    batch: Vec<T>,
    key: impl Fn(&T) -> &str,
    algorithm: impl Fn(&T) -> ChecksumAlgorithm,
    counters: &Counters,
    cancel: &CancellationToken,
) -> Vec<(T, Option<object_store::Result<String>>)> {
    let mut buf = vec![0u8; CHUNK];
    batch
        .into_iter()
        .map(|item| {
            if cancel.is_cancelled() {
                return (item, None);
            }
            let result = hash_file(target, key(&item), algorithm(&item), counters, &mut buf);
            (item, Some(result))
        })
        .collect()
}

fn hash_file(
    target: &LocalFileSystem,
    key: &str,
    algorithm: ChecksumAlgorithm,
    counters: &Counters,
    buf: &mut [u8],
) -> object_store::Result<String> {
    let location = super::key_path(key);
    let path = target.path_to_filesystem(&location)?;
    let io = |e: std::io::Error| {
        if e.kind() == ErrorKind::NotFound {
            object_store::Error::NotFound {
                path: path.display().to_string(),
                source: Box::new(e),
            }
        } else {
            object_store::Error::Generic {
                store: "LocalFileSystem",
                source: format!("{}: {e}", path.display()).into(),
            }
        }
    };
    let mut file = File::open(&path).map_err(io)?;
    let mut hasher = ObjectHasher::new(algorithm);
    loop {
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                Counters::add(&counters.transferred_bytes, n as u64);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(hasher.finish_hex())
}

#[cfg(test)]
mod tests {
    use object_store::path::Path;

    use super::*;

    #[test]
    fn batches_bound_objects_and_bytes_and_keep_order() {
        let sizes: Vec<u64> = vec![1; 130];
        let b = batches(sizes, |s| *s);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            [64, 64, 2]
        );
        let sizes = vec![1u64, 10 << 20, 1, 2 << 20, 3 << 20];
        let b = batches(sizes, |s| *s);
        assert_eq!(
            b,
            vec![vec![1], vec![10 << 20], vec![1, 2 << 20], vec![3 << 20]]
        );
    }

    fn ctx(counters: Arc<Counters>) -> BatchContext {
        BatchContext {
            source_name: "src".into(),
            target_name: "dst".into(),
            algorithm: ChecksumAlgorithm::Sha256,
            counters,
            cancel: CancellationToken::new(),
        }
    }

    fn meta(key: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(key),
            last_modified: chrono::Utc::now(),
            size,
            e_tag: None,
            version: None,
        }
    }

    #[test]
    fn copies_hash_and_publish_without_staging_leftovers() {
        let (s, t) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir_all(s.path().join("d/e")).unwrap();
        let big: Vec<u8> = (0..(CHUNK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(s.path().join("d/e/big"), &big).unwrap();
        std::fs::write(s.path().join("empty"), b"").unwrap();
        let ends = LocalEnds {
            source: Arc::new(LocalFileSystem::new_with_prefix(s.path()).unwrap()),
            target: Arc::new(LocalFileSystem::new_with_prefix(t.path()).unwrap()),
        };
        let counters = Arc::new(Counters::default());
        let out = copy_batch(
            &ends,
            vec![
                meta("d/e/big", big.len() as u64),
                meta("empty", 0),
                meta("gone", 3),
            ],
            &ctx(counters.clone()),
        );
        let mut expected = ObjectHasher::new(ChecksumAlgorithm::Sha256);
        expected.update(&big);
        let hex = expected.finish_hex();
        assert_eq!(out[0].1.as_ref().unwrap().as_ref().unwrap(), &hex);
        assert!(matches!(out[2].1, Some(Err(CopyFailure::Vanished))));
        assert_eq!(std::fs::read(t.path().join("d/e/big")).unwrap(), big);
        assert_eq!(std::fs::read(t.path().join("empty")).unwrap(), b"");
        let names: Vec<_> = std::fs::read_dir(t.path().join("d/e"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["big"], "no staging file left");
        let hashed = hash_batch(
            &ends.target,
            vec!["d/e/big", "missing"],
            |k| k,
            |_| ChecksumAlgorithm::Sha256,
            &counters,
            &CancellationToken::new(),
        );
        assert_eq!(hashed[0].1.as_ref().unwrap().as_ref().unwrap(), &hex);
        assert!(matches!(
            hashed[1].1,
            Some(Err(object_store::Error::NotFound { .. }))
        ));
    }

    #[test]
    fn a_source_shorter_than_listed_is_refused_and_leaves_nothing() {
        let (s, t) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(s.path().join("k"), b"abc").unwrap();
        let ends = LocalEnds {
            source: Arc::new(LocalFileSystem::new_with_prefix(s.path()).unwrap()),
            target: Arc::new(LocalFileSystem::new_with_prefix(t.path()).unwrap()),
        };
        let out = copy_batch(
            &ends,
            vec![meta("k", 10)],
            &ctx(Arc::new(Counters::default())),
        );
        match &out[0].1 {
            Some(Err(CopyFailure::Failed(m))) => {
                assert!(m.contains("read 3 bytes but the source announced 10"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_stopping_run_starts_no_more_objects() {
        let (s, t) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(s.path().join("k"), b"abc").unwrap();
        let ends = LocalEnds {
            source: Arc::new(LocalFileSystem::new_with_prefix(s.path()).unwrap()),
            target: Arc::new(LocalFileSystem::new_with_prefix(t.path()).unwrap()),
        };
        let cx = ctx(Arc::new(Counters::default()));
        cx.cancel.cancel();
        let out = copy_batch(&ends, vec![meta("k", 3)], &cx);
        assert!(out[0].1.is_none());
        assert!(!t.path().join("k").exists());
    }
}
