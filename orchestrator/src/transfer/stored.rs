//! The store's own checksum of an object, read without downloading it, for
//! `verify: { mode: checksum }`.
//!
//! relocate's S3 uploads carry `x-amz-checksum-sha256`, so S3 checks each body on arrival
//! and keeps the SHA-256 of every single-part object: the manifest's hash, computed by
//! the server over the bytes it stored. object_store 0.14 sends that header but reads no
//! checksum back (`head` gives size, ETag and time only), so the `HEAD` that asks for it
//! (`x-amz-checksum-mode: ENABLED`) is presigned with the store's own credentials through
//! object_store's [`Signer`] (the header bound into the signature) and sent here. A
//! multipart object's checksum is a composite of its parts' (`…-N`, type `COMPOSITE`),
//! which the manifest's whole-object hash cannot be compared with (an ETag ending in `-N`
//! marks a multipart object too: moto answers a composite checksum without the suffix,
//! and an unmarked one would be a false mismatch); such an object, one
//! written without a checksum, or a store that refuses the request, is re-read instead.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use object_store::path::Path;
use object_store::signer::{HeaderName, HeaderValue, Method, SignedUrlOptions, Signer};

/// What the store says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The SHA-256 the store keeps for the whole object, hex.
    Sha256(String),
    /// The object exists but the store keeps no whole-object SHA-256 for it (or would
    /// not say): re-read it.
    Unknown(String),
    /// The store has no such object.
    Missing,
}

/// Reads stored checksums of one S3 store.
#[derive(Debug)]
pub struct StoredChecksums {
    signer: Arc<dyn Signer>,
    prefix: Path,
    http: reqwest::Client,
}

/// How long a presigned `HEAD` stays valid (it is sent at once).
const VALID_FOR: Duration = Duration::from_secs(300);

const CHECKSUM_MODE: &str = "x-amz-checksum-mode";
const CHECKSUM_SHA256: &str = "x-amz-checksum-sha256";
const CHECKSUM_TYPE: &str = "x-amz-checksum-type";
const ETAG: &str = "etag";

impl StoredChecksums {
    /// For the store whose client is `signer` (paths relative to the bucket) at `prefix`.
    pub fn new(signer: Arc<dyn Signer>, prefix: Path) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            signer,
            prefix,
            http,
        }
    }

    /// The stored SHA-256 of `key` (relative to the store's prefix).
    pub async fn sha256(&self, key: &str) -> Stored {
        let key = super::key_path(key);
        let path = Path::from_iter(self.prefix.parts().chain(key.parts()));
        let options = SignedUrlOptions::default().with_signed_header(
            HeaderName::from_static(CHECKSUM_MODE),
            HeaderValue::from_static("ENABLED"),
        );
        let url = match self
            .signer
            .signed_url_opts(Method::HEAD, &path, VALID_FOR, &options)
            .await
        {
            Ok(url) => url,
            Err(e) => return Stored::Unknown(format!("cannot presign the request: {e}")),
        };
        // The presigned URL holds a signature: never let it reach a message.
        let response = match self
            .http
            .head(url)
            .header(CHECKSUM_MODE, "ENABLED")
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Stored::Unknown(e.without_url().to_string()),
        };
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Stored::Missing;
        }
        if !response.status().is_success() {
            return Stored::Unknown(format!("HEAD answered {}", response.status()));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if header(ETAG).is_some_and(|e| e.contains('-')) {
            return Stored::Unknown("a multipart object (its ETag ends in -N)".into());
        }
        from_headers(header(CHECKSUM_SHA256), header(CHECKSUM_TYPE))
    }
}

/// The whole-object SHA-256 from a `HEAD`'s checksum headers, if they hold one.
fn from_headers(sha256: Option<String>, kind: Option<String>) -> Stored {
    let Some(value) = sha256 else {
        return Stored::Unknown("the store keeps no SHA-256 for it".into());
    };
    if value.contains('-') || kind.is_some_and(|k| !k.eq_ignore_ascii_case("FULL_OBJECT")) {
        return Stored::Unknown("its SHA-256 is a composite of its parts' (multipart)".into());
    }
    match base64::engine::general_purpose::STANDARD.decode(value.trim()) {
        Ok(digest) if digest.len() == 32 => Stored::Sha256(hex::encode(digest)),
        _ => Stored::Unknown(format!("unreadable x-amz-checksum-sha256 `{value}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_object_sha256_is_taken() {
        // SHA-256 of "hello".
        let hello = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
        assert_eq!(
            from_headers(Some(hello.into()), None),
            Stored::Sha256(
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into()
            )
        );
        assert_eq!(
            from_headers(Some(hello.into()), Some("FULL_OBJECT".into())),
            from_headers(Some(hello.into()), None)
        );
        for (value, kind) in [
            (Some(format!("{hello}-3")), None),
            (Some(hello.to_owned()), Some("COMPOSITE".to_owned())),
            (None, None),
            (Some("not base64!".to_owned()), None),
            (Some("aGVsbG8=".to_owned()), None),
        ] {
            assert!(
                matches!(
                    from_headers(value.clone(), kind.clone()),
                    Stored::Unknown(_)
                ),
                "{value:?} {kind:?}"
            );
        }
    }
}
