//! Verified before cutover: the order of copies, verifications and cutover steps.
//!
//! relocate's promise is that traffic never moves onto data nobody has checked. The
//! steps are walked in plan order (stages in order, steps in order) tracking which
//! object workloads were copied and not verified since:
//!
//! - A **cutover step** — `deploy`, or `run` (an operator command such as a DNS switch;
//!   relocate cannot tell a harmless command from a cutover, so it assumes the worse) —
//!   is an error while any copied workload is unverified, whichever stage the copy was
//!   in. A later `verify` re-reads the whole target, so it clears the workload whatever
//!   number of copies came before it.
//! - A stage **with a sign-off** must verify, before its gate, every workload it
//!   copied: the auditor signs evidence, and evidence is only meaningful for verified
//!   data. A stage without a gate may leave a bulk copy for a later stage to verify.
//! - A `verify` before the workload's first `copy` has no manifest to compare with.
//! - The plan may not **end** with a copy that was never verified.
//!
//! - A copy never **writes into what it reads**: a local (or in-memory) target inside
//!   its source, or a source inside its target, would copy its own output.
//!
//! `freeze` and `rollback` are allowed anywhere: freezing the source is what makes the
//! final delta copy complete, and a rollback returns to the source.

use indexmap::IndexMap;
use std::collections::HashSet;

use super::Report;
use crate::{Plan, Stage, Step, Workload};

/// A copy not yet followed by a verify of the same workload.
struct PendingCopy {
    /// YAML path of the copy step's value.
    path: String,
    /// Index of the stage the copy is in.
    stage: usize,
    /// Whether a sign-off gate has already reported it.
    reported: bool,
}

#[derive(Default)]
struct Walk<'p> {
    copied: HashSet<&'p str>,
    pending: IndexMap<&'p str, PendingCopy>,
}

pub(super) fn check(plan: &Plan, report: &mut Report) {
    check_nesting(plan, report);
    let mut walk = Walk::default();
    for (i, stage) in plan.stages.iter().enumerate() {
        for (j, step) in stage
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| names_objects_or_nothing(plan, s))
        {
            walk.step(
                report,
                i,
                &format!("stages[{i}].steps[{j}].{}", step.kind()),
                step,
            );
        }
        walk.gate(report, i, stage);
    }
    for (workload, copy) in &walk.pending {
        if !copy.reported {
            report.value(
                &copy.path,
                format!("`{workload}` is copied here but never verified afterwards"),
                format!("add `{{ verify: {workload} }}` after the copy"),
            );
        }
    }
}

impl<'p> Walk<'p> {
    fn step(&mut self, report: &mut Report, stage: usize, path: &str, step: &'p Step) {
        match step {
            Step::Copy(w) => {
                self.copied.insert(w);
                self.pending.insert(
                    w,
                    PendingCopy {
                        path: path.to_owned(),
                        stage,
                        reported: false,
                    },
                );
            }
            Step::Verify(w) => {
                if !self.copied.contains(w.as_str()) {
                    report.value(
                        path,
                        format!("`{w}` is verified before it is ever copied"),
                        format!("verify compares with the copy's manifest; add `{{ copy: {w} }}` before it"),
                    );
                }
                self.pending.shift_remove(w.as_str());
            }
            Step::Deploy(_) | Step::Run(_) => self.cutover(report, path, step),
            Step::Freeze(_) | Step::Rollback(_) => {}
        }
    }

    /// A cutover step while copies are unverified is the error this module exists for.
    fn cutover(&self, report: &mut Report, path: &str, step: &Step) {
        if self.pending.is_empty() {
            return;
        }
        let what = match step.workload() {
            Some(w) => format!("`{}: {w}`", step.kind()),
            None => format!("this `{}` step", step.kind()),
        };
        let unverified: Vec<String> = self
            .pending
            .iter()
            .map(|(w, c)| format!("`{w}` (copied at {})", step_path(&c.path)))
            .collect();
        let verify: Vec<String> = self
            .pending
            .keys()
            .map(|w| format!("`{{ verify: {w} }}`"))
            .collect();
        report.value(
            path,
            format!(
                "{what} cuts over unverified data: {}",
                unverified.join(", ")
            ),
            format!("add {} before this step", verify.join(" and ")),
        );
    }

    /// At a stage's end: a gated stage must have verified what it copied.
    fn gate(&mut self, report: &mut Report, index: usize, stage: &Stage) {
        if stage.signoff.is_none() {
            return;
        }
        for (workload, copy) in self.pending.iter_mut().filter(|(_, c)| c.stage == index) {
            copy.reported = true;
            report.value(
                &copy.path,
                format!(
                    "stage `{}` asks for sign-off but `{workload}` copied here is not verified before the gate",
                    stage.name
                ),
                format!("add `{{ verify: {workload} }}` after the copy"),
            );
        }
    }
}

/// Whether a step is one this walk should track: a `copy`/`verify` of a workload that
/// is not an object workload was already reported by the stage rules, so following it
/// would only add noise.
fn names_objects_or_nothing(plan: &Plan, step: &Step) -> bool {
    match step {
        Step::Copy(w) | Step::Verify(w) => {
            matches!(plan.workloads.get(w), Some(Workload::Objects(_)))
        }
        _ => true,
    }
}

/// `stages[1].steps[0].copy` → `stages[1].steps[0]`.
fn step_path(path: &str) -> &str {
    path.rsplit_once('.').map_or(path, |(p, _)| p)
}

/// Refuse an object workload whose local (or in-memory) target lies inside its source,
/// or the other way round. Paths are compared lexically after resolving both against
/// the same base, as the stores will resolve them (symlinks are not followed: no I/O).
fn check_nesting(plan: &Plan, report: &mut Report) {
    use crate::store_url::{StoreLocation, parse};
    let base = std::path::Path::new("/");
    let place = |store: &str| -> Option<std::path::PathBuf> {
        let url = &plan.stores.get(store)?.url;
        match parse(url).ok()?.resolve(base) {
            StoreLocation::Local(path) => Some(path),
            StoreLocation::Memory { prefix } => Some(std::path::Path::new("/memory").join(prefix)),
            StoreLocation::Cloud { .. } => None,
        }
    };
    for (name, workload) in &plan.workloads {
        let Workload::Objects(o) = workload else {
            continue;
        };
        let (Some(from), Some(to)) = (place(&o.from), place(&o.to)) else {
            continue;
        };
        if to.starts_with(&from) || from.starts_with(&to) {
            let (inner, outer) = if to.starts_with(&from) {
                ("target", "source")
            } else {
                ("source", "target")
            };
            report.value(
                format!("workloads.{name}.objects.to"),
                format!(
                    "the {inner} of workload `{name}` ({}) lies inside its {outer} ({}): the copy would read its own output",
                    if inner == "target" { &o.to } else { &o.from },
                    if inner == "target" { &o.from } else { &o.to },
                ),
                "give the target a directory beside the source, not inside it",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_local_target_inside_the_source_is_refused_and_the_reverse_too() {
        use crate::validate::testing::{base_with, diagnostics};
        let inside = base_with(
            "url: \"s3://bucket/archive/\"",
            "url: \"file:///srv/src/zurich/\"",
        );
        let found = diagnostics(&inside);
        assert!(
            found
                .iter()
                .any(|d| d.message.contains("target of workload `data`")
                    && d.message.contains("lies inside its source")),
            "{found:?}"
        );
        let outside = base_with("url: \"s3://bucket/archive/\"", "url: \"file:///srv/\"");
        let found = diagnostics(&outside);
        assert!(
            found
                .iter()
                .any(|d| d.message.contains("source of workload `data`")),
            "{found:?}"
        );
        let beside = base_with(
            "url: \"s3://bucket/archive/\"",
            "url: \"file:///srv/src-zurich/\"",
        );
        let found = crate::parse(&beside, std::path::Path::new("p.yaml"));
        assert!(
            found
                .as_ref()
                .err()
                .is_none_or(|e| !e.to_string().contains("lies inside")),
            "a sibling directory is fine: {found:?}"
        );
    }

    use crate::validate::testing::{BASE, base_with, expect_one};

    const SEED: &str = "steps: [ { copy: data }, { verify: data } ]";
    const CUTOVER: &str =
        "steps: [ { freeze: app }, { copy: data }, { verify: data }, { deploy: app } ]";

    #[test]
    fn deploy_before_verify_is_refused() {
        let text = base_with(
            CUTOVER,
            "steps: [ { freeze: app }, { copy: data }, { deploy: app }, { verify: data } ]",
        );
        expect_one(
            &text,
            35,
            57,
            "`deploy: app` cuts over unverified data: `data` (copied at stages[1].steps[1])",
            "add `{ verify: data }` before this step",
        );
    }

    #[test]
    fn run_after_unverified_copy_is_refused() {
        let text = base_with(
            CUTOVER,
            "steps: [ { copy: data }, { run: [\"./switch-dns.sh\"] }, { verify: data } ]",
        );
        expect_one(
            &text,
            35,
            37,
            "this `run` step cuts over unverified data",
            "`{ verify: data }`",
        );
    }

    #[test]
    fn unverified_copy_carries_over_to_later_stages() {
        let text =
            base_with(SEED, "steps: [ { copy: data } ]").replace("    signoff: [auditor]\n", "");
        let text = text.replace(
            CUTOVER,
            "steps: [ { deploy: app }, { copy: data }, { verify: data } ]",
        );
        expect_one(
            &text,
            34,
            24,
            "`deploy: app` cuts over unverified data: `data` (copied at stages[0].steps[0])",
            "before this step",
        );
    }

    #[test]
    fn signed_off_stage_must_verify_its_copies() {
        let text = base_with(SEED, "steps: [ { copy: data } ]");
        expect_one(
            &text,
            32,
            22,
            "stage `seed` asks for sign-off but `data` copied here is not verified before the gate",
            "add `{ verify: data }` after the copy",
        );
    }

    #[test]
    fn verify_before_any_copy() {
        let text = base_with(
            SEED,
            "steps: [ { verify: data }, { copy: data }, { verify: data } ]",
        );
        expect_one(
            &text,
            32,
            24,
            "`data` is verified before it is ever copied",
            "add `{ copy: data }` before it",
        );
    }

    #[test]
    fn plan_may_not_end_unverified() {
        let text = base_with(
            CUTOVER,
            "steps: [ { freeze: app }, { copy: data }, { verify: data }, { deploy: app }, { copy: data } ]",
        );
        expect_one(
            &text,
            35,
            90,
            "`data` is copied here but never verified afterwards",
            "after the copy",
        );
    }

    #[test]
    fn freeze_and_rollback_are_allowed_anywhere() {
        let text = base_with(
            CUTOVER,
            "steps: [ { copy: data }, { freeze: app }, { rollback: app }, { copy: data }, { verify: data }, { deploy: app } ]",
        );
        crate::parse(&text, std::path::Path::new("p.yaml")).expect("valid");
        assert!(BASE.contains(CUTOVER));
    }
}
