//! Scale-out rules: `state.store`, a workload's `shards` and `workers`.
//!
//! Everything a sharded run needs is checked here, before anything runs: the store
//! where workers meet is written to, so it obeys residency; Kubernetes workers process
//! the data, so their cluster must be in an allowed jurisdiction too, and they need a
//! cloud store to meet in (a pod cannot reach this machine's files); names that become
//! Kubernetes object names are valid ones.

use super::{Anchor, Report, check_safe_name, name_hint};
use crate::{KubernetesWorkers, ObjectWorkload, Plan, Workload};

/// Most shards a workload may have: each is a worker run with its own checkpoints
/// and a result file, and the coordinator follows them all; past this a shard holds
/// too little to pay for its own pod.
pub const MAX_SHARDS: u32 = 10_000;

pub(super) fn check(plan: &Plan, report: &mut Report) {
    if let Some(state) = &plan.state {
        check_state_store(plan, report, &state.store);
    }
    for (name, workload) in &plan.workloads {
        if let Workload::Objects(w) = workload {
            check_workload(plan, report, &format!("workloads.{name}.objects"), w);
            if w.workers.as_ref().is_some_and(|x| x.kubernetes.is_some()) {
                check_label_values(
                    plan,
                    report,
                    name,
                    "Kubernetes workers",
                    &["copy", "verify"],
                );
            }
        }
    }
}

fn check_state_store(plan: &Plan, report: &mut Report, store: &str) {
    let Some(spec) = plan.stores.get(store) else {
        report.value(
            "state.store",
            format!("store `{store}` is not defined"),
            name_hint(store, plan.stores.keys(), "stores"),
        );
        return;
    };
    let at = "state.store";
    if spec.region == plan.source {
        report.value(
            at,
            format!(
                "the state store `{store}` is in the source region `{}`: workers write work orders, checkpoints and results there",
                plan.source
            ),
            format!("use a store in `{}`", plan.target),
        );
    }
    if let (Some(residency), Some(region)) = (&plan.residency, plan.regions.get(&spec.region)) {
        let allowed = &residency.allowed_target_jurisdictions;
        if !allowed.iter().any(|j| j == &region.jurisdiction) {
            report.value(
                at,
                format!(
                    "residency: the state store `{store}` is in jurisdiction `{}`, outside the allow-list [{}]; manifests and checkpoints are written there",
                    region.jurisdiction,
                    allowed.join(", ")
                ),
                "name a store in an allowed jurisdiction",
            );
        }
    }
}

fn check_workload(plan: &Plan, report: &mut Report, path: &str, w: &ObjectWorkload) {
    if let Some(shards) = w.shards
        && (shards == 0 || shards > MAX_SHARDS)
    {
        report.value(
            format!("{path}.shards"),
            format!("shards is {shards}"),
            format!(
                "write 1 to {MAX_SHARDS}: each shard is a key range of about equal bytes run by one worker; a few times the workers' parallelism is plenty"
            ),
        );
    }
    let Some(workers) = &w.workers else {
        return;
    };
    let at = format!("{path}.workers");
    match (&workers.kubernetes, &workers.local) {
        (Some(_), Some(_)) => report.key(
            &at,
            "workers has both `kubernetes` and `local`",
            "keep one: `kubernetes` runs the shards as an Indexed Job, `local` as child processes",
        ),
        (None, None) => report.key(
            &at,
            "workers names no executor",
            "write `kubernetes: { cluster, namespace, image }` or `local: { parallelism: 4 }`",
        ),
        (None, Some(local)) => {
            if local.parallelism == Some(0) {
                report.value(
                    format!("{at}.local.parallelism"),
                    "parallelism is 0, so no worker would run",
                    "write 1 or more",
                );
            }
        }
        (Some(k), None) => check_kubernetes(plan, report, &format!("{at}.kubernetes"), k),
    }
}

fn check_kubernetes(plan: &Plan, report: &mut Report, at: &str, k: &KubernetesWorkers) {
    match plan.clusters.get(&k.cluster) {
        None => report.value(
            format!("{at}.cluster"),
            format!("cluster `{}` is not defined", k.cluster),
            name_hint(&k.cluster, plan.clusters.keys(), "clusters"),
        ),
        Some(cluster) => {
            let jurisdiction = plan.regions.get(&cluster.region).map(|r| &r.jurisdiction);
            let allowed = plan
                .residency
                .as_ref()
                .map(|r| &r.allowed_target_jurisdictions);
            let outside = match (allowed, jurisdiction) {
                (Some(allowed), Some(j)) => !allowed.contains(j),
                _ => false,
            };
            if cluster.region == plan.source || outside {
                report.value(
                    format!("{at}.cluster"),
                    format!(
                        "workers would read and hash the data in cluster `{}` (region `{}`), outside the target jurisdiction",
                        k.cluster, cluster.region
                    ),
                    format!("run the workers in a cluster in `{}`", plan.target),
                );
            }
        }
    }
    match &plan.state {
        None => report.key(
            at,
            "Kubernetes workers need `state: { store: … }`: the pods read their work order and write results there",
            "add `state: { store: <a cloud store in the target region> }` at the top of the plan",
        ),
        Some(state) => {
            if plan
                .stores
                .get(&state.store)
                .is_some_and(|s| s.url.starts_with("file:"))
            {
                report.value(
                    "state.store",
                    format!(
                        "the state store `{}` is a local directory, which pods in the cluster cannot reach",
                        state.store
                    ),
                    "use an s3://, az:// or gs:// store",
                );
            }
        }
    }
    if !is_dns_label(&k.namespace) {
        report.value(
            format!("{at}.namespace"),
            format!("`{}` is not a Kubernetes namespace name", k.namespace),
            "at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit",
        );
    }
    if k.image.trim().is_empty() || k.image.chars().any(char::is_whitespace) {
        report.value(
            format!("{at}.image"),
            "image is empty or has whitespace",
            "name the relocate image, e.g. `registry.example.ch/relocate:0.2.0`",
        );
    }
    if k.parallelism == Some(0) {
        report.value(
            format!("{at}.parallelism"),
            "parallelism is 0, so no pod would run",
            "write 1 or more",
        );
    }
    for (field, name) in [
        ("serviceAccountName", k.service_account_name.as_deref()),
        (
            "credentials.secretName",
            k.credentials.as_ref().map(|c| c.secret_name.as_str()),
        ),
    ] {
        if let Some(name) = name.filter(|n| !is_dns_subdomain(n)) {
            report.value(
                format!("{at}.{field}"),
                format!("`{name}` is not a Kubernetes object name"),
                "lowercase letters, digits, `-` and `.`, at most 253",
            );
        }
    }
    if let Some(r) = &k.resources {
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
    check_safe_name(
        report,
        format!("{at}.namespace"),
        "namespace",
        &k.namespace,
        Anchor::Value,
    );
}

/// The workload's name and the names of the stages whose steps of `kinds` act on it
/// become label values of its Jobs (`what`: its workers, its volume movers): refuse
/// here what the API server would refuse there, before anything is frozen.
pub(super) fn check_label_values(
    plan: &Plan,
    report: &mut Report,
    workload: &str,
    what: &str,
    kinds: &[&str],
) {
    let hint = "a Kubernetes label value: at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit";
    if !is_label_value(workload) {
        report.key(
            format!("workloads.{workload}"),
            format!(
                "workload `{workload}` runs {what}, and its name is not a Kubernetes label value"
            ),
            hint,
        );
    }
    for (i, stage) in plan.stages.iter().enumerate() {
        let uses = stage
            .steps
            .iter()
            .any(|s| kinds.contains(&s.kind()) && s.workload() == Some(workload));
        if uses && !is_label_value(&stage.name) {
            report.value(
                format!("stages[{i}].name"),
                format!(
                    "stage `{}` runs {what} of `{workload}`, and its name is not a Kubernetes label value",
                    stage.name
                ),
                hint,
            );
        }
    }
}

/// A Kubernetes label value.
fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

/// RFC 1123 label, as namespaces are.
pub(crate) fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain, as most object names are.
pub(super) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A Kubernetes resource quantity: a decimal number and an optional suffix.
pub(super) fn is_quantity(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &s[digits.len()..];
    let number = !digits.is_empty()
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().any(|b| b.is_ascii_digit());
    number
        && [
            "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
        ]
        .contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, base_with, expect_one};

    fn sharded(workers: &str) -> String {
        base_with(
            "objects: { from: src, to: dst, include: [\"**/*.log\"] }",
            &format!("objects: {{ from: src, to: dst, shards: 8, workers: {workers} }}"),
        )
    }

    #[test]
    fn local_workers_need_no_state_store() {
        let plan = sharded("{ local: { parallelism: 2 } }");
        crate::parse(&plan, std::path::Path::new("plan.yaml")).expect("valid");
    }

    #[test]
    fn absurd_shard_counts_are_refused_with_the_range() {
        for n in ["0", "1000000"] {
            let plan = base_with(
                "objects: { from: src, to: dst, include: [\"**/*.log\"] }",
                &format!("objects: {{ from: src, to: dst, shards: {n} }}"),
            );
            expect_one(&plan, 23, 44, &format!("shards is {n}"), "write 1 to 10000");
        }
    }

    #[test]
    fn kubernetes_workers_without_a_state_store_are_refused() {
        let plan = sharded("{ kubernetes: { cluster: zrh, namespace: relocate, image: r:1 } }");
        expect_one(
            &plan,
            23,
            58,
            "need `state: { store: … }`",
            "state: { store:",
        );
    }

    #[test]
    fn a_state_store_in_the_source_region_or_outside_residency_is_refused() {
        let plan = sharded("{ kubernetes: { cluster: zrh, namespace: relocate, image: r:1 } }")
            .replacen("stages:\n", "state: { store: src }\nstages:\n", 1);
        let diags = super::super::testing::diagnostics(&plan);
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("is in the source region `moscow`")),
            "{diags:#?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("jurisdiction `RU`")),
            "{diags:#?}"
        );
        assert!(
            diags.iter().any(|d| d.message.contains("local directory")),
            "{diags:#?}"
        );
    }

    #[test]
    fn kubernetes_workers_in_the_source_cluster_or_with_bad_names_are_refused() {
        let plan = sharded(
            "{ kubernetes: { cluster: msk, namespace: Relocate_NS, image: \"\", parallelism: 0, \
             credentials: { secretName: \"Bad Secret\" }, resources: { cpu: two, memory: 1Gi } } }",
        )
        .replacen("stages:\n", "state: { store: dst }\nstages:\n", 1);
        let diags = super::super::testing::diagnostics(&plan);
        for needle in [
            "outside the target jurisdiction",
            "`Relocate_NS` is not a Kubernetes namespace name",
            "image is empty",
            "parallelism is 0",
            "`Bad Secret` is not a Kubernetes object name",
            "`two` is not a Kubernetes quantity",
        ] {
            assert!(
                diags.iter().any(|d| d.message.contains(needle)),
                "no `{needle}` in {diags:#?}"
            );
        }
    }

    #[test]
    fn names_that_become_label_values_are_checked() {
        let plan = sharded("{ kubernetes: { cluster: zrh, namespace: relocate, image: r:1 } }")
            .replacen("stages:\n", "state: { store: dst }\nstages:\n", 1)
            .replace("- name: seed", "- name: seed_");
        let diags = super::super::testing::diagnostics(&plan);
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("stage `seed_` runs Kubernetes workers")),
            "{diags:#?}"
        );
        assert!(
            super::is_label_value("seed")
                && !super::is_label_value("-x")
                && !super::is_label_value(&"a".repeat(64))
        );
    }

    #[test]
    fn a_valid_kubernetes_worker_plan_passes() {
        let plan = sharded(
            "{ kubernetes: { cluster: zrh, namespace: relocate, image: \"reg.example.ch/relocate:0.2.0\", \
             parallelism: 16, serviceAccountName: relocate-worker, credentials: { secretName: relocate-stores }, \
             resources: { cpu: \"2\", memory: 1Gi } } }",
        )
        .replacen("stages:\n", "state: { store: dst }\nstages:\n", 1);
        crate::parse(&plan, std::path::Path::new("plan.yaml")).expect("valid");
        assert!(BASE.contains("stages:\n"));
    }
}
