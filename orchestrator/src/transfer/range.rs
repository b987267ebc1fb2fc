//! A contiguous slice of a workload's key space, for sharded copies and verifies.
//!
//! Ranges are half-open from below, `(after, through]`, in the byte order of the keys'
//! UTF-8, which is the order S3, Azure, GCS and SQLite's `BINARY` collation list them
//! in and the order of a manifest: a run's shards, concatenated in index order, are
//! exactly the in-process manifest. The first range has no `after`, the last no
//! `through`, so together they cover every key, also keys created after the split.

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{ObjectMeta, ObjectStore};

/// Keys `k` with `after < k <= through` (a missing bound is open).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyRange {
    /// Exclusive lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Inclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
}

impl KeyRange {
    /// Whether `key` is in the range.
    pub fn contains(&self, key: &str) -> bool {
        self.after.as_deref().is_none_or(|a| key > a)
            && self.through.as_deref().is_none_or(|t| key <= t)
    }

    /// Whether `key` sorts past the range's end.
    pub fn is_past(&self, key: &str) -> bool {
        self.through.as_deref().is_some_and(|t| key > t)
    }

    /// The range for messages: `("a", "m"]`.
    pub fn describe(&self) -> String {
        format!(
            "({}, {}]",
            self.after
                .as_deref()
                .map_or("start".to_owned(), |a| format!("{a:?}")),
            self.through
                .as_deref()
                .map_or("end".to_owned(), |t| format!("{t:?}"))
        )
    }
}

/// A key range as a worker scans it: the keys, and whether the store's listing is in
/// their byte order (only then may a listing stop at the first key past the range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRange {
    /// The keys.
    pub keys: KeyRange,
    /// The store lists in UTF-8 byte order (see `StoreHandle::lists_in_byte_order`).
    pub ordered: bool,
}

/// A cloud store's listing of `range` only: it starts after `range.after` (S3's
/// `start-after`, a server-side start in byte order; the others compare `>` on the
/// client, which holds in any order) and, only when the store lists in byte order,
/// stops at the first key past `range.through`. Azure lists in UTF-16 order (`a😀`
/// before `a～`, the reverse of their UTF-8 order): there the listing runs to the end
/// and the caller's range filter keeps the range's keys.
pub fn cloud_listing(
    store: &dyn ObjectStore,
    range: Option<&ScanRange>,
) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
    let Some(scan) = range else {
        return store.list(None);
    };
    let listing = match &scan.keys.after {
        Some(after) => store.list_with_offset(None, &super::key_path(after)),
        None => store.list(None),
    };
    if !scan.ordered {
        return listing;
    }
    let range = scan.keys.clone();
    listing
        .take_while(move |item| {
            let go_on = item
                .as_ref()
                .map_or(true, |meta| !range.is_past(meta.location.as_ref()));
            std::future::ready(go_on)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    fn range(after: Option<&str>, through: Option<&str>) -> KeyRange {
        KeyRange {
            after: after.map(str::to_owned),
            through: through.map(str::to_owned),
        }
    }

    #[test]
    fn adjacent_ranges_partition_keys_by_byte_order() {
        let ranges = [
            range(None, Some("b")),
            range(Some("b"), Some("é")),
            range(Some("é"), None),
        ];
        // "z" < "é" in bytes (0x7a < 0xc3) though `é` sorts before `z` in most locales.
        for key in ["", "a", "b", "b/", "z", "é", "éa", "\u{10ffff}"] {
            let owners: Vec<usize> = (0..3).filter(|&i| ranges[i].contains(key)).collect();
            assert_eq!(owners.len(), 1, "{key:?} in {owners:?}");
        }
        assert!(ranges[1].contains("z"));
        assert!(ranges[2].contains("éa"));
    }

    #[tokio::test]
    async fn a_cloud_listing_of_a_range_starts_after_and_stops_through() {
        let store = InMemory::new();
        for key in ["a", "b", "c", "d", "e"] {
            store
                .put(&key.into(), PutPayload::from_static(b"x"))
                .await
                .expect("put");
        }
        let scan = ScanRange {
            keys: range(Some("b"), Some("d")),
            ordered: true,
        };
        let keys: Vec<String> = cloud_listing(&store, Some(&scan))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list");
        assert_eq!(keys, ["c", "d"]);
    }

    #[tokio::test]
    async fn an_unordered_listing_is_read_to_its_end() {
        // Azure's order: UTF-16, so "a😀" (a surrogate pair, 0xD83D…) comes before
        // "a～" (0xFF5E), though in UTF-8 "a😀" (0xF0…) is the larger.
        let store = InMemory::new();
        for key in ["a😀", "a～", "b"] {
            store
                .put(
                    &object_store::path::Path::parse(key).expect("key"),
                    PutPayload::from_static(b"x"),
                )
                .await
                .expect("put");
        }
        let utf16 = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let mut listed: Vec<String> = cloud_listing(&store, None)
            .map_ok(|m| m.location.as_ref().to_owned())
            .try_collect()
            .await
            .expect("list");
        listed.sort_by_key(|k| utf16(k));
        assert_eq!(
            listed,
            ["a😀", "a～", "b"],
            "the order an Azure listing gives"
        );
        // A range (start, "a～"] holds only "a～" in byte order; "a😀" is past it. Over
        // a listing in UTF-16 order a stop at the first key past the range would end at
        // "a😀"... which comes first, and lose "a～".
        let keys = range(None, Some("a～"));
        assert!(keys.contains("a～") && !keys.contains("a😀"));
        let scan = ScanRange {
            keys,
            ordered: false,
        };
        let kept: Vec<String> = cloud_listing(&store, Some(&scan))
            .map_ok(|m| m.location.as_ref().to_owned())
            .try_collect::<Vec<String>>()
            .await
            .expect("list")
            .into_iter()
            .filter(|k| scan.keys.contains(k))
            .collect();
        assert_eq!(kept, ["a～"]);
    }
}
