//! `verify --digests FILE --store URL`: check a store against a digest list that
//! someone else produced — a `sha256sum`-format file (`b3sum` with `--algorithm
//! blake3`), or the subjects of an in-toto statement (bare or in a DSSE envelope) —
//! and list every missing, extra and mismatching object. The list is held in memory;
//! it is meant for release artifacts and audited sets, not for millions of keys.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use connectors::store::StoreHandle;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use plans::ChecksumAlgorithm;
use relocate_verifier::Report;
use relocate_verifier::dsse::Envelope;
use relocate_verifier::manifest::parse_sums_line;
use relocate_verifier::statement::Statement;

use super::AuditError;
use super::hashing::hash_object;
use crate::transfer::local::{Links, list_store};

/// Key → expected lowercase hex digest.
pub type DigestList = BTreeMap<String, String>;

/// Read a digest list in either format; in-toto subjects give their digest under the
/// algorithm's name (`sha256`, `blake3`).
pub fn read_digest_list(
    path: &Path,
    algorithm: ChecksumAlgorithm,
) -> Result<DigestList, AuditError> {
    let bytes = std::fs::read(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| AuditError::DigestList {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text".to_owned()))?;
    if text.trim_start().starts_with('{') {
        return subjects(text, algorithm).map_err(bad);
    }
    let mut list = DigestList::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (hash, key) = parse_sums_line(line)
            .ok_or_else(|| bad(format!("line {}: not `<hash>  <name>`", n + 1)))?;
        insert(&mut list, key, hash).map_err(bad)?;
    }
    Ok(list)
}

fn subjects(text: &str, algorithm: ChecksumAlgorithm) -> Result<DigestList, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let payload = if value.get("payloadType").is_some() {
        Envelope::from_json(text.as_bytes())
            .map_err(|e| e.to_string())?
            .payload
    } else {
        text.as_bytes().to_vec()
    };
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|e| format!("not an in-toto statement: {e}"))?;
    let mut list = DigestList::new();
    for subject in statement.subject {
        let hash = subject.digest.get(algorithm.as_str()).ok_or_else(|| {
            format!(
                "subject `{}` has no {} digest",
                subject.name,
                algorithm.as_str()
            )
        })?;
        insert(&mut list, subject.name, hash.to_ascii_lowercase())?;
    }
    Ok(list)
}

fn insert(list: &mut DigestList, key: String, hash: String) -> Result<(), String> {
    match list.get(&key) {
        Some(existing) if *existing != hash => {
            Err(format!("`{key}` is listed twice with different digests"))
        }
        _ => {
            list.insert(key, hash);
            Ok(())
        }
    }
}

/// Hash every listed object in `store`, then list the store for extras.
pub async fn check_digests(
    list: &DigestList,
    store: &StoreHandle,
    algorithm: ChecksumAlgorithm,
    report: &mut Report,
) {
    let name = &store.display_url;
    let results: Vec<(&String, &String, object_store::Result<String>)> =
        futures::stream::iter(list)
            .map(|(key, expected)| async move {
                let hash = match &store.local {
                    Some(fs) => hash_local(fs.clone(), key.clone(), algorithm).await,
                    None => hash_object(&store.store, key, algorithm).await,
                };
                (key, expected, hash)
            })
            .buffered(16)
            .collect()
            .await;
    let (mut matched, mut problems) = (0usize, 0usize);
    for (key, expected, result) in results {
        match result {
            Ok(hash) if hash == *expected => matched += 1,
            Ok(hash) => {
                problems += 1;
                report.fail(format!(
                    "{name}: `{key}` hashes to {hash}, the digest list says {expected} (mismatch)"
                ));
            }
            Err(object_store::Error::NotFound { .. }) => {
                problems += 1;
                report.fail(format!(
                    "{name}: `{key}` is in the digest list but missing from the store"
                ));
            }
            Err(e) => {
                problems += 1;
                report.fail(format!(
                    "{name}: `{key}` cannot be read: {}",
                    store.redact(&e.to_string())
                ));
            }
        }
    }
    // A local store through relocate's own walker: object_store's listing hides files
    // named `name#digits` and follows links, so an unlisted file could go unreported.
    let mut listing = match &store.local {
        Some(fs) => list_store(fs, Links::Target)
            .pages
            .flat_map(futures::stream::iter)
            .boxed(),
        None => store.store.list(None),
    };
    while let Some(item) = listing.next().await {
        match item {
            Ok(meta) if !list.contains_key(meta.location.as_ref()) => {
                problems += 1;
                report.fail(format!(
                    "{name}: `{}` is in the store but not in the digest list (extra, {} bytes)",
                    meta.location, meta.size
                ));
            }
            Ok(_) => {}
            Err(e) => {
                problems += 1;
                report.fail(format!(
                    "{name}: listing failed: {}",
                    store.redact(&e.to_string())
                ));
                break;
            }
        }
    }
    if problems == 0 {
        report.pass(format!("{name}: all {matched} objects of the digest list are present with their digests; no extra object"));
    } else {
        report.note(format!(
            "{name}: {matched} of {} listed objects match; {problems} problems",
            list.len()
        ));
    }
}

/// Lowercase hex digest of `key` in a local store, read from the file itself:
/// object_store refuses to read a file named like its staging files (`x#123`), which a
/// digest list may well name.
async fn hash_local(
    fs: Arc<LocalFileSystem>,
    key: String,
    algorithm: ChecksumAlgorithm,
) -> object_store::Result<String> {
    let join = tokio::task::spawn_blocking(move || {
        let path = local_path(&fs, &key)?;
        hash_file(&path, algorithm).map_err(|e| io_error(&path, e))
    })
    .await;
    join.map_err(|e| generic(format!("hashing task stopped: {e}")))?
}

/// Where `key` lives in a local store: object_store's own mapping of the directory part,
/// joined with the file name as it writes it (its mapping refuses `name#digits` names).
fn local_path(fs: &LocalFileSystem, key: &str) -> object_store::Result<PathBuf> {
    let location = crate::transfer::key_path(key);
    let mut parts: Vec<_> = location.parts().collect();
    let Some(name) = parts.pop() else {
        return Err(generic(format!("`{key}` names no file")));
    };
    let probe = object_store::path::Path::from_iter(parts).join("probe");
    Ok(fs.path_to_filesystem(&probe)?.with_file_name(name.as_ref()))
}

fn hash_file(path: &Path, algorithm: ChecksumAlgorithm) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut buf = vec![0u8; 64 << 10];
    match algorithm {
        ChecksumAlgorithm::Blake3 => {
            let mut hasher = blake3::Hasher::new();
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break Ok(hasher.finalize().to_hex().to_string());
                }
                hasher.update(&buf[..n]);
            }
        }
        ChecksumAlgorithm::Sha256 => {
            let mut hasher = relocate_verifier::hash::Sha256Stream::new();
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break Ok(hasher.finish_hex());
                }
                hasher.update(&buf[..n]);
            }
        }
    }
}

fn io_error(path: &Path, e: std::io::Error) -> object_store::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        object_store::Error::NotFound {
            path: path.display().to_string(),
            source: Box::new(e),
        }
    } else {
        generic(format!("{}: {e}", path.display()))
    }
}

fn generic(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: message.into(),
    }
}
