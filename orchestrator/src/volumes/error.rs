//! What can go wrong moving a volume, each naming the file, segment or claim at fault.

use std::path::PathBuf;

/// A volume move's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// A file or directory of the volume could not be read: the move fails rather than
    /// skip it.
    #[error("cannot read {path}: the volume is not moved without it")]
    Unreadable {
        /// The file, relative to the volume's root.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A name (or link target) is not UTF-8, which the manifest cannot record.
    #[error("{path:?} is not a UTF-8 name; rename it before the move")]
    NotUtf8 {
        /// The name, lossily decoded.
        path: PathBuf,
    },
    /// Writing into the target volume failed.
    #[error("cannot write {path} into the target volume")]
    Write {
        /// The file, relative to the volume's root.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An entry of the target volume that the staged manifest does not name (or names
    /// as another kind) could not be removed.
    #[error("cannot remove the stray entry {path} from the target volume")]
    Remove {
        /// The entry, relative to the volume's root.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The staging store failed.
    #[error("staging store: {what} {location}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// The object.
        location: String,
        /// Why.
        #[source]
        source: object_store::Error,
    },
    /// The staged data does not match its manifest.
    #[error("staged data is corrupt: {detail}")]
    Corrupt {
        /// What differs, naming the file and segment.
        detail: String,
    },
    /// Nothing (complete) is staged under the prefix.
    #[error("no packed volume at {prefix} in the staging store (no volume.json): pack it first")]
    NotPacked {
        /// The volume's prefix.
        prefix: String,
    },
    /// The target volume has less room than the data needs.
    #[error(
        "the target volume at {path} has {available} bytes free, the data needs {needed}: make the claim larger"
    )]
    TooSmall {
        /// The target's mount.
        path: PathBuf,
        /// Bytes still to write.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// Local scratch I/O (the manifest's temporary file).
    #[error("{what}")]
    Local {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The blocking task running the move panicked or was cancelled.
    #[error("the volume mover's task ended abnormally: {0}")]
    Task(String),
}

impl VolumeError {
    pub(crate) fn local(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| VolumeError::Local { what, source }
    }
}
