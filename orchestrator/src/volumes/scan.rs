//! Scan: a tree's manifest root from disk alone. A `verify` of a restored volume
//! compares it with the staged root; equal roots mean every path, byte and piece of
//! metadata the manifest covers is equal.

use std::io::Read;
use std::path::Path;

use relocate_verifier::merkle::MerkleBuilder;
use sha2::{Digest, Sha256};

use super::progress::{Progress, Reporter};
use super::walk::Walk;
use super::{EntryKind, VolumeError};

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    /// The manifest root, hex.
    pub root: String,
    /// Entries.
    pub entries: u64,
    /// Bytes of regular files.
    pub bytes: u64,
}

/// Walk and hash the tree under `root` (blocking: run it off the async threads).
pub fn scan(root: &Path) -> Result<ScanSummary, VolumeError> {
    let mut tree = MerkleBuilder::default();
    let (mut entries, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; 256 << 10];
    let mut told = Reporter::new(Progress::default());
    for walked in Walk::new(root) {
        let mut walked = walked?;
        if walked.entry.kind == EntryKind::File {
            let (size, sha256) = hash_file(&walked.full, &walked.entry.path, &mut buf)?;
            walked.entry.size = size;
            walked.entry.sha256 = Some(sha256);
            bytes += size;
            told.file(size);
        }
        tree.push(walked.entry.leaf());
        entries += 1;
    }
    told.finish();
    Ok(ScanSummary {
        root: hex::encode(tree.root()),
        entries,
        bytes,
    })
}

/// A file's size and SHA-256.
pub(crate) fn hash_file(
    full: &Path,
    rel: &str,
    buf: &mut [u8],
) -> Result<(u64, String), VolumeError> {
    stream_file(full, rel, buf, |_| Ok(()))
}

/// Read a file through `buf`, hashing it and handing each chunk to `each`; its size
/// and SHA-256. A file that cannot be read fails naming it (`rel`).
pub(crate) fn stream_file(
    full: &Path,
    rel: &str,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]) -> Result<(), VolumeError>,
) -> Result<(u64, String), VolumeError> {
    let unreadable = |source| VolumeError::Unreadable {
        path: rel.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(full).map_err(unreadable)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(e)),
        };
        hasher.update(&buf[..n]);
        each(&buf[..n])?;
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}
