//! A volume's manifest: one [`Entry`] per path (NDJSON, in walk order), and the
//! [`VolumeSummary`] that names its Merkle root.
//!
//! The root is the auditor's RFC 6962 tree ([`relocate_verifier::merkle`]) over leaves
//! `leaf_hash(path, size, entry digest)`, where the entry digest is the SHA-256 of
//! `kind NUL mode(octal) NUL uid NUL gid NUL mtime(sec.nsec) NUL link target NUL
//! content sha256`, as the auditor's [`relocate_verifier::volume`] defines and
//! computes it (this module only delegates, so `relocate verify` recomputes exactly
//! what the mover hashed). Everything a restored tree must reproduce is in it (bytes and
//! metadata), and nothing of the staging layout (segment, offset), so the root of a
//! tree recomputed from disk ([`super::scan`]) equals the staged root exactly when
//! the trees are equal.

use std::io::{BufRead, BufWriter, Write};

use relocate_verifier::merkle::{MerkleBuilder, leaf_hash};
use relocate_verifier::volume::{DigestFields, entry_digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::VolumeError;
use super::walk::walk_order;

/// What a path is: the auditor's definition, so the kinds the digest names are one.
pub use relocate_verifier::volume::EntryKind;

/// One path of the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Relative to the volume's root, `/`-separated; the root itself is `.`.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Bytes (files and hard links; 0 otherwise).
    pub size: u64,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Its nanoseconds.
    pub mtime_nsec: u32,
    /// A symlink's target, or the earlier path a hard link shares its inode with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// SHA-256 of a file's bytes, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A device node's device number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    /// The file has holes: stored in full, restored with holes where it reads zeros.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
    /// The segment holding a file's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<u32>,
    /// Where in the segment they start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Entry {
    /// The entry's digest (hex): its kind, metadata, link target and content hash,
    /// computed by the auditor's [`entry_digest`] (one implementation for both sides).
    pub fn digest(&self) -> String {
        entry_digest(&DigestFields {
            kind: self.kind,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
            mtime_nsec: self.mtime_nsec,
            target: self.target.as_deref(),
            sha256: self.sha256.as_deref(),
            rdev: self.rdev,
        })
    }

    /// Its Merkle leaf.
    pub fn leaf(&self) -> [u8; 32] {
        leaf_hash(&self.path, self.size, &self.digest())
    }
}

/// One staged segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentInfo {
    /// Its object name under the volume's prefix.
    pub name: String,
    /// Bytes.
    pub bytes: u64,
    /// Files whose bytes it holds.
    pub files: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// What a pack staged: `volume.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSummary {
    /// The claim the volume belongs to.
    pub claim: String,
    /// The manifest's Merkle root, hex.
    pub root: String,
    /// Entries in the manifest.
    pub entries: u64,
    /// Regular files.
    pub files: u64,
    /// Bytes of the regular files.
    pub bytes: u64,
    /// Directories (the root included).
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Hard links (names beyond each inode's first), preserved as links.
    pub hard_links: u64,
    /// Sparse files (stored in full, restored with holes), by path.
    pub sparse: Vec<String>,
    /// Sockets, by path: left out of the manifest (a socket is its listening
    /// process's, and is made anew when that process starts).
    pub not_moved: Vec<String>,
    /// The segments, in order.
    pub segments: Vec<SegmentInfo>,
    /// SHA-256 of `manifest.ndjson`, hex.
    pub manifest_sha256: String,
    /// Entries taken from an interrupted pack's checkpoint rather than read again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resumed_entries: u64,
    /// Files whose bytes (size and SHA-256) equal the last pack's: hashed again, not
    /// uploaded again (their entries keep the last pack's segments).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unchanged_files: u64,
    /// Their bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unchanged_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Writes the manifest as NDJSON to a local file while building its root.
#[derive(Debug)]
pub(crate) struct ManifestWriter {
    out: BufWriter<tempfile::NamedTempFile>,
    tree: MerkleBuilder,
    hasher: Sha256,
    pub(crate) entries: u64,
    /// Bytes written so far.
    pub(crate) bytes: u64,
}

impl ManifestWriter {
    pub(crate) fn new() -> Result<Self, VolumeError> {
        let file = tempfile::NamedTempFile::new().map_err(VolumeError::local(
            "creating the manifest's scratch file (TMPDIR)",
        ))?;
        Ok(Self {
            out: BufWriter::new(file),
            tree: MerkleBuilder::default(),
            hasher: Sha256::new(),
            entries: 0,
            bytes: 0,
        })
    }

    pub(crate) fn push(&mut self, entry: &Entry) -> Result<(), VolumeError> {
        let mut line = serde_json::to_vec(entry).map_err(|e| VolumeError::Local {
            what: format!("encoding the manifest entry of {}", entry.path),
            source: e.into(),
        })?;
        line.push(b'\n');
        self.hasher.update(&line);
        self.out
            .write_all(&line)
            .map_err(VolumeError::local("writing the manifest's scratch file"))?;
        self.tree.push(entry.leaf());
        self.entries += 1;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// Flush to the scratch file; its path and length.
    pub(crate) fn flushed(&mut self) -> Result<(std::path::PathBuf, u64), VolumeError> {
        self.out
            .flush()
            .map_err(VolumeError::local("writing the manifest's scratch file"))?;
        Ok((self.out.get_ref().path().to_path_buf(), self.bytes))
    }

    /// The file, its SHA-256 and the Merkle root.
    pub(crate) fn finish(self) -> Result<(tempfile::NamedTempFile, String, String), VolumeError> {
        let file = self.out.into_inner().map_err(|e| VolumeError::Local {
            what: "writing the manifest's scratch file".into(),
            source: e.into_error(),
        })?;
        Ok((
            file,
            hex::encode(self.hasher.finalize()),
            hex::encode(self.tree.root()),
        ))
    }
}

/// The entries of a manifest file, one at a time.
pub(crate) fn entries(
    file: &std::path::Path,
) -> Result<impl Iterator<Item = Result<Entry, VolumeError>> + use<>, VolumeError> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).map_err(VolumeError::local("reading the manifest"))?,
    );
    Ok(reader.lines().enumerate().filter_map(|(i, line)| {
        let line = match line {
            Ok(line) if line.is_empty() => return None,
            Ok(line) => line,
            Err(e) => return Some(Err(VolumeError::local("reading the manifest")(e))),
        };
        Some(
            serde_json::from_str(&line).map_err(|e| VolumeError::Corrupt {
                detail: format!("manifest line {}: {e}", i + 1),
            }),
        )
    }))
}

/// The Merkle root of a manifest file's entries, hex, having checked that they are in
/// walk order with no path twice (what a walk writes): a restore's prune merges the
/// claim against that order, so a manifest out of it is refused before anything is
/// written or removed.
pub(crate) fn root_of(file: &std::path::Path) -> Result<String, VolumeError> {
    let mut tree = MerkleBuilder::default();
    let mut previous: Option<String> = None;
    for (i, entry) in entries(file)?.enumerate() {
        let entry = entry?;
        if let Some(previous) = &previous
            && walk_order(previous, &entry.path) != std::cmp::Ordering::Less
        {
            return Err(VolumeError::Corrupt {
                detail: format!(
                    "manifest entry {}: {:?} does not come after {previous:?} in walk order",
                    i + 1,
                    entry.path
                ),
            });
        }
        tree.push(entry.leaf());
        previous = Some(entry.path);
    }
    Ok(hex::encode(tree.root()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_of(paths: &[&str]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("scratch");
        for path in paths {
            let entry = Entry {
                path: (*path).into(),
                kind: EntryKind::Dir,
                size: 0,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
                mtime_nsec: 0,
                target: None,
                sha256: None,
                rdev: None,
                sparse: false,
                segment: None,
                offset: None,
            };
            serde_json::to_writer(&mut file, &entry).expect("json");
            file.write_all(b"\n").expect("write");
        }
        file
    }

    /// A restore prunes the claim by merging it against the manifest's order: a
    /// manifest out of walk order (or naming a path twice) is refused when it is
    /// fetched, before a prune could remove a path it names later.
    #[test]
    fn a_manifest_out_of_walk_order_is_refused() {
        let good = manifest_of(&[".", "a", "a/b", "a-c", "b"]);
        root_of(good.path()).expect("walk order");
        for bad in [
            &[".", "a-c", "a", "a/b"][..],
            &[".", "b", "a"],
            &[".", "a", "a"],
            &["a", "."],
        ] {
            let file = manifest_of(bad);
            let err = root_of(file.path()).expect_err("out of order");
            assert!(
                matches!(&err, VolumeError::Corrupt { detail } if detail.contains("walk order")),
                "{bad:?}: {err:?}"
            );
        }
    }

    /// The mover's entries hash as the auditor's parse of their line does, to the
    /// pinned value of `relocate_verifier::volume`'s test: a change on either side
    /// fails here or there.
    #[test]
    fn entry_digest_is_the_auditors_and_pinned() {
        let entry = Entry {
            path: "data/a.txt".into(),
            kind: EntryKind::File,
            size: 5,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            mtime: 1_700_000_000,
            mtime_nsec: 123,
            target: None,
            sha256: Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into()),
            rdev: None,
            sparse: false,
            segment: Some(0),
            offset: Some(0),
        };
        assert_eq!(
            entry.digest(),
            "6e7e1c81b80a7111e10b9c0509092286945f9d56e8b83609a22cd72c96c527c0"
        );
        let line = serde_json::to_vec(&entry).expect("an entry serializes");
        let read = relocate_verifier::volume::VolumeEntry::parse(&line).expect("parses");
        assert_eq!(read.leaf(), entry.leaf());
        for kind in [
            EntryKind::Dir,
            EntryKind::Symlink,
            EntryKind::HardLink,
            EntryKind::Fifo,
            EntryKind::CharDevice,
            EntryKind::BlockDevice,
        ] {
            let other = Entry {
                kind,
                target: Some("x".into()),
                rdev: Some(7),
                ..entry.clone()
            };
            let line = serde_json::to_vec(&other).expect("an entry serializes");
            let read = relocate_verifier::volume::VolumeEntry::parse(&line).expect("parses");
            assert_eq!(read.leaf(), other.leaf(), "{kind:?}");
        }
    }
}
