//! The manifest: every object of a workload with its size and source hash, in key
//! order, as a `sha256sum`-compatible file and a Merkle root.
//!
//! The file lets anyone check a copy with stock tools (`sha256sum -c`); the root (an
//! RFC 6962 tree over `key, size, hash` leaves, computed in one streaming pass with a
//! stack of subtree roots, so memory stays flat) goes into the stage's evidence and
//! lets one object's membership be proven without the whole list.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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

/// Leaf hash of one manifest entry (domain-separated from inner nodes).
pub fn leaf_hash(key: &str, size: u64, hash_hex: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update((key.len() as u64).to_be_bytes());
    h.update(key.as_bytes());
    h.update(size.to_be_bytes());
    h.update(hash_hex.as_bytes());
    h.finalize().into()
}

/// Inner node hash.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Streaming RFC 6962 Merkle tree hash: push leaves in order, then `root`.
#[derive(Debug, Default)]
pub struct MerkleBuilder {
    /// Roots of complete subtrees, with their sizes (powers of two), left to right.
    stack: Vec<(u64, [u8; 32])>,
}

impl MerkleBuilder {
    /// Add the next leaf.
    pub fn push(&mut self, leaf: [u8; 32]) {
        let mut node = (1u64, leaf);
        while let Some(&(size, top)) = self.stack.last() {
            if size != node.0 {
                break;
            }
            self.stack.pop();
            node = (size * 2, node_hash(&top, &node.1));
        }
        self.stack.push(node);
    }

    /// The root (SHA-256 of nothing for an empty tree, as RFC 6962 defines).
    pub fn root(&self) -> [u8; 32] {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return Sha256::digest([]).into();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// Write `<dir>/<workload>.<algorithm>sums` from the state and summarise it.
pub fn write_manifest(db: &Db, workload: &str, algorithm: &str, dir: &Path) -> Result<ManifestSummary, TransferError> {
    let path = dir.join(format!("{workload}.{algorithm}sums"));
    let io = |source| TransferError::Manifest { path: path.clone(), source };
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
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
            out.write_all(line.as_bytes()).map_err(io)?;
            tree.push(leaf_hash(&row.key, row.size, hash));
            objects += 1;
            bytes += row.size;
        }
    }
    out.flush().map_err(io)?;
    drop(out);
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(ManifestSummary {
        objects,
        bytes,
        algorithm: algorithm.to_owned(),
        root: format!("sha256:{}", hex::encode(tree.root())),
        file_digest: format!("sha256:{}", hex::encode(file_hash.finalize())),
        path,
    })
}

/// One line in GNU `sha256sum` format, escaping keys with `\` or newlines as GNU does.
pub fn sums_line(hash: &str, key: &str) -> String {
    if key.contains('\\') || key.contains('\n') || key.contains('\r') {
        let escaped = key.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r");
        format!("\\{hash}  {escaped}\n")
    } else {
        format!("{hash}  {key}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference RFC 6962 MTH, recursive, for comparison.
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn streaming_root_equals_the_recursive_definition() {
        for n in 0..40 {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&format!("k{i}"), i, "00")).collect();
            let mut b = MerkleBuilder::default();
            leaves.iter().for_each(|l| b.push(*l));
            assert_eq!(b.root(), mth(&leaves), "n = {n}");
        }
    }

    #[test]
    fn sums_lines_escape_like_gnu() {
        assert_eq!(sums_line("ab", "a b/ü"), "ab  a b/ü\n");
        assert_eq!(sums_line("ab", "a\nb"), "\\ab  a\\nb\n");
    }
}
