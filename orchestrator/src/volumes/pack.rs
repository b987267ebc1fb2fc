//! Pack: a mounted volume's tree into the staging store.
//!
//! One blocking thread walks the tree ([`super::walk`]) and streams every regular
//! file's bytes into the current segment, hashing them as they pass; a segment is
//! closed once it holds [`PackOptions::segment_bytes`] or
//! [`PackOptions::segment_files`], so many small files share one request and a large
//! file streams through in bounded parts. Each entry's line goes to a local manifest
//! file as it is walked (memory stays flat), which is uploaded at the end, then
//! `volume.json`. A stale `volume.json` is removed first, so a half-written pack is
//! never taken for a complete one; before that, the last complete pack is read, and a
//! file whose bytes did not change since keeps its staged segment ([`super::delta`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Handle;

use super::checkpoint::{self, Checkpoint};
use super::delta::{self, Cursor, Previous};
use super::manifest::{ManifestWriter, SegmentInfo};
use super::progress::{Progress, Reporter};
use super::segment::SegmentWriter;
use super::walk::Walk;
use super::{EntryKind, VolumeError, VolumeSummary};

/// How files are batched into segments.
#[derive(Debug, Clone, Copy)]
pub struct PackOptions {
    /// Close a segment once it holds this many bytes (default 64 MiB).
    pub segment_bytes: u64,
    /// Close a segment once it holds this many files (default 10,000), which bounds
    /// what a restore re-fetches when one of them is missing.
    pub segment_files: u64,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            segment_files: 10_000,
        }
    }
}

/// Where a volume's objects live under its prefix.
pub(crate) fn segment_location(prefix: &ObjectPath, index: u32) -> (String, ObjectPath) {
    let name = format!("segments/{index:06}.seg");
    let location = ObjectPath::from(format!("{prefix}/{name}"));
    (name, location)
}

pub(crate) fn manifest_location(prefix: &ObjectPath) -> ObjectPath {
    ObjectPath::from(format!("{prefix}/manifest.ndjson"))
}

pub(crate) fn summary_location(prefix: &ObjectPath) -> ObjectPath {
    ObjectPath::from(format!("{prefix}/volume.json"))
}

/// Pack the tree under `root` (the claim `claim`'s mount) to `prefix` in `store`.
pub async fn pack(
    root: &Path,
    store: Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
    claim: &str,
    options: PackOptions,
) -> Result<VolumeSummary, VolumeError> {
    // The last complete pack, read before its volume.json goes: what did not change
    // since is not uploaded again.
    let previous = delta::previous(&store, prefix).await;
    let summary = summary_location(prefix);
    match store.delete(&summary).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(source) => {
            return Err(VolumeError::Store {
                what: "removing the stale",
                location: summary.to_string(),
                source,
            });
        }
    }
    let job = Packer {
        rt: Handle::current(),
        root: root.to_path_buf(),
        store: store.clone(),
        prefix: prefix.clone(),
        options,
        previous,
    };
    let claim = claim.to_owned();
    let volume = tokio::task::spawn_blocking(move || job.run(claim))
        .await
        .map_err(|e| VolumeError::Task(e.to_string()))??;
    let body = serde_json::to_vec_pretty(&volume).map_err(|e| VolumeError::Local {
        what: "encoding volume.json".into(),
        source: e.into(),
    })?;
    store
        .put(&summary, PutPayload::from(body))
        .await
        .map_err(|source| VolumeError::Store {
            what: "writing",
            location: summary.to_string(),
            source,
        })?;
    tracing::info!(
        claim = %volume.claim, files = volume.files, bytes = volume.bytes,
        segments = volume.segments.len(), root = %volume.root, "volume packed"
    );
    Ok(volume)
}

struct Packer {
    rt: Handle,
    root: PathBuf,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    options: PackOptions,
    previous: Option<Previous>,
}

impl Packer {
    fn run(self, claim: String) -> Result<VolumeSummary, VolumeError> {
        let mut manifest = ManifestWriter::new()?;
        let mut volume = VolumeSummary {
            claim,
            root: String::new(),
            entries: 0,
            files: 0,
            bytes: 0,
            dirs: 0,
            symlinks: 0,
            hard_links: 0,
            sparse: Vec::new(),
            not_moved: Vec::new(),
            segments: Vec::new(),
            manifest_sha256: String::new(),
            resumed_entries: 0,
            unchanged_files: 0,
            unchanged_bytes: 0,
        };
        let mut progress = Checkpoint {
            parts: 0,
            manifest_bytes: 0,
            last_path: String::new(),
            volume: volume.clone(),
        };
        let resumed = checkpoint::load(&self.rt, &self.store, &self.prefix)?;
        if let Some(saved) = resumed.clone() {
            checkpoint::replay(&self.rt, &self.store, &self.prefix, &saved, &mut manifest)?;
            tracing::info!(entries = manifest.entries, last = %saved.last_path, "resuming an interrupted pack");
            volume = saved.volume.clone();
            volume.resumed_entries = manifest.entries;
            progress = saved;
        }
        // A fresh pack after a complete one keeps its segments (new ones are numbered
        // after them) and reuses what did not change; a resumed pack has them already.
        let previous = self.previous.as_ref().filter(|_| resumed.is_none());
        if let Some(p) = previous {
            volume.segments = p.summary.segments.clone();
        }
        let mut last_pack = Cursor::new(previous);
        let mut segment: Option<SegmentWriter> = None;
        let mut buf = vec![0u8; 256 << 10];
        let mut told = Reporter::new(Progress {
            files: volume.files,
            bytes: volume.bytes,
        });
        let mut walk = Walk::new(&self.root);
        for walked in walk.by_ref() {
            let mut walked = walked?;
            let entry = &mut walked.entry;
            if resumed.is_some() && checkpoint::walked_by(&entry.path, &progress.last_path) {
                continue;
            }
            let mut closed = false;
            let unchanged = entry.kind == EntryKind::File
                && self.unchanged(&walked.full, entry, &mut last_pack, &mut buf)?;
            match entry.kind {
                EntryKind::Dir => volume.dirs += 1,
                EntryKind::Symlink => volume.symlinks += 1,
                EntryKind::HardLink => volume.hard_links += 1,
                EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice => {}
                EntryKind::File if unchanged => {
                    volume.files += 1;
                    volume.bytes += entry.size;
                    volume.unchanged_files += 1;
                    volume.unchanged_bytes += entry.size;
                    told.file(entry.size);
                    if entry.sparse {
                        volume.sparse.push(entry.path.clone());
                    }
                }
                EntryKind::File => {
                    let index = volume.segments.len() as u32;
                    let out = segment.get_or_insert_with(|| {
                        let (_, location) = segment_location(&self.prefix, index);
                        SegmentWriter::new(self.rt.clone(), self.store.clone(), location)
                    });
                    entry.segment = Some(index);
                    entry.offset = Some(out.bytes);
                    let (size, sha256) = copy_file(&walked.full, &entry.path, out, &mut buf)?;
                    // A live volume may change under the seed: the bytes read are what moved.
                    entry.size = size;
                    entry.sha256 = Some(sha256);
                    out.files += 1;
                    volume.files += 1;
                    volume.bytes += size;
                    told.file(size);
                    if entry.sparse {
                        volume.sparse.push(entry.path.clone());
                    }
                    if out.bytes >= self.options.segment_bytes
                        || out.files >= self.options.segment_files
                    {
                        self.close(segment.take(), &mut volume)?;
                        closed = true;
                    }
                }
            }
            manifest.push(entry)?;
            if closed {
                let (rt, store, prefix) = (&self.rt, &self.store, &self.prefix);
                checkpoint::save(
                    rt,
                    store,
                    prefix,
                    &mut manifest,
                    &mut progress,
                    &entry.path,
                    &volume,
                )?;
            }
        }
        self.close(segment.take(), &mut volume)?;
        told.finish();
        volume.not_moved = std::mem::take(&mut walk.sockets);
        volume.entries = manifest.entries;
        let (file, _, root) = manifest.finish()?;
        volume.root = root;
        volume.manifest_sha256 = self.upload_manifest(file.path(), &mut buf)?;
        checkpoint::remove(&self.rt, &self.store, &self.prefix, progress.parts);
        Ok(volume)
    }

    /// Whether `entry`'s file has the bytes the last pack staged for its path: then
    /// the entry takes that pack's segment, offset and hash, and nothing is uploaded.
    /// The file is read and hashed either way.
    fn unchanged(
        &self,
        full: &Path,
        entry: &mut super::Entry,
        last_pack: &mut Cursor,
        buf: &mut [u8],
    ) -> Result<bool, VolumeError> {
        let Some(staged) = last_pack.staged_file(&entry.path) else {
            return Ok(false);
        };
        if staged.size != entry.size {
            return Ok(false);
        }
        let (size, sha256) = super::scan::hash_file(full, &entry.path, buf)?;
        if size != staged.size || staged.sha256.as_deref() != Some(sha256.as_str()) {
            return Ok(false);
        }
        entry.size = size;
        entry.sha256 = Some(sha256);
        entry.segment = staged.segment;
        entry.offset = staged.offset;
        Ok(true)
    }

    fn close(
        &self,
        segment: Option<SegmentWriter>,
        volume: &mut VolumeSummary,
    ) -> Result<(), VolumeError> {
        let Some(segment) = segment else {
            return Ok(());
        };
        let (bytes, files) = (segment.bytes, segment.files);
        let sha256 = segment.finish()?;
        let (name, _) = segment_location(&self.prefix, volume.segments.len() as u32);
        tracing::debug!(%name, bytes, files, "segment staged");
        volume.segments.push(SegmentInfo {
            name,
            bytes,
            files,
            sha256,
        });
        Ok(())
    }

    fn upload_manifest(&self, file: &Path, buf: &mut [u8]) -> Result<String, VolumeError> {
        let location = manifest_location(&self.prefix);
        let mut out = SegmentWriter::new(self.rt.clone(), self.store.clone(), location);
        let mut input =
            std::fs::File::open(file).map_err(VolumeError::local("reading the manifest"))?;
        loop {
            let n = input
                .read(buf)
                .map_err(VolumeError::local("reading the manifest"))?;
            if n == 0 {
                break;
            }
            out.write(&buf[..n])?;
        }
        out.finish()
    }
}

/// Stream one file into the segment; its size and SHA-256.
fn copy_file(
    full: &Path,
    rel: &str,
    out: &mut SegmentWriter,
    buf: &mut [u8],
) -> Result<(u64, String), VolumeError> {
    super::scan::stream_file(full, rel, buf, |chunk| out.write(chunk))
}
