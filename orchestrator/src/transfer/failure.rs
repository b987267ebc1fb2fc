//! Why one object did not copy: a typed failure that keeps its cause, so callers match
//! on what happened instead of reading text, and the message names the store and the
//! side (reading or writing) it came from.

/// Why one object did not copy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyFailure {
    /// The source no longer has it (deleted between listing and reading).
    #[error("the source no longer has it")]
    Vanished,
    /// Reading from the source failed.
    #[error("reading from {store}: {source}")]
    Read {
        /// The source store, for messages.
        store: String,
        /// The cause.
        #[source]
        source: Cause,
    },
    /// Writing to the target failed.
    #[error("writing to {store}: {source}")]
    Write {
        /// The target store, for messages.
        store: String,
        /// The cause.
        #[source]
        source: Cause,
    },
    /// The source gave a different number of bytes than its listing announced.
    #[error("reading from {store}: {key}: read {read} bytes but the source announced {announced}")]
    Short {
        /// The source store, for messages.
        store: String,
        /// The object.
        key: String,
        /// Bytes read.
        read: u64,
        /// Bytes the listing announced.
        announced: u64,
    },
    /// A local store cannot hold this key: object_store's local file store keeps
    /// `name#digits` for its staging files and neither reads nor writes such a name.
    #[error(
        "`{key}` is named like a staging file (`name#digits`), which object_store's local \
         file store neither reads nor writes: rename it at the source, or exclude it"
    )]
    StagingName {
        /// The object.
        key: String,
    },
}

/// What a read or a write failed on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// The store's client.
    #[error(transparent)]
    Store(#[from] object_store::Error),
    /// A local file.
    #[error(transparent)]
    File(#[from] std::io::Error),
}

impl CopyFailure {
    /// A read from `store` failed.
    pub(crate) fn read(store: &str, cause: impl Into<Cause>) -> Self {
        CopyFailure::Read {
            store: store.to_owned(),
            source: cause.into(),
        }
    }

    /// A write to `store` failed.
    pub(crate) fn write(store: &str, cause: impl Into<Cause>) -> Self {
        CopyFailure::Write {
            store: store.to_owned(),
            source: cause.into(),
        }
    }
}
