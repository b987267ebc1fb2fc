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
pub mod hook_spec;
pub mod model;
pub mod secret;
mod shape;
pub mod source_map;
pub mod store_options;
pub mod store_spec;
pub mod store_url;
mod typed;
pub mod units;
pub mod validate;
mod validated;

pub use digest::PlanDigest;
pub use error::{Diagnostic, PlanError};
pub use hook_spec::{HookKind, HookSpec};
pub use model::*;
pub use store_spec::{InvalidStore, MIN_PART_SIZE, MultipartSettings, RetryPolicy, StoreSpec};
pub use store_url::{Cloud, StoreLocation};
pub use validated::ValidatedPlan;

use std::path::Path;

use source_map::SourceMap;

/// Read, parse and validate the plan at `path`.
pub fn load(path: &Path) -> Result<ValidatedPlan, PlanError> {
    let bytes = std::fs::read(path).map_err(|source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| PlanError::Invalid(vec![not_utf8(path, e.as_bytes(), e.utf8_error())]))?;
    parse(&text, path)
}

/// A plan that is not UTF-8 is an invalid plan (not an unreadable file), positioned at
/// the first bad byte.
fn not_utf8(path: &Path, bytes: &[u8], e: std::str::Utf8Error) -> Diagnostic {
    let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
    let line = valid.matches('\n').count() + 1;
    let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Diagnostic {
        file: path.display().to_string(),
        line,
        column,
        yaml_path: String::new(),
        message: format!(
            "the plan is not UTF-8 text (byte {:#04x} at offset {})",
            bytes[e.valid_up_to()],
            e.valid_up_to()
        ),
        hint: "save the plan as UTF-8".to_owned(),
    }
}

/// Parse and validate plan text; `path` names the file in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<ValidatedPlan, PlanError> {
    let map = SourceMap::build(text);
    let plan: Plan = serde_saphyr::from_str(text).map_err(|err| {
        PlanError::Invalid(vec![shape::diagnose(
            &err,
            &path.display().to_string(),
            &map,
        )])
    })?;
    let validated = ValidatedPlan::check(plan, path, &map)?;
    let digest = PlanDigest::of_document(text).map_err(|e| {
        PlanError::Invalid(vec![Diagnostic {
            file: path.display().to_string(),
            line: 1,
            column: 1,
            yaml_path: String::new(),
            message: e.to_string(),
            hint: "write every map key as a string".to_owned(),
        }])
    })?;
    Ok(validated.with_document(text, digest))
}

/// The plan's JSON Schema, as `relocate plan schema` prints it (and editors use for
/// completion).
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(Plan).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::testing::{BASE, base_with, diagnostics};

    #[test]
    fn every_semantic_problem_is_reported_sorted_by_position() {
        let text = base_with("signoff: [auditor]", "signoff: [nobody]")
            .replace("kind: MigrationPlan", "kind: Plan")
            .replace("to: zrh", "to: nowhere");
        let diags = diagnostics(&text);
        let lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![2, 25, 33], "{diags:#?}");
        let rendered = PlanError::Invalid(diags).to_string();
        assert_eq!(rendered.lines().count(), 3);
        assert!(
            rendered.starts_with(
                "plan.yaml:2:7: kind `Plan` is not a plan — write `kind: MigrationPlan`"
            ),
            "{rendered}"
        );
    }

    #[test]
    fn load_reports_unreadable_file() {
        let missing = Path::new("/nonexistent/relocate/plan.yaml");
        match load(missing) {
            Err(PlanError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected Io error, got {other:?}"),
        }
    }

    #[test]
    fn finding_09_a_plan_that_is_not_utf8_is_an_invalid_plan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.yaml");
        let mut bytes = BASE.as_bytes().to_vec();
        let at = BASE.find("name: demo").expect("name") + "name: de".len();
        bytes[at] = 0xff;
        std::fs::write(&path, bytes).expect("write plan");
        match load(&path) {
            Err(PlanError::Invalid(d)) => {
                assert_eq!(d.len(), 1, "{d:#?}");
                assert_eq!((d[0].line, d[0].column), (3, 9), "{}", d[0]);
                assert!(d[0].message.contains("not UTF-8"), "{}", d[0]);
            }
            other => panic!("expected an invalid plan, got {other:?}"),
        }
    }

    #[test]
    fn load_reads_and_validates_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.yaml");
        std::fs::write(&path, BASE).expect("write plan");
        let plan = load(&path).expect("valid");
        assert_eq!(plan.name(), "demo");
        assert_eq!(plan.base_dir(), dir.path());
        assert!(
            plan.object_workload("data").is_some() && plan.kubernetes_workload("data").is_none()
        );
        assert!(plan.kubernetes_workload("app").is_some());
        assert_eq!(plan.stage("cutover").map(|s| s.steps.len()), Some(4));
        assert_eq!(
            plan.digest(),
            &PlanDigest::of_document(BASE).expect("digest"),
            "the digest is of the document as written"
        );
    }

    #[test]
    fn relative_store_urls_resolve_against_the_plan_directory() {
        let text = BASE.replace("file:///srv/src/", "file://./data/src/");
        let plan = parse(&text, Path::new("/plans/zrh/plan.yaml")).expect("valid");
        let url = plan.store_url("src").expect("store exists");
        assert_eq!(url.as_str(), "file:///plans/zrh/data/src/");
        assert_eq!(
            plan.store_url("dst").expect("store exists").as_str(),
            "s3://bucket/archive/"
        );
        assert!(plan.store_url("nope").is_none());
    }

    #[test]
    fn plans_built_in_code_are_validated_too() {
        let mut plan: Plan = serde_saphyr::from_str(BASE).expect("parses");
        assert!(ValidatedPlan::from_plan(plan.clone(), Path::new("gen.yaml")).is_ok());
        plan.stages.clear();
        match ValidatedPlan::from_plan(plan, Path::new("gen.yaml")) {
            Err(PlanError::Invalid(d)) => {
                assert_eq!(d.len(), 1);
                assert_eq!(
                    (d[0].line, d[0].column, d[0].yaml_path.as_str()),
                    (0, 0, "stages")
                );
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn json_schema_describes_the_plan() {
        let schema = json_schema();
        let required = schema["required"].as_array().expect("required list");
        for key in [
            "apiVersion",
            "kind",
            "name",
            "regions",
            "source",
            "target",
            "stages",
        ] {
            assert!(
                required.iter().any(|r| r == key),
                "`{key}` not required in {required:?}"
            );
        }
        assert!(schema["properties"]["residency"].is_object());
    }
}
