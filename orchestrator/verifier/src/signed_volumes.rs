//! Which volume manifests a record attests, taken from the **signed evidence** alone,
//! and the check that every exported volume manifest is byte for byte the one that
//! evidence signs, with the counts and root it states and a structure a restore can
//! trust ([`crate::volume_check`]).
//!
//! Each volume is named twice in an evidence statement: a `volume:<workload>/<claim>`
//! subject by Merkle root (what an approval binds) and a [`VolumeEvidence`] in the
//! workload's entry (counts, file digest). The two must agree. The latest evidence
//! naming a volume wins, as the export writes each volume's latest manifest, to
//! `FILE.manifests/<workload>.<claim>.volume.ndjson` ([`volume_file_name`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::chain::{EvidenceLine, VerifiedRecord};
use crate::report::Report;
use crate::statement::{VOLUME_SUBJECT_PREFIX, VolumeEvidence, volume_subject_name};
use crate::volume::walk_order;
use crate::volume_check::{VolumeFile, read_volume_manifest};

/// The checks a volume's manifest may say it passed last.
pub const CHECKED: [&str; 3] = ["packed", "restored", "reread"];

/// A volume as its latest signed evidence states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVolume {
    /// The workload whose claim it is.
    pub workload: String,
    /// Counts, root and file digest, from the evidence.
    pub volume: VolumeEvidence,
    /// The stage whose evidence signs it.
    pub stage: String,
    /// The record line of that evidence.
    pub line: usize,
}

impl SignedVolume {
    /// `<workload>/<claim>`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.workload, self.volume.claim)
    }
}

/// The exported file of a volume's manifest, `<workload>.<claim>.volume.ndjson`;
/// `None` when either name could not safely name a file (they are validated names,
/// so only a forged record has such).
pub fn volume_file_name(workload: &str, claim: &str) -> Option<String> {
    let safe = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && !s.starts_with('.')
            && !s.contains("..")
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    (safe(workload) && safe(claim)).then(|| format!("{workload}.{claim}.volume.ndjson"))
}

/// The volumes the signed evidence names (latest evidence per volume), failing every
/// statement whose subjects and workload entries disagree.
pub fn from_evidence(record: &VerifiedRecord, report: &mut Report) -> Vec<SignedVolume> {
    latest_volumes(&record.evidence, report)
}

/// [`from_evidence`] over evidence lines in record order.
pub fn latest_volumes(evidence: &[EvidenceLine], report: &mut Report) -> Vec<SignedVolume> {
    let mut latest: BTreeMap<(String, String), Option<SignedVolume>> = BTreeMap::new();
    for evidence in evidence {
        for (key, signed) in volumes_of(evidence, report) {
            latest.insert(key, signed);
        }
    }
    latest.into_values().flatten().collect()
}

/// The volumes one evidence statement signs; `None` for one whose subject and entry
/// disagree (already reported).
fn volumes_of(
    evidence: &EvidenceLine,
    report: &mut Report,
) -> Vec<((String, String), Option<SignedVolume>)> {
    let (n, stage) = (evidence.line, &evidence.predicate.stage);
    let subjects: BTreeMap<&str, Option<&String>> = evidence
        .subjects
        .iter()
        .filter(|s| s.name.starts_with(VOLUME_SUBJECT_PREFIX))
        .map(|s| (s.name.as_str(), s.digest.get("sha256")))
        .collect();
    let mut listed = BTreeSet::new();
    let mut out = Vec::new();
    for w in &evidence.predicate.workloads {
        for v in &w.volumes {
            let name = volume_subject_name(&w.name, &v.claim);
            let fail = |why: String| {
                format!(
                    "line {n}: the evidence of stage `{stage}` lists volume `{}/{}` but {why}",
                    w.name, v.claim
                )
            };
            let problem = if !listed.insert(name.clone()) {
                Some(fail("lists it twice".to_owned()))
            } else if !CHECKED.contains(&v.checked.as_str()) {
                Some(fail(format!(
                    "says it was last checked `{}`, not one of {}",
                    v.checked,
                    CHECKED.join(", ")
                )))
            } else {
                let root = v.root.strip_prefix("sha256:");
                match subjects.get(name.as_str()) {
                    Some(Some(hex)) if root == Some(hex.as_str()) => None,
                    Some(signed) => Some(fail(format!(
                        "its root {} is not the one subject `{name}` signs ({})",
                        v.root,
                        signed.map_or("no sha256 digest", |h| h.as_str())
                    ))),
                    None => Some(fail(format!(
                        "no subject `{name}` signs its root: the volume is not attested"
                    ))),
                }
            };
            let signed = match problem {
                Some(text) => {
                    report.fail(text);
                    None
                }
                None => Some(SignedVolume {
                    workload: w.name.clone(),
                    volume: v.clone(),
                    stage: stage.clone(),
                    line: n,
                }),
            };
            out.push(((w.name.clone(), v.claim.clone()), signed));
        }
    }
    for name in subjects.keys().filter(|s| !listed.contains(**s)) {
        report.fail(format!(
            "line {n}: the evidence of stage `{stage}` names subject `{name}` but no workload entry lists that volume"
        ));
    }
    out
}

/// Check each volume's exported manifest against the evidence that signs it. Returns
/// the file names the evidence accounts for (so that no other file passes unnoticed).
pub fn check_export(signed: &[SignedVolume], dir: &Path, report: &mut Report) -> BTreeSet<String> {
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for s in signed {
        let name = s.name();
        let Some(file) = volume_file_name(&s.workload, &s.volume.claim) else {
            report.fail(format!(
                "volume `{name}`: its workload or claim name cannot safely name a file"
            ));
            continue;
        };
        if let Some(other) = expected.insert(file.clone(), name.clone()) {
            report.fail(format!(
                "volumes `{other}` and `{name}` would be exported to the same file {file}: neither can be checked"
            ));
            continue;
        }
        let path = dir.join(&file);
        let where_signed = format!("stage `{}`'s evidence (line {})", s.stage, s.line);
        if !path.is_file() {
            report.fail(format!(
                "volume manifest of `{name}` is signed in {where_signed} but missing from the export: {}",
                path.display()
            ));
            continue;
        }
        match read_volume_manifest(&path) {
            Ok(found) => check_one(s, &found, &where_signed, report),
            Err(e) => report.fail(format!("volume manifest of `{name}` cannot be read: {e}")),
        }
    }
    expected.into_keys().collect()
}

/// Compare one read manifest with its evidence; one `✘` for what differs, one for a
/// broken structure, else one `✔`.
fn check_one(s: &SignedVolume, found: &VolumeFile, where_signed: &str, report: &mut Report) {
    let (name, v) = (s.name(), &s.volume);
    let mut differs = Vec::new();
    let mut compare = |what: &str, file: String, signed: String| {
        if file != signed {
            differs.push(format!("{what} {file} in the file, {signed} signed"));
        }
    };
    compare("sha256", found.digest.clone(), v.manifest_digest.clone());
    compare("root", found.root.clone(), v.root.clone());
    compare("entries", found.entries.to_string(), v.entries.to_string());
    compare("files", found.files.to_string(), v.files.to_string());
    compare("bytes", found.bytes.to_string(), v.bytes.to_string());
    compare(
        "hard links",
        found.hard_links.to_string(),
        v.hard_links.to_string(),
    );
    let sorted = |list: &[String]| {
        let mut list = list.to_vec();
        list.sort_by(|a, b| walk_order(a, b));
        list
    };
    if sorted(&found.sparse) != sorted(&v.sparse) {
        differs.push(format!(
            "sparse files {:?} in the file, {:?} signed",
            found.sparse, v.sparse
        ));
    }
    if !differs.is_empty() {
        report.fail(format!(
            "volume manifest of `{name}` is not the one signed in {where_signed}: {}",
            differs.join("; ")
        ));
    }
    if !found.problems.is_empty() {
        report.fail(format!(
            "volume manifest of `{name}` is malformed: {}",
            found.problems.join("; ")
        ));
    }
    if differs.is_empty() && found.problems.is_empty() {
        report.pass(format!(
            "volume manifest of `{name}` ({} entries, {} files, {} bytes, {}) has the root and file digest signed in {where_signed}",
            v.entries, v.files, v.bytes, v.checked
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::{EvidencePredicate, Subject, WorkloadEvidence};

    fn volume(claim: &str, root_hex: &str) -> VolumeEvidence {
        VolumeEvidence {
            claim: claim.into(),
            namespace: "analysis".into(),
            entries: 1,
            files: 0,
            bytes: 0,
            root: format!("sha256:{root_hex}"),
            manifest_digest: format!("sha256:{}", "0".repeat(64)),
            sparse: Vec::new(),
            not_moved: Vec::new(),
            hard_links: 0,
            checked: "packed".into(),
            checked_in: None,
            packed_from: None,
        }
    }

    fn evidence(line: usize, volumes: Vec<VolumeEvidence>, subjects: Vec<Subject>) -> EvidenceLine {
        EvidenceLine {
            line,
            digest: format!("sha256:{line}"),
            subjects,
            predicate: EvidencePredicate {
                plan: "p".into(),
                plan_digest: "sha256:p".into(),
                stage: "seed".into(),
                stage_index: 0,
                attempt: line as u32,
                source_region: "a".into(),
                target_region: "b".into(),
                operator: "o".into(),
                started_at: String::new(),
                finished_at: String::new(),
                steps: Vec::new(),
                workloads: vec![WorkloadEvidence {
                    name: "analyzer".into(),
                    kind: "kubernetes".into(),
                    source: "msk".into(),
                    target: "zrh".into(),
                    algorithm: None,
                    objects: 0,
                    bytes: 0,
                    manifest_root: None,
                    manifest_digest: None,
                    resources: Vec::new(),
                    volumes,
                }],
                previous_evidence: None,
            },
        }
    }

    #[test]
    fn a_volume_is_signed_only_when_its_subject_carries_its_root() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let good = volume("data", &a);
        let mut report = Report::quiet();
        let signed = latest_volumes(
            &[evidence(
                2,
                vec![good.clone()],
                vec![good.subject("analyzer")],
            )],
            &mut report,
        );
        assert_eq!(report.failures(), 0);
        assert_eq!(signed.len(), 1);
        assert_eq!(signed[0].name(), "analyzer/data");

        // A root the subject does not sign, no subject at all, a subject with no volume.
        let wrong = Subject::sha256("volume:analyzer/data", &b);
        for (subjects, needle) in [
            (
                vec![wrong],
                "is not the one subject `volume:analyzer/data` signs",
            ),
            (vec![], "no subject `volume:analyzer/data` signs its root"),
        ] {
            let mut report = Report::quiet();
            let signed = latest_volumes(&[evidence(2, vec![good.clone()], subjects)], &mut report);
            assert!(signed.is_empty());
            assert!(
                report.checks()[0].text.contains(needle),
                "{:?}",
                report.checks()
            );
        }
        let mut report = Report::quiet();
        latest_volumes(
            &[evidence(2, vec![], vec![good.subject("analyzer")])],
            &mut report,
        );
        assert!(
            report.checks()[0]
                .text
                .contains("no workload entry lists that volume")
        );

        let mut odd = good.clone();
        odd.checked = "trusted".into();
        let mut report = Report::quiet();
        assert!(
            latest_volumes(
                &[evidence(
                    2,
                    vec![odd.clone()],
                    vec![odd.subject("analyzer")]
                )],
                &mut report
            )
            .is_empty()
        );
        assert!(report.checks()[0].text.contains("last checked `trusted`"));
    }

    #[test]
    fn the_latest_evidence_naming_a_volume_wins() {
        let (old, new) = (
            volume("data", &"a".repeat(64)),
            volume("data", &"b".repeat(64)),
        );
        let mut report = Report::quiet();
        let signed = latest_volumes(
            &[
                evidence(2, vec![old.clone()], vec![old.subject("analyzer")]),
                evidence(3, vec![new.clone()], vec![new.subject("analyzer")]),
            ],
            &mut report,
        );
        assert_eq!(signed.len(), 1);
        assert_eq!(signed[0].volume.root, new.root);
        assert_eq!(signed[0].line, 3);
    }

    #[test]
    fn unsafe_or_colliding_names_get_no_file() {
        assert_eq!(
            volume_file_name("analyzer", "data-0").as_deref(),
            Some("analyzer.data-0.volume.ndjson")
        );
        for (w, c) in [
            ("../x", "c"),
            ("w", "a/b"),
            ("w", ".."),
            ("", "c"),
            (".w", "c"),
            ("w", "c\n"),
        ] {
            assert_eq!(volume_file_name(w, c), None, "{w:?} {c:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mk = |workload: &str, claim: &str| SignedVolume {
            workload: workload.into(),
            volume: volume(claim, &"a".repeat(64)),
            stage: "seed".into(),
            line: 2,
        };
        let mut report = Report::quiet();
        check_export(&[mk("a.b", "c"), mk("a", "b.c")], dir.path(), &mut report);
        assert!(
            report
                .checks()
                .iter()
                .any(|c| !c.holds && c.text.contains("would be exported to the same file")),
            "{:?}",
            report.checks()
        );
    }
}
