//! Local directories: whole objects, and batches of small ones, per blocking call.
//!
//! Through object_store a local object costs three or more thread hand-offs (the open,
//! every read, the put), and on a million small files the hand-offs cost more than the
//! I/O (the profile of a 1M-object verify was mostly context switches). Here one
//! blocking call takes a batch of objects and, two at a time (`lanes`), opens each,
//! reads it in 32 KiB chunks, hashes it and, for a copy, writes a staging file it then
//! renames into place.
//!
//! Listing walks directories on several threads, one `stat` per file relative to its
//! directory (object_store's walk is one thread and three path lookups per file).
//!
//! Keys map to paths through object_store's own `LocalFileSystem::path_to_filesystem`
//! (same encoding, same refusals), and staging files follow its `name#N` scheme, so both
//! paths write the same tree and the crash sweep finds the same leftovers. Below a
//! target's root no symbolic link is ever followed (`confine`).

use std::path::PathBuf;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use plans::ChecksumAlgorithm;
use tokio_util::sync::CancellationToken;

use super::Counters;

pub(crate) mod confine;
mod copy;
mod hash;
mod lanes;
mod list;

pub(super) use copy::copy_batch;
pub(super) use hash::hash_batch;
pub use list::{Links, Walk, list};

/// Bytes per read. Small on purpose: the buffer is read into, hashed and written out,
/// and at 32 KiB it stays in the core's cache for all three; at 1 MiB every byte went
/// through memory three times and a copy of 8 × 256 MiB took 8–10 CPU-seconds instead
/// of 4.3–5.3 (`perf stat`, see the README's benchmark notes).
const CHUNK: usize = 32 << 10;

/// A batch holds at most this many objects…
const BATCH_OBJECTS: usize = 64;

/// …and at most this many bytes, or two objects (a batch is worked two objects at a
/// time, see `lanes`).
const BATCH_BYTES: u64 = 4 << 20;

/// Split objects (in listing order) into batches for one blocking call each.
///
/// Objects larger than [`BATCH_BYTES`] go in pairs when there are enough of them to keep
/// every core busy with pairs (their hashes then run side by side), and alone otherwise:
/// two huge objects on two threads hash faster (2 × 1.5 GB/s) than as a pair on one
/// (2.2–2.7 GB/s).
pub(super) fn batches<T>(items: Vec<T>, size: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    batches_for(items, size, cores())
}

/// The cores this process may use, asked once: on Linux the answer reads the cgroup's CPU
/// quota from /proc and /sys, and `batches` runs for every page of a listing.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

fn batches_for<T>(items: Vec<T>, size: impl Fn(&T) -> u64, cores: usize) -> Vec<Vec<T>> {
    let large = items.iter().filter(|i| size(i) > BATCH_BYTES).count();
    let pairs = large >= 2 * cores;
    let mut out = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = 0u64;
    for item in items {
        let n = size(&item);
        let full = current.len() >= BATCH_OBJECTS
            || (bytes + n > BATCH_BYTES && (current.len() >= 2 || !pairs));
        if !current.is_empty() && full {
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

/// The ends of a copy that are local directories (either, both or neither).
#[derive(Debug, Clone, Default)]
pub struct LocalSides {
    /// The source, when it is a local directory.
    pub source: Option<Arc<LocalFileSystem>>,
    /// The target, when it is a local directory.
    pub target: Option<Arc<LocalFileSystem>>,
}

impl LocalSides {
    /// Both ends, when both are local: the copy then works on files directly.
    pub fn both(&self) -> Option<LocalEnds> {
        Some(LocalEnds {
            source: self.source.clone()?,
            target: self.target.clone()?,
        })
    }
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

/// Where reading an object in a lane ([`lanes::two_lanes`]) stopped short.
pub(super) enum ReadError {
    /// Reading the file failed.
    Read(std::io::Error),
    /// Handing a chunk on failed (for a copy: writing the staging file).
    Each(std::io::Error),
    /// The run is stopping: the file was abandoned part-way.
    Stopped,
}

/// Whether a file name is one object_store's local store keeps for its staging files
/// (digits after its first `#`, its own rule): it neither lists, reads nor writes such
/// a name, so relocate's own listing shows them and a copy refuses them by name.
pub fn is_staging_name(name: &str) -> bool {
    name.split_once('#').is_some_and(|(_, n)| all_digits(n))
}

/// Whether `file` is a staging file (`object#N`) written for `object` in the same
/// directory: the copy writes one and renames it over the object, so only a killed run
/// leaves one behind.
pub fn is_staging_file_of(file: &str, object: &str) -> bool {
    file.strip_prefix(object)
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(all_digits)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Every file of a local store, a page at a time, links treated as `links` says (see
/// [`list`]).
pub fn list_store(fs: &LocalFileSystem, links: Links) -> Walk {
    use futures::StreamExt;
    match root(fs) {
        Ok(root) => list(root, links),
        Err(e) => Walk {
            pages: futures::stream::iter([vec![Err(e)]]).boxed(),
            skipped_links: Arc::default(),
        },
    }
}

/// The directory a local store is rooted at.
pub fn root(fs: &LocalFileSystem) -> object_store::Result<PathBuf> {
    let probe = fs.path_to_filesystem(&Path::from("probe"))?;
    Ok(probe
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or(probe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_follow_object_stores_rule() {
        assert!(is_staging_name("k#12") && !is_staging_name("k#") && !is_staging_name("k#1a"));
        assert!(
            !is_staging_name("a#b#1"),
            "object_store looks after the first #"
        );
        assert!(is_staging_file_of("a#b#1", "a#b") && !is_staging_file_of("a#b#1", "a"));
    }

    #[test]
    fn batches_bound_objects_and_bytes_and_keep_order() {
        let sizes: Vec<u64> = vec![1; 130];
        let b = batches_for(sizes, |s| *s, 2);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [64, 64, 2]);
        let sizes = vec![1u64, 10 << 20, 1, 2 << 20, 3 << 20];
        let b = batches_for(sizes, |s| *s, 2);
        assert_eq!(
            b,
            vec![vec![1], vec![10 << 20], vec![1, 2 << 20], vec![3 << 20]]
        );
        // Enough large objects to give each of 2 cores a pair: two per batch.
        let sizes = vec![256u64 << 20; 5];
        let b = batches_for(sizes, |s| *s, 2);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        // Too few: alone, one per core.
        let sizes = vec![256u64 << 20; 3];
        let b = batches_for(sizes, |s| *s, 2);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
    }
}
