//! Copy between two local directories: read, hash and write a staging file, then rename
//! it into place.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path as FsPath, PathBuf};

use object_store::ObjectMeta;

use super::lanes::{Lane, Opened, two_lanes};
use super::{BatchContext, LocalEnds, ReadError};
use crate::transfer::copy::CopyFailure;
use crate::transfer::hash::ObjectHasher;

/// Copy a batch; `None` for the objects not copied because the run is stopping (their
/// intents stay, so the rerun copies them).
pub(in crate::transfer) fn copy_batch(
    ends: &LocalEnds,
    batch: Vec<ObjectMeta>,
    cx: &BatchContext,
) -> Vec<(ObjectMeta, Option<Result<String, CopyFailure>>)> {
    two_lanes(
        batch,
        &cx.counters,
        &cx.cancel,
        |meta| open(ends, meta, cx),
        |meta| (meta, None),
    )
}

/// One object being copied: read from `from`, written to `staging`, renamed to `to`.
struct CopyLane<'a> {
    meta: ObjectMeta,
    from: PathBuf,
    to: PathBuf,
    src: File,
    dst: File,
    staging: PathBuf,
    hasher: ObjectHasher,
    cx: &'a BatchContext,
}

type Outcome = (ObjectMeta, Option<Result<String, CopyFailure>>);

fn reading(cx: &BatchContext, e: &dyn std::fmt::Display) -> CopyFailure {
    CopyFailure::Failed(format!("reading from {}: {e}", cx.source_name))
}

fn writing(cx: &BatchContext, e: &dyn std::fmt::Display) -> CopyFailure {
    CopyFailure::Failed(format!("writing to {}: {e}", cx.target_name))
}

/// Open the source and a staging file for one object, or say why it cannot be copied.
fn open<'a>(ends: &LocalEnds, meta: ObjectMeta, cx: &'a BatchContext) -> Opened<CopyLane<'a>> {
    let paths = ends
        .source
        .path_to_filesystem(&meta.location)
        .map_err(|e| reading(cx, &e))
        .and_then(|from| {
            let to = ends
                .target
                .path_to_filesystem(&meta.location)
                .map_err(|e| writing(cx, &e))?;
            Ok((from, to))
        });
    let (from, to) = match paths {
        Ok(p) => p,
        Err(e) => return Opened::Done((meta, Some(Err(e)))),
    };
    let src = match File::open(&from) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Opened::Done((meta, Some(Err(CopyFailure::Vanished))));
        }
        Err(e) => {
            let failure = reading(cx, &format!("{}: {e}", from.display()));
            return Opened::Done((meta, Some(Err(failure))));
        }
    };
    let (dst, staging) = match staging_file(&to) {
        Ok(f) => f,
        Err(e) => return Opened::Done((meta, Some(Err(writing(cx, &e))))),
    };
    Opened::Lane(CopyLane {
        hasher: ObjectHasher::new(cx.algorithm),
        meta,
        from,
        to,
        src,
        dst,
        staging,
        cx,
    })
}

impl Lane for CopyLane<'_> {
    type Outcome = Outcome;

    fn source(&mut self) -> &mut File {
        &mut self.src
    }

    fn hasher(&mut self) -> &mut ObjectHasher {
        &mut self.hasher
    }

    fn each(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.dst.write_all(chunk)
    }

    /// Publish the staging file when the whole object was read; remove it otherwise.
    /// `None` when the run stopped part-way (nothing is left behind).
    fn finish(self, read: Result<u64, ReadError>) -> Outcome {
        let CopyLane {
            meta,
            from,
            to,
            dst,
            staging,
            hasher,
            cx,
            ..
        } = self;
        drop(dst);
        let published = match read {
            Err(ReadError::Stopped) => None,
            Err(ReadError::Read(e)) => Some(Err(reading(cx, &format!("{}: {e}", from.display())))),
            Err(ReadError::Each(e)) => Some(Err(writing(cx, &format!("{}: {e}", to.display())))),
            Ok(read) if read != meta.size => Some(Err(reading(
                cx,
                &format!(
                    "{}: read {read} bytes but the source announced {}",
                    meta.location, meta.size
                ),
            ))),
            Ok(_) => Some(
                std::fs::rename(&staging, &to)
                    .map_err(|e| writing(cx, &format!("{}: {e}", to.display()))),
            ),
        };
        if !matches!(published, Some(Ok(()))) {
            let _ = std::fs::remove_file(&staging);
        }
        let outcome = published.map(|r| r.map(|()| hasher.finish_hex()));
        (meta, outcome)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::local::LocalFileSystem;
    use object_store::path::Path;
    use plans::ChecksumAlgorithm;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::transfer::Counters;
    use crate::transfer::local::CHUNK;
    use crate::transfer::local::hash_batch;

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
    fn a_run_stopping_mid_object_leaves_no_file_and_no_outcome() {
        let (s, t) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(s.path().join("k"), vec![3u8; CHUNK * 8]).unwrap();
        let ends = LocalEnds {
            source: Arc::new(LocalFileSystem::new_with_prefix(s.path()).unwrap()),
            target: Arc::new(LocalFileSystem::new_with_prefix(t.path()).unwrap()),
        };
        let cx = ctx(Arc::new(Counters::default()));
        // Started, then the run stops: one chunk, then no outcome.
        let out = two_lanes(
            vec![meta("k", (CHUNK * 8) as u64)],
            &cx.counters,
            &cx.cancel,
            |m| {
                let lane = open(&ends, m, &cx);
                cx.cancel.cancel();
                lane
            },
            |m| (m, None),
        );
        assert_eq!(cx.counters.snapshot().transferred_bytes, CHUNK as u64);
        let out = out.into_iter().next().unwrap().1;
        assert!(out.is_none());
        assert_eq!(
            std::fs::read_dir(t.path()).unwrap().count(),
            0,
            "no staging file left"
        );
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
                assert!(
                    m.contains("read 3 bytes but the source announced 10"),
                    "{m}"
                )
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
