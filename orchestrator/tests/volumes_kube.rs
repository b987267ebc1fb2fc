//! Volume movers as Kubernetes Jobs through the fake API server's Job controller, which
//! runs each pod as a local `relocate volume …` process and maps each claim to a
//! temporary directory: a pack Job reads the source claim (mounted read-only), a
//! restore Job writes the target claim, and the target tree equals the source's; a
//! claim's phase and capacity are read so a Pending or small claim can be refused.

mod fake_kube;
mod util;
mod volumes_tree;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use connectors::kube::volumes::{ClaimRefused, MoverJob, claim_status, ensure_mover_job};
use connectors::kube::workers::{WorkerJob, WorkerResources, job_progress};
use fake_kube::FakeCluster;
use serde_json::json;
use util::Workspace;
use volumes_tree::{listing, odd_tree};

fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test servers (`source scripts/servers.sh && start_servers`) or run scripts/test.sh"
        )
    })
}

fn client(cluster: &FakeCluster) -> kube::Client {
    let url = cluster.url.parse().expect("fake cluster URL");
    kube::Client::try_from(kube::Config::new(url)).expect("client")
}

/// A plan staging through a fresh bucket on s3s-fs and a volume order for one claim in
/// a local state store; the state store's entry as JSON.
fn order(ws: &Workspace) -> String {
    let (endpoint, root) = (
        server("RELOCATE_TEST_S3S_ENDPOINT"),
        server("RELOCATE_TEST_S3S_ROOT"),
    );
    let bucket = format!("movers-{}", std::process::id());
    std::fs::create_dir_all(Path::new(&root).join(&bucket)).expect("bucket");
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
  staging:
    region: zurich
    url: "s3://{bucket}/"
    options: {{ endpoint: "{endpoint}", allow_http: "true", region: us-east-1, access_key_id: "${{env:STAGING_KEY_ID}}", secret_access_key: "${{env:STAGING_SECRET}}" }}
clusters:
  msk: {{ region: moscow, context: msk }}
  zrh: {{ region: zurich, context: zrh }}
workloads:
  analyzer:
    kubernetes: {{ from: msk, to: zrh, namespace: analysis, volumes: {{ copy: true, staging: staging }} }}
stages:
  - name: cutover
    steps: [ {{ freeze: analyzer }}, {{ copy: analyzer }}, {{ deploy: analyzer }} ]
"#
    );
    let plan_path = ws.write("plan.yaml", &plan);
    let parsed = plans::parse(&plan, &plan_path).expect("plan is valid");
    let order = json!({
        "version": 1, "planDigest": parsed.digest().to_string(), "planText": plan,
        "planPath": plan_path.to_string_lossy(), "workload": "analyzer",
        "claims": ["data-analyzer-0"], "segmentFiles": 100,
    });
    ws.write(
        "state/v/order.json",
        serde_json::to_vec(&order).expect("json"),
    );
    json!({"region": "zurich", "url": format!("file://{}/", ws.join("state").display())})
        .to_string()
}

fn mover(task: &str, namespace: &str, state_store: &str, read_only: bool) -> MoverJob {
    MoverJob {
        worker: WorkerJob {
            name: format!("analyzer-{task}-0"),
            namespace: namespace.into(),
            image: "registry.zrh.example.ch/relocate:0.2.0".into(),
            completions: 1,
            parallelism: 1,
            service_account: None,
            secret_name: Some("relocate-stores".into()),
            resources: WorkerResources::default(),
            args: vec![
                "volume".into(),
                task.into(),
                "--order".into(),
                "v/order.json".into(),
            ],
            env: vec![("RELOCATE_STATE_STORE".into(), state_store.into())],
            labels: BTreeMap::from([("relocate.io/step".into(), task.into())]),
            backoff_limit_per_index: 0,
            ttl_seconds_after_finished: 3600,
        },
        claim: "data-analyzer-0".into(),
        read_only,
        as_root: !read_only,
        node: None,
        scheduling: Default::default(),
        run_as: None,
    }
}

fn secret(cluster: &FakeCluster, namespace: &str) {
    cluster.insert(
        &format!("/api/v1/namespaces/{namespace}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "relocate-stores", "namespace": namespace},
               "stringData": {"STAGING_KEY_ID": server("RELOCATE_TEST_S3S_ACCESS_KEY"),
                              "STAGING_SECRET": server("RELOCATE_TEST_S3S_SECRET_KEY")}}),
    );
}

async fn run_to_end(client: &kube::Client, cluster: &FakeCluster, m: &MoverJob) {
    ensure_mover_job(client.clone(), m).await.expect("job");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = job_progress(client.clone(), &m.worker.namespace, &m.worker.name)
            .await
            .expect("progress");
        if p.completed.contains(&0) {
            return;
        }
        assert!(
            p.failed.is_empty() && Instant::now() < deadline,
            "mover {} did not complete: {p:?}\nlogs: {:?}",
            m.worker.name,
            cluster.job(&m.worker.namespace, &m.worker.name)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_moves_through_pack_and_restore_jobs_byte_for_byte() {
    let ws = Workspace::new();
    let state_store = order(&ws);
    let (src, dst) = (ws.join("claims/msk"), ws.join("claims/zrh"));
    std::fs::create_dir_all(&src).expect("src");
    odd_tree(&src);
    let before = listing(&src);

    let cluster = FakeCluster::start();
    cluster.set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
    for ns in ["analysis", "analysis-zrh"] {
        cluster.api.create_namespace(ns);
        secret(&cluster, ns);
    }
    cluster.set_claim_dir("analysis", "data-analyzer-0", &src);
    cluster.set_claim_dir("analysis-zrh", "data-analyzer-0", &dst);
    let client = client(&cluster);

    run_to_end(
        &client,
        &cluster,
        &mover("pack", "analysis", &state_store, true),
    )
    .await;
    assert!(
        ws.join("state/v/pack-0.json").exists(),
        "the pack wrote no result"
    );
    let body = &cluster.job_requests()[0];
    let mount = &body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
    assert!(
        mount.as_array().is_some_and(|m| m
            .iter()
            .any(|m| m["mountPath"] == "/volume" && m["readOnly"] == true)),
        "source claim not mounted read-only: {mount}"
    );

    run_to_end(
        &client,
        &cluster,
        &mover("restore", "analysis-zrh", &state_store, false),
    )
    .await;
    assert_eq!(
        listing(&dst),
        before,
        "the restored claim differs from the source"
    );
    run_to_end(
        &client,
        &cluster,
        &mover("verify", "analysis-zrh", &state_store, true),
    )
    .await;
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.join("state/v/verify-0.json")).expect("verify result"),
    )
    .expect("json");
    let packed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.join("state/v/pack-0.json")).expect("pack result"),
    )
    .expect("json");
    assert_eq!(report["root"], packed["root"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_or_small_target_claim_is_refused_naming_it() {
    let cluster = FakeCluster::start();
    cluster.api.create_namespace("analysis-zrh");
    let claims = "/api/v1/namespaces/analysis-zrh/persistentvolumeclaims";
    cluster.insert(
        claims,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-analyzer-0", "namespace": "analysis-zrh"},
        "spec": {"storageClassName": "zrh-ssd", "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}}),
    );
    cluster.insert(
        claims,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-analyzer-1", "namespace": "analysis-zrh"},
        "spec": {"resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}}}),
    );
    let client = client(&cluster);
    let pending = claim_status(client.clone(), "analysis-zrh", "data-analyzer-0")
        .await
        .expect("claim");
    assert_eq!(pending.phase, "Pending");
    assert_eq!(pending.capacity, Some(1 << 30));
    assert_eq!(pending.storage_class.as_deref(), Some("zrh-ssd"));
    let bound = claim_status(client.clone(), "analysis-zrh", "data-analyzer-1")
        .await
        .expect("claim");
    assert_eq!(
        (bound.phase.as_str(), bound.capacity),
        ("Bound", Some(2 << 30))
    );
    let refused = pending
        .accepts("analysis-zrh", "data-analyzer-0", 10)
        .expect_err("pending");
    assert!(matches!(refused, ClaimRefused::Pending { .. }));
    let text = refused.to_string();
    assert!(
        text.contains("claim analysis-zrh/data-analyzer-0 is still Pending"),
        "{text}"
    );
    assert!(text.contains("zrh-ssd"), "{text}");
    bound
        .accepts("analysis-zrh", "data-analyzer-1", 2 << 30)
        .expect("fits exactly");
    let small = bound
        .accepts("analysis-zrh", "data-analyzer-1", 3 << 30)
        .expect_err("too small")
        .to_string();
    assert!(
        small.contains("claim analysis-zrh/data-analyzer-1 holds 2147483648 bytes"),
        "{small}"
    );
    let err = claim_status(client, "analysis-zrh", "data-analyzer-9")
        .await
        .expect_err("missing");
    assert!(err.to_string().contains("data-analyzer-9"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_moves_every_claim_and_a_failed_verify_names_its_claim() {
    use orchestrator::volumes::coordinator::{Movers, run_movers};
    use orchestrator::volumes::mover::MoverError;
    use orchestrator::volumes::order::{MoverTask, VolumeOrder};

    let ws = Workspace::new();
    let state_entry = order(&ws);
    let written: VolumeOrder =
        serde_json::from_slice(&std::fs::read(ws.join("state/v/order.json")).expect("order"))
            .expect("order json");
    let order = VolumeOrder {
        claims: vec!["data-analyzer-0".into(), "data-analyzer-1".into()],
        ..written
    };
    let cluster = FakeCluster::start();
    cluster.set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
    let mut sources = Vec::new();
    for (i, claim) in order.claims.iter().enumerate() {
        for ns in ["analysis", "analysis-zrh"] {
            let dir = ws.join(&format!("claims/{ns}/{claim}"));
            std::fs::create_dir_all(&dir).expect("claim dir");
            cluster.set_claim_dir(ns, claim, &dir);
        }
        let src = ws.join(&format!("claims/analysis/{claim}"));
        std::fs::write(src.join("index.db"), format!("claim {i}")).expect("data");
        sources.push(src);
    }
    odd_tree(&sources[1]);
    let state: std::sync::Arc<dyn object_store::ObjectStore> = std::sync::Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(ws.join("state")).expect("state"),
    );
    let movers = |namespace: &str, step: &str| Movers {
        client: client(&cluster),
        namespace: namespace.into(),
        image: "registry.zrh.example.ch/relocate:0.2.0".into(),
        secret_name: Some("relocate-stores".into()),
        resources: WorkerResources::default(),
        state: state.clone(),
        state_entry: state_entry.clone(),
        order_path: "v/order.json".into(),
        labels: BTreeMap::from([("relocate.io/stage".into(), "cutover".into())]),
        attempt: 1,
        stage: "cutover".into(),
        step: step.into(),
        timeout: Duration::from_secs(60),
        run_as: None,
        progress: None,
        cancel: None,
    };
    for ns in ["analysis", "analysis-zrh"] {
        cluster.api.create_namespace(ns);
        secret(&cluster, ns);
    }

    let packed = run_movers(
        &movers("analysis", "1-pack"),
        &order,
        MoverTask::Pack,
        &BTreeMap::new(),
    )
    .await
    .expect("pack");
    let restored = run_movers(
        &movers("analysis-zrh", "2-restore"),
        &order,
        MoverTask::Restore,
        &BTreeMap::new(),
    )
    .await
    .expect("restore");
    let verified = run_movers(
        &movers("analysis-zrh", "3-verify"),
        &order,
        MoverTask::Verify,
        &BTreeMap::new(),
    )
    .await
    .expect("verify");
    for i in 0..2 {
        assert_eq!(packed[i].root, restored[i].root);
        assert_eq!(packed[i].root, verified[i].root);
        let target = ws.join(&format!("claims/analysis-zrh/{}", order.claims[i]));
        assert_eq!(listing(&target), listing(&sources[i]), "claim {i}");
    }
    assert_ne!(packed[0].root, packed[1].root);

    // The next attempt's verify finds a changed byte on the second claim.
    std::fs::write(
        ws.join("claims/analysis-zrh/data-analyzer-1/index.db"),
        b"claim 9",
    )
    .expect("tamper");
    let again = Movers {
        attempt: 2,
        ..movers("analysis-zrh", "3-verify")
    };
    let err = run_movers(&again, &order, MoverTask::Verify, &BTreeMap::new())
        .await
        .expect_err("tampered");
    assert!(matches!(err, MoverError::MoverFailed { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("claim data-analyzer-1: the verify Job analysis-zrh/"),
        "{err}"
    );
}
