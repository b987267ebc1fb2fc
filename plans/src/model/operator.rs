//! The operator's pinned key: who signs the evidence of every stage and the record
//! header. Optional, but without it an auditor's `relocate verify --plan` can prove a
//! record's integrity, not who wrote it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The operator running the move, by the public key its evidence is signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operator {
    /// `ed25519:<base64 of 32 bytes>`, the `.pub` line of `relocate keys generate`.
    /// `relocate run` refuses a state directory whose operator key is another one, and
    /// `relocate verify --plan` refuses a record signed by another one.
    pub public_key: String,
}
