//! The plan as written: serde types that mirror the YAML one to one.
//!
//! These types are strict (`deny_unknown_fields`) so a typo in a reviewed plan is an
//! error, not a silently ignored key. They carry no semantics beyond shape: references
//! between sections, residency, secrets and stage ordering are checked by
//! [`crate::validate`], which is the only way to obtain a [`crate::ValidatedPlan`].

mod kubernetes;
mod objects;
mod operator;
mod signoff;
mod workers;

pub use kubernetes::{Cluster, JsonPatchRule, KubernetesWorkload, ResourceRef, Transform, Volumes};
pub use objects::{
    ChecksumAlgorithm, Credentials, ExistingTarget, Multipart, ObjectWorkload, RetrySettings,
    Store, SymlinkPolicy, VerifyMode, VerifySettings,
};
pub use operator::Operator;
pub use signoff::{Approver, FileHook, Hook, Signoff, SignoffRule};
pub use workers::{
    KubernetesWorkers, LocalWorkers, SharedState, WorkerCredentials, WorkerResources, Workers,
};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The only `apiVersion` this build understands.
pub const API_VERSION: &str = "relocate/v1";
/// The only `kind` this build understands.
pub const KIND: &str = "MigrationPlan";

/// One migration plan: one move of workloads from a source region to a target region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// Must be `relocate/v1`.
    pub api_version: String,
    /// Must be `MigrationPlan`.
    pub kind: String,
    /// The move's name; names the default state directory `.relocate/<name>/`.
    pub name: String,
    /// Free text for reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Regions by name, each with the jurisdiction whose law applies there.
    pub regions: IndexMap<String, Region>,
    /// Name of the region the workloads leave.
    pub source: String,
    /// Name of the region the workloads arrive in.
    pub target: String,
    /// Where data may be written; checked before anything moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency: Option<Residency>,
    /// Object stores by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub stores: IndexMap<String, Store>,
    /// Kubernetes clusters by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub clusters: IndexMap<String, Cluster>,
    /// Workloads by name: what moves.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub workloads: IndexMap<String, Workload>,
    /// Third parties whose signature a stage may require.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub approvers: IndexMap<String, Approver>,
    /// The operator's pinned public key (optional): the only key allowed to sign this
    /// move's evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    /// Where sharded workloads' workers and the coordinator meet (work orders,
    /// checkpoints, results): `{ store: <a key of stores> }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SharedState>,
    /// Stages, run in order.
    pub stages: Vec<Stage>,
}

/// A region and the jurisdiction it is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Region {
    /// ISO 3166-1 alpha-2 country code (or another jurisdiction label the residency
    /// allow-list uses), e.g. `CH`.
    pub jurisdiction: String,
    /// Free text for reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Residency rules: the jurisdictions data may be written to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Residency {
    /// Every store or cluster written to (a copy or deploy target) must be in a region
    /// whose jurisdiction is listed here.
    pub allowed_target_jurisdictions: Vec<String>,
}

/// A workload: either objects in a store or resources in a cluster.
// A plan holds a handful of workloads, parsed once: boxing the larger variant would
// only make every match on it noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Workload {
    /// Objects copied from one store to another.
    Objects(ObjectWorkload),
    /// Kubernetes resources moved from one cluster to another.
    Kubernetes(KubernetesWorkload),
}

/// A stage: steps run in order, then an optional sign-off gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stage {
    /// Unique stage name.
    pub name: String,
    /// Free text for reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Steps, run in order.
    pub steps: Vec<Step>,
    /// Approvers who must sign the stage's evidence before the next stage starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signoff: Option<Signoff>,
}

/// One step of a stage. Written as a one-key map, e.g. `{ copy: telemetry }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// Copy what is missing or changed at the target (a repeat is the delta sync).
    Copy(String),
    /// Re-read and hash every target object; compare with the manifest.
    Verify(String),
    /// Record the source's replica counts and scale the source workload to zero.
    Freeze(String),
    /// Apply the transformed resources to the target cluster and wait until ready.
    Deploy(String),
    /// Restore the source from recorded state and scale the target down.
    Rollback(String),
    /// Run an operator command (argv list, no shell); non-zero exit fails the stage.
    Run(RunCommand),
}

/// A `run` step's command: `run: [argv…]`, or `run: { command: [argv…], timeout: 10m }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RunCommand {
    /// The argv alone; the default timeout applies.
    Argv(Vec<String>),
    /// The argv and how long it may run.
    Spec(RunSpec),
}

/// `{ command: [argv…], timeout: 10m }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunSpec {
    /// Program and arguments (no shell).
    pub command: Vec<String>,
    /// How long the command may run before it is killed and the step fails, e.g.
    /// `30m` (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl RunCommand {
    /// Program and arguments.
    pub fn argv(&self) -> &[String] {
        match self {
            RunCommand::Argv(argv) => argv,
            RunCommand::Spec(spec) => &spec.command,
        }
    }

    /// The timeout as written, if any.
    pub fn timeout(&self) -> Option<&str> {
        match self {
            RunCommand::Argv(_) => None,
            RunCommand::Spec(spec) => spec.timeout.as_deref(),
        }
    }
}

impl Step {
    /// The step kind as written in the plan (`copy`, `verify`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Copy(_) => "copy",
            Step::Verify(_) => "verify",
            Step::Freeze(_) => "freeze",
            Step::Deploy(_) => "deploy",
            Step::Rollback(_) => "rollback",
            Step::Run(_) => "run",
        }
    }

    /// The workload the step acts on, if any.
    pub fn workload(&self) -> Option<&str> {
        match self {
            Step::Copy(w)
            | Step::Verify(w)
            | Step::Freeze(w)
            | Step::Deploy(w)
            | Step::Rollback(w) => Some(w),
            Step::Run(_) => None,
        }
    }
}
