//! The auditor's re-hash of one object in a store: the bytes are read here (store I/O
//! is the orchestrator's) and hashed by the verifier's `sha2` stream
//! ([`relocate_verifier::hash`]), never by the copy engine's two-stream kernel, so a
//! bug in one implementation cannot hide itself in the other. BLAKE3 manifests hash
//! with the `blake3` crate.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use plans::ChecksumAlgorithm;
use relocate_verifier::hash::Sha256Stream;

/// Lowercase hex digest of object `key` in `store`.
pub async fn hash_object(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    algorithm: ChecksumAlgorithm,
) -> object_store::Result<String> {
    let mut stream = store
        .get(&crate::transfer::key_path(key))
        .await?
        .into_stream();
    match algorithm {
        ChecksumAlgorithm::Blake3 => {
            let mut hasher = blake3::Hasher::new();
            while let Some(chunk) = stream.try_next().await? {
                hasher.update(&chunk);
            }
            Ok(hasher.finalize().to_hex().to_string())
        }
        ChecksumAlgorithm::Sha256 => {
            let mut hasher = Sha256Stream::new();
            while let Some(chunk) = stream.try_next().await? {
                hasher.update(&chunk);
            }
            Ok(hasher.finish_hex())
        }
    }
}
