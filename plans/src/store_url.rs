//! How a store's `url` is read: the schemes relocate knows, and relative file URLs.
//!
//! A plan usually lives in a repository beside the data it describes in demos and
//! tests, so a relative local path must mean what a reader expects: relative to the
//! plan file's directory, never to the shell's current directory. The accepted local
//! forms are `file:///absolute/path`, `file://./relative`, `file://../relative` and
//! `file:relative` (no `//`). Any other host in a `file://` URL is refused: relocate
//! reads local files only. Resolution is a pure path join plus lexical `.`/`..`
//! clean-up; the only environment it consults is the current directory, when the
//! plan itself was named by a relative path.

use std::path::{Component, Path, PathBuf};

use url::Url;

/// Schemes `object_store` can open (the connectors map each to a backend).
pub const KNOWN_SCHEMES: [&str; 12] = [
    "file", "s3", "s3a", "az", "azure", "abfs", "abfss", "adl", "gs", "memory", "http", "https",
];

/// A store URL, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreUrl {
    /// A local path relative to the plan's directory.
    RelativeFile(String),
    /// Any other accepted URL (absolute `file:///…` included).
    Absolute(Url),
}

/// Classify `raw`, or say what is wrong and how to write it: `(message, hint)`.
pub(crate) fn classify(raw: &str) -> Result<StoreUrl, (String, String)> {
    if let Some(rel) = relative_file_path(raw) {
        if rel.is_empty() {
            return Err((
                "a relative `file:` URL needs a path".to_owned(),
                "write e.g. `file://./data/`".to_owned(),
            ));
        }
        return Ok(StoreUrl::RelativeFile(rel.to_owned()));
    }
    let url = Url::parse(raw).map_err(|e| {
        (
            format!("store url `{raw}` is not a URL ({e})"),
            "write e.g. `s3://bucket/prefix/`, `file:///srv/data/` or `file://./data/`".to_owned(),
        )
    })?;
    if !KNOWN_SCHEMES.contains(&url.scheme()) {
        return Err((
            format!("store url scheme `{}` is not supported", url.scheme()),
            format!("use one of: {}", KNOWN_SCHEMES.join(", ")),
        ));
    }
    if url.scheme() == "file"
        && url
            .host_str()
            .is_some_and(|h| !h.is_empty() && h != "localhost")
    {
        return Err((
            format!("file URL `{raw}` names a host; relocate reads local files only"),
            "write `file:///absolute/path/` or `file://./path/relative/to/the/plan/`".to_owned(),
        ));
    }
    Ok(StoreUrl::Absolute(url))
}

/// The path of a relative file URL, if `raw` is one.
fn relative_file_path(raw: &str) -> Option<&str> {
    if let Some(rest) = raw.strip_prefix("file://") {
        return (rest.starts_with("./") || rest.starts_with("../") || rest == "." || rest == "..")
            .then_some(rest);
    }
    let rest = raw.strip_prefix("file:")?;
    (!rest.starts_with('/')).then_some(rest)
}

/// The store URL with a relative file path made absolute against `base_dir`; a
/// directory URL (trailing `/`), as a store is a prefix.
pub(crate) fn resolve(raw: &str, base_dir: &Path) -> Option<Url> {
    match classify(raw).ok()? {
        StoreUrl::Absolute(url) => Some(url),
        StoreUrl::RelativeFile(rel) => {
            let joined = std::path::absolute(base_dir.join(rel)).ok()?;
            Url::from_directory_path(normalise(&joined)).ok()
        }
    }
}

/// Remove `.` and resolve `..` lexically (symlinks are not followed: no I/O).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_forms_resolve_against_the_plan_directory() {
        let base = Path::new("/plans/examples");
        for raw in [
            "file://./demo/source/",
            "file:demo/source",
            "file:./demo/source/",
        ] {
            let url = resolve(raw, base).expect("resolves");
            assert_eq!(url.as_str(), "file:///plans/examples/demo/source/", "{raw}");
        }
        let up = resolve("file://../target/zurich", base).expect("resolves");
        assert_eq!(up.as_str(), "file:///plans/target/zurich/");
    }

    #[test]
    fn absolute_and_remote_urls_pass_through() {
        let base = Path::new("/x");
        assert_eq!(
            resolve("file:///srv/data/", base).expect("ok").as_str(),
            "file:///srv/data/"
        );
        assert_eq!(
            resolve("s3://bucket/p/", base).expect("ok").as_str(),
            "s3://bucket/p/"
        );
    }

    #[test]
    fn bad_urls_are_explained() {
        let (msg, hint) = classify("ftp://host/x").expect_err("unknown scheme");
        assert!(msg.contains("`ftp`"), "{msg}");
        assert!(hint.contains("s3"), "{hint}");
        let (msg, _) = classify("file://nas/share").expect_err("host");
        assert!(msg.contains("names a host"), "{msg}");
        let (msg, _) = classify("not a url").expect_err("not a url");
        assert!(msg.contains("is not a URL"), "{msg}");
    }
}
