//! Header rules: format version, kind, the plan's name, regions and residency.

use super::{Anchor, Report, check_safe_name, name_hint};
use crate::{API_VERSION, KIND, Plan};

pub(super) fn check(plan: &Plan, report: &mut Report) {
    if plan.api_version != API_VERSION {
        report.value(
            "apiVersion",
            format!("apiVersion `{}` is not supported", plan.api_version),
            format!("write `apiVersion: {API_VERSION}`"),
        );
    }
    if plan.kind != KIND {
        report.value(
            "kind",
            format!("kind `{}` is not a plan", plan.kind),
            format!("write `kind: {KIND}`"),
        );
    }
    check_safe_name(
        report,
        "name".into(),
        "plan name",
        &plan.name,
        Anchor::Value,
    );
    check_regions(plan, report);
    check_residency(plan, report);
}

fn check_regions(plan: &Plan, report: &mut Report) {
    for (name, region) in &plan.regions {
        if region.jurisdiction.trim().is_empty() {
            report.value(
                format!("regions.{name}.jurisdiction"),
                format!("region `{name}` has an empty jurisdiction"),
                "write the ISO 3166-1 country code, e.g. `CH`",
            );
        }
    }
    for (field, region) in [("source", &plan.source), ("target", &plan.target)] {
        if !plan.regions.contains_key(region) {
            report.value(
                field,
                format!("{field} region `{region}` is not defined"),
                name_hint(region, plan.regions.keys(), "regions"),
            );
        }
    }
    if plan.source == plan.target {
        report.value(
            "target",
            format!("target region `{}` is the source region", plan.target),
            "a move needs a different target region",
        );
    }
}

fn check_residency(plan: &Plan, report: &mut Report) {
    let Some(residency) = &plan.residency else {
        return;
    };
    if residency.allowed_target_jurisdictions.is_empty() {
        report.value(
            "residency.allowedTargetJurisdictions",
            "the residency allow-list is empty, so nothing may be written anywhere",
            "list the jurisdictions data may be written to, e.g. `[CH]`",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{base_with, expect_one};

    #[test]
    fn wrong_api_version() {
        let text = base_with("apiVersion: relocate/v1", "apiVersion: relocate/v2");
        expect_one(
            &text,
            1,
            13,
            "apiVersion `relocate/v2` is not supported",
            "`apiVersion: relocate/v1`",
        );
    }

    #[test]
    fn wrong_kind() {
        let text = base_with("kind: MigrationPlan", "kind: Plan");
        expect_one(
            &text,
            2,
            7,
            "kind `Plan` is not a plan",
            "`kind: MigrationPlan`",
        );
    }

    #[test]
    fn unsafe_plan_name() {
        expect_one(
            &base_with("name: demo", "name: ../etc"),
            3,
            7,
            "plan name `../etc` is not a safe name",
            "letters, digits",
        );
        expect_one(
            &base_with("name: demo", "name: .hidden"),
            3,
            7,
            "not a safe name",
            "not starting with `.`",
        );
    }

    #[test]
    fn undefined_source_region() {
        expect_one(
            &base_with("source: moscow", "source: moskow"),
            7,
            9,
            "source region `moskow` is not defined",
            "did you mean `moscow`?",
        );
    }

    #[test]
    fn target_equals_source() {
        let text = base_with("target: zurich", "target: moscow");
        let diags = crate::validate::testing::diagnostics(&text);
        let d = diags
            .iter()
            .find(|d| d.message.contains("is the source region"))
            .expect("reported");
        assert_eq!((d.line, d.column), (8, 9));
        assert!(d.hint.contains("different target region"));
    }

    #[test]
    fn empty_jurisdiction() {
        expect_one(
            &base_with("RU }", "\"\" }"),
            5,
            27,
            "region `moscow` has an empty jurisdiction",
            "ISO 3166-1",
        );
    }

    #[test]
    fn empty_residency_list() {
        let text = base_with("[CH]", "[]");
        let diags = crate::validate::testing::diagnostics(&text);
        let d = diags
            .iter()
            .find(|d| d.message.contains("allow-list is empty"))
            .expect("reported");
        assert_eq!((d.line, d.column), (9, 42));
    }
}
