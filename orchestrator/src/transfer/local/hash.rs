//! Hash files of a local target directory, for verify.

use std::fs::File;
use std::io::ErrorKind;

use object_store::local::LocalFileSystem;
use plans::ChecksumAlgorithm;
use tokio_util::sync::CancellationToken;

use super::{CHUNK, ReadError, read_hashing};
use crate::transfer::Counters;
use crate::transfer::hash::ObjectHasher;

/// Hash a batch of target files: `(key, result)` per key, in order; `None` for the keys
/// not read (or not read to the end) because the run is stopping.
pub(in crate::transfer) fn hash_batch<T>(
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
            let result = hash_file(
                target,
                key(&item),
                algorithm(&item),
                counters,
                cancel,
                &mut buf,
            );
            (item, result)
        })
        .collect()
}

fn hash_file(
    target: &LocalFileSystem,
    key: &str,
    algorithm: ChecksumAlgorithm,
    counters: &Counters,
    cancel: &CancellationToken,
    buf: &mut [u8],
) -> Option<object_store::Result<String>> {
    let location = crate::transfer::key_path(key);
    let path = match target.path_to_filesystem(&location) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
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
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => return Some(Err(io(e))),
    };
    let mut hasher = ObjectHasher::new(algorithm);
    match read_hashing(&mut file, &mut hasher, buf, counters, cancel, |_| Ok(())) {
        Ok(_) => {}
        Err(ReadError::Stopped) => return None,
        Err(ReadError::Read(e) | ReadError::Each(e)) => return Some(Err(io(e))),
    }
    Some(Ok(hasher.finish_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopping_run_abandons_a_file_part_way() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), vec![5u8; CHUNK * 8]).unwrap();
        let fs = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let counters = Counters::default();
        let cancel = CancellationToken::new();
        let mut buf = vec![0u8; CHUNK];
        let mut hash = |cancel: &CancellationToken| {
            hash_file(
                &fs,
                "k",
                ChecksumAlgorithm::Sha256,
                &counters,
                cancel,
                &mut buf,
            )
        };
        let whole = hash(&cancel);
        assert!(matches!(whole, Some(Ok(_))));
        let read = counters.snapshot().transferred_bytes;
        assert_eq!(read, (CHUNK * 8) as u64);
        cancel.cancel();
        // Started while the run stops: one chunk, then no outcome.
        let stopped = hash(&cancel);
        assert!(stopped.is_none());
        assert_eq!(counters.snapshot().transferred_bytes - read, CHUNK as u64);
    }
}
