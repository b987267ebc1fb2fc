//! Semantic validation: everything a well-shaped plan must also satisfy.
//!
//! Pure (no I/O). [`validate`] checks a deserialised [`Plan`] and returns *every*
//! problem found, each with the YAML path of the node at fault; [`crate::parse`]
//! positions them with the source map and sorts them by line. The rules, by section:
//!
//! - **Header** — `apiVersion: relocate/v1`, `kind: MigrationPlan`; the plan's name is a
//!   safe directory name (at most 64 of `[A-Za-z0-9._-]`, not starting with `.`), since it names the
//!   state directory `.relocate/<name>/`. Stage, workload and approver names follow the
//!   same rule because they name evidence and approval files.
//! - **Regions and residency** — `source` and `target` exist and differ; every store's
//!   and cluster's region exists. Every store or cluster that is *written to* (the `to`
//!   of a workload) must be in a region whose jurisdiction is in
//!   `residency.allowedTargetJurisdictions` (when a residency section is given), and
//!   may never be in the source region: a move writes into the source only by mistake.
//! - **Stores** — the URL is one of the known schemes, local paths as `file:///abs` or
//!   `file://./relative-to-the-plan`; an option whose key names a secret must be a
//!   `${env:NAME}` / `${file:PATH}` reference (the error never repeats the value);
//!   every `${…}` is well-formed; a plain-`http://` endpoint needs `allow_http: "true"`
//!   said explicitly; multipart part size ≥ 5 MiB (S3's minimum) and threshold ≥ part
//!   size; sizes, rates and durations parse.
//! - **Workloads** — `from`/`to` name existing stores (objects) or clusters
//!   (kubernetes) and differ; globs compile; concurrency ≥ 1.
//! - **Approvers** — the public key is `ed25519:<base64 of 32 bytes>`; the hook has
//!   exactly one of `command` (non-empty argv), `webhook` (https, or http with
//!   `allowHttp: true`) and `file`.
//! - **Operator** — `operator.publicKey`, when given, is exactly
//!   `ed25519:<base64 of 32 bytes>` (no whitespace anywhere).
//! - **Stages** — at least one; unique safe names; each has steps; `copy`/`verify` name
//!   object workloads and `freeze`/`deploy`/`rollback` Kubernetes ones; `run` has a
//!   non-empty argv; sign-off approvers exist, appear once, threshold in 1..=count.
//! - **Verified before cutover** (see [`flow`]) — no `deploy` or `run` while data
//!   copied earlier in the plan is not yet verified; a stage with a sign-off must
//!   verify what it copied before its gate; no `verify` before the workload's first
//!   `copy`; and the plan may not end with a copy never verified.

pub(crate) mod approvers;
mod flow;
mod header;
mod operator;
mod stages;
pub(crate) mod stores;
pub use workers::MAX_SHARDS;
mod volumes;
mod workers;
mod workloads;

use indexmap::IndexMap;

use crate::{Plan, StoreSpec};

/// Which part of a mapping entry a problem points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The entry's key (e.g. a store's name, for problems with the whole store).
    Key,
    /// The entry's value (e.g. a dangling reference).
    Value,
}

/// One semantic problem, located by YAML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, e.g. `stages[1].steps[0].copy`.
    pub yaml_path: String,
    /// Whether the key or the value of that node is at fault.
    pub anchor: Anchor,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Every semantic problem of `plan`, in the order the rules found them.
pub fn validate(plan: &Plan) -> Vec<Problem> {
    checked(plan).0
}

/// The typed values validation produced on its way: what the engine uses instead of text.
#[derive(Debug, Default)]
pub(crate) struct Typed {
    /// The stores that passed their checks (local paths still relative to the plan).
    pub(crate) stores: IndexMap<String, StoreSpec>,
}

/// Every problem of `plan`, and the typed values of what passed.
pub(crate) fn checked(plan: &Plan) -> (Vec<Problem>, Typed) {
    let mut report = Report::default();
    header::check(plan, &mut report);
    let stores = stores::check(plan, &mut report);
    workloads::check(plan, &mut report);
    workers::check(plan, &mut report);
    volumes::check(plan, &mut report);
    approvers::check(plan, &mut report);
    operator::check(plan, &mut report);
    stages::check(plan, &mut report);
    flow::check(plan, &mut report);
    (report.problems, Typed { stores })
}

/// Collects problems.
#[derive(Debug, Default)]
pub(crate) struct Report {
    problems: Vec<Problem>,
}

impl Report {
    /// A problem with the value at `path`.
    pub(crate) fn value(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(path.into(), Anchor::Value, message.into(), hint.into());
    }

    /// A problem with the key at `path` (the entry as a whole).
    pub(crate) fn key(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(path.into(), Anchor::Key, message.into(), hint.into());
    }

    /// How many problems were found so far.
    pub(crate) fn len(&self) -> usize {
        self.problems.len()
    }

    /// Whether no problem was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems found.
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    fn push(&mut self, yaml_path: String, anchor: Anchor, message: String, hint: String) {
        self.problems.push(Problem {
            yaml_path,
            anchor,
            message,
            hint,
        });
    }
}

/// Longest plan, stage, workload or approver name: they become parts of file names
/// (`01-<stage>.attempt-N.intoto.json`, `<workload>.sha256sums`), which most file
/// systems cap at 255 bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` can safely name a directory or file: `[A-Za-z0-9._-]+`, not
/// starting with `.` (so never `.` or `..`), at most [`MAX_NAME_LEN`] characters.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Report `name` (found at `path`) if it is not a safe name.
pub(crate) fn check_safe_name(
    report: &mut Report,
    path: String,
    what: &str,
    name: &str,
    anchor: Anchor,
) {
    if is_safe_name(name) {
        return;
    }
    let shown: String = name.chars().take(MAX_NAME_LEN).collect();
    let message = if name.len() > MAX_NAME_LEN {
        format!(
            "{what} `{shown}…` is not a safe name: {} characters",
            name.chars().count()
        )
    } else {
        format!("{what} `{name}` is not a safe name")
    };
    let hint = "use at most 64 letters, digits, `.`, `_` and `-`, not starting with `.`";
    match anchor {
        Anchor::Key => report.key(path, message, hint),
        Anchor::Value => report.value(path, message, hint),
    }
}

/// "did you mean `x`?" for a dangling reference, else the list of names that exist.
pub(crate) fn name_hint<'a>(
    given: &str,
    names: impl Iterator<Item = &'a String>,
    what: &str,
) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if let Some(best) = crate::shape::closest(given, &names) {
        return format!("did you mean `{best}`?");
    }
    if names.is_empty() {
        return format!("define it under `{what}`");
    }
    let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("{what} defined: {}", list.join(", "))
}

#[cfg(test)]
pub(crate) mod testing;
