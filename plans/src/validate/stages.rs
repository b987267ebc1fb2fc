//! Stage rules: names, step references and sign-off gates. The order of copies,
//! verifications and cutovers is checked in [`super::flow`].

use std::collections::HashSet;

use super::{Anchor, Report, check_safe_name, name_hint};
use crate::units::parse_duration;
use crate::{Plan, RunCommand, Signoff, Step, Workload};

pub(super) fn check(plan: &Plan, report: &mut Report) {
    if plan.stages.is_empty() {
        report.value(
            "stages",
            "the plan has no stages",
            "add a stage, e.g. `- { name: seed, steps: [ { copy: W }, { verify: W } ] }`",
        );
    }
    let mut seen = HashSet::new();
    for (i, stage) in plan.stages.iter().enumerate() {
        let path = format!("stages[{i}]");
        check_safe_name(
            report,
            format!("{path}.name"),
            "stage",
            &stage.name,
            Anchor::Value,
        );
        if !seen.insert(stage.name.as_str()) {
            report.value(
                format!("{path}.name"),
                format!("stage name `{}` is used twice", stage.name),
                "give each stage its own name",
            );
        }
        if stage.steps.is_empty() {
            report.value(
                format!("{path}.steps"),
                format!("stage `{}` has no steps", stage.name),
                "add a step, or remove the stage",
            );
        }
        for (j, step) in stage.steps.iter().enumerate() {
            check_step(plan, report, &format!("{path}.steps[{j}]"), step);
        }
        if let Some(signoff) = &stage.signoff {
            check_signoff(plan, report, &format!("{path}.signoff"), signoff);
        }
    }
}

/// Whether a step of this kind acts on object workloads (else on Kubernetes ones).
fn wants_objects(step: &Step) -> bool {
    matches!(step, Step::Copy(_) | Step::Verify(_))
}

fn check_step(plan: &Plan, report: &mut Report, path: &str, step: &Step) {
    let at = format!("{path}.{}", step.kind());
    let Some(name) = step.workload() else {
        if let Step::Run(run) = step {
            check_run(report, &at, run);
        }
        return;
    };
    let (wanted, other) = if wants_objects(step) {
        ("an object", "a Kubernetes")
    } else {
        ("a Kubernetes", "an object")
    };
    match plan.workloads.get(name) {
        None => {
            report.value(
                at,
                format!("workload `{name}` is not defined"),
                name_hint(name, plan.workloads.keys(), "workloads"),
            );
        }
        Some(Workload::Kubernetes(k))
            if wants_objects(step) && k.volumes.as_ref().is_some_and(|v| v.copy) => {}
        Some(w) if matches!(w, Workload::Objects(_)) != wants_objects(step) => {
            report.value(
                at,
                format!("`{}` needs {wanted} workload, but `{name}` is {other} workload", step.kind()),
                if wants_objects(step) {
                    "`copy`/`verify` move objects, or the claims' data of a Kubernetes workload with `volumes: { copy: true, staging: … }`; use `freeze`/`deploy`/`rollback` for its resources"
                } else {
                    "`freeze`/`deploy`/`rollback` act on Kubernetes; use `copy`/`verify` for object workloads"
                },
            );
        }
        Some(_) => {}
    }
}

fn check_run(report: &mut Report, at: &str, run: &RunCommand) {
    let argv_at = match run {
        RunCommand::Argv(_) => at.to_owned(),
        RunCommand::Spec(_) => format!("{at}.command"),
    };
    if run
        .argv()
        .first()
        .is_none_or(|program| program.trim().is_empty())
    {
        report.value(
            argv_at,
            "the run step's command is empty",
            "write the argv, e.g. `{ run: [\"./switch-dns.sh\", \"zurich\"] }`",
        );
    }
    match run.timeout().map(parse_duration) {
        Some(Err(why)) => report.value(
            format!("{at}.timeout"),
            "run step timeout is not a duration",
            why,
        ),
        Some(Ok(d)) if d.is_zero() => report.value(
            format!("{at}.timeout"),
            "run step timeout is zero: the command would be killed as it starts",
            "write how long the command may run, e.g. `10m`, or leave `timeout` out (1h)",
        ),
        _ => {}
    }
}

fn check_signoff(plan: &Plan, report: &mut Report, path: &str, signoff: &Signoff) {
    let list_path = match signoff {
        Signoff::All(_) => path.to_owned(),
        Signoff::Threshold(_) => format!("{path}.approvers"),
    };
    let approvers = signoff.approvers();
    if approvers.is_empty() {
        report.value(
            &list_path,
            "the sign-off lists no approvers",
            "name at least one approver, or remove `signoff`",
        );
    }
    let mut seen = HashSet::new();
    for (k, name) in approvers.iter().enumerate() {
        let at = format!("{list_path}[{k}]");
        if !plan.approvers.contains_key(name) {
            report.value(
                &at,
                format!("approver `{name}` is not defined"),
                name_hint(name, plan.approvers.keys(), "approvers"),
            );
        }
        if !seen.insert(name.as_str()) {
            report.value(
                &at,
                format!("approver `{name}` is listed twice"),
                "list each approver once; use `threshold` for how many must sign",
            );
        }
    }
    if let Signoff::Threshold(rule) = signoff {
        let threshold = signoff.threshold();
        if rule.threshold.is_some() && !(1..=approvers.len()).contains(&threshold) {
            report.value(
                format!("{path}.threshold"),
                format!("threshold {threshold} is outside 1..={}", approvers.len()),
                "the threshold counts approvals needed out of the approvers listed",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{base_with, diagnostics, expect_one};

    #[test]
    fn a_zero_run_timeout_is_refused() {
        let text = base_with(
            "{ deploy: app } ]",
            "{ deploy: app }, { run: { command: [\"./dns.sh\"], timeout: 0s } } ]",
        );
        let found = diagnostics(&text);
        assert!(
            found
                .iter()
                .any(|d| d.message.contains("run step timeout is zero")),
            "{found:?}"
        );
    }

    #[test]
    fn an_empty_signoff_list_is_said() {
        let text = base_with("signoff: [auditor]", "signoff: []");
        let found = diagnostics(&text);
        assert!(
            found
                .iter()
                .any(|d| d.message.contains("the sign-off lists no approvers")),
            "{found:?}"
        );
    }

    #[test]
    fn duplicate_and_unsafe_stage_names() {
        let text = base_with("name: cutover", "name: seed");
        expect_one(
            &text,
            34,
            11,
            "stage name `seed` is used twice",
            "its own name",
        );
        let text = base_with("name: cutover", "name: cut over");
        expect_one(
            &text,
            34,
            11,
            "stage `cut over` is not a safe name",
            "letters, digits",
        );
    }

    #[test]
    fn finding_09_a_stage_name_too_long_for_a_file_name_is_refused() {
        let long = "s".repeat(300);
        let text = base_with("name: cutover", &format!("name: {long}"));
        expect_one(
            &text,
            34,
            11,
            "is not a safe name: 300 characters",
            "at most 64",
        );
        let text = base_with("name: cutover", &format!("name: {}", "s".repeat(64)));
        crate::parse(&text, std::path::Path::new("p.yaml")).expect("64 characters fit");
        for bad in ["\"a/b\"", "\"..\"", "\"a\\nb\"", "\"\""] {
            let text = base_with("name: cutover", &format!("name: {bad}"));
            expect_one(&text, 34, 11, "is not a safe name", "letters, digits");
        }
    }

    #[test]
    fn empty_steps_and_no_stages() {
        let text = base_with("steps: [ { copy: data }, { verify: data } ]", "steps: []");
        expect_one(&text, 32, 12, "stage `seed` has no steps", "add a step");
        let cut = super::super::testing::BASE
            .find("stages:")
            .expect("has stages");
        let text = format!("{}stages: []\n", &super::super::testing::BASE[..cut]);
        expect_one(&text, 30, 9, "the plan has no stages", "add a stage");
    }

    #[test]
    fn step_names_undefined_workload() {
        let text = base_with("{ freeze: app }", "{ freeze: ap }");
        expect_one(
            &text,
            35,
            24,
            "workload `ap` is not defined",
            "did you mean `app`?",
        );
    }

    #[test]
    fn step_on_the_wrong_kind_of_workload() {
        let text = base_with("{ deploy: app }", "{ deploy: data }");
        expect_one(
            &text,
            35,
            75,
            "`deploy` needs a Kubernetes workload, but `data` is an object workload",
            "use `copy`/`verify`",
        );
        let text = base_with("{ freeze: app }, ", "{ copy: app }, ");
        expect_one(
            &text,
            35,
            22,
            "`copy` needs an object workload, but `app` is a Kubernetes workload",
            "use `freeze`/`deploy`/`rollback`",
        );
    }

    #[test]
    fn empty_run_argv() {
        let text = base_with("{ deploy: app }", "{ run: [] }");
        expect_one(
            &text,
            35,
            72,
            "the run step's command is empty",
            "switch-dns.sh",
        );
    }

    #[test]
    fn signoff_approver_undefined_and_duplicated() {
        let text = base_with("signoff: [auditor]", "signoff: [auditr]");
        expect_one(
            &text,
            33,
            15,
            "approver `auditr` is not defined",
            "did you mean `auditor`?",
        );
        let text = base_with("signoff: [auditor]", "signoff: [auditor, auditor]");
        expect_one(
            &text,
            33,
            24,
            "approver `auditor` is listed twice",
            "use `threshold`",
        );
    }

    #[test]
    fn threshold_out_of_range() {
        let text = base_with(
            "signoff: [auditor]",
            "signoff: { approvers: [auditor], threshold: 2 }",
        );
        expect_one(
            &text,
            33,
            49,
            "threshold 2 is outside 1..=1",
            "approvals needed",
        );
        let text = base_with(
            "signoff: [auditor]",
            "signoff: { approvers: [auditor], threshold: 0 }",
        );
        expect_one(
            &text,
            33,
            49,
            "threshold 0 is outside 1..=1",
            "approvals needed",
        );
    }
}
