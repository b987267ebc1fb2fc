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
            let leaves: Vec<[u8; 32]> = (0..n)
                .map(|i| leaf_hash(&format!("k{i}"), i, "00"))
                .collect();
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

/// The leaf ranges `[start, end)` whose subtree roots form the RFC 6962 audit path of
/// leaf `index` in a tree of `size` leaves, deepest sibling first. Pure arithmetic, so
/// a proof can be built in one streaming pass over the manifest (see
/// [`InclusionProofBuilder`]) with memory that grows with the tree's depth only.
pub fn audit_path_ranges(index: u64, size: u64) -> Vec<std::ops::Range<u64>> {
    fn walk(index: u64, lo: u64, hi: u64, out: &mut Vec<std::ops::Range<u64>>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        // The largest power of two smaller than n splits the tree (RFC 6962 §2.1).
        let k = n.next_power_of_two() / 2;
        if index < lo + k {
            walk(index, lo, lo + k, out);
            out.push(lo + k..hi);
        } else {
            walk(index, lo + k, hi, out);
            out.push(lo..lo + k);
        }
    }
    let mut out = Vec::new();
    if index < size {
        walk(index, 0, size, &mut out);
    }
    out
}

/// Builds the inclusion proof of one leaf while the manifest's leaves stream past in
/// order: each leaf feeds the Merkle builder of the audit-path range it falls in.
#[derive(Debug)]
pub struct InclusionProofBuilder {
    index: u64,
    size: u64,
    next: u64,
    leaf: Option<[u8; 32]>,
    ranges: Vec<(std::ops::Range<u64>, MerkleBuilder)>,
}

/// An RFC 6962 inclusion proof: the leaf, its position, and the audit path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Position of the leaf, from 0.
    pub index: u64,
    /// Leaves in the tree.
    pub size: u64,
    /// The leaf hash.
    pub leaf: [u8; 32],
    /// Sibling subtree roots, deepest first.
    pub path: Vec<[u8; 32]>,
}

impl InclusionProofBuilder {
    /// A builder for leaf `index` of a tree of `size` leaves.
    pub fn new(index: u64, size: u64) -> Self {
        let ranges = audit_path_ranges(index, size)
            .into_iter()
            .map(|r| (r, MerkleBuilder::default()))
            .collect();
        Self {
            index,
            size,
            next: 0,
            leaf: None,
            ranges,
        }
    }

    /// Feed the next leaf (leaves must come in manifest order).
    pub fn push(&mut self, leaf: [u8; 32]) {
        let at = self.next;
        self.next += 1;
        if at == self.index {
            self.leaf = Some(leaf);
        } else if let Some((_, builder)) = self.ranges.iter_mut().find(|(r, _)| r.contains(&at)) {
            builder.push(leaf);
        }
    }

    /// The proof; `None` unless exactly `size` leaves were pushed.
    pub fn finish(self) -> Option<InclusionProof> {
        if self.next != self.size {
            return None;
        }
        let leaf = self.leaf?;
        let path = self.ranges.iter().map(|(_, b)| b.root()).collect();
        Some(InclusionProof {
            index: self.index,
            size: self.size,
            leaf,
            path,
        })
    }
}

impl InclusionProof {
    /// The root this proof leads to (RFC 9162 §2.1.3.2), or `None` when the path does
    /// not fit the index and size. Compare it with a signed root to prove inclusion.
    pub fn root(&self) -> Option<[u8; 32]> {
        if self.index >= self.size {
            return None;
        }
        let (mut f, mut s) = (self.index, self.size - 1);
        let mut r = self.leaf;
        for p in &self.path {
            if s == 0 {
                return None;
            }
            if f & 1 == 1 || f == s {
                r = node_hash(p, &r);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            f >>= 1;
            s >>= 1;
        }
        (s == 0).then_some(r)
    }
}

#[cfg(test)]
mod inclusion_tests {
    use super::*;

    fn leaves(n: u64) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| leaf_hash(&format!("k{i}"), i, "ab"))
            .collect()
    }

    fn prove(leaves: &[[u8; 32]], index: u64) -> InclusionProof {
        let mut b = InclusionProofBuilder::new(index, leaves.len() as u64);
        leaves.iter().for_each(|l| b.push(*l));
        b.finish().expect("all leaves pushed")
    }

    #[test]
    fn every_leaf_proves_against_the_root_for_sizes_1_to_40() {
        for n in 1..=40u64 {
            let leaves = leaves(n);
            let mut tree = MerkleBuilder::default();
            leaves.iter().for_each(|l| tree.push(*l));
            let root = tree.root();
            for i in 0..n {
                let proof = prove(&leaves, i);
                assert_eq!(proof.leaf, leaves[i as usize]);
                assert!(proof.path.len() <= 64 - (n - 1).leading_zeros() as usize);
                assert_eq!(proof.root(), Some(root), "n = {n}, i = {i}");
            }
        }
    }

    #[test]
    fn a_changed_leaf_sibling_or_position_does_not_prove() {
        let leaves = leaves(13);
        let mut tree = MerkleBuilder::default();
        leaves.iter().for_each(|l| tree.push(*l));
        let root = tree.root();
        let good = prove(&leaves, 5);

        let mut other_leaf = good.clone();
        other_leaf.leaf = leaf_hash("k5", 5, "ac");
        assert_ne!(other_leaf.root(), Some(root));

        let mut bad_sibling = good.clone();
        bad_sibling.path[1][0] ^= 1;
        assert_ne!(bad_sibling.root(), Some(root));

        let mut moved = good.clone();
        moved.index = 4;
        assert_ne!(moved.root(), Some(root));

        let mut short = good.clone();
        short.path.pop();
        assert_ne!(short.root(), Some(root));

        let mut out_of_range = good;
        out_of_range.index = 13;
        assert_eq!(out_of_range.root(), None);
    }

    #[test]
    fn a_single_leaf_tree_has_an_empty_path_and_the_leaf_as_root() {
        let leaves = leaves(1);
        let proof = prove(&leaves, 0);
        assert!(proof.path.is_empty());
        assert_eq!(proof.root(), Some(leaves[0]));
    }

    #[test]
    fn an_incomplete_stream_gives_no_proof() {
        let mut b = InclusionProofBuilder::new(2, 5);
        leaves(4).iter().for_each(|l| b.push(*l));
        assert_eq!(b.finish(), None);
    }
}
