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

/// A cloud store's listing of `range` only: it starts after `range.after` (S3's
/// `start-after`; the others filter on the client) and stops at the first key past
/// `range.through`, which a cloud listing's sorted order makes the end of the range.
/// Keys are filtered by the range again by the caller, so a store that lists out of
/// order can cost time, never keys.
pub fn cloud_listing(
    store: &dyn ObjectStore,
    range: Option<&KeyRange>,
) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
    let Some(range) = range else {
        return store.list(None);
    };
    let listing = match &range.after {
        Some(after) => store.list_with_offset(None, &super::key_path(after)),
        None => store.list(None),
    };
    let range = range.clone();
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
        let keys: Vec<String> = cloud_listing(&store, Some(&range(Some("b"), Some("d"))))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list");
        assert_eq!(keys, ["c", "d"]);
    }
}
