//! The auditor's object hashing: SHA-256 from the `sha2` crate, fed the bytes the
//! caller reads from a store. The operator's copy and verify steps hash with their own
//! two-stream kernel; the auditor's check deliberately does not, so a bug in one cannot
//! hide itself in the other.

use sha2::{Digest, Sha256};

/// Streaming SHA-256 of one object.
#[derive(Debug, Clone, Default)]
pub struct Sha256Stream(Sha256);

impl Sha256Stream {
    /// A new, empty hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Lowercase hex of the digest, as manifests write it.
    pub fn finish_hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_tagged(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nist_short_vectors() {
        let empty = Sha256Stream::new().finish_hex();
        assert_eq!(
            empty,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut abc = Sha256Stream::new();
        abc.update(b"a");
        abc.update(b"bc");
        assert_eq!(
            abc.finish_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
