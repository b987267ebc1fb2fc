//! A pack's checkpoint: after each segment is staged, the manifest lines written since
//! the previous checkpoint go to `manifest-parts/NNNNNN.ndjson` and the progress to
//! `checkpoint.json`. A mover killed mid-volume (a pod evicted, OOM, kill -9) and run
//! again replays the parts into its manifest and skips, in walk order, every path up to
//! the last one checkpointed: it redoes at most one segment. A complete pack removes
//! its checkpoint, so the next pack of the claim (a new seed, a delta) starts afresh.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::manifest::ManifestWriter;
use super::segment::{CHUNK, SegmentReader, SegmentWriter};
use super::{Entry, VolumeError, VolumeSummary};

/// Progress of an interrupted pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Checkpoint {
    /// Manifest parts staged.
    pub(crate) parts: u32,
    /// Manifest bytes they hold.
    pub(crate) manifest_bytes: u64,
    /// The last path they hold (walk order).
    pub(crate) last_path: String,
    /// Counts and segments so far.
    pub(crate) volume: VolumeSummary,
}

fn location(prefix: &ObjectPath) -> ObjectPath {
    ObjectPath::from(format!("{prefix}/checkpoint.json"))
}

fn part(prefix: &ObjectPath, index: u32) -> ObjectPath {
    ObjectPath::from(format!("{prefix}/manifest-parts/{index:06}.ndjson"))
}

fn store_err(
    what: &'static str,
    at: &ObjectPath,
) -> impl FnOnce(object_store::Error) -> VolumeError {
    let location = at.to_string();
    move |source| VolumeError::Store {
        what,
        location,
        source,
    }
}

/// The checkpoint under `prefix`, if any.
pub(crate) fn load(
    rt: &Handle,
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
) -> Result<Option<Checkpoint>, VolumeError> {
    let at = location(prefix);
    let body = match rt.block_on(async { store.get(&at).await?.bytes().await }) {
        Ok(body) => body,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_err("reading", &at)(e)),
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| VolumeError::Corrupt {
            detail: format!("{at}: {e}"),
        })
}

/// Replay a checkpoint's manifest parts into `manifest`.
pub(crate) fn replay(
    rt: &Handle,
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
    checkpoint: &Checkpoint,
    manifest: &mut ManifestWriter,
) -> Result<(), VolumeError> {
    for index in 0..checkpoint.parts {
        let mut reader = SegmentReader::open(rt.clone(), store, part(prefix, index), 0, 0)?;
        let mut pending = Vec::new();
        loop {
            let chunk = reader.read(CHUNK)?;
            if chunk.is_empty() {
                break;
            }
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let entry: Entry =
                    serde_json::from_slice(&line).map_err(|e| VolumeError::Corrupt {
                        detail: format!("manifest part {index}: {e}"),
                    })?;
                manifest.push(&entry)?;
            }
        }
    }
    if manifest.bytes != checkpoint.manifest_bytes {
        return Err(VolumeError::Corrupt {
            detail: format!(
                "the checkpoint's manifest parts hold {} bytes, it says {}",
                manifest.bytes, checkpoint.manifest_bytes
            ),
        });
    }
    Ok(())
}

/// Stage the manifest lines since the last checkpoint, then the checkpoint.
pub(crate) fn save(
    rt: &Handle,
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
    manifest: &mut ManifestWriter,
    checkpoint: &mut Checkpoint,
    last_path: &str,
    volume: &VolumeSummary,
) -> Result<(), VolumeError> {
    let (file, len) = manifest.flushed()?;
    let mut input =
        std::fs::File::open(&file).map_err(VolumeError::local("reading the manifest"))?;
    input
        .seek(SeekFrom::Start(checkpoint.manifest_bytes))
        .map_err(VolumeError::local("reading the manifest"))?;
    let mut out = SegmentWriter::new(rt.clone(), store.clone(), part(prefix, checkpoint.parts));
    let mut remaining = len - checkpoint.manifest_bytes;
    let mut buf = vec![0u8; 64 << 10];
    while remaining > 0 {
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        input
            .read_exact(&mut buf[..want])
            .map_err(VolumeError::local("reading the manifest"))?;
        out.write(&buf[..want])?;
        remaining -= want as u64;
    }
    out.finish()?;
    checkpoint.parts += 1;
    checkpoint.manifest_bytes = len;
    last_path.clone_into(&mut checkpoint.last_path);
    checkpoint.volume = volume.clone();
    let body = serde_json::to_vec(checkpoint).map_err(|e| VolumeError::Local {
        what: "encoding the checkpoint".into(),
        source: e.into(),
    })?;
    let at = location(prefix);
    rt.block_on(store.put(&at, PutPayload::from(body)))
        .map_err(store_err("writing", &at))?;
    Ok(())
}

/// Remove a complete pack's checkpoint and parts (best effort: a leftover part is
/// never read without its checkpoint).
pub(crate) fn remove(rt: &Handle, store: &Arc<dyn ObjectStore>, prefix: &ObjectPath, parts: u32) {
    let _ = rt.block_on(store.delete(&location(prefix)));
    for index in 0..parts {
        let _ = rt.block_on(store.delete(&part(prefix, index)));
    }
}

/// Whether `path` comes no later than `last` in walk order (depth first, names in byte
/// order): component-wise comparison, the root `.` first.
pub(crate) fn walked_by(path: &str, last: &str) -> bool {
    super::walk::walk_order(path, last) != std::cmp::Ordering::Greater
}

#[cfg(test)]
mod tests {
    use super::walked_by;

    #[test]
    fn walk_order_is_depth_first_by_bytes() {
        assert!(walked_by(".", "a"));
        assert!(walked_by("a", "a"));
        assert!(walked_by("a", "a/b"));
        assert!(walked_by("a/z", "b"));
        // Not string order: `a/x` is walked before `a-` and `a b`.
        assert!(walked_by("a/x", "a-"));
        assert!(!walked_by("a b", "a/x"));
        assert!(!walked_by("b", "a/z"));
        assert!(!walked_by("a/b", "a"));
        assert!(!walked_by("a", "."));
    }
}
