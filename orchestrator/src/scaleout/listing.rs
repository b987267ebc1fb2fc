//! The coordinator's listing for a split: a local tree by relocate's parallel walk; a
//! cloud store by its top-level prefixes in parallel (one delimiter listing, then each
//! prefix's listing, [`PREFIXES_AT_ONCE`] at a time), since one sequential listing of a
//! billion keys at 1,000 keys a request is a million round trips end to end. The split
//! does not need keys in order, so the prefixes' listings interleave freely.

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use object_store::ObjectMeta;

use connectors::store::StoreHandle;
use plans::SymlinkPolicy;

use crate::transfer::local::{Links, list_store};
use crate::transfer::listing::{Page, read_ahead};

/// Prefix listings in flight at once.
pub const PREFIXES_AT_ONCE: usize = 16;

/// The store's objects, a page at a time, in no particular order.
pub fn for_split(store: &StoreHandle, symlinks: SymlinkPolicy) -> BoxStream<'static, Page> {
    if let Some(fs) = &store.local {
        return list_store(fs, Links::Source(symlinks)).pages;
    }
    let client = store.store.clone();
    let listing = stream::once(async move {
        let top = match client.list_with_delimiter(None).await {
            Ok(top) => top,
            Err(e) => return stream::iter([Err(e)]).boxed(),
        };
        let here = stream::iter(top.objects.into_iter().map(Ok::<ObjectMeta, _>));
        let nested = stream::iter(top.common_prefixes)
            .map(move |prefix| client.list(Some(&prefix)))
            .flatten_unordered(PREFIXES_AT_ONCE);
        here.chain(nested).boxed()
    })
    .flatten();
    read_ahead(listing.boxed())
}
