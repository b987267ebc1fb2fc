//! What a pack staged, read back and checked before a restore writes anything:
//! `volume.json`, the manifest (its SHA-256 and Merkle root against `volume.json`),
//! and whether the target has room for it.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::manifest::root_of;
use super::pack::{manifest_location, summary_location};
use super::segment::{CHUNK, SegmentReader};
use super::{VolumeError, VolumeSummary};

/// The staged `volume.json`.
pub async fn read_summary(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
) -> Result<VolumeSummary, VolumeError> {
    let location = summary_location(prefix);
    let body = match store.get_opts(&location, Default::default()).await {
        Ok(got) => got.bytes().await,
        Err(e) => Err(e),
    };
    let body = match body {
        Ok(body) => body,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(VolumeError::NotPacked {
                prefix: prefix.to_string(),
            });
        }
        Err(source) => {
            return Err(VolumeError::Store {
                what: "reading",
                location: location.to_string(),
                source,
            });
        }
    };
    serde_json::from_slice(&body).map_err(|e| VolumeError::Corrupt {
        detail: format!("{location}: {e}"),
    })
}

pub(crate) fn fetch_manifest(
    rt: &Handle,
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
    volume: &VolumeSummary,
) -> Result<tempfile::NamedTempFile, VolumeError> {
    let location = manifest_location(prefix);
    let mut reader = SegmentReader::open(rt.clone(), store, location.clone(), 0, 0)?;
    let file = tempfile::NamedTempFile::new().map_err(VolumeError::local(
        "creating the manifest's scratch file (TMPDIR)",
    ))?;
    let mut hasher = Sha256::new();
    let mut pos = 0u64;
    loop {
        let chunk = reader.read(CHUNK)?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(&chunk);
        file.as_file()
            .write_all_at(&chunk, pos)
            .map_err(VolumeError::local("writing the manifest's scratch file"))?;
        pos += chunk.len() as u64;
    }
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != volume.manifest_sha256 {
        return Err(VolumeError::Corrupt {
            detail: format!(
                "{location} hashes to {sha256}, volume.json says {}",
                volume.manifest_sha256
            ),
        });
    }
    let root = root_of(file.path())?;
    if root != volume.root {
        return Err(VolumeError::Corrupt {
            detail: format!(
                "{location} has root {root}, volume.json says {}",
                volume.root
            ),
        });
    }
    Ok(file)
}

/// Refuse a target filesystem smaller than the data.
pub fn check_capacity(root: &Path, volume: &VolumeSummary) -> Result<(), VolumeError> {
    let Ok(stat) = rustix::fs::statvfs(root) else {
        return Ok(()); // Not mounted yet: the writes will tell.
    };
    let capacity = stat.f_blocks.saturating_mul(stat.f_frsize);
    capacity_fits(root, volume.bytes, capacity)
}

/// Whether `needed` bytes fit a claim of `capacity` bytes.
pub fn capacity_fits(root: &Path, needed: u64, capacity: u64) -> Result<(), VolumeError> {
    if capacity > 0 && needed > capacity {
        return Err(VolumeError::TooSmall {
            path: root.to_path_buf(),
            needed,
            available: capacity,
        });
    }
    Ok(())
}
