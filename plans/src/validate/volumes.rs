//! Volume rules: `workloads.<name>.kubernetes.volumes`.
//!
//! A workload whose claims' data moves stages every file in an object store before the
//! target restores it, so that store holds the data at rest: it must exist, obey
//! residency like any target (an allowed jurisdiction, never the source region), and
//! be a cloud store the mover pods can reach. The snapshot class, when given, is a
//! Kubernetes object name.

use super::workers::{is_dns_label, is_dns_subdomain, is_quantity};
use super::{Report, name_hint};
use crate::units::parse_duration;
use crate::{Plan, Step, Volumes, Workload};

pub(super) fn check(plan: &Plan, report: &mut Report) {
    for (name, workload) in &plan.workloads {
        if let Workload::Kubernetes(w) = workload
            && let Some(volumes) = &w.volumes
        {
            check_volumes(
                plan,
                report,
                &format!("workloads.{name}.kubernetes.volumes"),
                volumes,
            );
            if volumes.copy {
                check_order(plan, report, name);
                super::workers::check_label_values(
                    plan,
                    report,
                    name,
                    "volume movers",
                    &["copy", "verify", "deploy"],
                );
            }
        }
    }
}

/// The steps of a workload whose claims' data moves, in plan order: a `deploy`
/// restores what the last `copy` staged, so that copy must exist and come after the
/// workload's `freeze` (else what the source wrote since the seed stays behind); a
/// `verify` re-reads the target's claims, which exist once a `deploy` made them.
fn check_order(plan: &Plan, report: &mut Report, name: &str) {
    let (mut frozen, mut copied_after_freeze, mut copied, mut deployed) =
        (false, false, false, false);
    for (i, stage) in plan.stages.iter().enumerate() {
        for (j, step) in stage.steps.iter().enumerate() {
            if step.workload() != Some(name) {
                continue;
            }
            let at = format!("stages[{i}].steps[{j}].{}", step.kind());
            match step {
                Step::Freeze(_) => frozen = true,
                Step::Copy(_) => {
                    copied = true;
                    copied_after_freeze |= frozen;
                }
                Step::Deploy(_) if !copied => report.value(
                    at,
                    format!("`deploy: {name}` restores its claims' data, but no `copy: {name}` staged it before"),
                    format!("add `{{ copy: {name} }}` (a seed) before, and another after `{{ freeze: {name} }}`"),
                ),
                Step::Deploy(_) if !copied_after_freeze => report.value(
                    at,
                    format!("`deploy: {name}` would restore data copied while the source still ran: what it wrote since is left behind"),
                    format!("add `{{ freeze: {name} }}` then `{{ copy: {name} }}` (the delta) before the deploy"),
                ),
                Step::Deploy(_) => deployed = true,
                Step::Verify(_) if !deployed => report.value(
                    at,
                    format!("`verify: {name}` re-reads the target's claims, which only exist after `deploy: {name}`"),
                    format!("move `{{ verify: {name} }}` after `{{ deploy: {name} }}`"),
                ),
                _ => {}
            }
        }
    }
}

fn check_volumes(plan: &Plan, report: &mut Report, at: &str, v: &Volumes) {
    let staging = &v.staging;
    let path = format!("{at}.staging");
    match plan.stores.get(staging) {
        None => report.value(
            &path,
            format!("staging store `{staging}` is not defined"),
            name_hint(staging, plan.stores.keys(), "stores"),
        ),
        Some(spec) => {
            if spec.region == plan.source {
                report.value(
                    &path,
                    format!(
                        "the staging store `{staging}` is in the source region `{}`: the volumes' files are written there",
                        plan.source
                    ),
                    format!("use a store in `{}`", plan.target),
                );
            }
            if let (Some(residency), Some(region)) =
                (&plan.residency, plan.regions.get(&spec.region))
            {
                let allowed = &residency.allowed_target_jurisdictions;
                if !allowed.iter().any(|j| j == &region.jurisdiction) {
                    report.value(
                        &path,
                        format!(
                            "residency: the staging store `{staging}` is in jurisdiction `{}`, outside the allow-list [{}]; every file of the volumes rests there",
                            region.jurisdiction,
                            allowed.join(", ")
                        ),
                        "name a store in an allowed jurisdiction",
                    );
                }
            }
            if spec.url.starts_with("file:") {
                report.value(
                    &path,
                    format!(
                        "the staging store `{staging}` is a local directory, which mover pods in the clusters cannot reach"
                    ),
                    "use an object store (s3://, az://, gs://) both clusters can reach",
                );
            }
        }
    }
    if let Some(class) = &v.snapshot_class
        && !class.split('.').all(is_dns_label)
    {
        report.value(
            format!("{at}.snapshotClass"),
            format!("`{class}` is not a Kubernetes object name"),
            "write the name of a VolumeSnapshotClass, e.g. `csi-snapclass`",
        );
    }
    check_movers(report, at, v);
    if !v.copy {
        report.value(
            format!("{at}.copy"),
            "volumes is given but `copy` is not true, so no data would move",
            "write `copy: true`, or remove `volumes`",
        );
    }
}

/// The mover pods' keys: an image reference, a Secret's name, quantities, a timeout.
fn check_movers(report: &mut Report, at: &str, v: &Volumes) {
    if let Some(image) = &v.image
        && (image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        report.value(
            format!("{at}.image"),
            format!("`{image}` is not an image reference"),
            "e.g. `registry.zrh.example.ch/relocate:0.1.0` (README: building the image)",
        );
    }
    if let Some(c) = &v.credentials
        && !is_dns_subdomain(&c.secret_name)
    {
        report.value(
            format!("{at}.credentials.secretName"),
            format!("`{}` is not a Kubernetes object name", c.secret_name),
            "lowercase letters, digits, `-` and `.`, at most 253",
        );
    }
    if let Some(r) = &v.resources {
        for (field, q) in [("cpu", &r.cpu), ("memory", &r.memory)] {
            if let Some(q) = q.as_deref().filter(|q| !is_quantity(q)) {
                report.value(
                    format!("{at}.resources.{field}"),
                    format!("`{q}` is not a Kubernetes quantity"),
                    "e.g. `2`, `500m`, `1Gi`",
                );
            }
        }
    }
    match (v.run_as_user, v.run_as_group) {
        (Some(0), _) => report.value(
            format!("{at}.runAsUser"),
            "runAsUser 0 is root, which the movers are by default (with only the capabilities each task needs)",
            "remove `runAsUser` to run as root, or name the uid that owns the volume's files, e.g. `999`",
        ),
        (Some(u), _) if !(1..=i64::from(i32::MAX)).contains(&u) => report.value(
            format!("{at}.runAsUser"),
            format!("`{u}` is not a user id"),
            "a number from 1 to 2147483647, the uid that owns the volume's files",
        ),
        (None, Some(_)) => report.value(
            format!("{at}.runAsGroup"),
            "runAsGroup without runAsUser: the movers run as root",
            "add `runAsUser`, or remove `runAsGroup`",
        ),
        (_, Some(g)) if !(0..=i64::from(i32::MAX)).contains(&g) => report.value(
            format!("{at}.runAsGroup"),
            format!("`{g}` is not a group id"),
            "a number from 0 to 2147483647",
        ),
        _ => {}
    }
    match v.timeout.as_deref().map(parse_duration) {
        Some(Err(why)) => report.value(format!("{at}.timeout"), "timeout is not a duration", why),
        Some(Ok(d)) if d.is_zero() => report.value(
            format!("{at}.timeout"),
            "timeout is zero: no volume could ever move in time",
            "write how long one claim's mover may take, e.g. `2h`",
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{base_with, diagnostics, expect_one};

    const APP: &str = "kubernetes: { from: msk, to: zrh, namespace: analysis }";

    /// `app` with `volumes`, copied (the delta) after its freeze.
    fn with_volumes(volumes: &str) -> String {
        base_with(
            APP,
            &format!(
                "kubernetes: {{ from: msk, to: zrh, namespace: analysis, volumes: {volumes} }}"
            ),
        )
        .replacen("{ freeze: app }, {", "{ freeze: app }, { copy: app }, {", 1)
    }

    #[test]
    fn a_staging_store_in_an_allowed_jurisdiction_passes() {
        let plan = with_volumes("{ copy: true, staging: dst, snapshotClass: csi-snapclass }");
        crate::parse(&plan, std::path::Path::new("plan.yaml")).expect("valid");
    }

    #[test]
    fn a_missing_staging_store_is_refused_with_a_suggestion() {
        let plan = with_volumes("{ copy: true, staging: dts }");
        expect_one(&plan, 25, 92, "staging store `dts` is not defined", "`dst`");
    }

    #[test]
    fn a_staging_store_in_the_source_region_is_refused() {
        let plan = with_volumes("{ copy: true, staging: src }");
        let diags = diagnostics(&plan);
        for needle in [
            "is in the source region `moscow`",
            "jurisdiction `RU`",
            "local directory",
        ] {
            assert!(
                diags
                    .iter()
                    .any(|d| d.message.contains(needle) && d.line == 25),
                "no `{needle}` on line 25 in {diags:#?}"
            );
        }
    }

    #[test]
    fn copy_false_and_a_bad_snapshot_class_are_refused() {
        let plan = with_volumes("{ staging: dst, snapshotClass: Csi_Snap }");
        let diags = diagnostics(&plan);
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`copy` is not true")),
            "{diags:#?}"
        );
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("`Csi_Snap` is not a Kubernetes object name")),
            "{diags:#?}"
        );
    }

    #[test]
    fn plans_without_volumes_keep_their_digest() {
        // The new key is skipped when absent: the model serialises to what it read.
        let plan = crate::parse(
            super::super::testing::BASE,
            std::path::Path::new("plan.yaml"),
        )
        .expect("valid");
        let json = serde_json::to_string(plan.plan()).expect("json");
        assert!(!json.contains("volumes"), "{json}");
    }

    #[test]
    fn the_movers_keys_are_checked() {
        let plan = with_volumes(
            "{ copy: true, staging: dst, image: \"\", credentials: { secretName: Bad_Secret }, \
             resources: { cpu: two }, timeout: 0s }",
        );
        let diags = diagnostics(&plan);
        for needle in [
            "is not an image reference",
            "`Bad_Secret` is not a Kubernetes object name",
            "`two` is not a Kubernetes quantity",
            "timeout is zero",
        ] {
            assert!(
                diags.iter().any(|d| d.message.contains(needle)),
                "no `{needle}` in {diags:#?}"
            );
        }
        let plan = with_volumes(
            "{ copy: true, staging: dst, image: \"registry.zrh.example.ch/relocate:0.1.0\", \
             credentials: { secretName: relocate-stores }, resources: { cpu: 500m, memory: 256Mi }, timeout: 2h }",
        );
        crate::parse(&plan, std::path::Path::new("plan.yaml")).expect("valid");
    }

    #[test]
    fn a_deploy_restores_a_copy_made_after_the_freeze() {
        let plan = with_volumes("{ copy: true, staging: dst }");
        let no_delta = plan.replacen(
            "{ freeze: app }, { copy: app }, {",
            "{ copy: app }, { freeze: app }, {",
            1,
        );
        expect_one(
            &no_delta,
            35,
            90,
            "copied while the source still ran",
            "then `{ copy: app }` (the delta)",
        );
        let no_copy = plan.replacen("{ copy: app }, ", "", 1);
        expect_one(
            &no_copy,
            35,
            75,
            "no `copy: app` staged it",
            "add `{ copy: app }`",
        );
        let early_verify =
            plan.replacen("{ copy: app }, {", "{ copy: app }, { verify: app }, {", 1);
        expect_one(
            &early_verify,
            35,
            56,
            "only exist after `deploy: app`",
            "after `{ deploy: app }`",
        );
        let late_verify =
            plan.replacen("{ deploy: app } ]", "{ deploy: app }, { verify: app } ]", 1);
        crate::parse(&late_verify, std::path::Path::new("plan.yaml")).expect("valid");
    }

    #[test]
    fn copy_on_a_kubernetes_workload_without_volumes_is_refused() {
        let plan = base_with("{ freeze: app }, {", "{ freeze: app }, { copy: app }, {");
        expect_one(
            &plan,
            35,
            39,
            "`copy` needs an object workload",
            "volumes: { copy: true",
        );
    }

    #[test]
    fn a_stage_running_movers_needs_a_label_value_name() {
        let plan = with_volumes("{ copy: true, staging: dst }")
            .replace("- name: cutover", "- name: -cutover-");
        let diags = diagnostics(&plan);
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("stage `-cutover-` runs volume movers of `app`")),
            "{diags:#?}"
        );
    }

    #[test]
    fn run_as_user_must_name_a_non_root_user_and_run_as_group_needs_it() {
        let ok = with_volumes("{ copy: true, staging: dst, runAsUser: 999, runAsGroup: 999 }");
        crate::parse(&ok, std::path::Path::new("plan.yaml")).expect("valid");
        for (keys, needle) in [
            ("runAsUser: 0", "runAsUser 0 is root"),
            ("runAsUser: -5", "`-5` is not a user id"),
            ("runAsGroup: 999", "runAsGroup without runAsUser"),
            ("runAsUser: 999, runAsGroup: -1", "`-1` is not a group id"),
        ] {
            let plan = with_volumes(&format!("{{ copy: true, staging: dst, {keys} }}"));
            let diags = diagnostics(&plan);
            assert!(
                diags.len() == 1 && diags[0].message.contains(needle),
                "{keys}: {diags:#?}"
            );
        }
    }
}
