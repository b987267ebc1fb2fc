//! The exported record's file format: an in-toto attestation bundle (JSON Lines, one
//! DSSE envelope per line) whose first line is relocate's signed **record header**.
//!
//! The header is itself an in-toto Statement v1 (predicate type
//! [`RECORD_PREDICATE_TYPE`], subject the plan by digest) signed by the operator key, so
//! every line of the file is a standard DSSE envelope that generic in-toto tooling can
//! read. It carries what a verifier needs and nothing secret: the plan's name and
//! digest, the operator's public key, each approver's pinned public key, each stage's
//! sign-off rule, the list of the entries that follow (kind, stage, payload digest) so
//! nothing can be removed, inserted or reordered unseen, and the exported manifests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::CheckError;
use crate::dsse::Envelope;

/// Predicate type of the record header.
pub const RECORD_PREDICATE_TYPE: &str = "https://relocate.dev/record/v1";

/// The first line of an exported record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordHeader {
    /// The plan's name.
    pub plan: String,
    /// `sha256:<hex>` of the plan.
    pub plan_digest: String,
    /// The state directory's operator key (`ed25519:<base64>`), which signs evidence.
    pub operator_key: String,
    /// Approver name → pinned key, as in the plan.
    pub approvers: BTreeMap<String, PinnedKey>,
    /// The plan's stages in order, with their sign-off rules.
    pub stages: Vec<StageRule>,
    /// The entries on the following lines, in order.
    pub entries: Vec<EntryRef>,
    /// The manifests exported beside the record.
    #[serde(default)]
    pub manifests: Vec<ManifestRef>,
    /// RFC 3339.
    pub exported_at: String,
}

/// An approver's pinned public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinnedKey {
    /// `ed25519:<base64>`.
    pub public_key: String,
    /// Its short fingerprint (a hint for readers).
    pub key_id: String,
}

/// A stage and its gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRule {
    /// Stage name.
    pub name: String,
    /// Who must sign, and how many; `None` for an ungated stage.
    #[serde(default)]
    pub signoff: Option<GateRule>,
}

/// A gate: `threshold` of `approvers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateRule {
    /// Approvers asked.
    pub approvers: Vec<String>,
    /// Approvals needed.
    pub threshold: usize,
}

/// One entry of the record, as the header lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRef {
    /// `evidence` or `approval`.
    pub kind: String,
    /// The stage it belongs to.
    pub stage: String,
    /// The stage attempt.
    pub attempt: u32,
    /// The approver (approvals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// `sha256:<hex>` of the envelope's payload.
    pub digest: String,
}

impl EntryRef {
    /// `evidence of stage `seed` (attempt 1)` / `approval of stage `seed` by auditor`.
    pub fn describe(&self) -> String {
        match &self.approver {
            Some(a) => format!("{} of stage `{}` by {a}", self.kind, self.stage),
            None => format!(
                "{} of stage `{}` (attempt {})",
                self.kind, self.stage, self.attempt
            ),
        }
    }
}

/// A workload's manifest exported beside the record (see [`crate::manifest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRef {
    /// Workload name.
    pub workload: String,
    /// Hash algorithm of the entries.
    pub algorithm: String,
    /// Objects listed.
    pub objects: u64,
    /// `sha256:<hex>` of the `sha256sum`-format file.
    pub digest: String,
    /// `sha256:<hex>` Merkle root over the entries.
    pub root: String,
}

/// An exported record, read back: its lines, each an envelope or the reason it is not.
#[derive(Debug)]
pub struct Bundle {
    /// The record file.
    pub path: PathBuf,
    /// Line 1 is `lines[0]`.
    pub lines: Vec<Result<Envelope, String>>,
}

impl Bundle {
    /// Read a `*.intoto.jsonl` file; blank lines are skipped, malformed ones kept as errors.
    pub fn read(path: &Path) -> Result<Self, CheckError> {
        let io = |source| CheckError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut lines = Vec::new();
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(io)?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines.push(Envelope::from_json(&line).map_err(|e| e.to_string()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            lines,
        })
    }

    /// The directory of manifests exported beside this record.
    pub fn manifests_dir(&self) -> PathBuf {
        manifests_dir_for(&self.path)
    }
}

/// `FILE.manifests/`: where the manifests of record `FILE` are exported.
pub fn manifests_dir_for(record: &Path) -> PathBuf {
    let mut name = record.as_os_str().to_owned();
    name.push(".manifests");
    PathBuf::from(name)
}

/// One envelope as a JSON Lines line (compact, newline-terminated).
pub fn jsonl_line(envelope: &Envelope) -> String {
    let mut line = serde_json::to_string(envelope)
        .expect("an envelope of strings and byte vectors always serializes");
    line.push('\n');
    line
}
