//! The one error type of the store layer, named by what went wrong for the operator.
//!
//! Every variant names the plan's store and its credential-free URL. No variant ever carries a
//! secret: texts that come from a client library are passed through [`super::Redactor`] first,
//! and secret resolution errors name the option key, never its value.

use std::path::PathBuf;

/// Why a store could not be opened or reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store's URL cannot be parsed or names an unsupported scheme.
    #[error("store `{store}`: invalid url `{url}`: {reason}")]
    InvalidUrl {
        /// The plan's name for the store.
        store: String,
        /// The URL without credentials.
        url: String,
        /// What is wrong with it and how to fix it.
        reason: String,
    },
    /// A `${env:…}` or `${file:…}` option value could not be resolved.
    #[error("store `{store}`: option `{key}`: {reason}")]
    Secret {
        /// The plan's name for the store.
        store: String,
        /// The option key whose value could not be resolved.
        key: String,
        /// Why (names the variable or file, never a value).
        reason: String,
    },
    /// An option key that the store's backend does not know (a typo would otherwise be ignored).
    #[error("store `{store}`: unknown option `{key}` for a {backend} store")]
    UnknownOption {
        /// The plan's name for the store.
        store: String,
        /// The option key as written.
        key: String,
        /// The backend the URL selected (`s3`, `azure`, `gcs`, `local`, `memory`).
        backend: &'static str,
    },
    /// A `multipart` or `retry` setting that cannot be used.
    #[error("store `{store}`: {setting}: {reason}")]
    InvalidSetting {
        /// The plan's name for the store.
        store: String,
        /// The setting, e.g. `multipart.partSize`.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The client library refused the configuration (missing bucket, bad key format, …).
    #[error("store `{store}` ({url}): cannot configure the client: {reason}")]
    Build {
        /// The plan's name for the store.
        store: String,
        /// The URL without credentials.
        url: String,
        /// The library's reason, with every secret value redacted.
        reason: String,
    },
    /// The bucket, container or local directory does not exist.
    #[error("store `{store}` ({url}): not found: {reason}")]
    NotFound {
        /// The plan's name for the store.
        store: String,
        /// The URL without credentials.
        url: String,
        /// What is missing.
        reason: String,
    },
    /// The server refused the credentials (HTTP 401 or 403).
    #[error(
        "store `{store}` ({url}): access denied — check the credentials and permissions given in the plan: {reason}"
    )]
    Denied {
        /// The plan's name for the store.
        store: String,
        /// The URL without credentials.
        url: String,
        /// The server's reason, with every secret value redacted.
        reason: String,
    },
    /// The endpoint could not be reached (connection refused, DNS, timeout).
    #[error("store `{store}` ({url}): unreachable — check the endpoint and the network: {reason}")]
    Unreachable {
        /// The plan's name for the store.
        store: String,
        /// The URL without credentials.
        url: String,
        /// The transport's reason, with every secret value redacted.
        reason: String,
    },
    /// The local directory behind a `file://` store could not be created or read.
    #[error("store `{store}`: local directory {}: {source}", path.display())]
    Io {
        /// The plan's name for the store.
        store: String,
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Any other failure of the pre-flight request.
    #[error("store `{store}` ({url}): pre-flight listing failed: {reason}")]
    Other {
        /// The plan's name for the store.
        store: String,
        /// The URL without credentials.
        url: String,
        /// The library's reason, with every secret value redacted.
        reason: String,
    },
}
