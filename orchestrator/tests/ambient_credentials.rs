//! Issue 13, finding 18: a store never takes credentials the plan did not name.
//!
//! `relocate` runs with `AWS_*` credentials in its environment, as on an operator's laptop or
//! a CI runner; a plan whose S3 store names none is refused by `plan validate` with a hint,
//! instead of silently using them (or the metadata endpoint). Credentials in a URL and a
//! misspelled option are refused the same way, positioned.

mod util;

use std::process::Output;

use assert_cmd::Command;
use util::{Workspace, stderr};

fn plan(store: &str) -> String {
    format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: ambient
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
stores:
  src: {{ region: moscow, url: "file://./src/" }}
{store}
workloads:
  data:
    objects: {{ from: src, to: dst }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
"#
    )
}

/// `relocate plan validate plan.yaml` with AWS credentials in the environment.
fn validate_with_env_credentials(ws: &Workspace) -> Output {
    Command::cargo_bin("relocate")
        .expect("binary")
        .current_dir(ws.path())
        .env("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMENT")
        .env("AWS_SECRET_ACCESS_KEY", "secret-from-the-environment")
        .args(["plan", "validate", "plan.yaml"])
        .output()
        .expect("run relocate")
}

#[test]
fn finding_18_environment_credentials_are_not_used_unless_the_plan_says_ambient() {
    let ws = Workspace::new();
    ws.write(
        "plan.yaml",
        plan(r#"  dst: { region: zurich, url: "s3://bucket/p/", options: { region: eu-central-2 } }"#),
    );
    let out = validate_with_env_credentials(&ws);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("plan.yaml:11:3:")
            && err.contains("store `dst` configures no credentials")
            && err.contains("credentials: ambient"),
        "{err}"
    );

    ws.write(
        "plan.yaml",
        plan(r#"  dst: { region: zurich, url: "s3://bucket/p/", credentials: ambient }"#),
    );
    let out = validate_with_env_credentials(&ws);
    assert!(
        out.status.success(),
        "ambient said explicitly: {}",
        stderr(&out)
    );
}

#[test]
fn finding_18_credentials_in_a_url_are_refused_without_echoing_them() {
    let ws = Workspace::new();
    ws.write(
        "plan.yaml",
        plan(r#"  dst: { region: zurich, url: "s3://AKIAINURL:wJalrInUrlSecret@bucket/p/" }"#),
    );
    let out = validate_with_env_credentials(&ws);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("plan.yaml:11:31: credentials in store url"),
        "{err}"
    );
    assert!(
        !err.contains("wJalrInUrlSecret") && !err.contains("AKIAINURL"),
        "{err}"
    );
}

#[test]
fn finding_18_a_misspelled_option_fails_plan_validate() {
    let ws = Workspace::new();
    ws.write(
        "plan.yaml",
        plan(
            r#"  dst:
    region: zurich
    url: "s3://bucket/p/"
    options:
      access_key_id: "${env:KEY_ID}"
      sekret_access_key: "${env:SECRET}""#,
        ),
    );
    let out = validate_with_env_credentials(&ws);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("plan.yaml:16:7: unknown option `sekret_access_key`")
            && err.contains("did you mean `secret_access_key`?"),
        "{err}"
    );
}
