//! The engine's Kubernetes steps end to end through the `relocate` binary, against two
//! fake API servers (see `fake_kube`): freeze records and scales the source to zero,
//! deploy applies the transformed resources with the recorded replica counts, the
//! evidence carries the applied digests, and rollback (on demand, or by itself when a
//! gate rejects the cutover) puts the source back and scales the target down.

mod fake_kube;
mod util;

use fake_kube::analyzer::{DEPLOYMENTS, TARGET_DEPLOYMENTS, source_cluster, target_cluster};
use fake_kube::kubeconfig;
use fake_kube::plan::{CutoverPlan, FREEZE_AND_DEPLOY};
use util::{Workspace, stderr, stdout};

/// The cutover plan; `approvers` (top-level YAML lines), when given, also makes the
/// stage need the auditor's signoff.
fn plan(ws: &Workspace, approvers: &str) {
    let plan = CutoverPlan {
        workload: "      waitTimeout: 20s\n",
        transform: "        images: { \"registry.msk.example/\": \"registry.zrh.example/\" }\n",
        top: approvers,
        stage: if approvers.is_empty() {
            ""
        } else {
            "    signoff: [auditor]\n"
        },
        ..CutoverPlan::new("kube", FREEZE_AND_DEPLOY)
    };
    ws.write("plan.yaml", plan.render());
}

#[test]
fn cutover_freezes_the_source_deploys_transformed_and_rolls_back_on_demand() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), target_cluster());
    ws.write("kubeconfig.yaml", kubeconfig(&src, &dst));
    plan(&ws, "");
    let out = ws.run_plan("plain");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));

    assert_eq!(
        src.get(DEPLOYMENTS, "api").unwrap()["spec"]["replicas"],
        0,
        "source frozen"
    );
    let deployed = dst
        .get(TARGET_DEPLOYMENTS, "api")
        .expect("deployed to the target namespace");
    assert_eq!(
        deployed["spec"]["replicas"], 3,
        "the recorded count, not the frozen zero"
    );
    assert_eq!(
        deployed["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.zrh.example/analyzer/api:1.4"
    );
    assert_eq!(
        deployed["metadata"]["labels"]["relocate.io/region"],
        "zurich"
    );
    // The old cluster's managers are not carried over; the target records relocate's apply.
    let managers = deployed["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(managers.len(), 1, "{deployed}");
    assert_eq!(managers[0]["manager"], "relocate");
    assert!(
        dst.get("/api/v1/namespaces/analysis-zrh/configmaps", "api-config")
            .is_some()
    );

    let evidence =
        std::fs::read_to_string(ws.join("state/evidence/01-cutover.attempt-1.intoto.json"))
            .unwrap();
    let envelope: serde_json::Value = serde_json::from_str(&evidence).unwrap();
    let payload = base64_decode(envelope["payload"].as_str().unwrap());
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let resources = &statement["predicate"]["workloads"][0]["resources"];
    assert!(
        resources
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "api" && r["digest"].as_str().unwrap().starts_with("sha256:")),
        "{statement}"
    );

    let rollback = ws.relocate(&[
        "rollback",
        "plan.yaml",
        "--stage",
        "cutover",
        "--state-dir",
        "state",
        "--output",
        "plain",
    ]);
    assert!(
        rollback.status.success(),
        "{}\n{}",
        stdout(&rollback),
        stderr(&rollback)
    );
    assert_eq!(
        src.get(DEPLOYMENTS, "api").unwrap()["spec"]["replicas"],
        3,
        "source restored"
    );
    assert_eq!(
        dst.get(TARGET_DEPLOYMENTS, "api").unwrap()["spec"]["replicas"],
        0,
        "target scaled down"
    );
}

#[test]
fn a_rejected_cutover_rolls_itself_back() {
    let ws = Workspace::new();
    let (src, dst) = (source_cluster(), target_cluster());
    ws.write("kubeconfig.yaml", kubeconfig(&src, &dst));
    let public = ws.keypair("auditor");
    ws.script("hook.sh", r#""$RELOCATE_BIN" approve --key auditor.key --evidence - --reject --reason "readiness probes too weak""#);
    plan(
        &ws,
        &format!(
            "approvers:\n  auditor:\n    publicKey: \"{public}\"\n    hook: {{ command: [\"./hook.sh\"] }}\n"
        ),
    );
    let out = ws.run_plan("plain");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("source replica counts restored"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        src.get(DEPLOYMENTS, "api").unwrap()["spec"]["replicas"],
        3,
        "source back in service"
    );
    assert_eq!(
        dst.get(TARGET_DEPLOYMENTS, "api").unwrap()["spec"]["replicas"],
        0,
        "target scaled down"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}
