//! The manifest: every object of a workload with its size and source hash, in key
//! order, as a `sha256sum`-compatible file and a Merkle root.
//!
//! The file lets anyone check a copy with stock tools (`sha256sum -c`); the root (an
//! RFC 6962 tree over `key, size, hash` leaves, computed in one streaming pass with a
//! stack of subtree roots, so memory stays flat) goes into the stage's evidence and
//! lets one object's membership be proven without the whole list.
//!
//! The tree is the auditor's own ([`relocate_verifier::merkle`]): the verifier crate
//! defines the record format, so the engine signs exactly the root an auditor
//! recomputes, with no second implementation to drift. Whatever the checksum
//! algorithm of the entries (`sha256`, `blake3`), the leaves carry its hex digest as
//! text and the tree itself is always SHA-256.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use relocate_verifier::merkle::{MerkleBuilder, leaf_hash};
use sha2::{Digest, Sha256};

use super::TransferError;
use crate::state::Db;

/// What evidence needs from a manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ManifestSummary {
    /// Objects in the manifest.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Hash algorithm of the entries.
    pub algorithm: String,
    /// `sha256:<hex>` Merkle root over the entries.
    pub root: String,
    /// `sha256:<hex>` of the manifest file.
    pub file_digest: String,
    /// Where the file was written.
    pub path: PathBuf,
}

/// Write `<dir>/<workload>.<algorithm>sums` from the state and summarise it.
pub fn write_manifest(
    db: &Db,
    workload: &str,
    algorithm: &str,
    dir: &Path,
) -> Result<ManifestSummary, TransferError> {
    write_manifest_files(
        db,
        workload,
        algorithm,
        &dir.join(format!("{workload}.{algorithm}sums")),
        None,
    )
}

/// Write a workload's manifest to `sums` (and, when given, its sizes in the same order
/// and escaping to `sizes`, which the auditor needs to recompute the Merkle leaves),
/// streaming the state a page at a time. Files are written beside and renamed into
/// place, so a reader never sees half a manifest.
pub fn write_manifest_files(
    db: &Db,
    workload: &str,
    algorithm: &str,
    sums: &Path,
    sizes: Option<&Path>,
) -> Result<ManifestSummary, TransferError> {
    let mut sums_out = Staged::create(sums)?;
    let mut sizes_out = sizes.map(Staged::create).transpose()?;
    let mut file_hash = Sha256::new();
    let mut tree = MerkleBuilder::default();
    let (mut objects, mut bytes) = (0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let page = db.manifest_page(workload, after.as_deref(), 4096)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for row in page {
            let hash = row.source_hash.as_deref().unwrap_or_default();
            let line = sums_line(hash, &row.key);
            file_hash.update(line.as_bytes());
            sums_out.write(line.as_bytes())?;
            if let Some(out) = sizes_out.as_mut() {
                out.write(sums_line(&row.size.to_string(), &row.key).as_bytes())?;
            }
            tree.push(leaf_hash(&row.key, row.size, hash));
            objects += 1;
            bytes += row.size;
        }
    }
    sums_out.publish()?;
    if let Some(out) = sizes_out {
        out.publish()?;
    }
    Ok(ManifestSummary {
        objects,
        bytes,
        algorithm: algorithm.to_owned(),
        root: format!("sha256:{}", hex::encode(tree.root())),
        file_digest: format!("sha256:{}", hex::encode(file_hash.finalize())),
        path: sums.to_path_buf(),
    })
}

/// A file written under a temporary name and renamed into place when complete.
struct Staged {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl Staged {
    fn create(path: &Path) -> Result<Self, TransferError> {
        // `name.tmp` beside it (not `with_extension`: `w.sizes` and `w.sha256sums` would collide).
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let file = std::fs::File::create(&tmp).map_err(|source| TransferError::Manifest {
            path: tmp.clone(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            out: BufWriter::new(file),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), TransferError> {
        self.out
            .write_all(bytes)
            .map_err(|source| TransferError::Manifest {
                path: self.tmp.clone(),
                source,
            })
    }

    fn publish(mut self) -> Result<(), TransferError> {
        let io = |source| TransferError::Manifest {
            path: self.path.clone(),
            source,
        };
        self.out.flush().map_err(io)?;
        drop(self.out);
        std::fs::rename(&self.tmp, &self.path).map_err(io)
    }
}

/// One line in GNU `sha256sum` format, escaping keys with `\` or newlines as GNU does.
pub fn sums_line(hash: &str, key: &str) -> String {
    if key.contains('\\') || key.contains('\n') || key.contains('\r') {
        let escaped = key
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{hash}  {escaped}\n")
    } else {
        format!("{hash}  {key}\n")
    }
}

#[cfg(test)]
mod tests {
    use relocate_verifier::manifest::summarize;
    use relocate_verifier::record::ManifestRef;

    use super::*;
    use crate::state::ObjectUpdate;

    #[test]
    fn sums_lines_escape_like_gnu() {
        assert_eq!(sums_line("ab", "a b/ü"), "ab  a b/ü\n");
        assert_eq!(sums_line("ab", "a\nb"), "\\ab  a\\nb\n");
    }

    /// The files the engine writes, read back by the auditor's reader, give the count,
    /// root and file digest the engine put in its summary (for either algorithm, and
    /// for keys that need GNU escaping).
    #[tokio::test]
    async fn the_auditor_recomputes_the_engines_summary_from_its_files() {
        for algorithm in ["sha256", "blake3"] {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(&dir.path().join("state.db")).unwrap();
            let w = db.object_writer();
            let keys: Vec<String> = (0..37u64)
                .map(|i| match i % 5 {
                    0 => format!("back\\slash/{i}"),
                    1 => format!("new\nline/{i}"),
                    _ => format!("d{}/f{i}.bin", i % 7),
                })
                .collect();
            for (i, key) in keys.iter().enumerate() {
                w.send(ObjectUpdate::Intent {
                    workload: "w".into(),
                    key: key.clone(),
                    size: i as u64 * 31,
                    etag: None,
                    modified: None,
                    epoch: 1,
                });
                w.send(ObjectUpdate::Copied {
                    workload: "w".into(),
                    key: key.clone(),
                    algorithm: algorithm.into(),
                    source_hash: hex::encode(Sha256::digest(key.as_bytes())),
                });
            }
            w.flush().await.unwrap();

            let (sums, sizes) = relocate_verifier::manifest::file_names("w", algorithm);
            let summary = write_manifest_files(
                &db,
                "w",
                algorithm,
                &dir.path().join(sums),
                Some(&dir.path().join(sizes)),
            )
            .unwrap();
            let reference = ManifestRef {
                workload: "w".into(),
                algorithm: algorithm.into(),
                objects: summary.objects,
                digest: summary.file_digest.clone(),
                root: summary.root.clone(),
            };
            let (objects, root, digest) = summarize(dir.path(), &reference).unwrap();
            assert_eq!(objects, keys.len() as u64, "{algorithm}");
            assert_eq!(
                (objects, root, digest),
                (summary.objects, summary.root, summary.file_digest),
                "{algorithm}"
            );
        }
    }
}
