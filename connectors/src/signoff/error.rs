//! The error type of the signing side: secret key files, randomness, and everything
//! the auditor's verifier ([`relocate_verifier::VerifyError`]) refuses. Hook failures
//! ([`super::hook::HookError`]) and refused approvals
//! ([`super::approval::ApprovalRefused`]) have their own types because callers act on
//! them differently. No variant ever carries secret key material.

use std::path::PathBuf;

/// Why a key, an envelope or a statement could not be read, written, signed or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignoffError {
    /// A secret key file does not hold `ed25519-secret:<base64 of a 32-byte seed>`.
    /// The file's content is deliberately not part of the message.
    #[error("invalid secret key file {}: {reason}", path.display())]
    InvalidSecretKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },

    /// A key file could not be read or written.
    #[error("key file {}: {source}", path.display())]
    KeyIo {
        /// The key file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// `keys generate` refuses to overwrite an existing key file.
    #[error("{} already exists; refusing to overwrite a key (move it away or choose another name)", path.display())]
    KeyExists {
        /// The file that exists.
        path: PathBuf,
    },

    /// The operating system's random number generator failed.
    #[error("cannot draw randomness for a new key: {reason}")]
    Random {
        /// The OS error, as text.
        reason: String,
    },

    /// A public key, envelope or statement that cannot be read, or a signature that
    /// does not hold (the auditor's verifier's error, shared by the signing side).
    #[error(transparent)]
    Verify(#[from] relocate_verifier::VerifyError),
}
