//! Listings read ahead of their consumer, a page at a time.
//!
//! object_store lists a local directory tree in blocking batches and S3 a page per
//! request, and neither starts the next batch until the previous one is consumed: the
//! listing and the state lookups then take turns instead of overlapping. A task drives
//! the listing here into a bounded channel, so the next pages are on their way while the
//! copy decides what to do with this one; the bound keeps memory flat whatever the
//! listing's length.

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectMeta;
use tokio::sync::mpsc;

use super::{KeyFilter, TransferError};

/// Objects per page handed to the consumer (one state lookup round per page).
pub const PAGE: usize = 1024;

/// Pages read ahead of the consumer.
const AHEAD: usize = 4;

/// One page of a listing; an error ends the listing after it.
pub type Page = Vec<object_store::Result<ObjectMeta>>;

/// The objects of a page that belong to the workload (its filter and key range). A listing
/// error stops the step, naming the store.
pub fn owned(
    page: Page,
    store: &str,
    filter: &KeyFilter,
    range: Option<&super::KeyRange>,
) -> Result<Vec<ObjectMeta>, TransferError> {
    let mut out = Vec::with_capacity(page.len());
    for item in page {
        let meta = item.map_err(|source| TransferError::List {
            store: store.to_owned(),
            source,
        })?;
        let key = meta.location.as_ref();
        if filter.matches(key) && range.is_none_or(|r| r.contains(key)) {
            out.push(meta);
        }
    }
    Ok(out)
}

/// Drive `listing` on its own task, `PAGE` objects per page, up to `AHEAD` pages ahead.
/// Dropping the returned stream stops the task at its next page.
pub fn read_ahead(
    listing: BoxStream<'static, object_store::Result<ObjectMeta>>,
) -> BoxStream<'static, Page> {
    let (tx, rx) = mpsc::channel::<Page>(AHEAD);
    tokio::spawn(async move {
        let mut pages = listing.ready_chunks(PAGE);
        while let Some(page) = pages.next().await {
            let failed = page.iter().any(Result::is_err);
            if tx.send(page).await.is_err() || failed {
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) }).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt};

    #[tokio::test]
    async fn every_object_arrives_once_in_pages() {
        let store = InMemory::new();
        for i in 0..(PAGE * 2 + 7) {
            store
                .put(&Path::from(format!("k{i:05}")), vec![1u8].into())
                .await
                .unwrap();
        }
        let pages: Vec<Page> = read_ahead(store.list(None)).collect().await;
        assert!(pages.iter().all(|p| p.len() <= PAGE));
        let mut keys: Vec<String> = pages
            .into_iter()
            .flatten()
            .map(|m| m.unwrap().location.to_string())
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), PAGE * 2 + 7);
    }

    #[tokio::test]
    async fn a_listing_error_ends_the_listing() {
        let failing = futures::stream::iter(vec![Err(object_store::Error::NotImplemented {
            operation: "list".into(),
            implementer: "test".into(),
        })])
        .boxed();
        let pages: Vec<Page> = read_ahead(failing).collect().await;
        assert_eq!(pages.len(), 1);
        assert!(pages[0][0].is_err());
    }
}
