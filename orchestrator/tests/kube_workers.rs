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

/// A fake cluster with namespace `relocate` and Secret `relocate-stores` holding the
/// s3s-fs credentials, and a workspace whose plan runs `data` in `shards` shards as an
/// Indexed Job with `extra` workload keys; returns them and the credentials.
struct Setup {
    cluster: FakeCluster,
    ws: Workspace,
    access: String,
    secret: String,
    bucket: String,
}

impl Setup {
    fn new(name: &str, shards: u32, extra: &str) -> Self {
        let (endpoint, root) = (
            server("RELOCATE_TEST_S3S_ENDPOINT"),
            server("RELOCATE_TEST_S3S_ROOT"),
        );
        let (access, secret) = (
            server("RELOCATE_TEST_S3S_ACCESS_KEY"),
            server("RELOCATE_TEST_S3S_SECRET_KEY"),
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let bucket = format!("state-{}-{nanos}", std::process::id());
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
        ws.write(
            "kubeconfig.yaml",
            fake_kube::kubeconfig_for(&cluster.url, &cluster.url),
        );
        let plan = header(name).replace(
            "    objects: { from: src, to: dst }\n",
            &format!("    objects:\n      from: src\n      to: dst\n      shards: {shards}\n{extra}      workers:\n        kubernetes:\n          cluster: zrh\n          namespace: relocate\n          image: registry.zrh.example.ch/relocate:0.2.0\n          parallelism: 2\n          credentials: {{ secretName: relocate-stores }}\n          resources: {{ cpu: \"1\", memory: 512Mi }}\n"),
        ).replace(
            "stores:\n",
            &format!(
                "stores:\n  state:\n    region: zurich\n    url: \"s3://{bucket}/exchange/\"\n    options: {{ endpoint: \"{endpoint}\", allow_http: \"true\", region: us-east-1, access_key_id: \"${{env:STATE_KEY_ID}}\", secret_access_key: \"${{env:STATE_SECRET}}\" }}\n"
            ),
        );
        ws.write(
            "plan.yaml",
            format!(
                "{plan}clusters:\n  zrh: {{ region: zurich, context: dst, kubeconfig: kubeconfig.yaml }}\nstate: {{ store: state }}\nstages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n"
            ),
        );
        Self {
            cluster,
            ws,
            access,
            secret,
            bucket,
        }
    }

    /// `relocate run` with the state store's credentials (the coordinator writes the
    /// order; the pods get them from the Secret only).
    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"));
        cmd.current_dir(self.ws.path())
            .args([
                "run",
                "plan.yaml",
                "--state-dir",
                "state",
                "--output",
                "json",
            ])
            .env("STATE_KEY_ID", &self.access)
            .env("STATE_SECRET", &self.secret)
            .env("RELOCATE_CHECKPOINT_SECONDS", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }
}

impl Setup {
    /// The s3s-fs bucket folder holding the state store.
    fn state_root(&self) -> std::path::PathBuf {
        std::path::Path::new(&server("RELOCATE_TEST_S3S_ROOT")).join(&self.bucket)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cluster.kill_all_job_pods();
    }
}

#[test]
fn a_sharded_copy_runs_as_an_indexed_job_with_credentials_only_by_reference() {
    let setup = Setup::new("kubeworkers", 4, "");
    let (cluster, ws) = (&setup.cluster, &setup.ws);
    let (access, secret) = (&setup.access, &setup.secret);
    ws.fill("src", 60, 2000);
    ws.write("src/é/ü", b"unicode");
    let out = setup.command().output().expect("run");
    assert!(
        out.status.success(),
        "{}\n{}",
        util::stdout(&out),
        stderr(&out)
    );
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
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "relocate-stores"
    );
    let rules = spec["podFailurePolicy"]["rules"].as_array().expect("rules");
    assert!(rules.iter().any(|r| r["action"] == "FailIndex"));
    assert!(
        rules
            .iter()
            .any(|r| r["action"] == "Ignore"
                && r["onPodConditions"][0]["type"] == "DisruptionTarget")
    );
    let body = jobs[0].to_string();
    assert!(
        !body.contains(secret.as_str()) && !body.contains(access.as_str()),
        "a credential is literal in the Job"
    );

    // The manifest equals an in-process run's on the same data.
    let in_process = Workspace::new();
    in_process.fill("src", 60, 2000);
    in_process.write("src/é/ü", b"unicode");
    in_process.write(
        "plan.yaml",
        format!(
            "{}stages:\n  - name: seed\n    steps: [ {{ copy: data }}, {{ verify: data }} ]\n",
            header("kubeworkers")
        ),
    );
    let out2 = in_process.run_plan("json");
    assert!(out2.status.success(), "{}", stderr(&out2));
    assert_eq!(
        std::fs::read(ws.join("state/manifests/data.sha256sums")).expect("sharded manifest"),
        std::fs::read(in_process.join("state/manifests/data.sha256sums")).expect("manifest"),
    );
}

#[test]
fn a_lost_pod_resumes_and_a_killed_coordinator_reattaches_to_its_job() {
    // 2 shards of 24 objects of 64 KiB at 256 KiB/s per worker: about 6 s each.
    let setup = Setup::new(
        "kubefaults",
        2,
        "      bandwidth: 512KiB/s\n      concurrency: 2\n",
    );
    let (cluster, ws) = (&setup.cluster, &setup.ws);
    ws.fill("src", 48, 64 << 10);
    let mut run = setup.command().spawn().expect("run");
    let started = std::time::Instant::now();
    while cluster.job_requests().is_empty() || util::tree(&ws.join("dst")).len() < 12 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the Job never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let job = cluster.job_requests()[0]["metadata"]["name"]
        .as_str()
        .expect("job name")
        .to_owned();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // A node drain takes index 0's pod; then the coordinator dies with kill -9.
    assert!(cluster.kill_job_index("relocate", &job, 0, fake_kube::jobs::KillAs::Disruption));
    let _ = run.kill();
    let _ = run.wait();
    let out = setup.command().output().expect("rerun");
    assert!(
        out.status.success(),
        "{}\n{}",
        util::stdout(&out),
        stderr(&out)
    );
    assert_eq!(tree(&ws.join("src")), tree(&ws.join("dst")));
    let copy_jobs: std::collections::BTreeSet<String> = cluster
        .job_requests()
        .iter()
        .filter_map(|j| j["metadata"]["name"].as_str().map(str::to_owned))
        .filter(|n| n.contains("copy"))
        .collect();
    assert_eq!(
        copy_jobs.len(),
        1,
        "one copy Job, re-attached: {copy_jobs:?}"
    );
    let status = &cluster.job("relocate", &job).expect("the Job")["status"];
    assert_eq!(status["completedIndexes"], "0-1", "{status}");
    assert_eq!(
        status["failed"].as_u64().unwrap_or(0),
        0,
        "a disruption is not a failure: {status}"
    );
    // Index 0's second pod resumed from the first one's checkpoints.
    let result0 = find_file(&setup.state_root(), "step-1-copy", "shard-0/result.json");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&result0).expect("result")).expect("json");
    assert!(
        report["copy"]["skipped"].as_u64().unwrap_or(0) > 0,
        "the restarted pod copied its whole range again: {report}"
    );
}

/// The one file under `root` whose path has `part` and ends with `suffix`.
fn find_file(root: &std::path::Path, part: &str, suffix: &str) -> std::path::PathBuf {
    let mut stack = vec![root.to_path_buf()];
    let mut found = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(part) && p.to_string_lossy().ends_with(suffix) {
                found.push(p);
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "{suffix} under {}: {found:?}",
        root.display()
    );
    found.remove(0)
}

#[test]
fn pods_that_cannot_start_fail_the_step_naming_the_pod_and_why() {
    let setup = Setup::new("kubestuck", 2, "");
    setup.ws.fill("src", 4, 100);
    // No image to run: the fake kubelet leaves the pods Pending in ErrImagePull.
    setup.cluster.clear_job_entrypoint();
    let out = setup
        .command()
        .env("RELOCATE_STUCK_POD_SECONDS", "2")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot start") && err.contains("ErrImagePull"),
        "{err}"
    );
    assert!(err.contains("describe pod"), "{err}");
}

#[test]
fn a_job_someone_else_created_under_the_steps_name_is_refused() {
    let setup = Setup::new("kubetaken", 2, "");
    setup.ws.fill("src", 4, 100);
    // A run creates the Job, whose pods cannot start, and is killed; meanwhile someone
    // replaces the Job with their own spec under the same name and labels.
    setup.cluster.clear_job_entrypoint();
    let mut run = setup.command().spawn().expect("run");
    let started = std::time::Instant::now();
    while setup.cluster.job_requests().is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no Job"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = run.kill();
    let _ = run.wait();
    let name = setup.cluster.job_requests()[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let mut theirs = setup.cluster.job("relocate", &name).expect("the Job");
    theirs["metadata"]["annotations"]["relocate.io/spec-digest"] = "sha256:0000".into();
    setup.cluster.replace_job("relocate", &name, theirs);
    let out = setup.command().output().expect("rerun");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("relocate.io/spec-digest"),
        "{}",
        stderr(&out)
    );
}

/// The same against a real cluster and a real S3 endpoint both can reach:
/// ```sh
/// KUBECONFIG=~/.kube/config RELOCATE_CLUSTER_IMAGE=registry.example.ch/relocate:dev \
/// RELOCATE_CLUSTER_S3_ENDPOINT=https://s3.example.ch RELOCATE_CLUSTER_S3_BUCKET=relocate-test \
/// RELOCATE_CLUSTER_S3_KEY=… RELOCATE_CLUSTER_S3_SECRET=… RELOCATE_CLUSTER_NAMESPACE=relocate \
/// cargo test -p orchestrator --test kube_workers -- --ignored
/// ```
/// The namespace must hold a Secret `relocate-stores` with keys `S3_KEY` and `S3_SECRET`.
#[test]
#[ignore = "needs a real cluster (KUBECONFIG) and an S3 endpoint it can reach"]
fn a_sharded_copy_on_a_real_cluster() {
    let var = |v: &str| std::env::var(v).unwrap_or_else(|_| panic!("set {v}"));
    let (endpoint, bucket) = (
        var("RELOCATE_CLUSTER_S3_ENDPOINT"),
        var("RELOCATE_CLUSTER_S3_BUCKET"),
    );
    let kubeconfig = var("KUBECONFIG");
    let run = format!("run-{}", std::process::id());
    let store = |prefix: &str, region: &str| {
        format!(
            "{{ region: {region}, url: \"s3://{bucket}/{run}/{prefix}/\", options: {{ endpoint: \"{endpoint}\", access_key_id: \"${{env:S3_KEY}}\", secret_access_key: \"${{env:S3_SECRET}}\" }} }}"
        )
    };
    let plan = format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: clusterworkers
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
stores:
  src: {}
  dst: {}
  state: {}
clusters:
  zrh: {{ region: zurich, kubeconfig: "{kubeconfig}" }}
state: {{ store: state }}
workloads:
  data:
    objects:
      from: src
      to: dst
      shards: 4
      workers:
        kubernetes:
          cluster: zrh
          namespace: {}
          image: {}
          parallelism: 2
          credentials: {{ secretName: relocate-stores }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
"#,
        store("src", "moscow"),
        store("dst", "zurich"),
        store("state", "zurich"),
        var("RELOCATE_CLUSTER_NAMESPACE"),
        var("RELOCATE_CLUSTER_IMAGE"),
    );
    let ws = Workspace::new();
    ws.write("plan.yaml", plan);
    ws.fill("data", 40, 10_000);
    // Seed the source through relocate itself: a local → S3 copy would need a second
    // plan; the operator's usual tool is fine here.
    let seeded = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "command -v aws >/dev/null && AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET aws --endpoint-url {endpoint} s3 cp --recursive data s3://{bucket}/{run}/src/"
        ))
        .current_dir(ws.path())
        .env("S3_KEY", var("RELOCATE_CLUSTER_S3_KEY"))
        .env("S3_SECRET", var("RELOCATE_CLUSTER_S3_SECRET"))
        .status()
        .expect("aws cli");
    assert!(seeded.success(), "seeding the source needs the aws CLI");
    let out = assert_cmd::Command::cargo_bin("relocate")
        .expect("binary")
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "json",
        ])
        .env("S3_KEY", var("RELOCATE_CLUSTER_S3_KEY"))
        .env("S3_SECRET", var("RELOCATE_CLUSTER_S3_SECRET"))
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(util::count(&util::summary(&out), "verify", "verified"), 40);
}

#[test]
fn pods_the_api_server_refuses_fail_the_step_naming_the_quota() {
    let setup = Setup::new("kubequota", 2, "");
    setup.ws.fill("src", 4, 100);
    setup.cluster.refuse_pods(
        "relocate",
        "exceeded quota: compute, requested: limits.memory=1Gi, used: limits.memory=8Gi, limited: limits.memory=8Gi",
    );
    let started = std::time::Instant::now();
    let out = setup
        .command()
        .env("RELOCATE_STUCK_POD_SECONDS", "2")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot be created")
            && err.contains("FailedCreate")
            && err.contains("exceeded quota"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "waited {:?}",
        started.elapsed()
    );
}
