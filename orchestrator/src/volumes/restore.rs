//! Restore: a staged volume written back into a mounted (target) claim.
//!
//! The manifest is fetched whole to a local file and checked against `volume.json`
//! (its SHA-256 and Merkle root) before anything is written. Then one pass over its
//! entries, in walk order so a parent always precedes its children: directories are
//! created, symlinks made as links, hard links linked to their first name, and each
//! regular file's bytes streamed from its segment, re-hashed as they are written and
//! compared with the manifest (a mismatch removes the file and fails naming it and its
//! segment). A file already there with the manifest's hash is left alone and no byte
//! of it is fetched, so a rerun after a failure restores only what is missing or
//! different. Ownership is restored when running as root; otherwise every entry whose
//! owner differs is counted in the summary. Directory modes and times are applied in a
//! second pass, after their contents exist. Before any of it, whatever the claim holds
//! that the manifest does not name is removed ([`super::prune`]), so the restored claim
//! equals the manifest.

use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::manifest::entries;
use super::pack::segment_location;
use super::progress::{Progress, Reporter};
use super::prune::prune;
use super::scan::hash_file;
use super::segment::{CHUNK, SegmentReader};
use super::staged::{check_capacity, fetch_manifest, read_summary};
use super::{Entry, EntryKind, VolumeError};

/// Bytes of a segment read and dropped to reach the next needed file before a new
/// ranged request is cheaper.
const SKIP_MAX: u64 = 4 << 20;
/// Paths kept as examples of ownership not restored.
const SAMPLE: usize = 10;

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSummary {
    /// The claim.
    pub claim: String,
    /// The staged manifest's root, hex (what a verify of the target must find).
    pub root: String,
    /// Files written (fetched, hashed, equal).
    pub files_written: u64,
    /// Files already there with the manifest's hash (not fetched).
    pub files_present: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Entries whose owner could not be restored (not running as root).
    pub ownership_not_restored: u64,
    /// Some of them.
    pub ownership_sample: Vec<String>,
    /// Device nodes not recreated (restoring them needs root).
    pub not_recreated: Vec<String>,
    /// Entries of the claim the manifest does not name (or names as another kind),
    /// removed; a directory counts once with everything under it.
    #[serde(default)]
    pub removed: u64,
    /// The first of them ([`super::prune::REMOVED_SAMPLE`] at most).
    #[serde(default)]
    pub removed_paths: Vec<String>,
}

/// Restore the volume staged at `prefix` into the tree under `root`.
pub async fn restore(
    store: Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
    root: &Path,
) -> Result<RestoreSummary, VolumeError> {
    let volume = read_summary(&store, prefix).await?;
    let rt = Handle::current();
    let (store2, prefix2, root2) = (store.clone(), prefix.clone(), root.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let manifest = fetch_manifest(&rt, &store2, &prefix2, &volume)?;
        check_capacity(&root2, &volume)?;
        Restorer {
            rt,
            store: store2,
            prefix: prefix2,
            root: root2,
            reader: None,
            as_root: rustix::process::geteuid().is_root(),
            summary: RestoreSummary {
                claim: volume.claim.clone(),
                root: volume.root.clone(),
                ..RestoreSummary::default()
            },
        }
        .run(manifest.path())
    })
    .await
    .map_err(|e| VolumeError::Task(e.to_string()))?
}

struct Restorer {
    rt: Handle,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    root: PathBuf,
    reader: Option<SegmentReader>,
    as_root: bool,
    summary: RestoreSummary,
}

impl Restorer {
    fn run(mut self, manifest: &Path) -> Result<RestoreSummary, VolumeError> {
        // The mount may be reached through a link: resolve it once, so the root's
        // metadata lands on the directory and nothing replaces it.
        let mount_err = |source| VolumeError::Write {
            path: ".".into(),
            source,
        };
        std::fs::create_dir_all(&self.root).map_err(mount_err)?;
        self.root = std::fs::canonicalize(&self.root).map_err(mount_err)?;
        let pruned = prune(&self.root, entries(manifest)?)?;
        self.summary.removed = pruned.removed;
        self.summary.removed_paths = pruned.paths;
        let mut checked_parent = String::new();
        let mut told = Reporter::new(Progress::default());
        for entry in entries(manifest)? {
            let entry = entry?;
            self.check_path(&entry, &mut checked_parent)?;
            let full = self.full(&entry.path);
            match entry.kind {
                EntryKind::Dir => self.dir(&full, &entry)?,
                EntryKind::File => {
                    self.file(&full, &entry)?;
                    told.file(entry.size);
                }
                EntryKind::Symlink => self.symlink(&full, &entry)?,
                EntryKind::HardLink => self.hard_link(&full, &entry)?,
                EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice => {
                    if !self.node(&full, &entry)? {
                        self.summary.not_recreated.push(entry.path.clone());
                        continue;
                    }
                }
            }
            if entry.kind != EntryKind::Dir {
                self.apply_metadata(&full, &entry)?;
            }
        }
        told.finish();
        // Directory modes and times last: their contents are written by now.
        for entry in entries(manifest)? {
            let entry = entry?;
            if entry.kind == EntryKind::Dir {
                let full = self.full(&entry.path);
                self.apply_metadata(&full, &entry)?;
            }
        }
        Ok(self.summary)
    }

    /// Refuse a path that would land outside the volume: `..`, absolute or empty
    /// components, or a parent that is not a real directory (a symlink restored
    /// earlier must never be written through). The walk never produces these, so
    /// only a forged manifest does. The last parent checked is cached: walk order
    /// keeps siblings together.
    fn check_path(&self, entry: &Entry, checked_parent: &mut String) -> Result<(), VolumeError> {
        let forged = |why: &str| VolumeError::Corrupt {
            detail: format!("manifest path {:?} {why}", entry.path),
        };
        if entry.path == "." {
            return if entry.kind == EntryKind::Dir {
                Ok(())
            } else {
                Err(forged("is the root but not a directory"))
            };
        }
        if !safe_relative(&entry.path) {
            return Err(forged("is not a plain relative path"));
        }
        if entry.kind == EntryKind::HardLink && !entry.target.as_deref().is_some_and(safe_relative)
        {
            return Err(forged("links to a path outside the volume"));
        }
        let parent = entry.path.rsplit_once('/').map_or("", |(p, _)| p);
        if parent.is_empty() || parent == checked_parent {
            return Ok(());
        }
        let mut at = self.root.clone();
        for part in parent.split('/') {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                _ => return Err(forged("has a parent that is not a directory")),
            }
        }
        parent.clone_into(checked_parent);
        Ok(())
    }

    fn full(&self, rel: &str) -> PathBuf {
        if rel == "." {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn dir(&mut self, full: &Path, entry: &Entry) -> Result<(), VolumeError> {
        if entry.path == "." {
            // The mount: made (or resolved) in `run`, never replaced.
            return Ok(());
        }
        match std::fs::symlink_metadata(full) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => {
                remove(full, &entry.path)?;
                std::fs::create_dir(full).map_err(write_err(entry))
            }
            Err(_) => std::fs::create_dir(full).map_err(write_err(entry)),
        }
    }

    fn file(&mut self, full: &Path, entry: &Entry) -> Result<(), VolumeError> {
        let want = entry.sha256.as_deref().unwrap_or_default();
        if let Ok(m) = std::fs::symlink_metadata(full) {
            if m.is_file() && m.len() == entry.size {
                let mut buf = vec![0u8; 64 << 10];
                if let Ok((_, sha)) = hash_file(full, &entry.path, &mut buf)
                    && sha == want
                {
                    self.summary.files_present += 1;
                    return Ok(());
                }
            }
            remove(full, &entry.path)?;
        }
        let (segment, offset) = match (entry.segment, entry.offset) {
            (Some(s), Some(o)) => (s, o),
            _ => {
                return Err(VolumeError::Corrupt {
                    detail: format!("manifest: file {} has no segment", entry.path),
                });
            }
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(full)
            .map_err(write_err(entry))?;
        let got = self.stream_into(&file, entry, segment, offset);
        let sha = match got {
            Ok(sha) => sha,
            Err(e) => {
                let _ = std::fs::remove_file(full);
                return Err(e);
            }
        };
        if sha != want {
            let _ = std::fs::remove_file(full);
            return Err(VolumeError::Corrupt {
                detail: format!(
                    "{}: its bytes from segment {segment} hash to {sha}, the manifest says {want}",
                    entry.path
                ),
            });
        }
        self.summary.files_written += 1;
        self.summary.bytes_written += entry.size;
        Ok(())
    }

    /// Write the file's bytes from its segment, hashing them; their SHA-256.
    fn stream_into(
        &mut self,
        file: &std::fs::File,
        entry: &Entry,
        segment: u32,
        offset: u64,
    ) -> Result<String, VolumeError> {
        let reader = self.reader_at(segment, offset)?;
        let mut hasher = Sha256::new();
        let mut pos = 0u64;
        while pos < entry.size {
            let want = usize::try_from(entry.size - pos)
                .unwrap_or(usize::MAX)
                .min(CHUNK);
            let chunk = reader.read(want)?;
            if chunk.is_empty() {
                return Err(VolumeError::Corrupt {
                    detail: format!(
                        "{}: segment {segment} ends {} bytes short of it",
                        entry.path,
                        entry.size - pos
                    ),
                });
            }
            hasher.update(&chunk);
            write_at(file, &chunk, pos, entry.sparse).map_err(write_err(entry))?;
            pos += chunk.len() as u64;
        }
        file.set_len(entry.size).map_err(write_err(entry))?;
        Ok(hex::encode(hasher.finalize()))
    }

    /// A reader of `segment` positioned at `offset`: the open one when it is a short
    /// skip ahead, else a new ranged request.
    fn reader_at(&mut self, segment: u32, offset: u64) -> Result<&mut SegmentReader, VolumeError> {
        let reuse = self.reader.as_ref().is_some_and(|r| {
            r.segment == segment && r.position <= offset && offset - r.position <= SKIP_MAX
        });
        if !reuse {
            let (_, location) = segment_location(&self.prefix, segment);
            self.reader = Some(SegmentReader::open(
                self.rt.clone(),
                &self.store,
                location,
                segment,
                offset,
            )?);
        }
        let reader = self
            .reader
            .as_mut()
            .ok_or_else(|| VolumeError::Task("no reader".into()))?;
        while reader.position < offset {
            let skip = usize::try_from(offset - reader.position)
                .unwrap_or(CHUNK)
                .min(CHUNK);
            if reader.read(skip)?.is_empty() {
                return Err(VolumeError::Corrupt {
                    detail: format!("segment {segment} ends before offset {offset}"),
                });
            }
        }
        Ok(reader)
    }

    fn symlink(&mut self, full: &Path, entry: &Entry) -> Result<(), VolumeError> {
        let target = entry.target.as_deref().unwrap_or_default();
        if let Ok(existing) = std::fs::read_link(full)
            && existing.as_os_str() == target
        {
            return Ok(());
        }
        if std::fs::symlink_metadata(full).is_ok() {
            remove(full, &entry.path)?;
        }
        std::os::unix::fs::symlink(target, full).map_err(write_err(entry))
    }

    /// A FIFO or device node; false when a device node cannot be made (not root).
    fn node(&mut self, full: &Path, entry: &Entry) -> Result<bool, VolumeError> {
        use rustix::fs::FileType;
        let (file_type, rdev) = match entry.kind {
            EntryKind::Fifo => (FileType::Fifo, 0),
            EntryKind::BlockDevice => (FileType::BlockDevice, entry.rdev.unwrap_or(0)),
            _ => (FileType::CharacterDevice, entry.rdev.unwrap_or(0)),
        };
        if entry.kind != EntryKind::Fifo && !self.as_root {
            return Ok(false);
        }
        if let Ok(m) = std::fs::symlink_metadata(full) {
            if FileType::from_raw_mode(m.mode()) == file_type && m.rdev() == rdev {
                return Ok(true);
            }
            remove(full, &entry.path)?;
        }
        rustix::fs::mknodat(
            rustix::fs::CWD,
            full,
            file_type,
            rustix::fs::Mode::from_raw_mode(entry.mode & 0o777),
            rdev,
        )
        .map_err(|e| write_err(entry)(e.into()))?;
        Ok(true)
    }

    fn hard_link(&mut self, full: &Path, entry: &Entry) -> Result<(), VolumeError> {
        let first = self.full(entry.target.as_deref().unwrap_or_default());
        let first_meta = std::fs::symlink_metadata(&first).map_err(write_err(entry))?;
        if let Ok(m) = std::fs::symlink_metadata(full) {
            if m.ino() == first_meta.ino() && m.dev() == first_meta.dev() {
                return Ok(());
            }
            remove(full, &entry.path)?;
        }
        std::fs::hard_link(&first, full).map_err(write_err(entry))
    }

    fn apply_metadata(&mut self, full: &Path, entry: &Entry) -> Result<(), VolumeError> {
        if self.as_root {
            std::os::unix::fs::lchown(full, Some(entry.uid), Some(entry.gid))
                .map_err(write_err(entry))?;
        } else if entry.uid != rustix::process::geteuid().as_raw()
            || entry.gid != rustix::process::getegid().as_raw()
        {
            self.summary.ownership_not_restored += 1;
            if self.summary.ownership_sample.len() < SAMPLE {
                self.summary.ownership_sample.push(entry.path.clone());
            }
        }
        if entry.kind != EntryKind::Symlink {
            std::fs::set_permissions(full, std::fs::Permissions::from_mode(entry.mode))
                .map_err(write_err(entry))?;
        }
        let at = rustix::fs::Timespec {
            tv_sec: entry.mtime,
            tv_nsec: entry.mtime_nsec.into(),
        };
        let times = rustix::fs::Timestamps {
            last_access: at,
            last_modification: at,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            full,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| write_err(entry)(e.into()))
    }
}

/// Write `data` at `pos`; for a sparse file, all-zero 4 KiB blocks are left as holes.
fn write_at(file: &std::fs::File, data: &[u8], pos: u64, sparse: bool) -> std::io::Result<()> {
    if !sparse {
        return file.write_all_at(data, pos);
    }
    let mut at = pos;
    for block in data.chunks(4096) {
        if block.iter().any(|b| *b != 0) {
            file.write_all_at(block, at)?;
        }
        at += block.len() as u64;
    }
    Ok(())
}

/// `a/b/c`: no empty, `.` or `..` component, not absolute.
pub(super) fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

fn remove(full: &Path, rel: &str) -> Result<(), VolumeError> {
    let meta = std::fs::symlink_metadata(full);
    let result = match meta {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(full),
        Ok(_) => std::fs::remove_file(full),
        Err(_) => Ok(()),
    };
    result.map_err(|source| VolumeError::Write {
        path: rel.to_owned(),
        source,
    })
}

fn write_err(entry: &Entry) -> impl FnOnce(std::io::Error) -> VolumeError {
    let path = entry.path.clone();
    move |source| VolumeError::Write { path, source }
}
