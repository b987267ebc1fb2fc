//! Test helpers: a small valid plan with known line numbers, and assertions on the
//! diagnostics a variant of it produces.

use std::path::Path;

use crate::{Diagnostic, PlanError};

/// A valid plan. Tests replace one fragment and assert the one diagnostic that causes;
/// the line numbers in the comments on the right are what they assert against.
pub(crate) const BASE: &str = r#"apiVersion: relocate/v1
kind: MigrationPlan
name: demo
regions:
  moscow: { jurisdiction: RU }
  zurich: { jurisdiction: CH }
source: moscow
target: zurich
residency: { allowedTargetJurisdictions: [CH] }
stores:
  src: { region: moscow, url: "file:///srv/src/" }
  dst:
    region: zurich
    url: "s3://bucket/archive/"
    options: { access_key_id: "${env:ZRH_KEY_ID}",
      endpoint: "https://s3.zrh.example",
      secret_access_key: "${env:ZRH_SECRET}" }
clusters:
  msk: { region: moscow, context: msk }
  zrh: { region: zurich, context: zrh }
workloads:
  data:
    objects: { from: src, to: dst, include: ["**/*.log"] }
  app:
    kubernetes: { from: msk, to: zrh, namespace: analysis }
approvers:
  auditor:
    publicKey: "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    hook: { command: ["./hook.sh"] }
stages:
  - name: seed
    steps: [ { copy: data }, { verify: data } ]
    signoff: [auditor]
  - name: cutover
    steps: [ { freeze: app }, { copy: data }, { verify: data }, { deploy: app } ]
"#;

/// `BASE` with `from` replaced by `to`, checking `from` is really there.
pub(crate) fn base_with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no `{from}`");
    BASE.replacen(from, to, 1)
}

/// Every diagnostic `text` produces (panics when the plan is valid).
pub(crate) fn diagnostics(text: &str) -> Vec<Diagnostic> {
    match crate::parse(text, Path::new("plan.yaml")) {
        Ok(_) => panic!("plan unexpectedly valid:\n{text}"),
        Err(PlanError::Invalid(diags)) => diags,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// The single diagnostic `text` produces, checked for position and wording.
pub(crate) fn expect_one(
    text: &str,
    line: usize,
    column: usize,
    message: &str,
    hint: &str,
) -> Diagnostic {
    let diags = diagnostics(text);
    assert_eq!(diags.len(), 1, "expected one diagnostic, got: {diags:#?}");
    let d = diags.into_iter().next().expect("one diagnostic");
    assert_eq!((d.line, d.column), (line, column), "position of {d}");
    assert!(
        d.message.contains(message),
        "message `{}` lacks `{message}`",
        d.message
    );
    assert!(d.hint.contains(hint), "hint `{}` lacks `{hint}`", d.hint);
    d
}

#[test]
fn base_plan_is_valid() {
    crate::parse(BASE, Path::new("plan.yaml")).expect("BASE is valid");
}
