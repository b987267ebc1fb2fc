//! `verify --object KEY`: the proof that one object belongs to a stage's manifest,
//! without the whole list: the object's leaf, the RFC 6962 audit path, the root it
//! leads to, and which signed evidence carries that root.

use std::path::Path;

use crate::CheckError;
use crate::chain::VerifiedRecord;
use crate::manifest::{Entry, Reader};
use crate::merkle::{InclusionProofBuilder, audit_path_ranges};
use crate::record::ManifestRef;
use crate::report::Report;
use crate::signed_manifests::SignedManifest;

/// Find `key` in every exported manifest the signed evidence names (and that holds)
/// and prove its membership.
pub fn prove_object(
    record: &VerifiedRecord,
    manifests: &[SignedManifest],
    dir: &Path,
    key: &str,
    report: &mut Report,
) -> Result<(), CheckError> {
    let mut found = false;
    for manifest in manifests.iter().map(|m| &m.manifest) {
        let Some((index, size, entry)) = locate(dir, manifest, key)? else {
            continue;
        };
        found = true;
        prove_in(record, dir, manifest, (index, size, &entry), report)?;
    }
    if !found {
        report.fail(format!("object `{key}` is in no exported manifest"));
    }
    Ok(())
}

/// The key's position and entry, and the manifest's size (one streaming pass).
fn locate(
    dir: &Path,
    manifest: &ManifestRef,
    key: &str,
) -> Result<Option<(u64, u64, Entry)>, CheckError> {
    let mut reader = Reader::open(dir, manifest)?;
    let (mut size, mut hit) = (0u64, None);
    while let Some(entry) = reader.next_entry()? {
        if hit.is_none() && entry.key == key {
            hit = Some((size, entry));
        }
        size += 1;
    }
    Ok(hit.map(|(index, entry)| (index, size, entry)))
}

fn prove_in(
    record: &VerifiedRecord,
    dir: &Path,
    manifest: &ManifestRef,
    (index, size, entry): (u64, u64, &Entry),
    report: &mut Report,
) -> Result<(), CheckError> {
    let mut builder = InclusionProofBuilder::new(index, size);
    let mut reader = Reader::open(dir, manifest)?;
    while let Some(e) = reader.next_entry()? {
        builder.push(e.leaf());
    }
    let Some(proof) = builder.finish() else {
        report.fail(format!(
            "the manifest of workload `{}` changed while it was read",
            manifest.workload
        ));
        return Ok(());
    };
    report.pass(format!(
        "object `{}` is entry {} of {size} in the manifest of workload `{}`",
        entry.key,
        index + 1,
        manifest.workload
    ));
    report.note(format!(
        "leaf  sha256:{}  (key `{}`, {} bytes, {} {})",
        hex::encode(proof.leaf),
        entry.key,
        entry.size,
        manifest.algorithm,
        entry.hash
    ));
    let ranges = audit_path_ranges(index, size);
    for (i, (sibling, range)) in proof.path.iter().zip(&ranges).enumerate() {
        let side = if range.start > index {
            "right"
        } else {
            "left "
        };
        let leaves = if range.end - range.start == 1 {
            format!("leaf {}", range.end)
        } else {
            format!("leaves {}..{}", range.start + 1, range.end)
        };
        report.note(format!(
            "path {:>2}. {side} sha256:{}  ({leaves})",
            i + 1,
            hex::encode(sibling)
        ));
    }
    let Some(root) = proof.root().map(|r| format!("sha256:{}", hex::encode(r))) else {
        report.fail("the audit path does not fit the manifest's size");
        return Ok(());
    };
    report.note(format!("root  {root}"));
    let signing: Vec<String> = record
        .evidence
        .iter()
        .filter(|e| {
            e.predicate.workloads.iter().any(|w| {
                w.name == manifest.workload && w.manifest_root.as_deref() == Some(root.as_str())
            })
        })
        .map(|e| {
            format!(
                "stage `{}` (attempt {}, line {})",
                e.predicate.stage, e.predicate.attempt, e.line
            )
        })
        .collect();
    if signing.is_empty() {
        report.fail(format!("the proof leads to root {root}, which no signed evidence in the record carries for workload `{}`", manifest.workload));
    } else {
        report.pass(format!(
            "the root is the manifest root signed by the operator in the evidence of {}",
            signing.join(", ")
        ));
    }
    Ok(())
}
