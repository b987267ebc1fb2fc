//! The one reader of a store's `url`: where it points, or why it cannot be used.
//!
//! Validation and the connectors used to parse URLs separately and disagreed
//! (`file://../x` validated, then failed at run time). Now [`parse`] is the only parser:
//! validation keeps its typed [`StoreLocation`] and the connectors open exactly that.
//!
//! Local forms: `file:///abs`, `file:/abs` and `file://localhost/abs` are absolute;
//! `file://./rel`, `file://../rel`, `file://.`, `file:rel` are relative to the plan's
//! directory, so a plan and its data can move together ([`StoreLocation::resolve`]). Local
//! paths are taken literally (no percent-decoding): they are what a user typed. Any other
//! host in a `file://` URL is refused: relocate reads local files only.
//!
//! Cloud forms, read as object_store reads them (a connectors test holds the two to the
//! same answers): `s3://` and `s3a://`, `gs://`, `az://`, `azure://`, `adl://`,
//! `abfs[s]://container@account…`, and `https://` URLs of AWS, Cloudflare R2 and Azure
//! hosts. The prefix inside the bucket is percent-decoded. A URL never carries a credential:
//! a user or password, a query (SAS tokens live there) or a fragment is refused, and
//! messages show the URL through [`display_url`] only.

use std::path::{Component, Path, PathBuf};

use url::Url;

/// A cloud backend that object_store reaches over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cloud {
    /// Amazon S3 and S3-compatible servers.
    S3,
    /// Azure Blob Storage (and Data Lake).
    Azure,
    /// Google Cloud Storage.
    Gcs,
}

impl Cloud {
    /// The backend's name in messages (`s3`, `azure`, `gcs`).
    pub fn name(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Azure => "azure",
            Cloud::Gcs => "gcs",
        }
    }
}

/// Where a store's URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A directory on this machine; relative to the plan's directory until
    /// [`StoreLocation::resolve`] makes it absolute.
    Local(PathBuf),
    /// The in-memory store, with a key prefix (`a/b`, no leading or trailing `/`).
    Memory {
        /// Keys live under this prefix.
        prefix: String,
    },
    /// A bucket or container.
    Cloud {
        /// The backend.
        cloud: Cloud,
        /// The URL as written (object_store's builders read bucket and account from it).
        url: Url,
        /// The key prefix inside the bucket, decoded (`a/b`, no leading or trailing `/`).
        prefix: String,
    },
}

impl StoreLocation {
    /// The location with a relative local path joined to `base_dir` (made absolute and
    /// cleaned of `.` and `..` lexically: no I/O, symlinks are not followed).
    pub fn resolve(self, base_dir: &Path) -> Self {
        match self {
            StoreLocation::Local(path) if path.is_relative() => {
                let joined = base_dir.join(path);
                let absolute = std::path::absolute(&joined).unwrap_or(joined);
                StoreLocation::Local(normalise(&absolute))
            }
            other => other,
        }
    }

    /// The cloud backend, if the store is in one.
    pub fn cloud(&self) -> Option<Cloud> {
        match self {
            StoreLocation::Cloud { cloud, .. } => Some(*cloud),
            _ => None,
        }
    }

    /// The backend's name in messages (`local`, `memory`, `s3`, `azure`, `gcs`).
    pub fn backend(&self) -> &'static str {
        match self {
            StoreLocation::Local(_) => "local",
            StoreLocation::Memory { .. } => "memory",
            StoreLocation::Cloud { cloud, .. } => cloud.name(),
        }
    }
}

/// What is wrong with a URL and how to write it; never holds the URL's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlProblem {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

fn problem(message: impl Into<String>, hint: impl Into<String>) -> UrlProblem {
    UrlProblem {
        message: message.into(),
        hint: hint.into(),
    }
}

const EXAMPLES: &str = "write e.g. `s3://bucket/prefix/`, `file:///srv/data/` or `file://./data/`";

/// Read a store URL.
pub fn parse(raw: &str) -> Result<StoreLocation, UrlProblem> {
    if let Some(rest) = raw.strip_prefix("file:") {
        return local(raw, rest).map(StoreLocation::Local);
    }
    let shown = display_url(raw);
    let url = Url::parse(raw)
        .map_err(|e| problem(format!("store url `{shown}` is not a URL ({e})"), EXAMPLES))?;
    refuse_credentials(&url, &shown)?;
    let path = url.path();
    let host = url.host_str().unwrap_or_default();
    let (cloud, prefix_path) = match url.scheme() {
        "memory" if host.is_empty() => {
            return Ok(StoreLocation::Memory {
                prefix: prefix(path, &shown)?,
            });
        }
        "memory" => {
            return Err(problem(
                format!("store url `{shown}` names a host"),
                "write `memory:///` or `memory:///prefix/`",
            ));
        }
        _ if host.is_empty() => {
            return Err(problem(
                format!("store url `{shown}` names no bucket or container"),
                EXAMPLES,
            ));
        }
        "s3" | "s3a" => (Cloud::S3, path),
        "gs" => (Cloud::Gcs, path),
        "az" | "azure" | "adl" | "abfs" | "abfss" => (Cloud::Azure, path),
        "https" => https_host(host, path).ok_or_else(|| {
            problem(
                format!("store url `{shown}` is not a known cloud endpoint"),
                "for an S3-compatible server write `s3://bucket/prefix/` and set the \
                 `endpoint` option",
            )
        })?,
        "http" => {
            return Err(problem(
                format!("store url `{shown}` is plain http"),
                "write `s3://bucket/prefix/` (or `az://`, `gs://`) and set the `endpoint` \
                 option, with `allow_http: \"true\"` for a plain-http server",
            ));
        }
        other => {
            return Err(problem(
                format!("store url scheme `{other}` is not supported"),
                "use one of: file, memory, s3, s3a, gs, az, azure, adl, abfs, abfss, https",
            ));
        }
    };
    Ok(StoreLocation::Cloud {
        cloud,
        prefix: prefix(prefix_path, &shown)?,
        url,
    })
}

/// The backend and the path inside the bucket of an `https://` URL, as object_store
/// reads them (`ObjectStoreScheme::parse`); `None` for a host it does not know.
fn https_host<'a>(host: &str, path: &'a str) -> Option<(Cloud, &'a str)> {
    let without_bucket = || {
        path.strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .map_or("", |(_, rest)| rest)
    };
    let azure = [
        "dfs.core.windows.net",
        "blob.core.windows.net",
        "dfs.fabric.microsoft.com",
        "blob.fabric.microsoft.com",
    ];
    if azure.iter().any(|h| host.ends_with(h)) {
        Some((Cloud::Azure, without_bucket()))
    } else if host.ends_with("amazonaws.com") {
        Some((
            Cloud::S3,
            if host.starts_with("s3") {
                without_bucket()
            } else {
                path
            },
        ))
    } else if host.ends_with("r2.cloudflarestorage.com") {
        Some((Cloud::S3, without_bucket()))
    } else {
        None
    }
}

/// A URL holds no credential: no password, no user (but an abfs container), no query, no
/// fragment.
fn refuse_credentials(url: &Url, shown: &str) -> Result<(), UrlProblem> {
    let container_at_account = matches!(url.scheme(), "abfs" | "abfss");
    if url.password().is_some() || (!url.username().is_empty() && !container_at_account) {
        return Err(problem(
            format!("credentials in store url `{shown}`"),
            "a URL is shown in logs and evidence: give credentials as store options by \
             reference, e.g. `secret_access_key: \"${env:NAME}\"`, and rotate the exposed one",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(problem(
            format!("store url `{shown}` has a query or fragment"),
            "a store url takes none; give a SAS token as `sas_key: \"${env:NAME}\"` and other \
             settings as store options",
        ));
    }
    Ok(())
}

/// The decoded key prefix of a URL path, checked as object_store checks keys.
fn prefix(path: &str, shown: &str) -> Result<String, UrlProblem> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| {
            problem(
                format!("store url `{shown}` has a path that is not UTF-8"),
                EXAMPLES,
            )
        })?;
    let trimmed = decoded.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        let bad = segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.chars().any(|c| c.is_ascii_control());
        if bad {
            return Err(problem(
                format!(
                    "store url `{shown}` has an empty, `.`, `..` or control-character path segment"
                ),
                "write the prefix as `a/b/`",
            ));
        }
    }
    Ok(trimmed.to_owned())
}

/// The path of a `file:` URL (`rest` follows `file:`), relative or absolute, taken literally.
fn local(raw: &str, rest: &str) -> Result<PathBuf, UrlProblem> {
    let path = match rest.strip_prefix("//") {
        Some(abs) if abs.starts_with('/') => PathBuf::from(abs),
        Some(rel)
            if rel == "." || rel == ".." || rel.starts_with("./") || rel.starts_with("../") =>
        {
            PathBuf::from(rel)
        }
        Some(on_host) if on_host.starts_with("localhost/") => {
            PathBuf::from(&on_host["localhost".len()..])
        }
        Some(_) => {
            return Err(problem(
                format!(
                    "file URL `{}` names a host; relocate reads local files only",
                    display_url(raw)
                ),
                "write `file:///absolute/path/` or `file://./path/relative/to/the/plan/`",
            ));
        }
        None if rest.is_empty() => {
            return Err(problem(
                "a relative `file:` URL needs a path",
                "write e.g. `file://./data/`",
            ));
        }
        None => PathBuf::from(rest),
    };
    Ok(normalise(&path))
}

/// Remove `.` and resolve `..` lexically (no I/O); a leading `..` of a relative path stays.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::ParentDir if out.has_root() => {}
            other => out.push(other),
        }
    }
    out
}

/// The URL as it may be shown: no user or password (but an abfs container), no query (SAS
/// tokens live there), no fragment. Local URLs are shown as written.
pub fn display_url(raw: &str) -> String {
    if raw.starts_with("file:") {
        return raw.to_owned();
    }
    match Url::parse(raw) {
        Ok(mut url) => {
            // Errors only for URLs that cannot have a user, which then have none to hide.
            let _ = url.set_password(None);
            if !matches!(url.scheme(), "abfs" | "abfss") {
                let _ = url.set_username("");
            }
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
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

#[cfg(test)]
mod tests;
