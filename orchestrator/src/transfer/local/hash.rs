//! Hash files of a local target directory, for verify.

use std::fs::File;
use std::io::ErrorKind;
use std::path::PathBuf;

use object_store::local::LocalFileSystem;
use plans::ChecksumAlgorithm;
use tokio_util::sync::CancellationToken;

use super::ReadError;
use super::lanes::{Lane, Opened, two_lanes};
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
    two_lanes(
        batch,
        counters,
        cancel,
        |item| open(target, item, &key, &algorithm),
        |item| (item, None),
    )
}

/// One target file being hashed.
struct HashLane<T> {
    item: T,
    path: PathBuf,
    file: File,
    hasher: ObjectHasher,
}

type Outcome<T> = (T, Option<object_store::Result<String>>);

fn open<T>(
    target: &LocalFileSystem,
    item: T,
    key: impl Fn(&T) -> &str,
    algorithm: impl Fn(&T) -> ChecksumAlgorithm,
) -> Opened<HashLane<T>> {
    let location = crate::transfer::key_path(key(&item));
    let path = match target.path_to_filesystem(&location) {
        Ok(p) => p,
        Err(e) => return Opened::Done((item, Some(Err(e)))),
    };
    match File::open(&path) {
        Ok(file) => Opened::Lane(HashLane {
            hasher: ObjectHasher::new(algorithm(&item)),
            item,
            path,
            file,
        }),
        Err(e) => {
            let e = io_error(&path, e);
            Opened::Done((item, Some(Err(e))))
        }
    }
}

impl<T> Lane for HashLane<T> {
    type Outcome = Outcome<T>;

    fn source(&mut self) -> &mut File {
        &mut self.file
    }

    fn hasher(&mut self) -> &mut ObjectHasher {
        &mut self.hasher
    }

    fn each(&mut self, _chunk: &[u8]) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(self, read: Result<u64, ReadError>) -> Outcome<T> {
        let result = match read {
            Ok(_) => Some(Ok(self.hasher.finish_hex())),
            Err(ReadError::Stopped) => None,
            Err(ReadError::Read(e) | ReadError::Each(e)) => Some(Err(io_error(&self.path, e))),
        };
        (self.item, result)
    }
}

/// A missing file is `NotFound` (verify reports the object missing); anything else is an
/// error naming the file.
fn io_error(path: &std::path::Path, e: std::io::Error) -> object_store::Error {
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
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;
    use crate::transfer::local::CHUNK;

    #[test]
    fn a_stopping_run_abandons_a_file_part_way() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), vec![5u8; CHUNK * 8]).unwrap();
        let fs = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let counters = Counters::default();
        let cancel = CancellationToken::new();
        let sha256 = |_: &&str| ChecksumAlgorithm::Sha256;
        let whole = hash_batch(&fs, vec!["k"], |k| k, sha256, &counters, &cancel);
        assert!(matches!(whole[0].1, Some(Ok(_))));
        let read = counters.snapshot().transferred_bytes;
        assert_eq!(read, (CHUNK * 8) as u64);
        // Started, then the run stops: one chunk, then no outcome.
        let stopped = two_lanes(
            vec!["k"],
            &counters,
            &cancel,
            |k| {
                let lane = open(&fs, k, |k: &&str| *k, sha256);
                cancel.cancel();
                lane
            },
            |k| (k, None),
        );
        assert!(stopped[0].1.is_none());
        assert_eq!(counters.snapshot().transferred_bytes - read, CHUNK as u64);
    }

    #[test]
    fn objects_hashed_two_at_a_time_match_hashing_each_alone() {
        let dir = tempfile::tempdir().unwrap();
        // Sizes around the chunk and block edges, so the two lanes end at different
        // steps and a new object joins a lane half-way through the other's.
        let sizes = [
            0,
            1,
            63,
            64,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 5,
            100,
            7 * CHUNK,
        ];
        let mut keys = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..*size).map(|j| (j * 31 + i * 7) as u8).collect();
            std::fs::write(dir.path().join(format!("k{i}")), &data).unwrap();
            keys.push((format!("k{i}"), data));
        }
        keys.insert(4, ("missing".to_owned(), Vec::new()));
        let fs = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        // Every third object BLAKE3: a pair of different algorithms hashes each alone.
        let algorithm = |item: &(String, Vec<u8>)| {
            if item.0.ends_with(['2', '5', '8']) {
                ChecksumAlgorithm::Blake3
            } else {
                ChecksumAlgorithm::Sha256
            }
        };
        let counters = Counters::default();
        let out = hash_batch(
            &fs,
            keys.clone(),
            |item| item.0.as_str(),
            algorithm,
            &counters,
            &CancellationToken::new(),
        );
        assert_eq!(out.len(), keys.len());
        for ((item, result), expected) in out.iter().zip(&keys) {
            assert_eq!(item.0, expected.0, "outcomes in input order");
            if item.0 == "missing" {
                assert!(matches!(
                    result,
                    Some(Err(object_store::Error::NotFound { .. }))
                ));
                continue;
            }
            let want = match algorithm(item) {
                ChecksumAlgorithm::Sha256 => hex::encode(sha2::Sha256::digest(&item.1)),
                ChecksumAlgorithm::Blake3 => blake3::hash(&item.1).to_hex().to_string(),
            };
            assert_eq!(
                result.as_ref().unwrap().as_ref().unwrap(),
                &want,
                "{}",
                item.0
            );
        }
        let total: usize = sizes.iter().sum();
        assert_eq!(counters.snapshot().transferred_bytes, total as u64);
    }
}
