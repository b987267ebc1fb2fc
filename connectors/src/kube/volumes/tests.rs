use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::kube::workers::{WorkerJob, WorkerResources};

fn mover(read_only: bool, as_root: bool) -> MoverJob {
    MoverJob {
        worker: WorkerJob {
            name: "analyzer-cutover-1-1-pack-0-abcdef1234".into(),
            namespace: "analysis".into(),
            image: "registry.zrh.example.ch/relocate:0.2.0".into(),
            completions: 1,
            parallelism: 1,
            service_account: None,
            secret_name: Some("relocate-stores".into()),
            resources: WorkerResources {
                cpu: Some("1".into()),
                memory: Some("256Mi".into()),
            },
            args: vec![
                "volume".into(),
                "pack".into(),
                "--order".into(),
                "o/order.json".into(),
            ],
            env: vec![("RELOCATE_STATE_STORE".into(), "{}".into())],
            labels: BTreeMap::from([("relocate.io/stage".into(), "cutover".into())]),
            backoff_limit_per_index: 2,
            ttl_seconds_after_finished: 3600,
        },
        claim: "data-analyzer-0".into(),
        read_only,
        as_root,
        node: None,
        scheduling: Default::default(),
        run_as: None,
    }
}

fn job_json(m: &MoverJob) -> Value {
    serde_json::to_value(build_mover_job(m)).expect("json")
}

#[test]
fn a_pack_mounts_the_claim_read_only_without_fs_group() {
    let job = job_json(&mover(true, false));
    let pod = &job["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "claim"))
        .expect("claim volume");
    assert_eq!(
        volume["persistentVolumeClaim"],
        json!({"claimName": "data-analyzer-0", "readOnly": true})
    );
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "claim"))
        .expect("mount");
    assert_eq!(mount["mountPath"], VOLUME_MOUNT);
    assert_eq!(mount["readOnly"], true);
    assert!(pod["securityContext"].get("fsGroup").is_none(), "{pod}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(
        container["env"].as_array().is_some_and(
            |e| e.contains(&json!({"name": "RELOCATE_VOLUME_PATH", "value": "/volume"}))
        )
    );
    // The worker Job's guarantees stay: credentials only by reference, resources.
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "relocate-stores"
    );
    assert_eq!(container["resources"]["limits"]["memory"], "256Mi");
}

#[test]
fn a_restore_as_root_adds_only_the_ownership_capabilities() {
    let job = job_json(&mover(false, true));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 0);
    let container = &pod["containers"][0];
    assert_eq!(
        container["securityContext"]["capabilities"],
        json!({"add": ["CHOWN", "FOWNER", "DAC_OVERRIDE"], "drop": ["ALL"]})
    );
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "claim"))
        .expect("mount");
    assert_eq!(mount["readOnly"], false);
}

#[test]
fn storage_quantities_parse_to_bytes() {
    assert_eq!(parse_quantity("10Gi"), Some(10 << 30));
    assert_eq!(parse_quantity("500M"), Some(500_000_000));
    assert_eq!(parse_quantity("1e9"), Some(1_000_000_000));
    assert_eq!(parse_quantity("1073741824"), Some(1 << 30));
    assert_eq!(parse_quantity("ten"), None);
}

#[test]
fn a_mover_pinned_to_a_node_is_scheduled_there_by_name() {
    let mut m = mover(true, false);
    m.node = Some("msk-node-3".into());
    let job = serde_json::to_value(build_mover_job(&m)).expect("json");
    let terms = &job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    assert_eq!(
        terms,
        &serde_json::json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["msk-node-3"]}]}])
    );
    let unpinned = serde_json::to_value(build_mover_job(&mover(true, false))).expect("json");
    assert!(
        unpinned["spec"]["template"]["spec"]
            .get("affinity")
            .is_none()
    );
}

#[test]
fn a_mover_run_as_the_volumes_user_is_non_root_with_no_capability_added() {
    let mut m = mover(false, false);
    m.run_as = Some((999, 998));
    let job = job_json(&m);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 999);
    assert_eq!(pod["securityContext"]["runAsGroup"], 998);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"].get("fsGroup").is_none(), "{pod}");
    let sc = &pod["containers"][0]["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{sc}");
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{sc}");
    assert!(sc["capabilities"].get("add").is_none(), "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
}
