//! `relocate record export`: the state directory's record written as a self-contained
//! bundle (see [`relocate_verifier::record`]) plus the manifests its evidence names
//! (objects' and volumes'), so that an auditor can check it on any machine with
//! nothing else.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use connectors::signoff::dsse::Envelope;
use connectors::signoff::keys::SecretKey;
use connectors::signoff::statement::{
    SignStatement, Statement, Subject, evidence_digest, parse_evidence,
};
use plans::ValidatedPlan;
use relocate_verifier::ReviewedPlan;
use relocate_verifier::record::{
    EntryRef, GateRule, PinnedKey, RECORD_PREDICATE_TYPE, RecordHeader, StageRule, jsonl_line,
    manifests_dir_for,
};

use super::{AuditError, manifest_files, volume_files};
use crate::state::{Db, RecordEntry, StateDir};

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// The record file.
    pub path: PathBuf,
    /// The manifests directory.
    pub manifests_dir: PathBuf,
    /// Entries written after the header.
    pub entries: usize,
    /// Manifests written.
    pub manifests: usize,
    /// Volume manifests written.
    pub volumes: usize,
}

/// Export the record of `plan`'s state directory to `out` (and `out.manifests/`).
pub fn export_record(
    plan: &ValidatedPlan,
    state: &StateDir,
    out: &Path,
) -> Result<ExportSummary, AuditError> {
    if !state.exists() {
        return Err(AuditError::NoState {
            dir: state.root().to_path_buf(),
        });
    }
    let db = Db::open_read_only(&state.db_path())?;
    let recorded = db.meta("plan_digest")?.unwrap_or_default();
    if recorded != plan.digest().as_str() {
        return Err(AuditError::PlanMismatch {
            dir: state.root().to_path_buf(),
            recorded,
            current: plan.digest().to_string(),
        });
    }
    let key_path = state.operator_key_stem().with_extension("key");
    let operator = SecretKey::load(&key_path).map_err(|source| AuditError::OperatorKey {
        path: key_path,
        source,
    })?;
    let record = db.record()?;
    let envelopes = record
        .iter()
        .map(|entry| {
            Envelope::from_json(entry.envelope.as_bytes()).map_err(|e| AuditError::BadRecordEntry {
                seq: entry.seq,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let manifests_dir = manifests_dir_for(out);
    std::fs::create_dir_all(&manifests_dir).map_err(|source| AuditError::Io {
        path: manifests_dir.clone(),
        source,
    })?;
    let mut manifests = Vec::new();
    for (workload, algorithm) in object_workloads(&envelopes) {
        manifests.push(manifest_files::export(
            &db,
            &workload,
            &algorithm,
            &manifests_dir,
        )?);
    }
    let volumes = volume_files::named_volumes(&envelopes);
    for (workload, claim) in &volumes {
        volume_files::export(state, workload, claim, &manifests_dir)?;
    }
    let header = RecordHeader {
        plan: plan.name().to_owned(),
        plan_digest: plan.digest().to_string(),
        operator_key: operator.public().to_string(),
        approvers: pinned_keys(plan),
        stages: stage_rules(plan),
        entries: record
            .iter()
            .zip(&envelopes)
            .map(|(r, e)| entry_ref(r, e))
            .collect(),
        manifests,
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let manifests_count = header.manifests.len();
    let subject = Subject::sha256(format!("plan:{}", plan.name()), plan.digest().as_str());
    let header_envelope =
        Statement::new(vec![subject], RECORD_PREDICATE_TYPE, &header).sign(&operator);
    write_lines(out, std::iter::once(&header_envelope).chain(&envelopes))?;
    Ok(ExportSummary {
        path: out.to_path_buf(),
        manifests_dir,
        entries: envelopes.len(),
        manifests: manifests_count,
        volumes: volumes.len(),
    })
}

/// The object workloads the evidence names, with their manifest algorithm.
fn object_workloads(envelopes: &[Envelope]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for envelope in envelopes {
        let Ok((_, evidence)) = parse_evidence(envelope) else {
            continue;
        };
        for w in evidence
            .workloads
            .into_iter()
            .filter(|w| w.kind == "objects")
        {
            out.insert(w.name, w.algorithm.unwrap_or_else(|| "sha256".to_owned()));
        }
    }
    out
}

fn pinned_keys(plan: &ValidatedPlan) -> BTreeMap<String, PinnedKey> {
    plan.plan()
        .approvers
        .iter()
        .map(|(name, a)| {
            let key_id = connectors::signoff::keys::PublicKey::parse(&a.public_key)
                .map(|k| k.key_id())
                .unwrap_or_default();
            (
                name.clone(),
                PinnedKey {
                    public_key: a.public_key.clone(),
                    key_id,
                },
            )
        })
        .collect()
}

/// What the reviewed `plan` pins, for `relocate verify --plan`.
pub fn reviewed_plan(plan: &ValidatedPlan) -> ReviewedPlan {
    ReviewedPlan {
        path: plan.path().display().to_string(),
        name: plan.name().to_owned(),
        digest: plan.digest().to_string(),
        approvers: plan
            .plan()
            .approvers
            .iter()
            .map(|(name, a)| (name.clone(), a.public_key.clone()))
            .collect(),
        stages: stage_rules(plan),
        operator_key: plan.plan().operator.as_ref().map(|o| o.public_key.clone()),
    }
}

/// Each stage of the plan with its gate, as the header states it.
pub(crate) fn stage_rules(plan: &ValidatedPlan) -> Vec<StageRule> {
    plan.plan()
        .stages
        .iter()
        .map(|s| StageRule {
            name: s.name.clone(),
            signoff: s.signoff.as_ref().map(|g| GateRule {
                approvers: g.approvers().to_vec(),
                threshold: g.threshold(),
            }),
        })
        .collect()
}

fn entry_ref(entry: &RecordEntry, envelope: &Envelope) -> EntryRef {
    EntryRef {
        kind: entry.kind.clone(),
        stage: entry.stage.clone(),
        attempt: entry.attempt,
        approver: entry.approver.clone(),
        digest: evidence_digest(envelope),
    }
}

/// Write the lines to a temporary file and rename it into place, so a reader never
/// sees half a record.
fn write_lines<'a>(
    out: &Path,
    envelopes: impl Iterator<Item = &'a Envelope>,
) -> Result<(), AuditError> {
    let tmp = out.with_extension("jsonl.tmp");
    let io = |source| AuditError::Io {
        path: out.to_path_buf(),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    for envelope in envelopes {
        file.write_all(jsonl_line(envelope).as_bytes())
            .map_err(io)?;
    }
    file.flush().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, out).map_err(io)
}
