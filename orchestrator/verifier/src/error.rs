//! Why a key, an envelope or a statement cannot be read or does not verify. Refused
//! approvals and refused evidence have their own types ([`crate::approval`]) because
//! callers act on them differently.

/// A key, envelope or statement that cannot be read, or a signature that does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A public key is not `ed25519:<base64 of 32 bytes>` or not a valid curve point.
    #[error("invalid public key: {reason} (expected `ed25519:<base64 of 32 bytes>`)")]
    InvalidPublicKey {
        /// What is wrong with it.
        reason: String,
    },

    /// An envelope larger than the limit was refused before parsing.
    #[error("envelope is {size} bytes, over the {limit}-byte limit")]
    EnvelopeTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },

    /// The bytes are not a DSSE JSON envelope (malformed, truncated, bad base64).
    #[error("malformed DSSE envelope: {reason}")]
    MalformedEnvelope {
        /// What is wrong, with line and column where known.
        reason: String,
    },

    /// No signature in the envelope is by the expected key.
    #[error(
        "envelope is not signed by key {key_id} (signed by: {})",
        list(found_key_ids)
    )]
    NotSignedBy {
        /// The key we verified against.
        key_id: String,
        /// Key ids the envelope's signatures name.
        found_key_ids: Vec<String>,
    },

    /// A signature names the expected key but does not verify: the payload or its type
    /// changed after signing, or the signature was damaged.
    #[error("signature by key {key_id} does not verify: the envelope was changed after signing")]
    BadSignature {
        /// The key whose signature failed.
        key_id: String,
    },

    /// The envelope carries another kind of payload than expected.
    #[error("envelope payload type is `{found}`, expected `{expected}`")]
    WrongPayloadType {
        /// What we accept.
        expected: String,
        /// What the envelope says.
        found: String,
    },

    /// The payload is not an in-toto Statement v1.
    #[error("malformed in-toto statement: {reason}")]
    MalformedStatement {
        /// What is wrong.
        reason: String,
    },

    /// The statement's predicate is of another type than expected.
    #[error("statement predicate type is `{found}`, expected `{expected}`")]
    WrongPredicateType {
        /// What we accept.
        expected: String,
        /// What the statement says.
        found: String,
    },

    /// The predicate does not match its declared type's schema.
    #[error("malformed {predicate_type} predicate: {source}")]
    MalformedPredicate {
        /// The predicate type.
        predicate_type: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        "no key id".to_owned()
    } else {
        ids.join(", ")
    }
}
