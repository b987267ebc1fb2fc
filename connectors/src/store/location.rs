//! Where a store's URL points: a local directory, the in-memory store, or a cloud bucket with a
//! key prefix; plus the two names derived from it that are safe to show and compare.
//!
//! Local URLs: `file:///abs/dir` and `file:/abs/dir` are absolute; `file://./rel/dir`,
//! `file:./rel/dir` and `file:rel/dir` are relative to the plan's directory, so a plan and its
//! data can move together. Paths are taken literally (no percent-decoding).

use std::path::{Path, PathBuf};

use object_store::ObjectStoreScheme;
use object_store::path::Path as ObjectPath;
use url::Url;

use super::StoreError;

/// A cloud backend that object_store reaches over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cloud {
    S3,
    Azure,
    Gcs,
}

impl Cloud {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Azure => "azure",
            Cloud::Gcs => "gcs",
        }
    }
}

/// A parsed store URL.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A directory on this machine (absolute).
    Local(PathBuf),
    /// The in-memory store, with a key prefix.
    Memory(ObjectPath),
    /// A bucket or container; the prefix is the URL's path inside it.
    Cloud {
        cloud: Cloud,
        url: Url,
        prefix: ObjectPath,
    },
}

/// Parse `raw` for store `store`; relative local paths are joined to `base_dir`.
pub(crate) fn parse_location(
    store: &str,
    raw: &str,
    base_dir: &Path,
) -> Result<Location, StoreError> {
    if let Some(rest) = raw.strip_prefix("file:") {
        return local_path(store, raw, rest, base_dir).map(Location::Local);
    }
    let invalid = |reason: String| StoreError::InvalidUrl {
        store: store.to_owned(),
        url: display_url(raw),
        reason,
    };
    let url = Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
    let (scheme, path) = ObjectStoreScheme::parse(&url).map_err(|e| invalid(e.to_string()))?;
    let prefix = ObjectPath::parse(path.as_ref()).map_err(|e| invalid(e.to_string()))?;
    let cloud = match scheme {
        ObjectStoreScheme::Memory => return Ok(Location::Memory(prefix)),
        ObjectStoreScheme::AmazonS3 => Cloud::S3,
        ObjectStoreScheme::MicrosoftAzure => Cloud::Azure,
        ObjectStoreScheme::GoogleCloudStorage => Cloud::Gcs,
        other => {
            return Err(invalid(format!(
                "{other:?} URLs are not supported; use file://, memory:///, s3://, az:// or gs://"
            )));
        }
    };
    Ok(Location::Cloud { cloud, url, prefix })
}

fn local_path(store: &str, raw: &str, rest: &str, base_dir: &Path) -> Result<PathBuf, StoreError> {
    let relative = |p: &str| base_dir.join(p);
    let path = if let Some(abs) = rest.strip_prefix("//") {
        if abs.starts_with('/') {
            PathBuf::from(abs)
        } else if abs == "." {
            relative(".")
        } else if let Some(rel) = abs.strip_prefix("./") {
            relative(rel)
        } else {
            return Err(StoreError::InvalidUrl {
                store: store.to_owned(),
                url: raw.to_owned(),
                reason: "a file URL cannot name a host; write file:///absolute/dir or file://./relative/dir".to_owned(),
            });
        }
    } else if rest.starts_with('/') {
        PathBuf::from(rest)
    } else {
        relative(rest)
    };
    Ok(normalise(&path))
}

/// Drop `.` components so messages show the directory as a user would write it.
fn normalise(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The URL as it may be shown: no password, no query (SAS tokens live there), no fragment.
pub fn display_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.scheme() != "file" => {
            // Errors only for URLs that cannot have a password, which then have none to hide.
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Ok(_) => raw.to_owned(),
        Err(_) => {
            let without_query = raw.split(['?', '#']).next().unwrap_or_default();
            match without_query.rsplit_once('@') {
                Some((head, host)) => match head.split_once("://") {
                    Some((scheme, _)) => format!("{scheme}://{host}"),
                    None => host.to_owned(),
                },
                None => without_query.to_owned(),
            }
        }
    }
}

/// Stores with the same key can copy server-side (scheme, endpoint and bucket agree).
pub(crate) fn same_account_key(store: &str, location: &Location, endpoint: Option<&str>) -> String {
    match location {
        Location::Local(_) => "file://".to_owned(),
        // Each memory store is its own instance: nothing is shared between two of them.
        Location::Memory(_) => format!("memory://{store}"),
        Location::Cloud { cloud, url, .. } => {
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
    use super::*;

    fn local(raw: &str) -> PathBuf {
        match parse_location("s", raw, Path::new("/plans/dir")).expect("parses") {
            Location::Local(p) => p,
            other => panic!("not local: {other:?}"),
        }
    }

    #[test]
    fn local_urls_resolve_against_the_plan_directory() {
        assert_eq!(local("file:///srv/data"), PathBuf::from("/srv/data"));
        assert_eq!(local("file:/srv/data"), PathBuf::from("/srv/data"));
        assert_eq!(
            local("file://./data/in"),
            PathBuf::from("/plans/dir/data/in")
        );
        assert_eq!(local("file:./data"), PathBuf::from("/plans/dir/data"));
        assert_eq!(local("file:data"), PathBuf::from("/plans/dir/data"));
        assert_eq!(local("file://."), PathBuf::from("/plans/dir"));
    }

    #[test]
    fn file_url_with_a_host_is_refused() {
        let err = parse_location("s", "file://server/share", Path::new("/")).expect_err("fails");
        assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    }

    #[test]
    fn cloud_urls_keep_their_prefix() {
        let Location::Cloud { cloud, prefix, .. } =
            parse_location("s", "s3://bucket/a/b/", Path::new("/")).expect("parses")
        else {
            panic!("not cloud")
        };
        assert_eq!(cloud, Cloud::S3);
        assert_eq!(prefix.as_ref(), "a/b");
        let loc = parse_location("s", "memory:///", Path::new("/")).expect("parses");
        assert!(
            matches!(loc, Location::Memory(ref p) if p.as_ref().is_empty()),
            "{loc:?}"
        );
    }

    #[test]
    fn unsupported_scheme_is_refused() {
        let err = parse_location("s", "ftp://host/x", Path::new("/")).expect_err("fails");
        assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    }

    #[test]
    fn display_url_drops_password_and_query() {
        assert_eq!(
            display_url("https://acct.blob.core.windows.net/c/p?sv=2020&sig=SECRETSIG"),
            "https://acct.blob.core.windows.net/c/p"
        );
        assert_eq!(
            display_url("s3://user:hunter22@bucket/p"),
            "s3://user@bucket/p"
        );
        assert_eq!(
            display_url("abfs://cont@acct.dfs.core.windows.net/p"),
            "abfs://cont@acct.dfs.core.windows.net/p"
        );
        assert!(!display_url("not a url://u:pw@host/x?sig=1").contains("pw"));
    }

    #[test]
    fn same_account_key_compares_scheme_endpoint_and_bucket() {
        let key = |raw: &str, ep: Option<&str>| {
            same_account_key(
                "n",
                &parse_location("n", raw, Path::new("/")).expect("parses"),
                ep,
            )
        };
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
        assert_ne!(
            same_account_key("one", &Location::Memory(ObjectPath::default()), None),
            same_account_key("two", &Location::Memory(ObjectPath::default()), None)
        );
    }
}
