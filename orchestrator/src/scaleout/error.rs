//! Errors of a sharded run, each naming what it concerns.

use crate::state::StateError;
use crate::transfer::TransferError;

/// Why a sharded step, or a worker, stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaleError {
    /// The state store could not be read or written.
    #[error("state store: {what} {path}: {source}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// The object's path in the state store.
        path: String,
        /// The cause.
        #[source]
        source: object_store::Error,
    },
    /// A local file of the exchange could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A document could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A file in the state store is not what relocate wrote.
    #[error("{path} is not a valid {what}: {detail}")]
    Corrupt {
        /// The object's path.
        path: String,
        /// What it should be.
        what: &'static str,
        /// Why not.
        detail: String,
    },
    /// The order does not fit the plan it carries, or this worker.
    #[error("work order {path}: {detail}")]
    Order {
        /// The order's path.
        path: String,
        /// Why.
        detail: String,
    },
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The copy engine stopped.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// A store of the plan could not be opened.
    #[error("store {store}: {source}")]
    OpenStore {
        /// Its name.
        store: String,
        /// The cause.
        #[source]
        source: connectors::store::StoreError,
    },
    /// The workers could not be started or followed.
    #[error("workers: {0}")]
    Executor(String),
    /// The Kubernetes cluster refused or failed.
    #[error("workers in cluster {cluster}: {source}")]
    Kube {
        /// The plan's cluster name.
        cluster: String,
        /// The cause.
        #[source]
        source: Box<connectors::kube::KubeError>,
    },
}
