//! `verify --digests FILE --store URL`: check a store against a digest list that
//! someone else produced — a `sha256sum`-format file (`b3sum` with `--algorithm
//! blake3`), or the subjects of an in-toto statement (bare or in a DSSE envelope) —
//! and list every missing, extra and mismatching object. The list is held in memory;
//! it is meant for release artifacts and audited sets, not for millions of keys.

use std::collections::BTreeMap;
use std::path::Path;

use connectors::store::StoreHandle;
use futures::StreamExt;
use plans::ChecksumAlgorithm;
use relocate_verifier::Report;
use relocate_verifier::dsse::Envelope;
use relocate_verifier::manifest::parse_sums_line;
use relocate_verifier::statement::Statement;

use super::AuditError;
use super::hashing::hash_object;

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
                (
                    key,
                    expected,
                    hash_object(&store.store, key, algorithm).await,
                )
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
    let mut listing = store.store.list(None);
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
