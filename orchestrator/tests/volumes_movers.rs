//! Volume mover Jobs that fail fast, clean up after themselves, and report through a
//! channel the exchange store cannot forge, run through the fake API server's Job
//! controller (each mover a local `relocate volume …` process, each claim a temporary
//! directory, the staging and exchange store a local directory).
//!
//! - A mover the scheduler cannot place, a Job whose pods the API server refuses (a
//!   ResourceQuota), and a volume that will not attach fail the step within the stuck
//!   grace (`RELOCATE_STUCK_POD_SECONDS`), naming the claim, the Job, the pod and
//!   Kubernetes' reason, not after `volumes.timeout`.
//! - A mover whose report was accepted is deleted with its pod; a failed one is kept
//!   for inspection, and the rerun of the failed stage starts new Jobs beside it.
//! - A report rewritten in the exchange store after its mover exited, or a mover that
//!   left no termination message, is refused naming the claim, the Job and the pod.

mod fake_kube;
mod util;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::kube::workers::WorkerResources;
use fake_kube::plan::CutoverPlan;
use fake_kube::{FakeCluster, kubeconfig};
use orchestrator::volumes::coordinator::{Movers, run_movers};
use orchestrator::volumes::mover::MoverError;
use orchestrator::volumes::order::{MoverTask, VolumeOrder};
use serde_json::{Value, json};
use util::{Workspace, stderr, stdout};

const STATEFULSETS: &str = "/apis/apps/v1/namespaces/analysis/statefulsets";

/// The analyzer's database: one replica, one template claim.
fn database() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "analysis", "labels": {"app": "analyzer"}},
           "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "db", "image": "registry.msk.example/pg:16.3"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1Gi"}}}}]}})
}

fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test servers (`source scripts/servers.sh && start_servers`) or run scripts/test.sh"
        )
    })
}

/// The staging store's plan entry: a fresh bucket on s3s-fs (a local directory is
/// refused for volumes: mover pods could not reach it).
fn staging(ws: &Workspace) -> String {
    let (endpoint, root) = (
        server("RELOCATE_TEST_S3S_ENDPOINT"),
        server("RELOCATE_TEST_S3S_ROOT"),
    );
    let bucket = format!(
        "movers-{}-{}",
        std::process::id(),
        ws.path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x")
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    std::fs::create_dir_all(std::path::Path::new(&root).join(&bucket)).expect("bucket");
    format!(
        r#"{{ region: zurich, url: "s3://{bucket}/", options: {{ endpoint: "{endpoint}", allow_http: "true", region: us-east-1, access_key_id: "${{env:STAGING_KEY_ID}}", secret_access_key: "${{env:STAGING_SECRET}}" }} }}"#
    )
}

/// The movers' credentials, by reference.
fn secret(cluster: &FakeCluster, namespace: &str) {
    cluster.insert(
        &format!("/api/v1/namespaces/{namespace}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "relocate-stores", "namespace": namespace},
               "stringData": {"STAGING_KEY_ID": server("RELOCATE_TEST_S3S_ACCESS_KEY"),
                              "STAGING_SECRET": server("RELOCATE_TEST_S3S_SECRET_KEY")}}),
    );
}

struct Seed {
    ws: Workspace,
    src: FakeCluster,
    dst: FakeCluster,
}

/// The seed alone.
const SEED: &str = "{ copy: analyzer }";

/// A plan whose stage runs `steps` on the database's claim, staging on s3s-fs, with
/// `volumes.timeout` at `timeout` (far longer than a fast failure takes).
fn seed(timeout: &str, steps: &str) -> Seed {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.api.create_namespace("analysis");
    dst.api.create_namespace("analysis-zrh");
    // The target's default class (claims that name none get it).
    dst.api.insert_cluster_scoped(
        "storageclasses",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
               "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
    );
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", kubeconfig(&src, &dst));
    let top = format!("stores:\n  staging: {}\n", staging(&ws));
    let workload = format!(
        "      volumes:\n        copy: true\n        staging: staging\n        image: registry.zrh.example.ch/relocate:test\n        credentials: {{ secretName: relocate-stores }}\n        timeout: {timeout}\n"
    );
    let plan = CutoverPlan {
        workload: &workload,
        top: &top,
        ..CutoverPlan::new("movers", steps)
    };
    ws.write("plan.yaml", plan.render());
    src.set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
    secret(&src, "analysis");
    src.insert(STATEFULSETS, database());
    let claim = ws.join("claims/msk");
    std::fs::create_dir_all(&claim).expect("claim");
    std::fs::write(claim.join("index.db"), b"the analyzer's index").expect("data");
    src.set_claim_dir("analysis", "data-db-0", &claim);
    dst.set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
    secret(&dst, "analysis-zrh");
    let target = ws.join("claims/zrh");
    std::fs::create_dir_all(&target).expect("target claim");
    dst.set_claim_dir("analysis-zrh", "data-db-0", &target);
    {
        let mut store = src.objects.lock().expect("lock");
        fake_kube::workloads::reconcile(&mut store);
    }
    Seed { ws, src, dst }
}

/// `relocate run`, with the stuck grace at one second.
fn run(s: &Seed) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .current_dir(s.ws.path())
        .env("RELOCATE_STUCK_POD_SECONDS", "1")
        .env("STAGING_KEY_ID", server("RELOCATE_TEST_S3S_ACCESS_KEY"))
        .env("STAGING_SECRET", server("RELOCATE_TEST_S3S_SECRET_KEY"))
        .output()
        .expect("run relocate");
    (out, started.elapsed())
}

fn both(out: &std::process::Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

/// The names of the mover Jobs posted to `cluster`, in order.
fn mover_jobs(cluster: &FakeCluster) -> Vec<String> {
    cluster
        .job_requests()
        .iter()
        .filter_map(|j| j["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

const UNSCHEDULABLE: &str = "0/3 nodes are available: 1 node(s) had volume node affinity conflict, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";

#[test]
fn a_mover_that_cannot_be_scheduled_fails_early_naming_the_claim_and_the_scheduler() {
    let s = seed("120s", SEED);
    s.src
        .set_claim_unschedulable("analysis", "data-db-0", UNSCHEDULABLE);
    let (out, took) = run(&s);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    let job = mover_jobs(&s.src)
        .pop()
        .unwrap_or_else(|| panic!("no mover Job:\n{text}"));
    assert!(
        took < Duration::from_secs(60),
        "waited {took:?}, as for the timeout:\n{text}"
    );
    for part in [
        "claim data-db-0: the pack Job analysis/",
        &job,
        "cannot be scheduled (Unschedulable: 0/3 nodes are available: 1 node(s) had volume node affinity conflict",
        "The Job was deleted, so it cannot start later beside a rerun's",
        &format!("kubectl -n analysis get events --field-selector involvedObject.name={job}-0-"),
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    // Gone with its pending pod: it would otherwise start once a node frees up.
    assert_eq!(
        s.src.deleted_jobs(),
        vec![("analysis".into(), job.clone(), Some("Background".into()))]
    );
    assert!(s.src.job_pods("analysis", &job).is_empty());
    assert!(
        !text.contains("is still Pending"),
        "the claim is Bound:\n{text}"
    );
}

#[test]
fn a_restore_onto_a_claim_that_never_binds_fails_early_saying_it_is_pending() {
    let s = seed(
        "120s",
        "{ freeze: analyzer }, { copy: analyzer }, { deploy: analyzer }",
    );
    s.dst.set_claim_unbindable("analysis-zrh", "data-db-0");
    let (out, took) = run(&s);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(took < Duration::from_secs(60), "waited {took:?}:\n{text}");
    for part in [
        "claim data-db-0: the restore Job analysis-zrh/",
        "cannot be scheduled (Unschedulable: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
        "claim analysis-zrh/data-db-0 is still Pending",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
}

#[test]
fn a_job_whose_pods_the_api_server_refuses_fails_early_naming_the_quota() {
    let s = seed("120s", SEED);
    s.src.refuse_pods(
        "analysis",
        "exceeded quota: compute, requested: limits.memory=1Gi, used: limits.memory=8Gi, limited: limits.memory=8Gi",
    );
    let (out, took) = run(&s);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(took < Duration::from_secs(60), "waited {took:?}:\n{text}");
    let job = mover_jobs(&s.src)
        .pop()
        .unwrap_or_else(|| panic!("no mover Job:\n{text}"));
    assert!(
        s.src.job_pods("analysis", &job).is_empty(),
        "the fake created a pod it refused"
    );
    for part in [
        "claim data-db-0: the pack Job analysis/",
        "its pod cannot be created (FailedCreate: Error creating: pods",
        "is forbidden: exceeded quota: compute",
        &format!("kubectl -n analysis get events --field-selector involvedObject.name={job}"),
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
}

#[test]
fn a_volume_that_will_not_attach_fails_after_its_own_longer_grace() {
    let s = seed("120s", SEED);
    let multi = "Multi-Attach error for volume \"pvc-7f1c9e3a\" Volume is already exclusively attached to one node and can't be attached to another";
    s.src
        .set_claim_mount_failing("analysis", "data-db-0", "FailedAttachVolume", multi);
    let (out, took) = run(&s);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(took < Duration::from_secs(60), "waited {took:?}:\n{text}");
    // Three times the stuck grace of 1 s: transient attach errors are waited out.
    let waited: u64 = text
        .split("still so after ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait said in:\n{text}"));
    assert!(waited >= 3, "failed after {waited}s:\n{text}");
    assert!(
        took >= Duration::from_secs(3),
        "failed after {took:?}:\n{text}"
    );
    let job = mover_jobs(&s.src)
        .pop()
        .unwrap_or_else(|| panic!("no mover Job:\n{text}"));
    for part in [
        "claim data-db-0: the pack Job analysis/",
        &format!("pod {job}-0-"),
        "cannot attach or mount its volume (FailedAttachVolume: Multi-Attach error for volume \"pvc-7f1c9e3a\"",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
}

#[test]
fn a_failed_mover_is_kept_and_the_rerun_starts_new_jobs_that_are_deleted_once_accepted() {
    let s = seed("120s", SEED);
    // A mover that fails for good (exit 3: the Job does not retry it).
    let failing = s.ws.script(
        "failing-mover.sh",
        "echo 'volume order refused' >&2\nexit 3",
    );
    s.src.set_job_entrypoint(failing);
    let (first, _) = run(&s);
    let text = both(&first);
    assert!(!first.status.success(), "{text}");
    let kept = mover_jobs(&s.src)
        .pop()
        .unwrap_or_else(|| panic!("no mover Job:\n{text}"));
    assert!(
        text.contains(&format!(
            "it is kept for inspection for 24h: kubectl -n analysis logs job/{kept}"
        )),
        "{text}"
    );

    // The operator fixes the image; the rerun is a new attempt of the stage.
    s.src
        .set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
    let (second, _) = run(&s);
    let text = both(&second);
    assert!(second.status.success(), "the rerun failed:\n{text}");
    let rerun = mover_jobs(&s.src).pop().expect("the rerun's Job");
    assert_ne!(rerun, kept, "the rerun re-used the failed attempt's Job");
    let failed = s
        .src
        .job("analysis", &kept)
        .expect("the failed mover's Job is kept");
    assert_eq!(failed["status"]["failed"], 1, "{failed}");
    assert!(
        !s.src.job_pods("analysis", &kept).is_empty(),
        "the failed mover's pod (and its log) was not kept"
    );
    assert!(
        s.src.job("analysis", &rerun).is_none(),
        "the accepted mover's Job was left behind"
    );
    assert!(
        s.src.job_pods("analysis", &rerun).is_empty(),
        "the accepted mover's pod was left behind"
    );
    assert_eq!(
        s.src.deleted_jobs(),
        vec![("analysis".into(), rerun, Some("Background".into()))],
        "only the accepted Job is deleted, with its pods"
    );
}

// ---- The report's seal, through the coordinator itself ----

/// A plan and order for one claim, staging and exchange in local directories.
fn coordinator_setup(ws: &Workspace, cluster: &FakeCluster) -> (Movers, VolumeOrder) {
    std::fs::create_dir_all(ws.join("state")).expect("state");
    let plan = format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: movers
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
stores:
  staging: {}
clusters:
  msk: {{ region: moscow, context: msk }}
  zrh: {{ region: zurich, context: zrh }}
workloads:
  analyzer:
    kubernetes: {{ from: msk, to: zrh, namespace: analysis, volumes: {{ copy: true, staging: staging }} }}
stages:
  - name: cutover
    steps: [ {{ freeze: analyzer }}, {{ copy: analyzer }}, {{ deploy: analyzer }} ]
"#,
        staging(ws)
    );
    let plan_path = ws.write("plan.yaml", &plan);
    let parsed = plans::parse(&plan, &plan_path).expect("plan is valid");
    let order: VolumeOrder = serde_json::from_value(json!({
        "version": 1, "planDigest": parsed.digest().to_string(), "planText": plan,
        "planPath": plan_path.to_string_lossy(), "workload": "analyzer",
        "claims": ["data-analyzer-0"],
    }))
    .expect("order");
    let dir = ws.join("claims/analysis/data-analyzer-0");
    std::fs::create_dir_all(&dir).expect("claim dir");
    std::fs::write(dir.join("index.db"), b"the analyzer's index").expect("data");
    cluster.api.create_namespace("analysis");
    secret(cluster, "analysis");
    cluster.set_claim_dir("analysis", "data-analyzer-0", &dir);
    let url = cluster.url.parse().expect("fake cluster URL");
    let state: Arc<dyn object_store::ObjectStore> = Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(ws.join("state")).expect("state"),
    );
    let movers = Movers {
        client: kube::Client::try_from(kube::Config::new(url)).expect("client"),
        namespace: "analysis".into(),
        image: "registry.zrh.example.ch/relocate:0.2.0".into(),
        secret_name: Some("relocate-stores".into()),
        resources: WorkerResources::default(),
        state,
        state_entry:
            json!({"region": "zurich", "url": format!("file://{}/", ws.join("state").display())})
                .to_string(),
        order_path: "v/order.json".into(),
        labels: BTreeMap::from([("relocate.io/stage".into(), "cutover".into())]),
        attempt: 1,
        stage: "cutover".into(),
        step: "1-pack".into(),
        timeout: Duration::from_secs(60),
        run_as: None,
        progress: None,
        cancel: None,
    };
    (movers, order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_report_is_accepted_and_its_job_deleted_with_its_pod() {
    let ws = Workspace::new();
    let cluster = FakeCluster::start();
    cluster.set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
    let (movers, order) = coordinator_setup(&ws, &cluster);
    let reports = run_movers(&movers, &order, MoverTask::Pack, &BTreeMap::new())
        .await
        .expect("an honest pack is accepted");
    assert_eq!(reports[0].claim, "data-analyzer-0");
    let job = cluster.job_requests()[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let container = &cluster.job_requests()[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(container["terminationMessagePolicy"], "File");
    assert!(cluster.job("analysis", &job).is_none(), "Job left behind");
    assert!(
        cluster.job_pods("analysis", &job).is_empty(),
        "pod left behind"
    );
    assert_eq!(
        cluster.deleted_jobs(),
        vec![("analysis".into(), job, Some("Background".into()))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_rewritten_after_its_mover_exited_is_refused_naming_the_claim() {
    let ws = Workspace::new();
    let cluster = FakeCluster::start();
    cluster.set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
    let (movers, order) = coordinator_setup(&ws, &cluster);
    // Whoever holds the exchange store's credentials rewrites the report between the
    // mover's exit and the coordinator's read: same claim, same task, another root.
    let report = ws.join("state/v/pack-0.json");
    let forged = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = forged.clone();
    cluster.on_pod_exit(move |exit| {
        let Ok(bytes) = std::fs::read(&report) else {
            return;
        };
        let mut value: Value = serde_json::from_slice(&bytes).expect("report json");
        value["root"] = json!("0".repeat(64));
        std::fs::write(&report, serde_json::to_vec_pretty(&value).expect("json")).expect("forge");
        assert_eq!(exit.exit_code, 0);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let err = run_movers(&movers, &order, MoverTask::Pack, &BTreeMap::new())
        .await
        .expect_err("a rewritten report is refused");
    assert!(forged.load(std::sync::atomic::Ordering::SeqCst));
    assert!(matches!(err, MoverError::ReportRefused { .. }), "{err:?}");
    let job = cluster.job_requests()[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let text = err.to_string();
    for part in [
        "claim data-analyzer-0: the pack report is refused",
        "it was rewritten after the mover exited",
        &format!("Job analysis/{job}, pod {job}-0-"),
    ] {
        assert!(text.contains(part), "missing {part:?} in: {text}");
    }
    assert!(
        cluster.job("analysis", &job).is_some(),
        "the refused mover's Job was deleted"
    );
    assert!(cluster.deleted_jobs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mover_that_left_no_termination_message_is_refused_saying_how_to_tell_why() {
    let ws = Workspace::new();
    let cluster = FakeCluster::start();
    // An image from before sealed reports: the same mover, blind to the env.
    let old = ws.script(
        "old-image.sh",
        &format!(
            "unset RELOCATE_TERMINATION_LOG\nexec {} \"$@\"",
            assert_cmd::cargo::cargo_bin("relocate").display()
        ),
    );
    cluster.set_job_entrypoint(old);
    let (movers, order) = coordinator_setup(&ws, &cluster);
    let err = run_movers(&movers, &order, MoverTask::Pack, &BTreeMap::new())
        .await
        .expect_err("an unsealed report is refused");
    let text = err.to_string();
    for part in [
        "claim data-analyzer-0: the pack report is refused",
        "the pod succeeded without a termination message",
        "termination message written",
        "its image predates sealed reports",
        "treat the report as forged",
    ] {
        assert!(text.contains(part), "missing {part:?} in: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_termination_message_is_truncated_as_the_kubelet_does() {
    // The fake kubelet keeps the last 4096 bytes, like the real one: a mover's seal
    // is far under it, so nothing of it is lost.
    let ws = Workspace::new();
    let cluster = FakeCluster::start();
    let big = ws.script(
        "big.sh",
        "printf '%5000s' x | tr ' ' a > \"$RELOCATE_TERMINATION_LOG\"",
    );
    cluster.set_job_entrypoint(big);
    let (movers, order) = coordinator_setup(&ws, &cluster);
    let err = run_movers(&movers, &order, MoverTask::Pack, &BTreeMap::new())
        .await
        .expect_err("no report");
    assert!(
        err.to_string().contains("completed without a report"),
        "{err}"
    );
    let job = cluster.job_requests()[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let pods = cluster.job_pods("analysis", &job);
    let message = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert_eq!(message.len(), 4096);
    assert!(message.ends_with('x'), "the kubelet keeps the tail");
}

#[test]
fn a_mover_still_running_at_the_timeout_is_left_running_and_the_error_says_so() {
    let s = seed("3s", SEED);
    let slow = s.ws.script("slow-mover.sh", "sleep 30");
    s.src.set_job_entrypoint(slow);
    let (out, _) = run(&s);
    let text = both(&out);
    let job = mover_jobs(&s.src)
        .pop()
        .unwrap_or_else(|| panic!("no mover Job:\n{text}"));
    assert!(!out.status.success(), "{text}");
    for part in [
        &format!(
            "claim data-db-0: the pack Job analysis/{job} is not done after 3s; it is left running"
        ),
        &format!("kubectl -n analysis delete job {job} --cascade=background"),
    ] {
        assert!(text.contains(part.as_str()), "missing {part:?} in:\n{text}");
    }
    assert!(
        s.src.job("analysis", &job).is_some(),
        "a slow mover's Job was deleted"
    );
    assert!(s.src.deleted_jobs().is_empty());
    s.src.kill_all_job_pods();
}
