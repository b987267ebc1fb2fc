//! relocate's migration plan: the YAML model, strict validation and example plans.
//!
//! One YAML file describes one move. It is reviewed like code, so this crate is strict:
//! [`parse`] turns text into a [`ValidatedPlan`], the only form of a plan the engine
//! accepts, or into a [`PlanError::Invalid`] listing *every* problem as
//! `file:line:col: problem — fix`.
//!
//! The pipeline:
//! 1. [`source_map`] walks the YAML event stream once and records where every node
//!    sits, by YAML path (`stages[1].steps[0].copy`).
//! 2. serde-saphyr deserialises the text into the [`model`] (`deny_unknown_fields`
//!    everywhere); a shape error (unknown key, wrong type, broken YAML) becomes one
//!    positioned diagnostic with a "did you mean" hint.
//! 3. [`validate`] checks the semantics — references, residency, literal secrets,
//!    URLs, units, keys, hooks and above all that no stage cuts over unverified data —
//!    and every problem found is positioned through the source map and sorted.
//! 4. The plan's canonical [`PlanDigest`] is computed; evidence and approvals carry it.
//!
//! Relative paths in a plan (`file://./dir` store URLs, hook commands, `${file:…}`)
//! resolve against the plan file's directory, [`ValidatedPlan::base_dir`]; see
//! [`ValidatedPlan::store_url`]. The crate does no I/O beyond reading the plan file in
//! [`load`]: secrets are parsed as references ([`secret`]) and resolved by the
//! connectors.

pub mod digest;
pub mod error;
pub mod model;
pub mod secret;
mod shape;
pub mod source_map;
pub mod store_url;
pub mod units;
pub mod validate;
mod validated;

pub use digest::PlanDigest;
pub use error::{Diagnostic, PlanError};
pub use model::*;
pub use validated::ValidatedPlan;

use std::path::Path;

use source_map::SourceMap;

/// Read, parse and validate the plan at `path`.
pub fn load(path: &Path) -> Result<ValidatedPlan, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parse and validate plan text; `path` names the file in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<ValidatedPlan, PlanError> {
    let map = SourceMap::build(text);
    let plan: Plan = serde_saphyr::from_str(text).map_err(|err| {
        PlanError::Invalid(vec![shape::diagnose(&err, &path.display().to_string(), &map)])
    })?;
    ValidatedPlan::check(plan, path, &map)
}

/// The plan's JSON Schema, as `relocate plan schema` prints it (and editors use for
/// completion).
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(Plan).to_value()
}
