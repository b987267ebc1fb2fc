//! The pre-flight check: one listing request per store, its failure sorted into what an
//! operator can act on (denied, unreachable, not found).

use futures::StreamExt;
use object_store::client::{HttpError, HttpErrorKind};

use super::{StoreError, StoreHandle};

/// List one entry of the store with a client that gives up within seconds. Ok means the
/// endpoint answered, the credentials were accepted for listing and the bucket exists.
pub async fn preflight(handle: &StoreHandle) -> Result<(), StoreError> {
    let mut listing = handle.probe.list(None);
    match listing.next().await {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(error)) => Err(classify(handle, &error)),
    }
}

/// What kind of failure an object_store error is, from its typed variant where object_store
/// gives one, else from the transport error or the HTTP status in its chain.
fn classify(handle: &StoreHandle, error: &object_store::Error) -> StoreError {
    let store = handle.name.clone();
    let url = handle.display_url.clone();
    let reason = handle.redact(&error.to_string());
    match kind_of(error) {
        Kind::Denied => StoreError::Denied { store, url, reason },
        Kind::NotFound => StoreError::NotFound { store, url, reason },
        Kind::Unreachable => StoreError::Unreachable { store, url, reason },
        Kind::Other => StoreError::Other { store, url, reason },
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Denied,
    NotFound,
    Unreachable,
    Other,
}

fn kind_of(error: &object_store::Error) -> Kind {
    match error {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            return Kind::Denied;
        }
        object_store::Error::NotFound { .. } => return Kind::NotFound,
        _ => {}
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<HttpError>()
            && matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout)
        {
            return Kind::Unreachable;
        }
        current = e.source();
    }
    // Listing errors reach us as `Generic` around a private retry error: its text carries the
    // status as "status code: 403 Forbidden".
    kind_from_status_text(&error.to_string())
}

fn kind_from_status_text(text: &str) -> Kind {
    let status = text
        .split("status code: ")
        .nth(1)
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok());
    match status {
        Some(401 | 403) => Kind::Denied,
        Some(404) => Kind::NotFound,
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_is_sorted() {
        let t = |s: &str| kind_from_status_text(s);
        assert_eq!(
            t(
                "Error performing list request: Server returned non-2xx status code: 403 Forbidden: <Error/>"
            ),
            Kind::Denied
        );
        assert_eq!(t("... status code: 401 Unauthorized"), Kind::Denied);
        assert_eq!(
            t("... status code: 404 Not Found: NoSuchBucket"),
            Kind::NotFound
        );
        assert_eq!(t("... status code: 500 Internal Server Error"), Kind::Other);
        assert_eq!(t("something else"), Kind::Other);
    }
}
