//! The names derived from a store's typed location that are safe to show and compare.
//!
//! The URL itself is read once, by `plans::store_url`; the connectors open the
//! [`StoreLocation`] validation produced and never parse a store URL again.

use plans::StoreLocation;
use url::Url;

/// The URL as it may be shown: no user or password, no query (SAS tokens live there), no
/// fragment.
pub use plans::store_url::display_url;

/// Stores with the same key can copy server-side (scheme, endpoint and bucket agree).
pub(crate) fn same_account_key(
    store: &str,
    location: &StoreLocation,
    endpoint: Option<&str>,
) -> String {
    match location {
        StoreLocation::Local(_) => "file://".to_owned(),
        // Each memory store is its own instance: nothing is shared between two of them.
        StoreLocation::Memory { .. } => format!("memory://{store}"),
        StoreLocation::Cloud { cloud, url, .. } => {
            let endpoint = endpoint
                .map(|e| e.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| {
                    let host = url.host_str().unwrap_or_default();
                    match url.scheme() {
                        "https" | "http" => format!("{}://{host}", url.scheme()),
                        _ => String::new(),
                    }
                });
            let bucket = bucket_of(url);
            format!("{}|{endpoint}|{bucket}", cloud.name())
        }
    }
}

/// The bucket or container: the host for `s3://b`, `gs://b`, `az://c`; `container@account` for abfs.
fn bucket_of(url: &Url) -> String {
    match url.scheme() {
        "https" | "http" => url
            .path_segments()
            .and_then(|mut s| s.next())
            .unwrap_or_default()
            .to_owned(),
        _ if !url.username().is_empty() => {
            format!("{}@{}", url.username(), url.host_str().unwrap_or_default())
        }
        _ => url.host_str().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreScheme;
    use object_store::path::Path as ObjectPath;

    use super::*;

    fn location(raw: &str) -> StoreLocation {
        plans::store_url::parse(raw).expect("parses")
    }

    #[test]
    fn finding_11_plans_reads_cloud_urls_as_object_store_does() {
        for raw in [
            "s3://bucket",
            "s3://bucket/a/b/",
            "s3a://bucket/with%20space/x",
            "gs://bucket/p/",
            "az://container/p/q",
            "azure://container/p",
            "adl://container/p",
            "abfs://cont@acct.dfs.core.windows.net/p/",
            "abfss://cont@acct.dfs.core.windows.net/p/",
            "https://acct.blob.core.windows.net/container/x/y",
            "https://acct.dfs.core.windows.net/container",
            "https://s3.eu-central-2.amazonaws.com/bucket/x/",
            "https://bucket.s3.eu-central-2.amazonaws.com/x/",
            "https://acct.r2.cloudflarestorage.com/bucket/x",
            "memory:///p/",
        ] {
            let url = Url::parse(raw).expect("url");
            let (scheme, path) = ObjectStoreScheme::parse(&url).expect("object_store parses");
            let (cloud, prefix) = match location(raw) {
                StoreLocation::Cloud { cloud, prefix, .. } => (Some(cloud), prefix),
                StoreLocation::Memory { prefix } => (None, prefix),
                other => panic!("{raw}: {other:?}"),
            };
            let expected = match scheme {
                ObjectStoreScheme::AmazonS3 => Some(plans::Cloud::S3),
                ObjectStoreScheme::MicrosoftAzure => Some(plans::Cloud::Azure),
                ObjectStoreScheme::GoogleCloudStorage => Some(plans::Cloud::Gcs),
                ObjectStoreScheme::Memory => None,
                other => panic!("{raw}: {other:?}"),
            };
            assert_eq!(cloud, expected, "{raw}");
            assert_eq!(ObjectPath::parse(&prefix).expect("prefix"), path, "{raw}");
        }
    }

    #[test]
    fn same_account_key_compares_scheme_endpoint_and_bucket() {
        let key = |raw: &str, ep: Option<&str>| same_account_key("n", &location(raw), ep);
        assert_eq!(
            key("s3://b/x", Some("http://h:1/")),
            key("s3://b/y", Some("http://h:1"))
        );
        assert_ne!(
            key("s3://b/x", Some("http://h:1")),
            key("s3://b/x", Some("http://h:2"))
        );
        assert_ne!(key("s3://b/x", None), key("s3://c/x", None));
        assert_ne!(key("s3://b/x", None), key("gs://b/x", None));
        assert_eq!(key("file:///a", None), key("file:///b", None));
        let memory = StoreLocation::Memory {
            prefix: String::new(),
        };
        assert_ne!(
            same_account_key("one", &memory, None),
            same_account_key("two", &memory, None)
        );
    }
}
