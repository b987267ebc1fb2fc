//! The fake API server's Job controller (`fake_kube::jobs`) driven through the connector's
//! worker-Job functions: indexes as local `/bin/sh` processes, `completedIndexes` /
//! `failedIndexes`, `parallelism`, per-index retries, `FailIndex` on a permanent exit code,
//! disruptions ignored, credentials reaching the process only by Secret reference, logs
//! followed while the process runs, and a second `ensure_job` re-attaching.

mod fake_kube;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use connectors::kube::KubeError;
use connectors::kube::workers::{
    JobFinished, JobProgress, WorkerJob, WorkerResources, build_job, check_worker_prerequisites,
    ensure_job, follow_pod_logs, job_pods, job_progress, stuck_worker_pods,
};
use fake_kube::FakeCluster;
use fake_kube::jobs::KillAs;
use futures::StreamExt;
use serde_json::json;

const NS: &str = "relocate";

fn cluster() -> FakeCluster {
    let cluster = FakeCluster::start();
    cluster.api.create_namespace(NS);
    cluster.set_job_entrypoint("/bin/sh");
    cluster
}

fn client(cluster: &FakeCluster) -> kube::Client {
    let url = cluster.url.parse().expect("fake cluster URL");
    kube::Client::try_from(kube::Config::new(url)).expect("client")
}

/// A worker Job whose pods run `sh -c script` (`$0` is the test's scratch directory).
fn worker(name: &str, completions: u32, parallelism: u32, dir: &Path, script: &str) -> WorkerJob {
    WorkerJob {
        name: name.into(),
        namespace: NS.into(),
        image: "registry.zrh.example.ch/relocate:0.2.0".into(),
        completions,
        parallelism,
        service_account: None,
        secret_name: None,
        resources: WorkerResources::default(),
        args: vec!["-c".into(), script.into(), dir.display().to_string()],
        env: vec![],
        labels: BTreeMap::from([("relocate.dev/plan".into(), "9f86d081884c".into())]),
        backoff_limit_per_index: 1,
        ttl_seconds_after_finished: 3600,
    }
}

async fn wait_finished(client: &kube::Client, name: &str) -> JobProgress {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let progress = job_progress(client.clone(), NS, name)
            .await
            .expect("progress");
        if progress.finished.is_some() {
            return progress;
        }
        assert!(
            Instant::now() < deadline,
            "job {name} not finished: {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn pods_per_index(client: &kube::Client, job: &str) -> BTreeMap<u32, Vec<String>> {
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (index, _, phase) in job_pods(client.clone(), NS, job).await.expect("pods") {
        out.entry(index).or_default().push(phase);
    }
    out
}

fn set(items: &[u32]) -> BTreeSet<u32> {
    items.iter().copied().collect()
}

#[tokio::test]
async fn every_index_runs_and_failed_ones_are_listed_with_fail_index_on_exit_4() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    // Index 2 exits 4 (permanent: FailIndex at once), index 3 exits 1 every time (retried
    // once, then failed), the others succeed.
    let script = r#"echo "{\"index\":$JOB_COMPLETION_INDEX}"
case $JOB_COMPLETION_INDEX in 2) exit 4;; 3) exit 1;; esac"#;
    let job = worker("mixed", 5, 2, dir.path(), script);
    ensure_job(client.clone(), &job).await.expect("created");
    let progress = wait_finished(&client, "mixed").await;
    assert_eq!(progress.completed, set(&[0, 1, 4]));
    assert_eq!(progress.failed, set(&[2, 3]));
    assert_eq!(progress.active, 0);
    assert_eq!(
        progress.finished,
        Some(JobFinished::Failed {
            reason: "FailedIndexes".into(),
            message: "Job has failed indexes".into()
        })
    );
    let pods = pods_per_index(&client, "mixed").await;
    assert_eq!(pods[&2], ["Failed"], "exit 4 is not retried");
    assert_eq!(
        pods[&3],
        ["Failed", "Failed"],
        "exit 1 is retried backoffLimitPerIndex times"
    );
    assert_eq!(pods[&0], ["Succeeded"]);
    let status = cluster.job(NS, "mixed").expect("job")["status"].clone();
    assert_eq!(status["completedIndexes"], "0-1,4");
    assert_eq!(status["failedIndexes"], "2-3");
    assert_eq!(status["succeeded"], 3);
    assert_eq!(status["failed"], 3);
    // The body the controller received is the connector's Job, field for field.
    assert_eq!(
        cluster.job_requests(),
        [serde_json::to_value(build_job(&job)).expect("json")]
    );
}

#[tokio::test]
async fn parallelism_bounds_how_many_indexes_run_at_once() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let script = r#"date +%s%N > "$0/$JOB_COMPLETION_INDEX.start"; sleep 0.3; date +%s%N > "$0/$JOB_COMPLETION_INDEX.end""#;
    ensure_job(client.clone(), &worker("wide", 6, 2, dir.path(), script))
        .await
        .expect("created");
    let progress = wait_finished(&client, "wide").await;
    assert_eq!(progress.completed, set(&[0, 1, 2, 3, 4, 5]));
    let read = |name: String| -> u128 {
        std::fs::read_to_string(dir.path().join(name))
            .expect("timestamp")
            .trim()
            .parse()
            .expect("nanos")
    };
    let spans: Vec<(u128, u128)> = (0..6)
        .map(|i| (read(format!("{i}.start")), read(format!("{i}.end"))))
        .collect();
    let most = spans
        .iter()
        .map(|&(start, _)| {
            spans
                .iter()
                .filter(|&&(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .expect("spans");
    assert_eq!(
        most, 2,
        "at most parallelism=2 at once, and 2 did run together: {spans:?}"
    );
}

#[tokio::test]
async fn a_failed_attempt_is_retried_and_the_retry_completes_the_index() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let script = r#"m="$0/$JOB_COMPLETION_INDEX.tried"; [ -e "$m" ] && exit 0; touch "$m"; exit 1"#;
    ensure_job(client.clone(), &worker("flaky", 2, 2, dir.path(), script))
        .await
        .expect("created");
    let progress = wait_finished(&client, "flaky").await;
    assert_eq!(progress.completed, set(&[0, 1]));
    assert_eq!(progress.finished, Some(JobFinished::Complete));
    assert_eq!(
        pods_per_index(&client, "flaky").await[&1],
        ["Failed", "Succeeded"]
    );
    assert_eq!(
        cluster.job(NS, "flaky").expect("job")["status"]["failed"],
        2
    );
}

#[tokio::test]
async fn credentials_reach_the_process_only_by_secret_reference() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let secret_value = "wJalrXUtnFEMI-not-in-the-job";
    cluster.insert(
        "/api/v1/namespaces/relocate/secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "relocate-stores", "namespace": NS},
               "data": {"AWS_SECRET_ACCESS_KEY": base64_of(secret_value)},
               "stringData": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}}),
    );
    let script = r#"printf '%s %s' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$0/seen""#;
    let job = WorkerJob {
        secret_name: Some("relocate-stores".into()),
        ..worker("creds", 1, 1, dir.path(), script)
    };
    check_worker_prerequisites(client.clone(), NS, Some("relocate-stores"), None)
        .await
        .expect("secret there");
    ensure_job(client.clone(), &job).await.expect("created");
    assert_eq!(
        wait_finished(&client, "creds").await.finished,
        Some(JobFinished::Complete)
    );
    let seen = std::fs::read_to_string(dir.path().join("seen")).expect("the process ran");
    assert_eq!(seen, format!("AKIAEXAMPLE {secret_value}"));
    let sent = serde_json::to_string(&cluster.job_requests()).expect("json");
    assert!(
        !sent.contains(secret_value) && !sent.contains("AKIAEXAMPLE"),
        "{sent}"
    );
    assert!(
        sent.contains(r#""secretRef":{"name":"relocate-stores""#),
        "{sent}"
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_missing_secret_is_named_by_the_pre_flight_and_holds_the_pod_before_it_runs() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let err = check_worker_prerequisites(client.clone(), NS, Some("relocate-stores"), None)
        .await
        .expect_err("no secret");
    assert!(
        err.to_string()
            .starts_with("secret relocate-stores not found in namespace relocate: create it"),
        "{err}"
    );
    // Without the pre-flight, the kubelet holds the pod: nothing runs, the Job stays active.
    let job = WorkerJob {
        secret_name: Some("relocate-stores".into()),
        ..worker("nosecret", 1, 1, dir.path(), "touch \"$0/ran\"")
    };
    ensure_job(client.clone(), &job).await.expect("created");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let progress = job_progress(client.clone(), NS, "nosecret")
        .await
        .expect("progress");
    assert_eq!((progress.active, progress.finished), (1, None));
    let pods = job_pods(client.clone(), NS, "nosecret")
        .await
        .expect("pods");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].2, "Pending");
    let stuck = stuck_worker_pods(client.clone(), NS, "nosecret")
        .await
        .expect("stuck");
    assert_eq!(stuck.len(), 1);
    assert_eq!(
        (
            stuck[0].index,
            stuck[0].reason.as_str(),
            stuck[0].message.as_str()
        ),
        (
            0,
            "CreateContainerConfigError",
            "secret \"relocate-stores\" not found"
        )
    );
    assert!(!dir.path().join("ran").exists());
}

#[tokio::test]
async fn a_missing_namespace_is_named_before_and_at_creation() {
    let cluster = FakeCluster::start();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let err = check_worker_prerequisites(client.clone(), NS, None, None)
        .await
        .expect_err("no ns");
    assert!(
        err.to_string().starts_with("namespace relocate not found"),
        "{err}"
    );
    let err = ensure_job(client, &worker("nowhere", 1, 1, dir.path(), "true"))
        .await
        .expect_err("no ns");
    assert!(
        matches!(err, KubeError::MissingPrerequisite { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn logs_are_followed_while_the_process_runs_until_it_exits() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let script = r#"echo '{"event":"started"}'; while [ ! -e "$0/go" ]; do sleep 0.02; done; echo '{"event":"copied","objects":3}'; echo '{"event":"done"}'"#;
    ensure_job(client.clone(), &worker("chatty", 1, 1, dir.path(), script))
        .await
        .expect("created");
    let pod = loop {
        let pods = job_pods(client.clone(), NS, "chatty").await.expect("pods");
        if let Some((_, name, phase)) = pods.first()
            && phase == "Running"
        {
            break name.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut lines = Box::pin(follow_pod_logs(client.clone(), NS, &pod));
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next())
        .await
        .expect("first line in time");
    assert_eq!(
        first.expect("a line").expect("ok"),
        r#"{"event":"started"}"#
    );
    // The process is still waiting: the rest only comes once it goes on.
    std::fs::write(dir.path().join("go"), "").expect("go");
    let rest: Vec<String> = tokio::time::timeout(
        Duration::from_secs(10),
        lines.map(|l| l.expect("line")).collect(),
    )
    .await
    .expect("stream ends when the process exits");
    assert_eq!(
        rest,
        [r#"{"event":"copied","objects":3}"#, r#"{"event":"done"}"#]
    );
}

#[tokio::test]
async fn a_second_ensure_job_re_attaches_and_no_index_runs_twice() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let script = r#"echo run >> "$0/$JOB_COMPLETION_INDEX.runs"; sleep 0.2"#;
    let job = worker("once", 3, 3, dir.path(), script);
    let first = ensure_job(client.clone(), &job).await.expect("created");
    // A coordinator restarted mid-run asks again.
    let again = ensure_job(client.clone(), &job).await.expect("re-attached");
    assert_eq!(first.metadata.uid, again.metadata.uid);
    assert_eq!(
        wait_finished(&client, "once").await.finished,
        Some(JobFinished::Complete)
    );
    for i in 0..3 {
        let runs = std::fs::read_to_string(dir.path().join(format!("{i}.runs"))).expect("ran");
        assert_eq!(runs, "run\n", "index {i} ran once");
    }
    // Another run's Job of the same name is refused, naming it.
    let mut other = job.clone();
    other
        .labels
        .insert("relocate.dev/plan".into(), "0000deadbeef".into());
    let err = ensure_job(client, &other)
        .await
        .expect_err("another run's Job");
    assert!(matches!(err, KubeError::JobTaken { .. }), "{err:?}");
    assert!(err.to_string().contains("Job relocate/once"), "{err}");
}

#[tokio::test]
async fn a_killed_index_is_retried_free_as_a_disruption_and_counted_as_a_failure() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    // The first attempt of each index hangs until killed; later ones succeed.
    let script =
        r#"m="$0/$JOB_COMPLETION_INDEX.tried"; [ -e "$m" ] && exit 0; touch "$m"; exec sleep 30"#;
    let job = WorkerJob {
        backoff_limit_per_index: 0,
        ..worker("nodes", 2, 2, dir.path(), script)
    };
    ensure_job(client.clone(), &job).await.expect("created");
    for index in [0, 1] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.path().join(format!("{index}.tried")).exists() {
            assert!(Instant::now() < deadline, "index {index} never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(cluster.kill_job_index(NS, "nodes", 0, KillAs::Disruption));
    assert!(cluster.kill_job_index(NS, "nodes", 1, KillAs::Failure));
    let progress = wait_finished(&client, "nodes").await;
    // With no retries allowed, the disrupted index is still retried; the failed one is not.
    assert_eq!(progress.completed, set(&[0]));
    assert_eq!(progress.failed, set(&[1]));
    let pods = pods_per_index(&client, "nodes").await;
    assert_eq!(pods[&0], ["Failed", "Succeeded"]);
    assert_eq!(pods[&1], ["Failed"]);
    assert_eq!(
        cluster.job(NS, "nodes").expect("job")["status"]["failed"],
        1,
        "the disruption is not counted"
    );
    assert!(
        !cluster.kill_job_index(NS, "nodes", 0, KillAs::Failure),
        "nothing runs any more"
    );
}

#[tokio::test]
async fn a_pod_whose_image_cannot_run_is_reported_stuck() {
    // No entrypoint stands for an image the nodes cannot pull.
    let cluster = FakeCluster::start();
    cluster.api.create_namespace(NS);
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    ensure_job(client.clone(), &worker("noimage", 2, 2, dir.path(), "true"))
        .await
        .expect("created");
    let deadline = Instant::now() + Duration::from_secs(10);
    let stuck = loop {
        let stuck = stuck_worker_pods(client.clone(), NS, "noimage")
            .await
            .expect("pods");
        if stuck.len() == 2 || Instant::now() > deadline {
            break stuck;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stuck.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
    assert!(
        stuck.iter().all(|s| s.reason == "ErrImagePull"),
        "{stuck:?}"
    );
    let progress = job_progress(client, NS, "noimage").await.expect("progress");
    assert_eq!((progress.active, progress.finished), (2, None));
}

#[tokio::test]
async fn kill_all_job_pods_leaves_no_process_behind() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let script = r#"touch "$0/$JOB_COMPLETION_INDEX.up"; exec sleep 30"#;
    ensure_job(client.clone(), &worker("left", 2, 2, dir.path(), script))
        .await
        .expect("created");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(dir.path().join("0.up").exists() && dir.path().join("1.up").exists()) {
        assert!(Instant::now() < deadline, "pods never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cluster.kill_all_job_pods(), 2);
    std::fs::remove_file(dir.path().join("0.up")).expect("rm");
    std::fs::remove_file(dir.path().join("1.up")).expect("rm");
    let deadline = Instant::now() + Duration::from_secs(10);
    while job_progress(client.clone(), NS, "left")
        .await
        .expect("progress")
        .active
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "killed pods still counted active"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !dir.path().join("0.up").exists() && !dir.path().join("1.up").exists(),
        "a pod was restarted"
    );
    assert!(
        !cluster.kill_job_index(NS, "left", 0, KillAs::Failure),
        "nothing runs"
    );
}

/// POST `job` as-is (not through `build_job`), as another client would.
async fn post_raw(client: &kube::Client, job: serde_json::Value) -> Result<(), kube::Error> {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1", "Job"));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &resource);
    let object: DynamicObject = serde_json::from_value(job).expect("a Job");
    api.create(&PostParams::default(), &object).await.map(drop)
}

#[tokio::test]
async fn secret_key_refs_resolve_and_a_missing_key_holds_the_pod() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    cluster.insert(
        "/api/v1/namespaces/relocate/secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "azure", "namespace": NS},
               "data": {"key": base64_of("azurite-account-key")}}),
    );
    let job = |name: &str, key: &str| {
        let mut job = serde_json::to_value(build_job(&worker(
            name,
            1,
            1,
            dir.path(),
            r#"printf %s "$AZURE_STORAGE_ACCOUNT_KEY" > "$0/key""#,
        )))
        .expect("json");
        job["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "AZURE_STORAGE_ACCOUNT_KEY",
            "valueFrom": {"secretKeyRef": {"name": "azure", "key": key}}}]);
        job
    };
    post_raw(&client, job("keyref", "key"))
        .await
        .expect("created");
    assert_eq!(
        wait_finished(&client, "keyref").await.finished,
        Some(JobFinished::Complete)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("key")).expect("ran"),
        "azurite-account-key"
    );

    post_raw(&client, job("nokey", "absent"))
        .await
        .expect("created");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stuck = stuck_worker_pods(client, NS, "nokey").await.expect("pods");
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].reason, "CreateContainerConfigError");
    assert_eq!(
        stuck[0].message,
        "couldn't find key absent in Secret relocate/azure"
    );
}

#[tokio::test]
async fn the_fake_refuses_jobs_a_real_api_server_refuses() {
    let cluster = cluster();
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("dir");
    let mut job =
        serde_json::to_value(build_job(&worker("bad", 1, 1, dir.path(), "true"))).expect("json");
    job["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    let err = post_raw(&client, job)
        .await
        .expect_err("podFailurePolicy needs Never");
    let kube::Error::Api(status) = err else {
        panic!("not an API answer: {err}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("only \"Never\" is supported"),
        "{}",
        status.message
    );
    assert!(cluster.job(NS, "bad").is_none());
    assert_eq!(
        cluster.job_requests().len(),
        1,
        "the body is still recorded"
    );
}
