//! A sharded workload whose workers run as a Kubernetes Indexed Job, end to end with
//! the real binary: the fake API server's Job controller runs each index's pod as a
//! local `relocate worker` with `JOB_COMPLETION_INDEX` set and only the environment
//! its Secret gives it. The state store where coordinator and workers meet is the
//! s3s-fs server the test script starts (pods cannot reach a local directory), with
//! credentials that reach the pods only through the Secret.

mod fake_kube;
mod util;

use fake_kube::FakeCluster;
use serde_json::json;
use util::{Workspace, header, stderr, tree};

fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test servers (`source scripts/servers.sh && start_servers`) or run scripts/test.sh"
        )
    })
}

#[test]
fn a_sharded_copy_runs_as_an_indexed_job_with_credentials_only_by_reference() {
    let (endpoint, root) = (
        server("RELOCATE_TEST_S3S_ENDPOINT"),
        server("RELOCATE_TEST_S3S_ROOT"),
    );
    let (access, secret) = (
        server("RELOCATE_TEST_S3S_ACCESS_KEY"),
        server("RELOCATE_TEST_S3S_SECRET_KEY"),
    );
    let bucket = format!("state-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0));
    std::fs::create_dir_all(std::path::Path::new(&root).join(&bucket)).expect("bucket");

    let cluster = FakeCluster::start();
    cluster.api.create_namespace("relocate");
    cluster.set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
    cluster.insert(
        "/api/v1/namespaces/relocate/secrets",
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "relocate-stores", "namespace": "relocate" },
            "stringData": { "STATE_KEY_ID": access, "STATE_SECRET": secret },
        }),
    );
    let ws = Workspace::new();
    ws.fill("src", 60, 2000);
    ws.write("src/é/ü", b"unicode");
    ws.write("kubeconfig.yaml", fake_kube::kubeconfig_for(&cluster.url, &cluster.url));
    let plan = header("kubeworkers").replace(
        "    objects: { from: src, to: dst }\n",
        "    objects:\n      from: src\n      to: dst\n      shards: 4\n      workers:\n        kubernetes:\n          cluster: zrh\n          namespace: relocate\n          image: registry.zrh.example.ch/relocate:0.2.0\n          parallelism: 2\n          credentials: { secretName: relocate-stores }\n          resources: { cpu: \"1\", memory: 512Mi }\n",
    ).replace(
        "stores:\n",
        &format!(
            "stores:\n  state:\n    region: zurich\n    url: \"s3://{bucket}/exchange/\"\n    options: {{ endpoint: \"{endpoint}\", allow_http: \"true\", region: us-east-1, access_key_id: \"${{env:STATE_KEY_ID}}\", secret_access_key: \"${{env:STATE_SECRET}}\" }}\n"
        ),
    );
    let plan = format!(
        "{plan}clusters:\n  zrh: {{ region: zurich, context: dst, kubeconfig: kubeconfig.yaml }}\nstate: {{ store: state }}\nstages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n"
    );
    ws.write("plan.yaml", &plan);
    // The coordinator itself needs the state store's credentials too (it writes the
    // order); the pods get them from the Secret only.
    let out = assert_cmd::Command::cargo_bin("relocate")
        .expect("binary")
        .current_dir(ws.path())
        .args(["run", "plan.yaml", "--state-dir", "state", "--output", "json"])
        .env("STATE_KEY_ID", &access)
        .env("STATE_SECRET", &secret)
        .output()
        .expect("run");
    cluster.kill_all_job_pods();
    assert!(out.status.success(), "{}\n{}", util::stdout(&out), stderr(&out));
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));

    // Two Jobs (copy, verify), each an Indexed Job with the fields the issue names.
    let jobs = cluster.job_requests();
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    let spec = &jobs[0]["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 4);
    assert_eq!(spec["parallelism"], 2);
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some());
    assert!(spec["ttlSecondsAfterFinished"].as_u64().is_some());
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.zrh.example.ch/relocate:0.2.0");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], "relocate-stores");
    let rules = spec["podFailurePolicy"]["rules"].as_array().expect("rules");
    assert!(rules.iter().any(|r| r["action"] == "FailIndex"));
    assert!(rules.iter().any(|r| r["action"] == "Ignore"
        && r["onPodConditions"][0]["type"] == "DisruptionTarget"));
    let body = jobs[0].to_string();
    assert!(!body.contains(&secret) && !body.contains(&access), "a credential is literal in the Job");

    // The manifest equals an in-process run's on the same data.
    let in_process = Workspace::new();
    in_process.fill("src", 60, 2000);
    in_process.write("src/é/ü", b"unicode");
    in_process.write(
        "plan.yaml",
        format!("{}stages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n", header("kubeworkers")),
    );
    let out2 = in_process.run_plan("json");
    assert!(out2.status.success(), "{}", stderr(&out2));
    assert_eq!(
        std::fs::read(ws.join("state/manifests/data.sha256sums")).expect("sharded manifest"),
        std::fs::read(in_process.join("state/manifests/data.sha256sums")).expect("manifest"),
    );
}
