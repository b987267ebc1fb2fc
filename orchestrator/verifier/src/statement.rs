//! in-toto Statement v1 and relocate's two predicates: a stage's **evidence** (what was
//! moved, verified and applied, chained to the previous stage's evidence) and an
//! **approval** (an approver's decision bound to one plan, stage and evidence digest).
//! Statements travel as DSSE payloads of type [`PAYLOAD_TYPE`]. Parsing never trusts
//! a payload: callers check the envelope's signature first.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::VerifyError;
use crate::dsse::Envelope;

/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Predicate type of a stage's evidence.
pub const EVIDENCE_PREDICATE_TYPE: &str = "https://relocate.dev/evidence/stage/v1";
/// Predicate type of an approval.
pub const APPROVAL_PREDICATE_TYPE: &str = "https://relocate.dev/approval/v1";

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub _type: String,
    /// What the statement is about, by digest.
    pub subject: Vec<Subject>,
    /// How to read `predicate`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The claim itself.
    pub predicate: serde_json::Value,
}

/// A statement's subject: a name and its digests (`{"sha256": "<hex>"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// What is digested, e.g. a manifest or `evidence:<stage>`.
    pub name: String,
    /// Algorithm → lowercase hex.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject with one SHA-256 digest, given as `sha256:<hex>` or bare hex.
    pub fn sha256(name: impl Into<String>, digest: &str) -> Self {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        Self {
            name: name.into(),
            digest: BTreeMap::from([("sha256".to_owned(), hex.to_owned())]),
        }
    }
}

impl Statement {
    /// A statement carrying a typed predicate.
    pub fn new(
        subject: Vec<Subject>,
        predicate_type: impl Into<String>,
        predicate: &impl Serialize,
    ) -> Self {
        Self {
            _type: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate: serde_json::to_value(predicate)
                .expect("predicates are plain structs of strings and numbers"),
        }
    }

    /// Canonical payload bytes (compact JSON, fields in declaration order).
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement of strings and JSON values always serializes")
    }

    /// Decode the statement in `envelope` (no signature check) and its predicate of
    /// `predicate_type`.
    pub fn parse_with<P: DeserializeOwned>(
        envelope: &Envelope,
        predicate_type: &str,
    ) -> Result<(Statement, P), VerifyError> {
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err(VerifyError::WrongPayloadType {
                expected: PAYLOAD_TYPE.to_owned(),
                found: envelope.payload_type.clone(),
            });
        }
        let statement: Statement = serde_json::from_slice(&envelope.payload).map_err(|e| {
            VerifyError::MalformedStatement {
                reason: e.to_string(),
            }
        })?;
        if statement._type != STATEMENT_TYPE {
            return Err(VerifyError::MalformedStatement {
                reason: format!(
                    "_type is `{}`, expected `{STATEMENT_TYPE}`",
                    statement._type
                ),
            });
        }
        if statement.predicate_type != predicate_type {
            return Err(VerifyError::WrongPredicateType {
                expected: predicate_type.to_owned(),
                found: statement.predicate_type.clone(),
            });
        }
        let predicate = P::deserialize(&statement.predicate).map_err(|source| {
            VerifyError::MalformedPredicate {
                predicate_type: predicate_type.to_owned(),
                source,
            }
        })?;
        Ok((statement, predicate))
    }
}

/// A finished stage's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidencePredicate {
    /// The plan's name.
    pub plan: String,
    /// The plan's digest, `sha256:<hex>`.
    pub plan_digest: String,
    /// The stage's name.
    pub stage: String,
    /// Its position in the plan, from 0.
    pub stage_index: usize,
    /// Which run of the stage this is, from 1.
    pub attempt: u32,
    /// Region the workloads leave.
    pub source_region: String,
    /// Region they arrive in.
    pub target_region: String,
    /// Who ran it.
    pub operator: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Each step and its outcome.
    pub steps: Vec<StepEvidence>,
    /// What each workload moved.
    pub workloads: Vec<WorkloadEvidence>,
    /// `sha256:<hex>` of the previous stage's evidence; `None` for the first.
    #[serde(default)]
    pub previous_evidence: Option<String>,
}

/// One step of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepEvidence {
    /// `copy`, `verify`, `apply`, `cutover`, …
    pub kind: String,
    /// The workload it acted on, if one.
    #[serde(default)]
    pub workload: Option<String>,
    /// `succeeded`, `failed`, `skipped`, …
    pub outcome: String,
    /// Step-specific counts and details.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// What one workload moved. Source and target are store or cluster names, never
/// credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEvidence {
    /// Workload name.
    pub name: String,
    /// `objects` or `kubernetes`.
    pub kind: String,
    /// Source store / cluster name.
    pub source: String,
    /// Target store / cluster name.
    pub target: String,
    /// Checksum algorithm of the manifest (`sha256`, `blake3`).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Objects copied and verified.
    pub objects: u64,
    /// Bytes copied and verified.
    pub bytes: u64,
    /// Root hash of the object manifest.
    #[serde(default)]
    pub manifest_root: Option<String>,
    /// `sha256:<hex>` of the manifest file.
    #[serde(default)]
    pub manifest_digest: Option<String>,
    /// Digests of the Kubernetes resources applied.
    #[serde(default)]
    pub resources: Vec<ResourceDigest>,
    /// The persistent volumes a workload's data moved in (empty for others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeEvidence>,
}

/// Subject-name prefix of a volume's manifest in evidence statements:
/// `volume:<workload>/<claim>`, digest the manifest's Merkle root.
pub const VOLUME_SUBJECT_PREFIX: &str = "volume:";

/// One persistent volume whose files moved: its manifest's counts, Merkle root and
/// file digest (the manifest itself is exported beside the record, see
/// [`crate::volume`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeEvidence {
    /// The claim's name (the same at source and target).
    pub claim: String,
    /// The target namespace.
    pub namespace: String,
    /// Entries in the manifest (every path, the root `.` included).
    pub entries: u64,
    /// Regular files.
    pub files: u64,
    /// Bytes of the regular files.
    pub bytes: u64,
    /// `sha256:<hex>` Merkle root of the manifest.
    pub root: String,
    /// `sha256:<hex>` of `manifest.ndjson`'s bytes.
    pub manifest_digest: String,
    /// Sparse files (stored in full, restored with holes), by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse: Vec<String>,
    /// Paths left out of the manifest (sockets), by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_moved: Vec<String>,
    /// Hard links (names beyond each inode's first), preserved as links.
    #[serde(default)]
    pub hard_links: u64,
    /// The last check whose root matched: `packed`, `restored` or `reread`.
    pub checked: String,
    /// Where that check was made, `<stage> attempt <n>`: a check carried over from an
    /// earlier stage or attempt says so, not only the stage that signs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in: Option<String>,
    /// What the pack read: `frozen` (the source stopped: point-in-time), `snapshot` (a
    /// CSI snapshot: point-in-time) or `live` (the running source: not point-in-time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed_from: Option<String>,
}

impl VolumeEvidence {
    /// The statement subject that signs this volume of `workload`:
    /// `volume:<workload>/<claim>` by its Merkle root.
    pub fn subject(&self, workload: &str) -> Subject {
        Subject::sha256(volume_subject_name(workload, &self.claim), &self.root)
    }
}

/// `volume:<workload>/<claim>`.
pub fn volume_subject_name(workload: &str, claim: &str) -> String {
    format!("{VOLUME_SUBJECT_PREFIX}{workload}/{claim}")
}

/// A Kubernetes resource as applied to the target cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDigest {
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; empty for cluster-scoped resources.
    #[serde(default)]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `sha256:<hex>` of the applied manifest.
    pub digest: String,
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The stage may proceed.
    Approve,
    /// The move stops here.
    Reject,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        })
    }
}

/// An approval: one decision bound to one plan, stage and evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPredicate {
    /// `sha256:<hex>` of the plan.
    pub plan_digest: String,
    /// The stage approved.
    pub stage: String,
    /// `sha256:<hex>` of the evidence payload, see [`evidence_digest`].
    pub evidence_digest: String,
    /// Approve or reject.
    pub decision: Decision,
    /// Why, in the approver's words.
    #[serde(default)]
    pub reason: Option<String>,
    /// Key id of the signing key (informational; the signature is what counts).
    pub approver_key_id: String,
    /// RFC 3339.
    pub signed_at: String,
}

impl ApprovalPredicate {
    /// The approval statement: its subject is `evidence:<stage>` by digest.
    pub fn to_statement(&self) -> Statement {
        let subject = Subject::sha256(format!("evidence:{}", self.stage), &self.evidence_digest);
        Statement::new(vec![subject], APPROVAL_PREDICATE_TYPE, self)
    }
}

/// `sha256:<hex>` of the envelope's payload (the statement bytes), independent of
/// signatures and of how the envelope JSON is formatted.
pub fn evidence_digest(envelope: &Envelope) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(&envelope.payload)))
}

/// Decode evidence (checks payload and predicate types; does not verify signatures).
pub fn parse_evidence(envelope: &Envelope) -> Result<(Statement, EvidencePredicate), VerifyError> {
    Statement::parse_with(envelope, EVIDENCE_PREDICATE_TYPE)
}

/// Decode an approval (checks payload and predicate types; does not verify signatures).
pub fn parse_approval(envelope: &Envelope) -> Result<(Statement, ApprovalPredicate), VerifyError> {
    Statement::parse_with(envelope, APPROVAL_PREDICATE_TYPE)
}
