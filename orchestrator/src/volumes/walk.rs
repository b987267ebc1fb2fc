//! The walk of a mounted volume: depth-first, names in byte order (so two walks of
//! equal trees list the same entries in the same order), symlinks never followed,
//! one directory's names in memory per level.
//!
//! Each path becomes a manifest [`Entry`] without its content hash: kind, size, mode,
//! owner, mtime, a symlink's target; the second name of an inode with several becomes
//! a [`EntryKind::HardLink`] to the first (the only state that grows with the tree,
//! and only with its hard-linked files); a file with fewer allocated blocks than its
//! size is marked sparse. A directory that cannot be listed is an error naming it.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{Entry, EntryKind, VolumeError};

/// One walked path: its entry (no content hash yet) and where it is on disk.
#[derive(Debug)]
pub struct Walked {
    /// The manifest entry.
    pub entry: Entry,
    /// Its full path.
    pub full: PathBuf,
}

/// A walk of the tree under a root.
#[derive(Debug)]
pub struct Walk {
    root: PathBuf,
    /// Per open directory: its relative path and the names still to visit (reversed).
    stack: Vec<(String, Vec<OsString>)>,
    started: bool,
    links: HashMap<(u64, u64), String>,
    /// Sockets met, by path: not walked into the manifest (see [`super::VolumeSummary`]).
    pub sockets: Vec<String>,
}

impl Walk {
    /// A walk of `root` (the root itself is the first entry, `.`).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            stack: Vec::new(),
            started: false,
            links: HashMap::new(),
            sockets: Vec::new(),
        }
    }

    fn visit(&mut self, rel: String) -> Result<Option<Walked>, VolumeError> {
        let full = if rel == "." {
            self.root.clone()
        } else {
            self.root.join(&rel)
        };
        // The mount itself may be reached through a link; nothing under it is followed.
        let meta = if rel == "." {
            std::fs::metadata(&full)
        } else {
            std::fs::symlink_metadata(&full)
        }
        .map_err(|source| VolumeError::Unreadable {
            path: rel.clone(),
            source,
        })?;
        let ft = meta.file_type();
        if ft.is_socket() {
            self.sockets.push(rel);
            return Ok(None);
        }
        let mut entry = entry_of(&rel, &meta);
        if ft.is_dir() {
            let names = list(&full, &rel)?;
            self.stack.push((rel, names));
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&full).map_err(|source| VolumeError::Unreadable {
                path: rel.clone(),
                source,
            })?;
            entry.target = Some(utf8(target.as_os_str().as_bytes(), &full)?.to_owned());
        } else if ft.is_file() && meta.nlink() > 1 {
            match self.links.get(&(meta.dev(), meta.ino())) {
                Some(first) => {
                    entry.kind = EntryKind::HardLink;
                    entry.target = Some(first.clone());
                    entry.sparse = false;
                }
                None => {
                    self.links.insert((meta.dev(), meta.ino()), rel);
                }
            }
        }
        Ok(Some(Walked { entry, full }))
    }
}

impl Iterator for Walk {
    type Item = Result<Walked, VolumeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            return self.visit(".".to_owned()).transpose();
        }
        loop {
            let (dir, names) = self.stack.last_mut()?;
            let Some(name) = names.pop() else {
                self.stack.pop();
                continue;
            };
            let rel = match utf8(name.as_bytes(), &self.root.join(dir.as_str()).join(&name)) {
                Ok(n) if dir == "." => n.to_owned(),
                Ok(n) => format!("{dir}/{n}"),
                Err(e) => return Some(Err(e)),
            };
            match self.visit(rel) {
                Ok(None) => continue,
                other => return other.transpose(),
            }
        }
    }
}

/// A directory's names, sorted by bytes and reversed (popped in order).
pub(super) fn list(full: &Path, rel: &str) -> Result<Vec<OsString>, VolumeError> {
    let unreadable = |source| VolumeError::Unreadable {
        path: rel.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for item in std::fs::read_dir(full).map_err(unreadable)? {
        names.push(item.map_err(unreadable)?.file_name());
    }
    names.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    Ok(names)
}

/// The order a walk lists two relative paths in: the root (`.`) first, then component
/// by component in byte order, an ancestor before its descendants (`a`, `a/b`, `a-c`:
/// not the byte order of the whole paths, where `-` sorts before `/`).
pub fn walk_order(a: &str, b: &str) -> Ordering {
    parts(a).cmp(parts(b))
}

fn parts(path: &str) -> impl Iterator<Item = &[u8]> {
    let path = if path == "." { "" } else { path };
    path.split('/').filter(|c| !c.is_empty()).map(str::as_bytes)
}

fn utf8<'a>(bytes: &'a [u8], full: &Path) -> Result<&'a str, VolumeError> {
    std::str::from_utf8(bytes).map_err(|_| VolumeError::NotUtf8 {
        path: full.to_path_buf(),
    })
}

/// The entry of `rel` from its (not followed) metadata.
pub(crate) fn entry_of(rel: &str, meta: &Metadata) -> Entry {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_block_device() {
        EntryKind::BlockDevice
    } else {
        EntryKind::CharDevice
    };
    let size = if kind == EntryKind::File {
        meta.size()
    } else {
        0
    };
    Entry {
        path: rel.to_owned(),
        kind,
        size,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        mtime_nsec: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        target: None,
        sha256: None,
        rdev: matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice).then(|| meta.rdev()),
        // Fewer 512-byte blocks than the bytes need: the file has holes.
        sparse: kind == EntryKind::File && meta.blocks().saturating_mul(512) < size,
        segment: None,
        offset: None,
    }
}
