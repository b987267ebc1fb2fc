//! Object stores and object workloads.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An object store, given as an `object_store` URL plus its config keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Store {
    /// Region the store is in (a key of `regions`).
    pub region: String,
    /// `file:///path`, `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`, `memory:///`.
    pub url: String,
    /// `object_store` config keys (`endpoint`, `region`, `allow_http`, …). Secrets only as
    /// `${env:NAME}` or `${file:PATH}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, String>,
    /// Multipart upload tuning for large objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<Multipart>,
    /// Retry tuning for transient errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySettings>,
    /// Where the store's credentials come from: its `options` (the default), or, only when
    /// said here, the environment, files and metadata endpoints of the machine.
    #[serde(default, skip_serializing_if = "Credentials::is_options")]
    pub credentials: Credentials,
}

/// Where a cloud store's credentials come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Credentials {
    /// From the store's `options` only (by `${env:…}`/`${file:…}` reference); never from
    /// `AWS_*`/`AZURE_*`/`GOOGLE_*` variables, profile files or a metadata endpoint.
    #[default]
    Options,
    /// From the machine: environment variables, credential files, the instance metadata
    /// endpoint, workload identity, as the cloud's own tools find them.
    Ambient,
}

impl Credentials {
    /// Whether this is the default, [`Credentials::Options`].
    pub fn is_options(&self) -> bool {
        *self == Credentials::Options
    }
}

/// When and how large objects are uploaded in parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Multipart {
    /// Objects at least this large go multipart, e.g. `64MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    /// Part size, e.g. `16MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<String>,
    /// Parts in flight per object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
}

/// Retries of transient errors (5xx, throttling, resets, timeouts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts after the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<usize>,
    /// Give up retrying one request after this long, e.g. `3m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Objects copied from one store to another and verified there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectWorkload {
    /// Source store (a key of `stores`).
    pub from: String,
    /// Target store (a key of `stores`).
    pub to: String,
    /// Glob patterns of keys (relative to the store's prefix) to move; default `["**"]`.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Glob patterns of keys to leave behind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Hash used for the manifest.
    #[serde(default)]
    pub checksum: ChecksumAlgorithm,
    /// Objects in flight at once (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Bandwidth cap across all transfers of this workload, e.g. `200MiB/s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    /// Symbolic links in a local source: `skip` (default: left behind with a notice and
    /// counted in the step summary and the evidence), `follow` (links that resolve inside
    /// the source's root; a link leading out of it fails the step) or `error`.
    #[serde(default, skip_serializing_if = "SymlinkPolicy::is_default")]
    pub symlinks: SymlinkPolicy,
    /// What the first copy does when the target already holds objects under this
    /// workload's keys: `refuse` (default: the step fails naming the count) or `adopt`
    /// (objects whose hash matches the source's are kept and recorded, the rest copied).
    #[serde(default, skip_serializing_if = "ExistingTarget::is_default")]
    pub existing_target: ExistingTarget,
    /// How the verify step checks the target: `{ mode: reread }` (default: every object
    /// read back and hashed) or `{ mode: checksum }` (the store's own checksum compared
    /// with the manifest without downloading, where the store keeps one; the rest re-read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySettings>,
    /// Fan the copy and verify out over this many contiguous key ranges of about equal
    /// bytes, each run by a worker (see `workers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// Where the shards run: `kubernetes` (an Indexed Job) or `local` (child processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<super::Workers>,
}

/// The verify step's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifySettings {
    /// `reread` (default) or `checksum`.
    #[serde(default)]
    pub mode: VerifyMode,
}

/// How a verify checks an object at the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Read every object back and hash it.
    #[default]
    Reread,
    /// Compare the store's stored checksum with the manifest without downloading (S3's
    /// `x-amz-checksum-sha256` of a single-part object, manifests in SHA-256); objects
    /// without one are re-read.
    Checksum,
}

impl VerifyMode {
    /// Name as written in plans and evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::Reread => "reread",
            VerifyMode::Checksum => "checksum",
        }
    }
}

impl ObjectWorkload {
    /// The verify mode the plan asks for (`reread` unless set).
    pub fn verify_mode(&self) -> VerifyMode {
        self.verify.map(|v| v.mode).unwrap_or_default()
    }
}

/// What a copy does with a symbolic link in a local source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SymlinkPolicy {
    /// Leave links behind, with a notice; their count is in the summary and the evidence.
    #[default]
    Skip,
    /// Copy what a link points to, when it resolves inside the source's root; a link
    /// that leads out of the root fails the step, naming it.
    Follow,
    /// Any link fails the step, naming it.
    Error,
}

impl SymlinkPolicy {
    /// Name as written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            SymlinkPolicy::Skip => "skip",
            SymlinkPolicy::Follow => "follow",
            SymlinkPolicy::Error => "error",
        }
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// What the first copy of a workload does when its target already holds objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExistingTarget {
    /// Fail the step, naming how many objects are there and how to proceed.
    #[default]
    Refuse,
    /// Keep the objects whose hash matches the source's (recorded as copied) and copy
    /// over the rest.
    Adopt,
}

impl ExistingTarget {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_include() -> Vec<String> {
    vec!["**".to_owned()]
}

/// Hash algorithm of the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgorithm {
    /// SHA-256 (default; what auditors' tools speak).
    #[default]
    Sha256,
    /// BLAKE3 (faster; optional).
    Blake3,
}

impl ChecksumAlgorithm {
    /// Name as written in plans, manifests and evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Blake3 => "blake3",
        }
    }
}
