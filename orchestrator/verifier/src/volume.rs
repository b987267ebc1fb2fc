//! A volume's manifest as the auditor reads it: `manifest.ndjson`, one JSON entry a
//! line in walk order, and the Merkle root over it.
//!
//! This is the one definition of what an entry's digest covers: the operator's volume
//! mover (`orchestrator::volumes::manifest`) builds the roots it stages and signs with
//! [`entry_digest`] and [`EntryKind`] from here, so what the auditor recomputes is by
//! construction what the mover hashed.
//!
//! The leaf of an entry is [`crate::merkle::leaf_hash`]`(path, size, digest)`, the
//! digest being the SHA-256 (hex) of `kind NUL mode(octal) NUL uid NUL gid NUL
//! mtime(sec.nsec) NUL link target NUL content sha256`, then `NUL rdev` for a device
//! node. Everything a restored tree must reproduce is in it, and nothing of the
//! staging layout (segment, offset).
//!
//! The walk order is depth-first with each directory's names in byte order: the root
//! `.` first, then paths compared component by component ([`walk_order`]), which is
//! not string order (`a/x` comes before `a-`).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::merkle::leaf_hash;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntryKind {
    /// A directory (the volume's root is `.`).
    Dir,
    /// A regular file; its bytes are in a segment.
    File,
    /// A symbolic link, kept as a link (never followed).
    Symlink,
    /// Another name of a file earlier in the manifest (`target`).
    HardLink,
    /// A named pipe, recreated empty.
    Fifo,
    /// A character device node (`rdev`), recreated when restoring as root.
    CharDevice,
    /// A block device node (`rdev`), recreated when restoring as root.
    BlockDevice,
}

impl EntryKind {
    /// The name the digest and the manifest use.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Dir => "dir",
            EntryKind::File => "file",
            EntryKind::Symlink => "symlink",
            EntryKind::HardLink => "hardLink",
            EntryKind::Fifo => "fifo",
            EntryKind::CharDevice => "charDevice",
            EntryKind::BlockDevice => "blockDevice",
        }
    }
}

/// What an entry's digest covers (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestFields<'a> {
    /// What the path is.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Its nanoseconds.
    pub mtime_nsec: u32,
    /// A symlink's target or a hard link's first name.
    pub target: Option<&'a str>,
    /// A file's content SHA-256, hex.
    pub sha256: Option<&'a str>,
    /// A device node's device number.
    pub rdev: Option<u64>,
}

/// An entry's digest (hex): its kind, metadata, link target and content hash.
pub fn entry_digest(f: &DigestFields<'_>) -> String {
    let mut h = Sha256::new();
    h.update(f.kind.as_str());
    h.update([0]);
    h.update(format!("{:o}", f.mode));
    h.update([0]);
    h.update(format!(
        "{}\0{}\0{}.{:09}",
        f.uid, f.gid, f.mtime, f.mtime_nsec
    ));
    h.update([0]);
    h.update(f.target.unwrap_or(""));
    h.update([0]);
    h.update(f.sha256.unwrap_or(""));
    if let Some(rdev) = f.rdev {
        h.update(format!("\0{rdev}"));
    }
    hex::encode(h.finalize())
}

/// One manifest line, as read by the auditor. Fields the digest does not cover
/// (segment, offset) are read but play no part in the root.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeEntry {
    /// Relative to the volume's root, `/`-separated; the root itself is `.`.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Bytes.
    pub size: u64,
    /// Permission bits.
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
    #[serde(default)]
    pub target: Option<String>,
    /// SHA-256 of a file's bytes, hex.
    #[serde(default)]
    pub sha256: Option<String>,
    /// A device node's device number.
    #[serde(default)]
    pub rdev: Option<u64>,
    /// The file has holes.
    #[serde(default)]
    pub sparse: bool,
}

impl VolumeEntry {
    /// Parse one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(line).map_err(|e| e.to_string())
    }

    /// The entry's digest (hex).
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

/// Why a path cannot be a volume path: `None` for `.` and for `a/b/c` with no empty,
/// `.` or `..` component and no NUL (anything else would make a restore write outside
/// the volume, or cannot be a Unix name). A line break is a legal name character: the
/// manifest's JSON escapes it, and verdicts print paths quoted.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if path == "." {
        return None;
    }
    if path.is_empty() {
        return Some("is empty");
    }
    if path.starts_with('/') {
        return Some("is absolute");
    }
    if path.contains('\0') {
        return Some("holds a NUL");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Some("has an empty, `.` or `..` component");
    }
    None
}

/// Compare two volume paths in walk order: `.` first, then component by component,
/// each by bytes.
pub fn walk_order(a: &str, b: &str) -> Ordering {
    match (a == ".", b == ".") {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a
            .split('/')
            .map(str::as_bytes)
            .cmp(b.split('/').map(str::as_bytes)),
    }
}

/// The directory a path is in (`.` for a top-level name); `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path == "." {
        return None;
    }
    Some(path.rsplit_once('/').map_or(".", |(dir, _)| dir))
}

/// Whether `dir` is `path` itself or one of the directories it is under.
pub fn is_ancestor_or_self(dir: &str, path: &str) -> bool {
    dir == "."
        || dir == path
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned (values from an independent implementation of the module docs' formula):
    /// a change to what the digest covers changes every signed volume root, so it
    /// must be deliberate.
    #[test]
    fn entry_digest_and_leaf_are_pinned() {
        let line = br#"{"path":"data/a.txt","kind":"file","size":5,"mode":420,"uid":1000,"gid":1000,"mtime":1700000000,"mtimeNsec":123,"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","segment":0,"offset":0}"#;
        let entry = VolumeEntry::parse(line).expect("a manifest line");
        assert_eq!(
            entry.digest(),
            "6e7e1c81b80a7111e10b9c0509092286945f9d56e8b83609a22cd72c96c527c0"
        );
        assert_eq!(
            hex::encode(entry.leaf()),
            "544f072d7c3bd132cd9cc71b45049533b9a0e5f932efcdf4934368052a2dc6c9"
        );
        let node = VolumeEntry::parse(
            br#"{"path":"dev/null","kind":"charDevice","size":0,"mode":438,"uid":0,"gid":0,"mtime":-5,"mtimeNsec":0,"rdev":259}"#,
        )
        .expect("a device line");
        assert_eq!(
            node.digest(),
            "eb831e095879dfe39b822f190b29d74c8edc8da76e4b1b3054d85306222c0d54"
        );
    }

    #[test]
    fn unsafe_paths_are_named() {
        for ok in [
            ".",
            "a",
            "a/b c/ü",
            "a..b",
            ".hidden/x",
            "Zürich/файл #1\nline2",
        ] {
            assert_eq!(path_problem(ok), None, "{ok:?}");
        }
        for bad in [
            "", "/etc", "a/../b", "..", "a//b", "a/", "./a", "a/.", "a\0b",
        ] {
            assert!(path_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn walk_order_is_depth_first_by_bytes_not_string_order() {
        // What the mover's walk lists (each directory's names in byte order).
        let walked = [".", "a", "a/x", "a/x/y", "a b", "a-", "b", "b/ü"];
        assert!(
            walked
                .windows(2)
                .all(|w| walk_order(w[0], w[1]) == Ordering::Less)
        );
        let mut strings = walked;
        strings.sort();
        assert_ne!(strings, walked, "string order is not walk order");
        assert_eq!(walk_order("a/x", "a-"), Ordering::Less);
        assert_eq!(walk_order(".", "."), Ordering::Equal);
        assert_eq!(parent("a/b/c"), Some("a/b"));
        assert_eq!(parent("a"), Some("."));
        assert_eq!(parent("."), None);
        assert!(is_ancestor_or_self(".", "a/b"));
        assert!(is_ancestor_or_self("a", "a/b"));
        assert!(!is_ancestor_or_self("a", "ab/c"));
    }
}
