//! Streaming object hashes: SHA-256 (default) or BLAKE3.
//!
//! A SHA-256 hash of one stream goes through the `sha2` crate: the object paths, the
//! target hashing that `relocate verify` does for the auditor, every object read alone.
//! Only two objects read side by side (the local copy and verify, `local::lanes`) are
//! hashed together through `sha256x2`, whose interleaved kernel is measured 1.5–1.8×
//! faster per core there. One stream gains nothing from it (`sha2` uses the same SHA
//! extensions at the same speed), so a bug in the hand-written kernel could only ever
//! touch the operator's local fast path, and the auditor's `sha2` would see it.
//!
//! A SHA-256 hasher settles on its implementation when first fed: [`ObjectHasher::update`]
//! makes it a `sha2` one; [`ObjectHasher::update_pair`] and
//! [`ObjectHasher::update_between_pairs`] make it a `sha256x2` one. It keeps that to the
//! end, as a hash cannot move between the two; so an object that a lane hashes alone after
//! its partner ended finishes on `sha256x2`'s one-stream path.

use plans::ChecksumAlgorithm;
use sha2::Digest;
use sha256x2::Sha256Stream;

/// A hash computed incrementally as an object's bytes flow past.
pub struct ObjectHasher(Kind);

enum Kind {
    /// SHA-256, not fed yet: alone or paired is decided by the first feed.
    Sha256Unfed,
    /// SHA-256 of one stream (`sha2`).
    Sha256(sha2::Sha256),
    /// SHA-256 of a stream hashed side by side with another (`sha256x2`).
    Sha256Paired(Sha256Stream),
    /// BLAKE3.
    Blake3(Box<blake3::Hasher>),
}

/// Which implementation a hasher runs on, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// SHA-256, nothing fed yet.
    Sha256Unfed,
    /// SHA-256 on the `sha2` crate.
    Sha2,
    /// SHA-256 on `sha256x2`, paired with another object.
    Sha256x2,
    /// BLAKE3 on the `blake3` crate.
    Blake3,
}

impl std::fmt::Debug for ObjectHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectHasher({:?})", self.implementation())
    }
}

impl ObjectHasher {
    /// A fresh hasher for the algorithm.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        ObjectHasher(match algorithm {
            ChecksumAlgorithm::Sha256 => Kind::Sha256Unfed,
            ChecksumAlgorithm::Blake3 => Kind::Blake3(Box::new(blake3::Hasher::new())),
        })
    }

    /// Which implementation hashes this object.
    pub fn implementation(&self) -> Implementation {
        match self.0 {
            Kind::Sha256Unfed => Implementation::Sha256Unfed,
            Kind::Sha256(_) => Implementation::Sha2,
            Kind::Sha256Paired(_) => Implementation::Sha256x2,
            Kind::Blake3(_) => Implementation::Blake3,
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            Kind::Sha256Unfed if bytes.is_empty() => {}
            Kind::Sha256Unfed => self.0 = Kind::Sha256(sha2::Sha256::new_with_prefix(bytes)),
            Kind::Sha256(h) => h.update(bytes),
            Kind::Sha256Paired(h) => h.update(bytes),
            Kind::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    /// Feed `x` to `a` and `y` to `b`, side by side (`sha256x2`, 1.5–1.8× faster per core
    /// than one after the other) when both are SHA-256 hashers not fed alone before. A
    /// SHA-256 hasher fed here first stays on `sha256x2`, ready to pair again.
    pub fn update_pair(a: &mut Self, x: &[u8], b: &mut Self, y: &[u8]) {
        if let (Some(sa), Some(sb)) = (a.paired(), b.paired()) {
            Sha256Stream::update_pair(sa, x, sb, y);
        } else {
            a.update(x);
            b.update(y);
        }
    }

    /// Feed one object of a pair whose partner has nothing to hash this time (it has just
    /// ended, and another will take its place): like [`Self::update`], but a SHA-256
    /// hasher fed here first goes on `sha256x2`, to be paired with the next.
    pub fn update_between_pairs(&mut self, bytes: &[u8]) {
        match self.paired() {
            Some(h) => h.update(bytes),
            None => self.update(bytes),
        }
    }

    /// The `sha256x2` stream of a SHA-256 hasher paired before or not fed yet.
    fn paired(&mut self) -> Option<&mut Sha256Stream> {
        if let Kind::Sha256Unfed = self.0 {
            self.0 = Kind::Sha256Paired(Sha256Stream::default());
        }
        match &mut self.0 {
            Kind::Sha256Paired(h) => Some(h),
            _ => None,
        }
    }

    /// Lowercase hex digest.
    pub fn finish_hex(self) -> String {
        match self.0 {
            Kind::Sha256Unfed => hex::encode(sha2::Sha256::digest([])),
            Kind::Sha256(h) => hex::encode(h.finalize()),
            Kind::Sha256Paired(h) => hex::encode(h.finish()),
            Kind::Blake3(h) => h.finalize().to_hex().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_digests() {
        let mut h = ObjectHasher::new(ChecksumAlgorithm::Sha256);
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.finish_hex(), ABC);
        let h = ObjectHasher::new(ChecksumAlgorithm::Sha256);
        assert_eq!(h.finish_hex(), EMPTY);
        let h = ObjectHasher::new(ChecksumAlgorithm::Blake3);
        assert_eq!(
            h.finish_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    /// Issue 13, "the auditor's verifier is independent of the operator's fast path": a
    /// single stream (the object paths, `verify`'s target hashing) hashes with `sha2`.
    #[test]
    fn auditor_independence_a_single_stream_hashes_with_sha2() {
        let mut h = ObjectHasher::new(ChecksumAlgorithm::Sha256);
        assert_eq!(h.implementation(), Implementation::Sha256Unfed);
        h.update(b"");
        assert_eq!(h.implementation(), Implementation::Sha256Unfed);
        h.update(b"ab");
        assert_eq!(h.implementation(), Implementation::Sha2);
        h.update(b"c");
        assert_eq!(h.implementation(), Implementation::Sha2);
        assert_eq!(h.finish_hex(), ABC);
    }

    #[test]
    fn auditor_independence_only_pairs_hash_with_sha256x2() {
        let sha256 = || ObjectHasher::new(ChecksumAlgorithm::Sha256);
        // Two fresh SHA-256 hashers: interleaved, then each can go on alone.
        let (mut a, mut b) = (sha256(), sha256());
        ObjectHasher::update_pair(&mut a, b"ab", &mut b, b"");
        assert_eq!(a.implementation(), Implementation::Sha256x2);
        assert_eq!(b.implementation(), Implementation::Sha256x2);
        a.update(b"c");
        assert_eq!((a.finish_hex(), b.finish_hex()), (ABC.into(), EMPTY.into()));
        // A hasher fed alone before stays on `sha2`; its fresh partner goes on
        // `sha256x2`, ready for the next pair.
        let (mut a, mut b) = (sha256(), sha256());
        a.update(b"a");
        ObjectHasher::update_pair(&mut a, b"bc", &mut b, b"ab");
        assert_eq!(a.implementation(), Implementation::Sha2);
        assert_eq!(b.implementation(), Implementation::Sha256x2);
        let mut c = sha256();
        ObjectHasher::update_pair(&mut b, b"c", &mut c, b"abc");
        assert_eq!(c.implementation(), Implementation::Sha256x2);
        let digests = [a.finish_hex(), b.finish_hex(), c.finish_hex()];
        assert_eq!(digests, [ABC, ABC, ABC]);
        // Between pairs: a fresh hasher goes on `sha256x2`, one fed alone stays on `sha2`.
        let mut d = sha256();
        d.update_between_pairs(b"ab");
        assert_eq!(d.implementation(), Implementation::Sha256x2);
        let mut e = sha256();
        e.update(b"a");
        e.update_between_pairs(b"bc");
        assert_eq!(e.implementation(), Implementation::Sha2);
        d.update(b"c");
        assert_eq!([d.finish_hex(), e.finish_hex()], [ABC, ABC]);
        // A BLAKE3 partner: each alone, the SHA-256 one ready for the next pair.
        let (mut a, mut b) = (sha256(), ObjectHasher::new(ChecksumAlgorithm::Blake3));
        ObjectHasher::update_pair(&mut a, b"abc", &mut b, b"abc");
        assert_eq!(a.implementation(), Implementation::Sha256x2);
        assert_eq!(a.finish_hex(), ABC);
        assert_eq!(b.finish_hex(), blake3::hash(b"abc").to_hex().to_string());
    }
}
