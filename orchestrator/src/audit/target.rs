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

use relocate_verifier::manifest::{Entry, Reader};
use relocate_verifier::record::ManifestRef;
use relocate_verifier::{Report, SignedManifest};

use super::AuditError;
use super::hashing::hash_object;
use crate::transfer::KeyFilter;

/// Objects hashed at once.
const CONCURRENCY: usize = 16;
/// Per-key failures printed per workload before only counting.
const MAX_LISTED: u64 = 100;

/// Check the target of every manifest the signed evidence names and the export holds
/// unchanged (see [`super::signed_manifests`]).
pub async fn check_target(
    manifests: &[SignedManifest],
    manifests_dir: &Path,
    plan: &ValidatedPlan,
    report: &mut Report,
) -> Result<(), AuditError> {
    if manifests.is_empty() {
        report.note("no signed evidence names an object manifest that the export holds: nothing to check at a target");
    }
    for signed in manifests {
        let manifest = &signed.manifest;
        let Some(workload) = plan.object_workload(&manifest.workload) else {
            report.fail(format!(
                "workload `{}` is not an object workload of the plan",
                manifest.workload
            ));
            continue;
        };
        if signed.target != workload.to {
            report.fail(format!(
                "workload `{}`: the evidence names target `{}`, the plan `{}`",
                manifest.workload, signed.target, workload.to
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
    let result = hash_object(&store, &entry.key, algorithm).await;
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
    // A local target through relocate's own walk: object_store's hides `name#digits`
    // files, and follows links.
    let mut listing = match &handle.local {
        Some(fs) => {
            let walk =
                crate::transfer::local::list_store(fs, crate::transfer::local::Links::Target);
            walk.pages.flat_map(futures::stream::iter).boxed()
        }
        None => handle.store.list(None),
    };
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
