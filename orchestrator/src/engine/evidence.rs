//! Stage evidence: an in-toto Statement in a DSSE envelope, signed with the state
//! directory's operator key, written to `evidence/` and appended to the record.
//!
//! The statement's subjects are the stage's manifests (by Merkle root) so an approval
//! of the evidence is an approval of exactly those objects; its predicate binds the
//! plan digest, the stage and attempt, the counts, and the previous stage's evidence
//! digest, which chains the stages into one tamper-evident record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use connectors::signoff::dsse::Envelope;
use connectors::signoff::keys::{SecretKey, generate_keypair};
use connectors::signoff::statement::{
    EVIDENCE_PREDICATE_TYPE, EvidencePredicate, ResourceDigest, Statement, StepEvidence, Subject,
    VolumeEvidence, WorkloadEvidence, evidence_digest, sign_evidence,
};
use plans::{Stage, Step};

use super::{Context, EngineError};
use crate::progress::Event;
use crate::state::{NewEvidence, StateDir, StateError};
use crate::transfer::write_manifest;

/// A stage's evidence, as sent to approvers.
#[derive(Debug, Clone)]
pub(crate) struct StageEvidence {
    pub envelope: Envelope,
    pub json: Vec<u8>,
    pub digest: String,
    pub path: PathBuf,
    pub attempt: u32,
}

/// The state directory's operator key, created at first use.
pub(crate) fn operator_key(state: &StateDir) -> Result<SecretKey, EngineError> {
    let stem = state.operator_key_stem();
    let key_path = stem.with_extension("key");
    if !key_path.exists() {
        generate_keypair(&stem).map_err(|e| EngineError::Evidence {
            stage: String::new(),
            detail: format!("cannot create the operator key: {e}"),
        })?;
    }
    SecretKey::load(&key_path).map_err(|e| EngineError::Evidence {
        stage: String::new(),
        detail: format!("cannot read the operator key: {e}"),
    })
}

fn err(stage: &Stage, detail: impl std::fmt::Display) -> EngineError {
    EngineError::Evidence {
        stage: stage.name.clone(),
        detail: detail.to_string(),
    }
}

/// Build, sign, write and record this attempt's evidence.
pub(crate) fn write_stage_evidence(
    ctx: &Context,
    index: usize,
    stage: &Stage,
    attempt: u32,
) -> Result<StageEvidence, EngineError> {
    let plan = ctx.plan.plan();
    let record = ctx.db.stage(index)?;
    let previous = if index == 0 {
        None
    } else {
        ctx.db.stage(index - 1)?.and_then(|r| r.evidence_digest)
    };
    let mut subjects = Vec::new();
    let mut workloads = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut volume_workloads: Vec<String> = Vec::new();
    for step in &stage.steps {
        if let Step::Copy(name) | Step::Verify(name) | Step::Deploy(name) = step
            && ctx.plan.volume_workload(name).is_some()
            && !volume_workloads.contains(name)
        {
            volume_workloads.push(name.clone());
        }
        if let Step::Deploy(name) = step
            && seen.insert(name.clone())
        {
            let (w, resources) = deployed_resources(ctx, name)?;
            let digests: Vec<String> = resources
                .iter()
                .map(|r| format!("{}={}", r.name, r.digest))
                .collect();
            subjects.push(Subject {
                name: format!("kubernetes:{name}"),
                digest: BTreeMap::from([(
                    "sha256".to_owned(),
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(digests.join("\n"))),
                )]),
            });
            workloads.push(WorkloadEvidence {
                name: name.clone(),
                kind: "kubernetes".into(),
                source: w.from.clone(),
                target: w.to.clone(),
                algorithm: None,
                objects: resources.len() as u64,
                bytes: 0,
                manifest_root: None,
                manifest_digest: None,
                resources,
                volumes: Vec::new(),
            });
            continue;
        }
        let (Step::Copy(name) | Step::Verify(name)) = step else {
            continue;
        };
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(w) = ctx.plan.object_workload(name) else {
            continue;
        };
        let m = write_manifest(
            &ctx.db,
            name,
            w.checksum.as_str(),
            &ctx.state.manifests_dir(),
        )?;
        subjects.push(Subject {
            name: format!("manifest:{name}"),
            digest: BTreeMap::from([(
                "sha256".to_owned(),
                m.root.trim_start_matches("sha256:").to_owned(),
            )]),
        });
        workloads.push(WorkloadEvidence {
            name: name.clone(),
            kind: "objects".into(),
            source: w.from.clone(),
            target: w.to.clone(),
            algorithm: Some(m.algorithm.clone()),
            objects: m.objects,
            bytes: m.bytes,
            manifest_root: Some(m.root.clone()),
            manifest_digest: Some(m.file_digest.clone()),
            resources: Vec::new(),
            volumes: Vec::new(),
        });
    }
    for name in &volume_workloads {
        let volumes = volume_evidence(ctx, name)?;
        subjects.extend(volumes.iter().map(|v| v.subject(name)));
        match workloads.iter_mut().find(|w| &w.name == name) {
            Some(w) => w.volumes = volumes,
            None => {
                let w = ctx
                    .plan
                    .kubernetes_workload(name)
                    .ok_or_else(|| err(stage, format!("{name} is not a Kubernetes workload")))?;
                workloads.push(WorkloadEvidence {
                    name: name.clone(),
                    kind: "kubernetes".into(),
                    source: w.from.clone(),
                    target: w.to.clone(),
                    algorithm: None,
                    objects: 0,
                    bytes: 0,
                    manifest_root: None,
                    manifest_digest: None,
                    resources: Vec::new(),
                    volumes,
                });
            }
        }
    }
    let steps = stage
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| -> Result<StepEvidence, StateError> {
            let rec = ctx.db.step(index, i)?;
            Ok(StepEvidence {
                kind: step.kind().to_owned(),
                workload: step.workload().map(str::to_owned),
                outcome: rec
                    .as_ref()
                    .map_or("not-run", |r| r.status.as_str())
                    .to_owned(),
                detail: rec
                    .and_then(|r| r.summary)
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if subjects.is_empty() {
        // A stage without object workloads (e.g. only commands) still needs a subject:
        // the plan itself.
        subjects.push(Subject {
            name: format!("plan:{}", plan.name),
            digest: BTreeMap::from([(
                "sha256".to_owned(),
                ctx.plan
                    .digest()
                    .as_str()
                    .trim_start_matches("sha256:")
                    .to_owned(),
            )]),
        });
    }
    let predicate = EvidencePredicate {
        plan: plan.name.clone(),
        plan_digest: ctx.plan.digest().to_string(),
        stage: stage.name.clone(),
        stage_index: index,
        attempt,
        source_region: plan.source.clone(),
        target_region: plan.target.clone(),
        operator: ctx.options.operator.clone(),
        started_at: record.and_then(|r| r.started_at).unwrap_or_default(),
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        steps,
        workloads,
        previous_evidence: previous,
    };
    let statement = Statement {
        _type: connectors::signoff::statement::STATEMENT_TYPE.to_owned(),
        subject: subjects,
        predicate_type: EVIDENCE_PREDICATE_TYPE.to_owned(),
        predicate: serde_json::to_value(&predicate).map_err(|e| err(stage, e))?,
    };
    let envelope = sign_evidence(&statement, &ctx.operator_key);
    let json = envelope.to_json_pretty();
    let digest = evidence_digest(&envelope);
    let path = ctx.state.evidence_dir().join(format!(
        "{:02}-{}.attempt-{attempt}.intoto.json",
        index + 1,
        stage.name
    ));
    std::fs::write(&path, &json).map_err(|source| StateError::Io {
        path: path.clone(),
        source,
    })?;
    ctx.db.record_stage_evidence(
        index,
        &NewEvidence {
            stage: &stage.name,
            attempt,
            digest: &digest,
            envelope: &String::from_utf8_lossy(&json),
            path: &path.display().to_string(),
        },
    )?;
    ctx.emit(Event::EvidenceWritten {
        stage: stage.name.clone(),
        digest: digest.clone(),
        path: path.display().to_string(),
    });
    Ok(StageEvidence {
        envelope,
        json,
        digest,
        path,
        attempt,
    })
}

/// The digests of what a deploy step applied (recorded by the step).
fn deployed_resources<'a>(
    ctx: &'a Context,
    name: &str,
) -> Result<(&'a plans::KubernetesWorkload, Vec<ResourceDigest>), EngineError> {
    let w = ctx
        .plan
        .kubernetes_workload(name)
        .ok_or_else(|| EngineError::Evidence {
            stage: String::new(),
            detail: format!("{name} is not a Kubernetes workload"),
        })?;
    let applied: Vec<connectors::kube::Applied> = match ctx
        .db
        .workload_state(name, super::steps::kubernetes::APPLIED)?
    {
        Some(json) => serde_json::from_str(&json).map_err(|e| EngineError::Evidence {
            stage: String::new(),
            detail: format!("applied resources of {name}: {e}"),
        })?,
        None => Vec::new(),
    };
    let resources = applied
        .into_iter()
        .map(|a| ResourceDigest {
            kind: a.resource.kind,
            namespace: a.resource.namespace,
            name: a.resource.name,
            digest: a.digest,
        })
        .collect();
    Ok((w, resources))
}

/// Each packed claim of a volume workload: its manifest and root as packed, and the
/// last check that matched them (a restore re-hashes every file; a verify re-reads).
fn volume_evidence(ctx: &Context, name: &str) -> Result<Vec<VolumeEvidence>, EngineError> {
    use super::steps::kubernetes::volumes::{CHECKS, Check, PACKED, PACKED_FROM, PACKED_IN};
    use crate::volumes::mover::MoverReport;
    fn read<T: serde::de::DeserializeOwned>(
        ctx: &Context,
        name: &str,
        state: &str,
    ) -> Result<Option<T>, EngineError> {
        match ctx.db.workload_state(name, state)? {
            Some(json) => {
                serde_json::from_str(&json)
                    .map(Some)
                    .map_err(|e| EngineError::Evidence {
                        stage: String::new(),
                        detail: format!("{state} of {name}: {e}"),
                    })
            }
            None => Ok(None),
        }
    }
    let packed: Vec<MoverReport> = read(ctx, name, PACKED)?.unwrap_or_default();
    let checks: std::collections::BTreeMap<String, Check> =
        read(ctx, name, CHECKS)?.unwrap_or_default();
    let packed_from: Option<String> = read(ctx, name, PACKED_FROM)?;
    let packed_in: Option<String> = read(ctx, name, PACKED_IN)?;
    let namespace = ctx
        .plan
        .kubernetes_workload(name)
        .map_or(String::new(), |w| w.target_namespace().to_owned());
    Ok(packed
        .iter()
        .filter_map(|r| r.packed.as_ref().map(|p| (r, p)))
        .map(|(r, p)| {
            // A check counts only for the data packed now (its root); it says where it
            // was made, which may be an earlier stage or attempt.
            let (checked, checked_in) = match checks.get(&r.claim).filter(|c| c.root == p.root) {
                Some(c) => (c.checked.clone(), Some(c.made_in.clone())),
                None => ("packed".to_owned(), packed_in.clone()),
            };
            VolumeEvidence {
                claim: r.claim.clone(),
                namespace: namespace.clone(),
                entries: p.entries,
                files: p.files,
                bytes: p.bytes,
                root: format!("sha256:{}", p.root),
                manifest_digest: format!("sha256:{}", p.manifest_sha256),
                sparse: p.sparse.clone(),
                not_moved: p.not_moved.clone(),
                hard_links: p.hard_links,
                checked,
                checked_in,
                packed_from: packed_from.clone(),
            }
        })
        .collect())
}

/// Reload the evidence of an attempt that was waiting for sign-off when the run stopped.
pub(crate) fn load_existing(
    ctx: &Context,
    index: usize,
    stage: &Stage,
) -> Result<StageEvidence, EngineError> {
    let rec = ctx
        .db
        .stage(index)?
        .ok_or_else(|| err(stage, "no stage record"))?;
    let path = PathBuf::from(rec.evidence_path.clone().unwrap_or_default());
    let json = std::fs::read(&path).map_err(|source| StateError::Io {
        path: path.clone(),
        source,
    })?;
    let envelope = Envelope::from_json(&json).map_err(|e| err(stage, e))?;
    let digest = evidence_digest(&envelope);
    if Some(&digest) != rec.evidence_digest.as_ref() {
        return Err(err(
            stage,
            format!(
                "evidence file {} was changed since it was written (digest {digest}, recorded {})",
                path.display(),
                rec.evidence_digest.unwrap_or_default()
            ),
        ));
    }
    Ok(StageEvidence {
        envelope,
        json,
        digest,
        path,
        attempt: rec.attempt,
    })
}
