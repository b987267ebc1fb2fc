//! Redaction where store errors are made: a wrapper around every client a store opens.
//!
//! A server may echo a credential in an error body (S3's 403 names the access key id and
//! can repeat the session token), and a transport error prints the request URL with its SAS
//! query. Every caller (copy, verify, listing, pre-flight, the auditor's checks) turns such
//! errors into text that reaches stderr, evidence or `state.db`. Redacting at each of those
//! edges missed some; so [`RedactingStore`] rewrites every `object_store::Error` the client
//! returns, from every method, multipart upload and byte stream, before anyone sees it.
//!
//! The rewrite keeps what callers match on: the error's variant and path (`NotFound`,
//! `AlreadyExists`, `Precondition`, …) and, for transport failures, an [`HttpError`] of the
//! same kind; only texts change, each level of the source chain passed through the store's
//! [`Redactor`].

use std::error::Error as StdError;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::client::HttpError;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

use super::Redactor;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An [`ObjectStore`] whose errors never carry the store's credentials.
pub(crate) struct RedactingStore {
    inner: Arc<dyn ObjectStore>,
    redactor: Arc<Redactor>,
}

impl RedactingStore {
    /// Wrap `inner`; every error it returns is rewritten through `redactor`.
    pub(crate) fn wrap(
        inner: Arc<dyn ObjectStore>,
        redactor: Arc<Redactor>,
    ) -> Arc<dyn ObjectStore> {
        Arc::new(Self { inner, redactor })
    }

    fn clean(&self, error: object_store::Error) -> object_store::Error {
        redact_error(&self.redactor, error)
    }
}

// object_store's own `Debug` and `Display` of cloud clients print the access key id.
impl fmt::Debug for RedactingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RedactingStore({})",
            self.redactor.redact(&format!("{:?}", self.inner))
        )
    }
}

impl fmt::Display for RedactingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redactor.redact(&self.inner.to_string()))
    }
}

/// `error` with every text in it, at every level of its source chain, redacted.
pub(crate) fn redact_error(redactor: &Redactor, error: object_store::Error) -> object_store::Error {
    use object_store::Error as E;
    let clean = |source: BoxError| redact_source(redactor, source.as_ref());
    match error {
        E::Generic { store, source } => E::Generic {
            store,
            source: clean(source),
        },
        E::NotFound { path, source } => E::NotFound {
            path: redactor.redact(&path),
            source: clean(source),
        },
        E::NotSupported { source } => E::NotSupported {
            source: clean(source),
        },
        E::AlreadyExists { path, source } => E::AlreadyExists {
            path: redactor.redact(&path),
            source: clean(source),
        },
        E::Precondition { path, source } => E::Precondition {
            path: redactor.redact(&path),
            source: clean(source),
        },
        E::NotModified { path, source } => E::NotModified {
            path: redactor.redact(&path),
            source: clean(source),
        },
        E::PermissionDenied { path, source } => E::PermissionDenied {
            path: redactor.redact(&path),
            source: clean(source),
        },
        E::Unauthenticated { path, source } => E::Unauthenticated {
            path: redactor.redact(&path),
            source: clean(source),
        },
        E::NotImplemented {
            operation,
            implementer,
        } => E::NotImplemented {
            operation: redactor.redact(&operation),
            implementer: redactor.redact(&implementer),
        },
        // Invalid paths, join errors and configuration keys hold no server text; an
        // unknown future variant is kept only as redacted text.
        e @ (E::InvalidPath { .. } | E::JoinError { .. } | E::UnknownConfigurationKey { .. }) => e,
        other => E::Generic {
            store: "relocate",
            source: Box::new(RedactedError::of(redactor, &other)),
        },
    }
}

/// A redacted copy of `source` and its chain; an [`HttpError`] stays one, of the same kind,
/// so callers can still tell a refused connection from a refused request.
fn redact_source(redactor: &Redactor, source: &(dyn StdError + 'static)) -> BoxError {
    if let Some(http) = source.downcast_ref::<HttpError>() {
        let inner: BoxError = match http.source() {
            Some(cause) => redact_source(redactor, cause),
            None => Box::new(RedactedError::text(redactor.redact(&http.to_string()))),
        };
        return Box::new(HttpError::new_boxed(http.kind(), inner));
    }
    Box::new(RedactedError::of(redactor, source))
}

/// An error's text and its chain, redacted.
#[derive(Debug)]
pub(crate) struct RedactedError {
    message: String,
    source: Option<BoxError>,
}

impl RedactedError {
    fn text(message: String) -> Self {
        Self {
            message,
            source: None,
        }
    }

    fn of(redactor: &Redactor, error: &(dyn StdError + 'static)) -> Self {
        Self {
            message: redactor.redact(&error.to_string()),
            source: error.source().map(|s| redact_source(redactor, s)),
        }
    }
}

impl fmt::Display for RedactedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for RedactedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

fn clean_stream<T: Send + 'static>(
    redactor: Arc<Redactor>,
    stream: BoxStream<'static, object_store::Result<T>>,
) -> BoxStream<'static, object_store::Result<T>> {
    stream
        .map(move |item| item.map_err(|e| redact_error(&redactor, e)))
        .boxed()
}

#[async_trait]
impl ObjectStore for RedactingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await;
        result.map_err(|e| self.clean(e))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        match self.inner.put_multipart_opts(location, opts).await {
            Ok(upload) => Ok(Box::new(RedactingUpload {
                inner: upload,
                redactor: Arc::clone(&self.redactor),
            })),
            Err(e) => Err(self.clean(e)),
        }
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let mut result = self
            .inner
            .get_opts(location, options)
            .await
            .map_err(|e| self.clean(e))?;
        if let GetResultPayload::Stream(stream) = result.payload {
            result.payload =
                GetResultPayload::Stream(clean_stream(Arc::clone(&self.redactor), stream));
        }
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let result = self.inner.get_ranges(location, ranges).await;
        result.map_err(|e| self.clean(e))
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        clean_stream(
            Arc::clone(&self.redactor),
            self.inner.delete_stream(locations),
        )
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        clean_stream(Arc::clone(&self.redactor), self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        clean_stream(
            Arc::clone(&self.redactor),
            self.inner.list_with_offset(prefix, offset),
        )
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let result = self.inner.list_with_delimiter(prefix).await;
        result.map_err(|e| self.clean(e))
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let result = self.inner.copy_opts(from, to, options).await;
        result.map_err(|e| self.clean(e))
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        let result = self.inner.rename_opts(from, to, options).await;
        result.map_err(|e| self.clean(e))
    }
}

/// A multipart upload whose part, completion and abort errors are redacted.
struct RedactingUpload {
    inner: Box<dyn MultipartUpload>,
    redactor: Arc<Redactor>,
}

impl fmt::Debug for RedactingUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedactingUpload")
    }
}

#[async_trait]
impl MultipartUpload for RedactingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let redactor = Arc::clone(&self.redactor);
        let part = self.inner.put_part(data);
        Box::pin(async move { part.await.map_err(|e| redact_error(&redactor, e)) })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let result = self.inner.complete().await;
        result.map_err(|e| redact_error(&self.redactor, e))
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let result = self.inner.abort().await;
        result.map_err(|e| redact_error(&self.redactor, e))
    }
}
