//! `verify --target`: every object of each workload's latest signed manifest still
//! hashes at the target to its entry, and the target holds nothing the manifest does
//! not list (within the workload's include/exclude filter). Like `rclone check`: every
//! problem is reported per key, the verdict comes once at the end.

use std::path::Path;
use std::sync::Arc;

use connectors::store::{Access, StoreHandle, open_store};
use futures::StreamExt;
use object_store::ObjectStore;
use plans::{ChecksumAlgorithm, ValidatedPlan};

use super::AuditError;
use super::bundle::ManifestRef;
use super::chain::{EvidenceLine, VerifiedRecord};
use super::manifest_files::{self, Entry, Reader};
use super::report::Report;
use crate::transfer::verify::hash_target;
use crate::transfer::{Counters, KeyFilter};

/// Objects hashed at once.
const CONCURRENCY: usize = 16;
/// Per-key failures printed per workload before only counting.
const MAX_LISTED: u64 = 100;

/// Check every exported manifest against its signed evidence, then against the target.
pub async fn check_target(
    record: &VerifiedRecord,
    manifests_dir: &Path,
    plan: &ValidatedPlan,
    report: &mut Report,
) -> Result<(), AuditError> {
    if record.header.manifests.is_empty() {
        report.note("no object workload in the record: nothing to check at a target");
    }
    for manifest in &record.header.manifests {
        let Some(evidence) = check_manifest(record, manifests_dir, manifest, report)? else {
            continue;
        };
        let Some(workload) = plan.object_workload(&manifest.workload) else {
            report.fail(format!(
                "workload `{}` is not an object workload of the plan",
                manifest.workload
            ));
            continue;
        };
        let signed_target = evidence
            .predicate
            .workloads
            .iter()
            .find(|w| w.name == manifest.workload)
            .map(|w| w.target.as_str());
        if signed_target != Some(workload.to.as_str()) {
            report.fail(format!(
                "workload `{}`: the evidence names target `{}`, the plan `{}`",
                manifest.workload,
                signed_target.unwrap_or("?"),
                workload.to
            ));
            continue;
        }
        let Some(store) = plan.store(&workload.to) else {
            continue;
        };
        let handle = match open_store(&workload.to, store, plan.base_dir(), Access::Read) {
            Ok(h) => h,
            Err(e) => {
                report.fail(format!("cannot open target store `{}`: {e}", workload.to));
                continue;
            }
        };
        let filter = KeyFilter::new(&workload.include, &workload.exclude).map_err(|e| {
            AuditError::Filter {
                workload: manifest.workload.clone(),
                reason: e.to_string(),
            }
        })?;
        check_objects(manifests_dir, manifest, &handle, &filter, report).await?;
    }
    Ok(())
}

/// The manifest file must be the one the latest evidence of its workload signs.
fn check_manifest<'r>(
    record: &'r VerifiedRecord,
    dir: &Path,
    manifest: &ManifestRef,
    report: &mut Report,
) -> Result<Option<&'r EvidenceLine>, AuditError> {
    let name = &manifest.workload;
    let latest = record.evidence.iter().rev().find(|e| {
        e.predicate
            .workloads
            .iter()
            .any(|w| &w.name == name && w.kind == "objects")
    });
    let Some(evidence) = latest else {
        report.fail(format!(
            "manifest of workload `{name}`: no signed evidence names this workload"
        ));
        return Ok(None);
    };
    let signed = evidence
        .predicate
        .workloads
        .iter()
        .find(|w| &w.name == name)
        .expect("found above");
    let (count, root, digest) = manifest_files::summarize(dir, manifest)?;
    let stage = &evidence.predicate.stage;
    if signed.manifest_root.as_deref() != Some(root.as_str())
        || signed.manifest_digest.as_deref() != Some(digest.as_str())
        || signed.objects != count
    {
        report.fail(format!(
            "manifest of workload `{name}` ({count} objects, root {root}, file {digest}) is not the one signed in stage `{stage}`'s evidence (line {}: {} objects, root {}, file {})",
            evidence.line,
            signed.objects,
            signed.manifest_root.as_deref().unwrap_or("none"),
            signed.manifest_digest.as_deref().unwrap_or("none")
        ));
        return Ok(None);
    }
    report.pass(format!("manifest of workload `{name}` ({count} objects) has the root and digest signed in stage `{stage}`'s evidence (line {})", evidence.line));
    Ok(Some(evidence))
}

#[derive(Debug, Default)]
struct Tally {
    verified: u64,
    problems: u64,
}

impl Tally {
    fn problem(&mut self, report: &mut Report, text: String) {
        self.problems += 1;
        if self.problems <= MAX_LISTED {
            report.fail(text);
        }
    }
}

async fn check_objects(
    dir: &Path,
    manifest: &ManifestRef,
    handle: &StoreHandle,
    filter: &KeyFilter,
    report: &mut Report,
) -> Result<(), AuditError> {
    let algorithm = if manifest.algorithm == "blake3" {
        ChecksumAlgorithm::Blake3
    } else {
        ChecksumAlgorithm::Sha256
    };
    let mut reader = Reader::open(dir, manifest)?;
    let (mut tally, mut keys) = (Tally::default(), Vec::new());
    let store_name = &handle.name;
    loop {
        let mut batch = Vec::with_capacity(1024);
        while batch.len() < 1024 {
            match reader.next_entry()? {
                Some(entry) => batch.push(entry),
                None => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        let results: Vec<(Entry, object_store::Result<String>)> = futures::stream::iter(batch)
            .map(|entry| hash_one(handle.store.clone(), entry, algorithm))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        for (entry, result) in results {
            match result {
                Ok(hash) if hash == entry.hash => tally.verified += 1,
                Ok(hash) => tally.problem(report, format!("`{store_name}`: `{}` hashes to {hash} at the target, its manifest entry says {} (mismatch)", entry.key, entry.hash)),
                Err(object_store::Error::NotFound { .. }) => tally.problem(report, format!("`{store_name}`: `{}` is missing at the target", entry.key)),
                Err(e) => tally.problem(report, format!("`{store_name}`: `{}` cannot be read: {}", entry.key, handle.redact(&e.to_string()))),
            }
            keys.push(entry.key);
        }
    }
    keys.sort_unstable();
    find_extras(handle, filter, &keys, &mut tally, report).await;
    if tally.problems > MAX_LISTED {
        report.note(format!(
            "… {} more problems not listed",
            tally.problems - MAX_LISTED
        ));
    }
    if tally.problems == 0 {
        report.pass(format!("workload `{}`: all {} objects at target store `{store_name}` hash to their manifest entries; no extra object", manifest.workload, tally.verified));
    } else {
        report.note(format!(
            "workload `{}` at `{store_name}`: {} objects verified, {} problems",
            manifest.workload, tally.verified, tally.problems
        ));
    }
    Ok(())
}

async fn hash_one(
    store: Arc<dyn ObjectStore>,
    entry: Entry,
    algorithm: ChecksumAlgorithm,
) -> (Entry, object_store::Result<String>) {
    let result = hash_target(&store, &entry.key, algorithm, &Counters::default()).await;
    (entry, result)
}

/// Objects at the target, within the workload's filter, that no manifest entry names.
async fn find_extras(
    handle: &StoreHandle,
    filter: &KeyFilter,
    keys: &[String],
    tally: &mut Tally,
    report: &mut Report,
) {
    let mut listing = handle.store.list(None);
    while let Some(item) = listing.next().await {
        match item {
            Ok(meta) => {
                let key = meta.location.as_ref();
                if filter.matches(key) && keys.binary_search_by(|k| k.as_str().cmp(key)).is_err() {
                    tally.problem(report, format!("`{}`: `{key}` is at the target but in no manifest entry (extra object, {} bytes)", handle.name, meta.size));
                }
            }
            Err(e) => {
                tally.problem(
                    report,
                    format!(
                        "`{}`: listing failed: {}",
                        handle.name,
                        handle.redact(&e.to_string())
                    ),
                );
                return;
            }
        }
    }
}
