//! Which manifests a record attests, taken from the **signed evidence** alone, and the
//! check that every exported manifest file is byte for byte the one that evidence
//! signs.
//!
//! The record header also lists the manifests it exported, but a header can be
//! re-signed by whoever holds the operator key (or replaced it), so it never decides
//! what is checked: each evidence statement's `manifest:<workload>` subjects (by Merkle
//! root) and its workload entries (file digest, object count, algorithm, target) do.
//! The latest evidence naming a workload wins, as the export writes each workload's
//! latest manifest. This check runs on every `relocate verify`, with or without
//! `--target`/`--object`, so an edited `*.sha256sums` that someone later feeds to
//! `sha256sum -c` is caught by the verifier first. A manifest that evidence names but
//! the export lacks, and an exported file that no evidence names, are failures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::chain::{EvidenceLine, VerifiedRecord};
use crate::manifest::{file_names, summarize};
use crate::record::ManifestRef;
use crate::report::Report;

/// Subject-name prefix of a workload's manifest in evidence statements.
const SUBJECT_PREFIX: &str = "manifest:";

/// A workload's manifest as its latest signed evidence states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    /// Workload, algorithm, object count, file digest and root, all from the evidence.
    pub manifest: ManifestRef,
    /// The target store the evidence names for the workload.
    pub target: String,
    /// The stage whose evidence signs it.
    pub stage: String,
    /// The record line of that evidence.
    pub line: usize,
}

/// The manifests the signed evidence names (latest evidence per workload), failing
/// every statement whose subjects and predicate disagree.
pub fn from_evidence(record: &VerifiedRecord, report: &mut Report) -> Vec<SignedManifest> {
    let mut latest: BTreeMap<String, Option<SignedManifest>> = BTreeMap::new();
    for evidence in &record.evidence {
        for (workload, signed) in manifests_of(evidence, report) {
            latest.insert(workload, signed);
        }
    }
    latest.into_values().flatten().collect()
}

/// The manifests one evidence statement signs; `None` for a workload whose subject and
/// predicate disagree (already reported).
fn manifests_of(
    evidence: &EvidenceLine,
    report: &mut Report,
) -> Vec<(String, Option<SignedManifest>)> {
    let (n, stage) = (evidence.line, &evidence.predicate.stage);
    let mut out = Vec::new();
    let mut named = BTreeSet::new();
    for subject in &evidence.subjects {
        let Some(workload) = subject.name.strip_prefix(SUBJECT_PREFIX) else {
            continue;
        };
        named.insert(workload.to_owned());
        let entry = evidence
            .predicate
            .workloads
            .iter()
            .find(|w| w.name == workload && w.kind == "objects");
        let signed_root = subject.digest.get("sha256").map(|h| format!("sha256:{h}"));
        let consistent = entry.and_then(|w| {
            let root = w.manifest_root.clone()?;
            let digest = w.manifest_digest.clone()?;
            (signed_root.as_deref() == Some(root.as_str())).then(|| SignedManifest {
                manifest: ManifestRef {
                    workload: workload.to_owned(),
                    algorithm: w.algorithm.clone().unwrap_or_else(|| "sha256".to_owned()),
                    objects: w.objects,
                    digest,
                    root,
                },
                target: w.target.clone(),
                stage: stage.clone(),
                line: n,
            })
        });
        if consistent.is_none() {
            report.fail(format!(
                "line {n}: the evidence of stage `{stage}` names subject `{}` ({}) but its workload entry does not carry that manifest root and a file digest",
                subject.name,
                signed_root.as_deref().unwrap_or("no sha256 digest")
            ));
        }
        out.push((workload.to_owned(), consistent));
    }
    for w in evidence
        .predicate
        .workloads
        .iter()
        .filter(|w| w.kind == "objects" && !named.contains(&w.name))
    {
        report.fail(format!(
            "line {n}: the evidence of stage `{stage}` lists object workload `{}` but no `manifest:{}` subject: its manifest is not attested",
            w.name, w.name
        ));
        out.push((w.name.clone(), None));
    }
    out
}

/// The file names of the signed manifests in the export.
pub fn expected_files(signed: &[SignedManifest]) -> BTreeSet<String> {
    signed
        .iter()
        .flat_map(|s| {
            let (sums, sizes) = file_names(&s.manifest.workload, &s.manifest.algorithm);
            [sums, sizes]
        })
        .collect()
}

/// Check each exported manifest against the evidence that signs it; return the ones
/// that hold (the only ones a target check or a proof may use). Files no evidence
/// names are [`check_no_unsigned_files`]'s.
pub fn check_export(
    signed: &[SignedManifest],
    dir: &Path,
    report: &mut Report,
) -> Vec<SignedManifest> {
    let mut held = Vec::new();
    for s in signed {
        let m = &s.manifest;
        let (sums, sizes) = file_names(&m.workload, &m.algorithm);
        let where_signed = format!("stage `{}`'s evidence (line {})", s.stage, s.line);
        let missing: Vec<String> = [&sums, &sizes]
            .into_iter()
            .filter(|f| !dir.join(f).is_file())
            .map(|f| dir.join(f).display().to_string())
            .collect();
        if !missing.is_empty() {
            report.fail(format!(
                "manifest of workload `{}` is signed in {where_signed} but missing from the export: {}",
                m.workload,
                missing.join(", ")
            ));
            continue;
        }
        let (count, root, digest) = match summarize(dir, m) {
            Ok(summary) => summary,
            Err(e) => {
                report.fail(format!(
                    "manifest of workload `{}` cannot be read: {e}",
                    m.workload
                ));
                continue;
            }
        };
        if (count, &root, &digest) != (m.objects, &m.root, &m.digest) {
            report.fail(format!(
                "manifest of workload `{}` ({count} objects, root {root}, file {digest}) is not the one signed in {where_signed}: {} objects, root {}, file {}",
                m.workload, m.objects, m.root, m.digest
            ));
            continue;
        }
        report.pass(format!(
            "manifest of workload `{}` ({count} objects) has the root and file digest signed in {where_signed}",
            m.workload
        ));
        held.push(s.clone());
    }
    held
}

/// Every file in the manifests directory must be one the evidence signs (an object
/// manifest's or a volume's).
pub fn check_no_unsigned_files(dir: &Path, expected: &BTreeSet<String>, report: &mut Report) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut unsigned: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !expected.contains(name))
        .collect();
    unsigned.sort();
    for name in unsigned {
        report.fail(format!(
            "{} is in the export but no signed evidence names it: do not trust it",
            dir.join(&name).display()
        ));
    }
}
