//! Ed25519 public keys in relocate's one-line form `ed25519:<base64>` (what a plan
//! pins), their short ids, and strict signature verification. Secret keys and signing
//! live with the signers (`connectors::signoff::keys`), never here.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::VerifyError;

/// Prefix of a public key's text form.
pub const PUBLIC_PREFIX: &str = "ed25519:";

/// An Ed25519 public key, as pinned in a plan.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parse `ed25519:<base64-std of 32 bytes>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        let invalid = |reason: &str| VerifyError::InvalidPublicKey {
            reason: reason.to_owned(),
        };
        let b64 = text
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| invalid("missing the `ed25519:` prefix"))?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|e| invalid(&format!("bad base64 ({e})")))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| invalid(&format!("{} bytes, expected 32", b.len())))?;
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| invalid("not a valid Ed25519 point"))?;
        Ok(Self(key))
    }

    /// Short fingerprint: the first 16 hex digits of SHA-256 of the raw 32 bytes. It is
    /// only a hint for choosing keys and for messages, never a security decision.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..8])
    }

    /// The underlying verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }

    /// Verify a raw signature over `message` (strict: rejects malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(message, &sig).is_ok()
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(key: VerifyingKey) -> Self {
        Self(key)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = VerifyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_parse_refuses_bad_input() {
        for bad in ["", "ed25519:", "rsa:AAAA", "ed25519:!!!", "ed25519:AAAA"] {
            assert!(
                matches!(
                    PublicKey::parse(bad),
                    Err(VerifyError::InvalidPublicKey { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn text_roundtrips_and_key_id_is_a_sha256_prefix() {
        let key = PublicKey::from(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key());
        assert_eq!(PublicKey::parse(&key.to_string()).expect("parses"), key);
        let expected = hex::encode(&Sha256::digest(key.verifying_key().as_bytes())[..8]);
        assert_eq!(key.key_id(), expected);
    }
}
