//! Approvers and sign-off gates.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An independent third party whose signature can gate a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approver {
    /// Pinned Ed25519 public key, `ed25519:<base64>` (as `relocate keys generate` writes it).
    pub public_key: String,
    /// How relocate asks this approver for a signature.
    pub hook: Hook,
}

/// How an approver is asked. Exactly one of `command`, `webhook`, `file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hook {
    /// argv of a command that reads the evidence envelope on stdin and prints a signed
    /// approval envelope on stdout. Relative paths resolve against the plan's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// URL the evidence is POSTed to (https, or http with `allowHttp: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Wait for the approval file to be dropped into a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileHook>,
    /// Allow a plain-http webhook (tests, loopback auditors).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http: bool,
    /// How long the gate waits for this approver, e.g. `24h` (default: 1h for command
    /// and webhook, unbounded for file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// The file-drop hook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileHook {
    /// Directory watched for `<stage>/<approver>.json`; default `<state-dir>/approvals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// A stage's gate: a list of approvers who must all sign, or a threshold rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Signoff {
    /// Every listed approver must sign.
    All(Vec<String>),
    /// At least `threshold` of the listed approvers must sign.
    Threshold(SignoffRule),
}

/// `{ approvers: [a, b, c], threshold: 2 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignoffRule {
    /// Approvers asked.
    pub approvers: Vec<String>,
    /// Approvals needed (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<usize>,
}

impl Signoff {
    /// The approvers this gate asks.
    pub fn approvers(&self) -> &[String] {
        match self {
            Signoff::All(a) => a,
            Signoff::Threshold(r) => &r.approvers,
        }
    }

    /// Approvals needed to pass.
    pub fn threshold(&self) -> usize {
        match self {
            Signoff::All(a) => a.len(),
            Signoff::Threshold(r) => r.threshold.unwrap_or(r.approvers.len()),
        }
    }
}
