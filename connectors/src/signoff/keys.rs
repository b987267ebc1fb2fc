//! Approver and operator key pairs: Ed25519 keys in relocate's one-line text forms,
//! `ed25519:<base64>` for public keys (what a plan pins; the type is the auditor's
//! verifier's, [`relocate_verifier::keys::PublicKey`]) and
//! `ed25519-secret:<base64 seed>` for secret key files (mode 0600, never overwritten,
//! never printed). Key ids are short SHA-256 fingerprints used as DSSE `keyid` hints.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};

use super::SignoffError;

const SECRET_PREFIX: &str = "ed25519-secret:";

pub use relocate_verifier::keys::PublicKey;

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
        PublicKey::from(self.0.verifying_key())
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
    key.save_new(out)?;
    Ok(key.public())
}

impl SecretKey {
    /// Write this key as `<out>.key` (mode 0600) and `<out>.pub`, never replacing
    /// either file (e.g. to install an operator's key into a fresh state directory).
    pub fn save_new(&self, out: &Path) -> Result<(), SignoffError> {
        let key_path = with_suffix(out, ".key");
        let pub_path = with_suffix(out, ".pub");
        write_new_file(&key_path, self.file_text().as_bytes(), 0o600)?;
        write_new_file(&pub_path, format!("{}\n", self.public()).as_bytes(), 0o644)
    }
}

fn with_suffix(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Create `path` (never replacing an existing file) with `mode` from the start, so a
/// secret is never briefly world-readable, and all at once: the bytes go to a temporary
/// file in the same directory, synced, then moved into place by a rename that refuses
/// to replace anything. A concurrent reader sees no file or the whole key, never half.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), SignoffError> {
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
    if path.exists() {
        return Err(SignoffError::KeyExists {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".relocate-key-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    // Dropped on any error below: the temporary file is removed.
    let mut temp = builder.tempfile_in(dir).map_err(io_err)?;
    temp.write_all(contents).map_err(io_err)?;
    temp.as_file().sync_all().map_err(io_err)?;
    temp.persist_noclobber(path).map_err(|e| io_err(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Make the rename durable; a failure here loses nothing already written, so it is
/// logged, not returned.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), "could not sync the key directory: {e}");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_of_a_secret_key_roundtrips_through_text() {
        let key = SecretKey::from_seed(&[7; 32]);
        let text = key.public().to_string();
        assert!(text.starts_with("ed25519:"));
        assert_eq!(PublicKey::parse(&text).expect("parses"), key.public());
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

    /// A reader polling for a key file while it is generated saw an empty or
    /// half-written `operator.key` (the file was created, then written). Now the file
    /// appears whole or not at all, and no temporary file is left behind.
    #[test]
    fn key_files_appear_whole_to_a_concurrent_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let rounds = 200;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (root, done) = (root.clone(), done.clone());
            std::thread::spawn(move || {
                let mut torn = Vec::new();
                let mut seen = 0usize;
                let mut i = 0;
                while i < rounds && !done.load(std::sync::atomic::Ordering::Relaxed) {
                    match std::fs::read_to_string(root.join(format!("k{i}.key"))) {
                        Ok(text) => {
                            seen += 1;
                            if SecretKey::parse_file_text(&text, Path::new("k")).is_err() {
                                torn.push(text.len());
                            }
                            i += 1;
                        }
                        Err(_) => std::hint::spin_loop(),
                    }
                }
                (torn, seen)
            })
        };
        for i in 0..rounds {
            generate_keypair(&root.join(format!("k{i}"))).expect("generate");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let (torn, seen) = reader.join().expect("reader");
        assert!(seen > 0, "the reader saw no key at all");
        assert!(torn.is_empty(), "partial key files seen (lengths {torn:?})");
        let names: Vec<String> = std::fs::read_dir(&root)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".key") && !n.ends_with(".pub"))
            .collect();
        assert!(names.is_empty(), "temporary files left: {names:?}");
    }

    #[test]
    fn a_refused_overwrite_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bob.pub"), "someone else's\n").expect("write");
        let key = SecretKey::from_seed(&[3; 32]);
        let err = key.save_new(&dir.path().join("bob")).expect_err("refused");
        assert!(matches!(err, SignoffError::KeyExists { .. }), "{err:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("bob.pub")).expect("read"),
            "someone else's\n"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(names.is_empty(), "temporary files left: {names:?}");
    }
}
