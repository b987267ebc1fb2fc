//! The coordinator's listing for a split: a local tree by relocate's parallel walk; a
//! cloud store by its top-level prefixes in parallel (one delimiter listing, then each
//! prefix's listing, [`PREFIXES_AT_ONCE`] at a time), since one sequential listing of a
//! billion keys at 1,000 keys a request is a million round trips end to end. The split
//! does not need keys in order, so the prefixes' listings interleave freely.

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use object_store::ObjectMeta;

use connectors::store::StoreHandle;
use plans::SymlinkPolicy;

use crate::transfer::listing::{Page, read_ahead};
use crate::transfer::local::{Links, list_store};

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use connectors::store::{Access, open_store};
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    #[tokio::test]
    async fn prefixes_listed_in_parallel_give_every_object_once() {
        let spec = plans::StoreSpec::from_store(
            "m",
            &plans::Store {
                region: "zurich".into(),
                url: "memory:///".into(),
                options: Default::default(),
                multipart: None,
                retry: None,
                credentials: Default::default(),
            },
        )
        .expect("spec");
        let handle =
            open_store("m", &spec, std::path::Path::new("/"), Access::Write).expect("store");
        let mut keys = vec!["top".to_owned(), "z".to_owned()];
        for p in 0..40 {
            for i in 0..25 {
                keys.push(format!("p{p:02}/sub/{i}"));
            }
        }
        for key in &keys {
            handle
                .store
                .put(&key.as_str().into(), PutPayload::from_static(b"x"))
                .await
                .expect("put");
        }
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        let mut pages = for_split(&handle, SymlinkPolicy::Skip);
        while let Some(page) = pages.next().await {
            for meta in page {
                *seen
                    .entry(meta.expect("listed").location.to_string())
                    .or_default() += 1;
            }
        }
        assert_eq!(seen.len(), keys.len());
        assert!(seen.values().all(|&n| n == 1), "listed twice: {seen:?}");
    }
}
