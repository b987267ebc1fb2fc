//! Workload rules: references to stores and clusters, residency of what is written,
//! globs, and transfer tuning.

use indexmap::IndexMap;

use super::{Anchor, Report, check_safe_name, name_hint};
use crate::units::{parse_duration, parse_rate};
use crate::{KubernetesWorkload, ObjectWorkload, Plan, Workload};

/// The JSON patch operations of RFC 6902.
const PATCH_OPS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];

pub(super) fn check(plan: &Plan, report: &mut Report) {
    for (name, workload) in &plan.workloads {
        check_safe_name(
            report,
            format!("workloads.{name}"),
            "workload",
            name,
            Anchor::Key,
        );
        match workload {
            Workload::Objects(w) => {
                check_objects(plan, report, &format!("workloads.{name}.objects"), w)
            }
            Workload::Kubernetes(w) => {
                check_kubernetes(plan, report, &format!("workloads.{name}.kubernetes"), w)
            }
        }
    }
}

/// The two ends of a workload, resolved against the stores or clusters they name.
struct Ends<'a> {
    path: &'a str,
    what: &'a str,
    section: &'a str,
    from: &'a str,
    to: &'a str,
}

impl Ends<'_> {
    /// Check both ends exist and differ, and where the target end is.
    fn check(&self, plan: &Plan, report: &mut Report, regions: &IndexMap<String, &str>) {
        for (field, name) in [("from", self.from), ("to", self.to)] {
            if !regions.contains_key(name) {
                report.value(
                    format!("{}.{field}", self.path),
                    format!("{} `{name}` is not defined", self.what),
                    name_hint(name, regions.keys(), self.section),
                );
            }
        }
        if self.from == self.to {
            report.value(
                format!("{}.to", self.path),
                format!(
                    "the workload reads and writes the same {} `{}`",
                    self.what, self.to
                ),
                format!("`to` must name the {} in the target region", self.what),
            );
        }
        if let Some(region) = regions.get(self.to) {
            self.check_target_region(plan, report, region);
        }
    }

    /// Residency: the written-to end must be outside the source region and inside the
    /// allow-list.
    fn check_target_region(&self, plan: &Plan, report: &mut Report, region: &str) {
        let at = format!("{}.to", self.path);
        if region == plan.source && self.from != self.to {
            report.value(
                &at,
                format!(
                    "{} `{}` is written to but is in the source region `{region}`",
                    self.what, self.to
                ),
                format!(
                    "write to a {} outside the source region, e.g. in `{}`",
                    self.what, plan.target
                ),
            );
        }
        let (Some(residency), Some(jurisdiction)) = (&plan.residency, plan.regions.get(region))
        else {
            return;
        };
        let allowed = &residency.allowed_target_jurisdictions;
        if !allowed.iter().any(|j| j == &jurisdiction.jurisdiction) {
            report.value(
                &at,
                format!(
                    "residency: {} `{}` is written to but its region `{region}` is in jurisdiction `{}`, \
                     outside the allow-list [{}]",
                    self.what,
                    self.to,
                    jurisdiction.jurisdiction,
                    allowed.join(", ")
                ),
                "write to a store or cluster in an allowed jurisdiction, or change the allow-list after legal review",
            );
        }
    }
}

fn check_objects(plan: &Plan, report: &mut Report, path: &str, w: &ObjectWorkload) {
    let regions: IndexMap<String, &str> = plan
        .stores
        .iter()
        .map(|(n, s)| (n.clone(), s.region.as_str()))
        .collect();
    let ends = Ends {
        path,
        what: "store",
        section: "stores",
        from: &w.from,
        to: &w.to,
    };
    ends.check(plan, report, &regions);
    if w.include.is_empty() {
        report.value(
            format!("{path}.include"),
            "`include` is empty, so nothing would move",
            "write `[\"**\"]` for everything",
        );
    }
    for (field, globs) in [("include", &w.include), ("exclude", &w.exclude)] {
        for (i, glob) in globs.iter().enumerate() {
            if let Err(e) = globset::Glob::new(glob) {
                report.value(
                    format!("{path}.{field}[{i}]"),
                    format!("`{glob}` is not a valid glob: {}", e.kind()),
                    "globs use `*`, `**`, `?`, `[abc]` and `{a,b}`, e.g. `logs/**/*.gz`",
                );
            }
        }
    }
    if w.concurrency == Some(0) {
        report.value(
            format!("{path}.concurrency"),
            "concurrency is 0, so nothing would move",
            "write 1 or more (default 16)",
        );
    }
    if let Some(Err(why)) = w.bandwidth.as_deref().map(parse_rate) {
        report.value(format!("{path}.bandwidth"), "bandwidth is not a rate", why);
    }
    if w.verify_mode() == crate::VerifyMode::Checksum
        && w.checksum != crate::ChecksumAlgorithm::Sha256
    {
        report.value(
            format!("{path}.verify.mode"),
            format!(
                "`verify: {{ mode: checksum }}` compares the store's SHA-256 with the manifest, \
                 but this manifest is {}: every object would be re-read",
                w.checksum.as_str()
            ),
            "set `checksum: sha256`, or `verify: { mode: reread }`",
        );
    }
}

fn check_kubernetes(plan: &Plan, report: &mut Report, path: &str, w: &KubernetesWorkload) {
    let regions: IndexMap<String, &str> = plan
        .clusters
        .iter()
        .map(|(n, c)| (n.clone(), c.region.as_str()))
        .collect();
    let ends = Ends {
        path,
        what: "cluster",
        section: "clusters",
        from: &w.from,
        to: &w.to,
    };
    ends.check(plan, report, &regions);
    if w.namespace.trim().is_empty() {
        report.value(
            format!("{path}.namespace"),
            "namespace is empty",
            "name the source namespace",
        );
    }
    match w.wait_timeout.as_deref().map(parse_duration) {
        Some(Err(why)) => report.value(
            format!("{path}.waitTimeout"),
            "waitTimeout is not a duration",
            why,
        ),
        Some(Ok(d)) if d.is_zero() => report.value(
            format!("{path}.waitTimeout"),
            "waitTimeout is zero: no rollout could ever be ready in time",
            "write how long a rollout may take, e.g. `10m`",
        ),
        _ => {}
    }
    for (resource, replicas) in &w.transform.replicas {
        if *replicas < 0 {
            report.value(
                format!("{path}.transform.replicas.{resource}"),
                format!("replicas of `{resource}` is negative"),
                "write 0 or more",
            );
        }
    }
    for (i, rule) in w.transform.patches.iter().enumerate() {
        for (j, op) in rule.patch.iter().enumerate() {
            let kind = op.get("op").and_then(|o| o.as_str());
            let has_path = op.get("path").is_some_and(serde_json::Value::is_string);
            if !kind.is_some_and(|k| PATCH_OPS.contains(&k)) || !has_path {
                report.value(
                    format!("{path}.transform.patches[{i}].patch[{j}]"),
                    "not an RFC 6902 operation",
                    "write e.g. `{ op: replace, path: /spec/replicas, value: 2 }`",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{base_with, diagnostics, expect_one};

    #[test]
    fn dangling_store_reference() {
        let text = base_with("{ from: src, to: dst", "{ from: sorce, to: dst");
        expect_one(
            &text,
            23,
            22,
            "store `sorce` is not defined",
            "did you mean `src`?",
        );
    }

    #[test]
    fn dangling_cluster_reference() {
        let text = base_with("to: zrh", "to: zurich-k8s");
        expect_one(
            &text,
            25,
            34,
            "cluster `zurich-k8s` is not defined",
            "clusters defined: `msk`, `zrh`",
        );
    }

    #[test]
    fn workload_reading_and_writing_one_store() {
        let text = base_with("{ from: src, to: dst", "{ from: dst, to: dst");
        expect_one(
            &text,
            23,
            31,
            "reads and writes the same store `dst`",
            "`to` must name the store",
        );
    }

    #[test]
    fn residency_violation_names_store_region_jurisdiction_and_allow_list() {
        let text = base_with("[CH]", "[DE, AT]");
        let diags = diagnostics(&text);
        let d = diags
            .iter()
            .find(|d| d.line == 23)
            .expect("object workload target reported");
        assert_eq!(d.column, 31);
        assert!(
            d.message.contains("store `dst` is written to but its region `zurich` is in jurisdiction `CH`, outside the allow-list [DE, AT]"),
            "{d}"
        );
        assert!(d.hint.contains("allowed jurisdiction"));
        assert!(
            diags
                .iter()
                .any(|d| d.line == 25 && d.message.contains("cluster `zrh`")),
            "{diags:#?}"
        );
    }

    #[test]
    fn writing_into_the_source_region() {
        let text = base_with("region: zurich\n    url", "region: moscow\n    url")
            .replace("[CH]", "[CH, RU]");
        expect_one(
            &text,
            23,
            31,
            "store `dst` is written to but is in the source region `moscow`",
            "in `zurich`",
        );
    }

    #[test]
    fn invalid_glob() {
        let text = base_with("[\"**/*.log\"]", "[\"logs/[a-\"]");
        expect_one(
            &text,
            23,
            46,
            "`logs/[a-` is not a valid glob",
            "`logs/**/*.gz`",
        );
    }

    #[test]
    fn zero_concurrency_and_bad_bandwidth() {
        let text = base_with(
            "include: [\"**/*.log\"] }",
            "concurrency: 0, bandwidth: fast }",
        );
        let diags = diagnostics(&text);
        assert_eq!(diags.len(), 2, "{diags:#?}");
        assert_eq!((diags[0].column, diags[1].column), (49, 63));
        assert!(diags[0].message.contains("concurrency is 0"));
        assert!(
            diags[1].message.contains("bandwidth is not a rate")
                && diags[1].hint.contains("200MiB/s")
        );
    }

    #[test]
    fn checksum_verify_needs_a_sha256_manifest() {
        let text = base_with(
            "include: [\"**/*.log\"] }",
            "checksum: blake3, verify: { mode: checksum } }",
        );
        let diags = diagnostics(&text);
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert!(
            diags[0].message.contains("blake3") && diags[0].hint.contains("checksum: sha256"),
            "{diags:#?}"
        );
        let fine = base_with("include: [\"**/*.log\"] }", "verify: { mode: checksum } }");
        let plan = crate::parse(&fine, std::path::Path::new("plan.yaml")).expect("valid");
        let w = plan.object_workload("data").expect("the data workload");
        assert_eq!(w.verify_mode(), crate::VerifyMode::Checksum);
        let unknown = base_with("include: [\"**/*.log\"] }", "verify: { mode: hash } }");
        assert_eq!(diagnostics(&unknown).len(), 1, "an unknown mode is refused");
    }

    #[test]
    fn bad_wait_timeout_and_patch() {
        let text = base_with(
            "namespace: analysis }",
            "namespace: analysis, waitTimeout: later }",
        );
        expect_one(&text, 25, 73, "waitTimeout is not a duration", "`5m`");
        let patch = "namespace: analysis, transform: { patches: [ { kind: Deployment, patch: [ { op: frob } ] } ] } }";
        let text = base_with("namespace: analysis }", patch);
        expect_one(&text, 25, 113, "not an RFC 6902 operation", "op: replace");
    }

    #[test]
    fn unsafe_workload_name() {
        let text = base_with("  data:\n", "  da/ta:\n")
            .replace("copy: data", "copy: da/ta")
            .replace("verify: data", "verify: da/ta");
        expect_one(
            &text,
            22,
            3,
            "workload `da/ta` is not a safe name",
            "letters, digits",
        );
    }
}
