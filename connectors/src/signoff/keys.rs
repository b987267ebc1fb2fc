//! Approver and operator key pairs: Ed25519 keys in relocate's one-line text forms,
//! `ed25519:<base64>` for public keys (what a plan pins) and
//! `ed25519-secret:<base64 seed>` for secret key files (mode 0600, never overwritten,
//! never printed). Key ids are short SHA-256 fingerprints used as DSSE `keyid` hints.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::SignoffError;

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// An Ed25519 public key, as pinned in a plan.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parse `ed25519:<base64-std of 32 bytes>`.
    pub fn parse(text: &str) -> Result<Self, SignoffError> {
        let invalid = |reason: &str| SignoffError::InvalidPublicKey {
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
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(message, &sig).is_ok()
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
    type Err = SignoffError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An Ed25519 signing key. Its `Debug` shows only the key id; it has no `Display`.
/// The bytes are zeroized on drop by `ed25519-dalek`.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A key from a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, SignoffError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SignoffError::Random {
            reason: e.to_string(),
        })?;
        let key = Self::from_seed(&seed);
        seed.fill(0);
        Ok(key)
    }

    /// Read a key file (`ed25519-secret:<base64-std seed>`, one line). Warns when the
    /// file is readable by group or others, since anyone who reads it can approve.
    pub fn load(path: &Path) -> Result<Self, SignoffError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignoffError::KeyIo {
            path: path.to_path_buf(),
            source,
        })?;
        warn_if_shared(path);
        Self::parse_file_text(&text, path)
    }

    fn parse_file_text(text: &str, path: &Path) -> Result<Self, SignoffError> {
        let invalid = |reason: &str| SignoffError::InvalidSecretKey {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let b64 = text
            .trim_end_matches(['\n', '\r'])
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| invalid("missing the `ed25519-secret:` prefix"))?;
        let seed = STANDARD
            .decode(b64)
            .map_err(|_| invalid("the key is not valid base64"))?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| invalid("the seed is not 32 bytes"))?;
        Ok(Self::from_seed(&seed))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Sign raw bytes (callers sign DSSE PAE bytes, never bare payloads).
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }

    fn file_text(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("key_id", &self.public().key_id())
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "secret key file is readable by group or others; run `chmod 600` on it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Generate a key pair: `<out>.key` (secret, created with mode 0600) and `<out>.pub`
/// (`ed25519:<base64>`). Refuses to overwrite either file.
pub fn generate_keypair(out: &Path) -> Result<PublicKey, SignoffError> {
    let key_path = with_suffix(out, ".key");
    let pub_path = with_suffix(out, ".pub");
    for path in [&key_path, &pub_path] {
        if path.exists() {
            return Err(SignoffError::KeyExists { path: path.clone() });
        }
    }
    let key = SecretKey::generate()?;
    let public = key.public();
    write_new_file(&key_path, key.file_text().as_bytes(), 0o600)?;
    write_new_file(&pub_path, format!("{public}\n").as_bytes(), 0o644)?;
    Ok(public)
}

fn with_suffix(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Create `path` (never replacing an existing file) with `mode` from the start, so a
/// secret is never briefly world-readable.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), SignoffError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let io_err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            SignoffError::KeyExists {
                path: path.to_path_buf(),
            }
        } else {
            SignoffError::KeyIo {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut file = options.open(path).map_err(io_err)?;
    file.write_all(contents).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_text_roundtrips_and_key_id_is_sha256_prefix() {
        let key = SecretKey::from_seed(&[7; 32]);
        let public = key.public();
        let text = public.to_string();
        assert!(text.starts_with("ed25519:"));
        assert_eq!(PublicKey::parse(&text).expect("parses"), public);
        let expected = hex::encode(&Sha256::digest(public.verifying_key().as_bytes())[..8]);
        assert_eq!(public.key_id(), expected);
        assert_eq!(public.key_id().len(), 16);
    }

    #[test]
    fn public_key_parse_refuses_bad_input() {
        for bad in ["", "ed25519:", "rsa:AAAA", "ed25519:!!!", "ed25519:AAAA"] {
            assert!(
                matches!(
                    PublicKey::parse(bad),
                    Err(SignoffError::InvalidPublicKey { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn secret_key_debug_hides_the_seed() {
        let key = SecretKey::from_seed(&[9; 32]);
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.public().key_id()));
        assert!(!debug.contains(&STANDARD.encode([9u8; 32])));
        assert!(!key.file_text().is_empty());
    }

    #[test]
    fn generate_writes_0600_key_that_loads_and_refuses_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("alice");
        let public = generate_keypair(&out).expect("generate");

        let key = SecretKey::load(&dir.path().join("alice.key")).expect("load");
        assert_eq!(key.public(), public);
        let pub_text = std::fs::read_to_string(dir.path().join("alice.pub")).expect("pub");
        assert_eq!(pub_text, format!("{public}\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join("alice.key")).expect("meta");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }

        let before = std::fs::read(dir.path().join("alice.key")).expect("read");
        let again = generate_keypair(&out);
        assert!(
            matches!(again, Err(SignoffError::KeyExists { .. })),
            "{again:?}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("alice.key")).expect("read"),
            before
        );
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = SecretKey::generate().expect("a").public();
        let b = SecretKey::generate().expect("b").public();
        assert_ne!(a, b);
    }

    #[test]
    fn load_refuses_garbage_without_echoing_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "ed25519-secret:c2VjcmV0LXNob3J0\n").expect("write");
        let err = SecretKey::load(&path).expect_err("short seed refused");
        assert!(matches!(err, SignoffError::InvalidSecretKey { .. }));
        assert!(!err.to_string().contains("c2VjcmV0LXNob3J0"));
        let missing = SecretKey::load(&dir.path().join("nope.key"));
        assert!(matches!(missing, Err(SignoffError::KeyIo { .. })));
    }
}
