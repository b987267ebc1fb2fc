//! The manifest's Merkle tree, as the evidence signs its root: RFC 6962 over leaves
//! `0x00 ‖ len(key) as u64 BE ‖ key ‖ size as u64 BE ‖ hash hex`, inner nodes
//! `0x01 ‖ left ‖ right`, the root of an empty tree SHA-256 of nothing. Built in one
//! streaming pass (a stack of complete subtree roots), and the inclusion proof of one
//! leaf likewise, so memory grows with the tree's depth only.
//!
//! This is the one implementation: the operator's copy engine builds the roots it
//! signs with it too (`orchestrator::transfer::manifest`), so what the auditor
//! recomputes is by construction what the engine signed.

use sha2::{Digest, Sha256};

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
        for n in 0..=33u64 {
            let leaves = leaves(n);
            let mut tree = MerkleBuilder::default();
            leaves.iter().for_each(|l| tree.push(*l));
            assert_eq!(tree.root(), mth(&leaves), "{n} leaves");
        }
    }

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
