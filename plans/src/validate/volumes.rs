//! Volume rules: `workloads.<name>.kubernetes.volumes`.
//!
//! A workload whose claims' data moves stages every file in an object store before the
//! target restores it, so that store holds the data at rest: it must exist, obey
//! residency like any target (an allowed jurisdiction, never the source region), and
//! be a cloud store the mover pods can reach. The snapshot class, when given, is a
//! Kubernetes object name.

use super::workers::is_dns_label;
use super::{Report, name_hint};
use crate::{Plan, Volumes, Workload};

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
    if !v.copy {
        report.value(
            format!("{at}.copy"),
            "volumes is given but `copy` is not true, so no data would move",
            "write `copy: true`, or remove `volumes`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{base_with, diagnostics, expect_one};

    const APP: &str = "kubernetes: { from: msk, to: zrh, namespace: analysis }";

    fn with_volumes(volumes: &str) -> String {
        base_with(
            APP,
            &format!(
                "kubernetes: {{ from: msk, to: zrh, namespace: analysis, volumes: {volumes} }}"
            ),
        )
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
}
