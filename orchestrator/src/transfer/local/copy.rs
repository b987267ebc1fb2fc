//! Copy between two local directories: read, hash and write a staging file, make it
//! durable, then rename it into place.
//!
//! The target side goes through [`super::confine`]: every directory below the target's
//! root is opened without following a link, so a link planted in the target cannot
//! send the bytes elsewhere. A staging file is `fsync`ed before its rename, and each
//! directory a batch renamed into is `fsync`ed once before the batch reports its
//! objects copied, so a `copied` row never stands for bytes a power loss can take back.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;

use object_store::ObjectMeta;

use super::confine::{self, Parent};
use super::lanes::{Lane, Opened, two_lanes};
use super::{BatchContext, LocalEnds, ReadError};
use crate::transfer::failure::CopyFailure;
use crate::transfer::hash::ObjectHasher;

type Outcome = (ObjectMeta, Option<Result<String, CopyFailure>>);

/// Directories renamed into by a batch, to `fsync` once each at its end.
type Renamed = RefCell<BTreeMap<PathBuf, (Parent, Vec<usize>)>>;

/// Copy a batch; `None` for the objects not copied because the run is stopping (their
/// intents stay, so the rerun copies them).
pub(in crate::transfer) fn copy_batch(
    ends: &LocalEnds,
    batch: Vec<ObjectMeta>,
    cx: &BatchContext,
) -> Vec<Outcome> {
    let roots = super::root(&ends.target);
    let renamed: Renamed = RefCell::new(BTreeMap::new());
    let mut index = 0usize;
    let mut outcomes = two_lanes(
        batch,
        &cx.counters,
        &cx.cancel,
        |meta| {
            index += 1;
            match &roots {
                Ok(root) => open(ends, root, meta, cx, &renamed, index - 1),
                Err(e) => Opened::Done((
                    meta,
                    Some(Err(CopyFailure::write(
                        &cx.target_name,
                        std::io::Error::other(e.to_string()),
                    ))),
                )),
            }
        },
        |meta| (meta, None),
    );
    // One `fsync` per directory: until it returns, the renames may not survive a power
    // loss, so an object counts as copied only after its directory's.
    for (_, (parent, objects)) in renamed.into_inner() {
        if let Err(e) = parent.sync() {
            for i in objects {
                let failure = CopyFailure::write(
                    &cx.target_name,
                    std::io::Error::new(e.kind(), e.to_string()),
                );
                outcomes[i].1 = Some(Err(failure));
            }
        }
    }
    outcomes
}

/// One object being copied: read from `from`, written to `staging` in `parent`, then
/// renamed to `name` there.
struct CopyLane<'a> {
    meta: ObjectMeta,
    index: usize,
    from: PathBuf,
    src: File,
    dst: File,
    parent: Parent,
    name: OsString,
    staging: OsString,
    hasher: ObjectHasher,
    cx: &'a BatchContext,
    renamed: &'a Renamed,
}

fn reading(cx: &BatchContext, e: std::io::Error) -> CopyFailure {
    CopyFailure::read(&cx.source_name, e)
}

fn writing(cx: &BatchContext, e: std::io::Error) -> CopyFailure {
    CopyFailure::write(&cx.target_name, e)
}

fn at(path: &std::path::Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Open the source and a staging file for one object, or say why it cannot be copied.
fn open<'a>(
    ends: &LocalEnds,
    root: &std::path::Path,
    meta: ObjectMeta,
    cx: &'a BatchContext,
    renamed: &'a Renamed,
    index: usize,
) -> Opened<CopyLane<'a>> {
    let paths = ends
        .source
        .path_to_filesystem(&meta.location)
        .map_err(|e| CopyFailure::read(&cx.source_name, e))
        .and_then(|from| {
            let to = ends
                .target
                .path_to_filesystem(&meta.location)
                .map_err(|e| CopyFailure::write(&cx.target_name, e))?;
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
        Err(e) => return Opened::Done((meta, Some(Err(reading(cx, at(&from, e)))))),
    };
    let staged = confine::parent(root, &to, true).and_then(|(parent, name)| {
        let (dst, staging) = staging_file(&parent, &name)?;
        Ok((parent, name, dst, staging))
    });
    let (parent, name, dst, staging) = match staged {
        Ok(s) => s,
        Err(e) => return Opened::Done((meta, Some(Err(writing(cx, e))))),
    };
    Opened::Lane(CopyLane {
        hasher: ObjectHasher::new(cx.algorithm),
        meta,
        index,
        from,
        src,
        dst,
        parent,
        name,
        staging,
        cx,
        renamed,
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
            index,
            from,
            dst,
            parent,
            name,
            staging,
            hasher,
            cx,
            renamed,
            ..
        } = self;
        let to = parent.path.join(&name);
        let published = match read {
            Err(ReadError::Stopped) => None,
            Err(ReadError::Read(e)) => Some(Err(reading(cx, at(&from, e)))),
            Err(ReadError::Each(e)) => Some(Err(writing(cx, at(&to, e)))),
            Ok(read) if read != meta.size => Some(Err(CopyFailure::Short {
                store: cx.source_name.clone(),
                key: meta.location.to_string(),
                read,
                announced: meta.size,
            })),
            // Durable bytes first: a rename can reach the disk before the data does.
            Ok(_) => Some(
                dst.sync_all()
                    .map_err(|e| at(&to, e))
                    .and_then(|()| parent.rename(&staging, &name))
                    .map_err(|e| writing(cx, e)),
            ),
        };
        drop(dst);
        if !matches!(published, Some(Ok(()))) {
            let _ = parent.remove(&staging);
        } else {
            let mut renamed = renamed.borrow_mut();
            let entry = renamed
                .entry(parent.path.clone())
                .or_insert_with(|| (parent, Vec::new()));
            entry.1.push(index);
        }
        let outcome = published.map(|r| r.map(|()| hasher.finish_hex()));
        (meta, outcome)
    }
}

/// A new staging file beside the object, named like object_store's (`name#N`), so the
/// crash sweep finds it.
fn staging_file(parent: &Parent, name: &OsString) -> std::io::Result<(File, OsString)> {
    let mut n = 1u32;
    loop {
        let mut staging = name.clone();
        staging.push(format!("#{n}"));
        match parent.create_new(&staging) {
            Ok(f) => return Ok((f, staging)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && n < 1_000 => n += 1,
            Err(e) => return Err(at(&parent.path.join(&staging), e)),
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
        let (renamed, root) = (
            Renamed::default(),
            super::super::root(&ends.target).unwrap(),
        );
        // Started, then the run stops: one chunk, then no outcome.
        let out = two_lanes(
            vec![meta("k", (CHUNK * 8) as u64)],
            &cx.counters,
            &cx.cancel,
            |m| {
                let lane = open(&ends, &root, m, &cx, &renamed, 0);
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
            Some(Err(e @ CopyFailure::Short { read: 3, .. })) => {
                assert!(
                    e.to_string()
                        .contains("read 3 bytes but the source announced 10"),
                    "{e}"
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

    /// Issue 13, finding 13: a failure was a `String`, so callers parsed text. It is a
    /// typed error now, naming the side, with the I/O error as its source.
    #[test]
    fn finding_13_copy_failures_keep_their_cause() {
        let (s, t) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir_all(s.path().join("d")).unwrap();
        std::fs::write(s.path().join("d/k"), b"abc").unwrap();
        // A file where the target needs a directory.
        std::fs::write(t.path().join("d"), b"in the way").unwrap();
        let ends = LocalEnds {
            source: Arc::new(LocalFileSystem::new_with_prefix(s.path()).unwrap()),
            target: Arc::new(LocalFileSystem::new_with_prefix(t.path()).unwrap()),
        };
        let out = copy_batch(
            &ends,
            vec![meta("d/k", 3)],
            &ctx(Arc::new(Counters::default())),
        );
        let Some(Err(failure)) = &out[0].1 else {
            panic!("{:?}", out[0].1)
        };
        assert!(
            matches!(failure, CopyFailure::Write { store, .. } if store == "dst"),
            "{failure:?}"
        );
        let cause = std::error::Error::source(failure).expect("a cause");
        let io = cause
            .downcast_ref::<crate::transfer::failure::Cause>()
            .and_then(|c| match c {
                crate::transfer::failure::Cause::File(e) => Some(e),
                _ => None,
            })
            .expect("an I/O cause");
        assert_eq!(io.kind(), std::io::ErrorKind::NotADirectory, "{io}");
    }
}
