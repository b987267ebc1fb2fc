//! Issue 15's real-cluster e2e: `relocate run` moves a StatefulSet with data between two
//! namespaces of a real cluster, its claims' files through a real S3 bucket, the mover
//! Jobs running the relocate image.
//!
//! The source StatefulSet `db` (2 replicas, one `volumeClaimTemplate` `data`) writes
//! its claim at first start: files whose content depends on the ordinal, 1 MiB of
//! random bytes, a 0600 file owned by uid 1234, a nested directory, an empty one, a
//! symlink and a dangling one, an mtime set to the nanosecond, then a `.seeded` marker;
//! it then prints the claim's listing (GNU `find -printf '%p %y %s %m %U %G %T@ %l'`
//! and `sha256sum` of every file) to its log and sleeps. A pod that finds `.seeded`
//! writes nothing, so the same pods at the target print the listing of the restored
//! claim as the workload sees it. The plan seeds a copy while the source runs, then
//! freezes, copies the delta, deploys to the target namespace (`transform.namespace`)
//! and verifies. The test checks, read through the API: the run succeeded; the target
//! StatefulSet has 2 ready replicas; each target pod's listing equals the source's pod
//! of the same ordinal (and the two ordinals differ); the evidence names
//! `volume:db/data-db-0` and `volume:db/data-db-1`, restored in the target namespace;
//! every mover Job is finished and no mover pod still runs.
//!
//! No API server can run on the CI machines: the test is ignored. To run it on kind:
//!
//! ```sh
//! kind create cluster --name relocate-vol
//! docker build -t relocate:e2e .            # the Dockerfile at the repository root
//! kind load docker-image relocate:e2e --name relocate-vol
//! docker pull debian:bookworm-slim && kind load docker-image debian:bookworm-slim --name relocate-vol
//! # An S3 endpoint both this machine and the pods reach, e.g. s3s-fs or MinIO on the
//! # kind network's gateway (docker network inspect kind: 172.18.0.1), with a bucket:
//! KUBECONFIG=~/.kube/config RELOCATE_CLUSTER_IMAGE=relocate:e2e \
//! RELOCATE_CLUSTER_S3_ENDPOINT=http://172.18.0.1:9000 RELOCATE_CLUSTER_S3_BUCKET=relocate-e2e \
//! RELOCATE_CLUSTER_S3_KEY=… RELOCATE_CLUSTER_S3_SECRET=… \
//! cargo test -p orchestrator --test volumes_real_cluster -- --ignored --nocapture
//! ```
//!
//! Optional: `RELOCATE_CLUSTER_CONTEXT` (the kubeconfig context; default its current
//! one), `RELOCATE_CLUSTER_S3_REGION` (default `us-east-1`), `RELOCATE_CLUSTER_DATA_IMAGE`
//! (the StatefulSet's image, default `debian:bookworm-slim`: it needs GNU `find`,
//! `sha256sum` and `head`), `RELOCATE_CLUSTER_STORAGE_CLASS` (default: the cluster's
//! default class; kind's `standard` binds `WaitForFirstConsumer`, which the restore's
//! mover pod binds). The current context must be allowed to create and delete
//! namespaces, StatefulSets, Jobs and Secrets. The test creates `relocate-vol-src-<id>`
//! and `relocate-vol-dst-<id>` (labelled `relocate.io/e2e-run`) and deletes both at the
//! end, passed or failed (a namespace it did not label is left alone); the staged
//! files stay in the bucket under `vol-e2e-<id>/` (named at the end) for inspection.
//! Without the variables it says which are missing and does nothing.

mod util;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail, ensure};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, Secret, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use serde_json::{Value, json};
use util::Workspace;

const APP: &str = "relocate-vol-e2e";
const REPLICAS: i32 = 2;
const BEGIN: &str = "=== relocate-e2e listing ===";
const END: &str = "=== relocate-e2e end ===";
/// The label that marks a namespace as this run's: only such a namespace is deleted.
const RUN_LABEL: &str = "relocate.io/e2e-run";
/// The whole `relocate run`: two stages, a seed pack, a delta pack, a restore and a
/// re-read Job per claim, the target's rollout.
const RUN_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What the test needs from its environment.
struct Env {
    image: String,
    endpoint: String,
    bucket: String,
    key: String,
    secret: String,
    region: String,
    context: Option<String>,
    data_image: String,
    storage_class: Option<String>,
}

impl Env {
    /// The variables, or `None` after saying which are missing.
    fn from_env() -> Option<Self> {
        let required = [
            "KUBECONFIG",
            "RELOCATE_CLUSTER_IMAGE",
            "RELOCATE_CLUSTER_S3_ENDPOINT",
            "RELOCATE_CLUSTER_S3_BUCKET",
            "RELOCATE_CLUSTER_S3_KEY",
            "RELOCATE_CLUSTER_S3_SECRET",
        ];
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|v| std::env::var(v).map_or(true, |s| s.is_empty()))
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "SKIPPED: the real-cluster volume e2e needs {} (see the header of orchestrator/tests/volumes_real_cluster.rs)",
                missing.join(", ")
            );
            return None;
        }
        let var = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
        Some(Self {
            image: var("RELOCATE_CLUSTER_IMAGE")?,
            endpoint: var("RELOCATE_CLUSTER_S3_ENDPOINT")?,
            bucket: var("RELOCATE_CLUSTER_S3_BUCKET")?,
            key: var("RELOCATE_CLUSTER_S3_KEY")?,
            secret: var("RELOCATE_CLUSTER_S3_SECRET")?,
            region: var("RELOCATE_CLUSTER_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            context: var("RELOCATE_CLUSTER_CONTEXT"),
            data_image: var("RELOCATE_CLUSTER_DATA_IMAGE")
                .unwrap_or_else(|| "debian:bookworm-slim".into()),
            storage_class: var("RELOCATE_CLUSTER_STORAGE_CLASS"),
        })
    }

    async fn client(&self) -> anyhow::Result<Client> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = kube::Config::from_kubeconfig(&options)
            .await
            .context("reading the kubeconfig KUBECONFIG names")?;
        Client::try_from(config).context("a client for the kubeconfig's cluster")
    }
}

/// The pod's script: write the claim once (a marker says it was), print its listing,
/// sleep. At the target the marker is there (restored): nothing is written.
const SCRIPT: &str = r#"set -eu
cd /data
if [ ! -e .seeded ]; then
  o="${HOSTNAME##*-}"
  mkdir -p nested/deeper empty
  echo "ordinal $o of $HOSTNAME" > nested/deeper/who.txt
  i=0
  while [ "$i" -lt 100 ]; do echo "$o:$i" > "nested/f$i"; i=$((i + 1)); done
  head -c 1048576 /dev/urandom > random.bin
  echo "the database's secret, replica $o" > secret.txt
  chmod 600 secret.txt
  chown 1234:5678 secret.txt
  touch -d '2021-02-03 04:05:06.123456789' nested/f7
  ln -s nested/deeper/who.txt link
  ln -s nowhere/at-all dangling
  touch .seeded
fi
echo '=== relocate-e2e listing ==='
find . ! -type d -printf '%p %y %s %m %U %G %T@ %l\n' | LC_ALL=C sort
find . -type d -printf '%p %y - %m %U %G %T@\n' | LC_ALL=C sort
find . -type f -exec sha256sum {} + | LC_ALL=C sort
echo '=== relocate-e2e end ==='
exec sleep 2147483647
"#;

fn statefulset(ns: &str, env: &Env) -> Value {
    let labels = json!({"app": APP});
    let mut claim =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}});
    if let Some(class) = &env.storage_class {
        claim["storageClassName"] = class.as_str().into();
    }
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": ns, "labels": labels},
           "spec": {"replicas": REPLICAS, "serviceName": "db", "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels},
                                 "spec": {"terminationGracePeriodSeconds": 1,
                                          "containers": [{"name": "db", "image": env.data_image,
                                                          "command": ["sh", "-c", SCRIPT],
                                                          "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                                          "readinessProbe": {"exec": {"command": ["test", "-e", "/data/.seeded"]},
                                                                             "periodSeconds": 2}}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}]}})
}

fn plan(env: &Env, run: &str, src: &str, dst: &str) -> String {
    let context = env
        .context
        .as_deref()
        .map(|c| format!(", context: \"{c}\""))
        .unwrap_or_default();
    let allow_http = if env.endpoint.starts_with("http://") {
        ", allow_http: \"true\""
    } else {
        ""
    };
    format!(
        r#"apiVersion: relocate/v1
kind: MigrationPlan
name: {run}
regions:
  moscow: {{ jurisdiction: RU }}
  zurich: {{ jurisdiction: CH }}
source: moscow
target: zurich
stores:
  staging:
    region: zurich
    url: "s3://{bucket}/{run}/"
    options: {{ endpoint: "{endpoint}", region: "{region}"{allow_http}, access_key_id: "${{env:STAGING_KEY_ID}}", secret_access_key: "${{env:STAGING_SECRET}}" }}
clusters:
  msk: {{ region: moscow{context} }}
  zrh: {{ region: zurich{context} }}
workloads:
  db:
    kubernetes:
      from: msk
      to: zrh
      namespace: {src}
      selector: {{ app: {APP} }}
      waitTimeout: 5m
      transform: {{ namespace: {dst} }}
      volumes:
        copy: true
        staging: staging
        image: "{image}"
        credentials: {{ secretName: relocate-stores }}
        timeout: 10m
stages:
  - name: seed
    steps: [ {{ copy: db }} ]
  - name: cutover
    steps: [ {{ freeze: db }}, {{ copy: db }}, {{ deploy: db }}, {{ verify: db }} ]
"#,
        bucket = env.bucket,
        endpoint = env.endpoint,
        region = env.region,
        image = env.image,
    )
}

async fn create<K>(api: &Api<K>, object: Value, what: &str) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let object: K = serde_json::from_value(object).with_context(|| format!("building {what}"))?;
    api.create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {what}"))?;
    Ok(())
}

/// Wait until the StatefulSet has [`REPLICAS`] ready pods; on timeout, say what each
/// pod of it waits for.
async fn wait_ready(client: &Client, ns: &str, timeout: Duration) -> anyhow::Result<()> {
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + timeout;
    loop {
        let set = sets
            .get_opt("db")
            .await
            .with_context(|| format!("reading StatefulSet {ns}/db"))?;
        let ready = set
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready == REPLICAS {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let pods = describe_pods(client, ns).await;
            let found = if set.is_some() {
                ""
            } else {
                " (it does not exist)"
            };
            bail!(
                "StatefulSet {ns}/db{found} has {ready}/{REPLICAS} ready replicas after {timeout:?}; its pods: {pods}"
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Each pod of the app: phase and why a container waits.
async fn describe_pods(client: &Client, ns: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    match pods
        .list(&ListParams::default().labels(&format!("app={APP}")))
        .await
    {
        Err(e) => format!("(cannot list them: {e})"),
        Ok(list) if list.items.is_empty() => "none".into(),
        Ok(list) => list
            .items
            .iter()
            .map(|p| {
                let status = p.status.as_ref();
                let waiting: Vec<String> = status
                    .and_then(|s| s.container_statuses.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
                    .map(|w| {
                        format!(
                            "{}: {}",
                            w.reason.as_deref().unwrap_or("?"),
                            w.message.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                format!(
                    "{} {} {}",
                    p.metadata.name.as_deref().unwrap_or("?"),
                    status.and_then(|s| s.phase.as_deref()).unwrap_or("?"),
                    waiting.join("; ")
                )
            })
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

/// The listing pod `db-<ordinal>` printed of its claim.
async fn claim_listing(client: &Client, ns: &str, ordinal: i32) -> anyhow::Result<Vec<String>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let name = format!("db-{ordinal}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = pods
            .logs(&name, &LogParams::default())
            .await
            .with_context(|| format!("reading the log of pod {ns}/{name}"))?;
        if let Some(lines) = listing_in(&log) {
            ensure!(
                !lines.is_empty(),
                "pod {ns}/{name} printed an empty listing of its claim: {log}"
            );
            return Ok(lines);
        }
        if Instant::now() >= deadline {
            bail!(
                "pod {ns}/{name} printed no complete listing of its claim in 60 s; its log: {log}"
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The lines between the listing's markers in a pod's log, once it printed them all.
fn listing_in(log: &str) -> Option<Vec<String>> {
    let (_, rest) = log.split_once(BEGIN)?;
    let (body, _) = rest.split_once(END)?;
    Some(
        body.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// The data each source ordinal wrote is there, distinct per ordinal.
fn check_source_listings(listings: &BTreeMap<i32, Vec<String>>) -> anyhow::Result<()> {
    for (ordinal, lines) in listings {
        let has = |prefix: &str, needle: &str| {
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(needle))
        };
        ensure!(
            has("./secret.txt f ", " 600 1234 5678 ")
                && has("./link l ", " nested/deeper/who.txt")
                && has("./dangling l ", " nowhere/at-all")
                && has("./empty d ", "")
                && has("./nested/deeper d ", "")
                && has("./nested/f7 f ", " 1612325106.123456789"),
            "source db-{ordinal}'s claim does not hold what its pod wrote: {lines:#?}"
        );
    }
    ensure!(
        listings.get(&0) != listings.get(&1),
        "both source ordinals hold the same files: the test cannot tell them apart"
    );
    Ok(())
}

/// Every statement in the state directory's evidence.
fn evidence_statements(ws: &Workspace) -> anyhow::Result<Vec<Value>> {
    let dir = ws.join("state/evidence");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if !path.to_string_lossy().ends_with(".intoto.json") {
            continue;
        }
        let envelope: Value = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let payload = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            envelope["payload"].as_str().unwrap_or_default(),
        )
        .with_context(|| format!("{}: payload is not base64", path.display()))?;
        out.push(
            serde_json::from_slice(&payload)
                .with_context(|| format!("{}: payload", path.display()))?,
        );
    }
    ensure!(!out.is_empty(), "no evidence in {}", dir.display());
    Ok(out)
}

fn check_evidence(ws: &Workspace, dst: &str) -> anyhow::Result<()> {
    let statements = evidence_statements(ws)?;
    for claim in ["data-db-0", "data-db-1"] {
        let subject = format!("volume:db/{claim}");
        ensure!(
            statements.iter().any(|s| s["subject"]
                .as_array()
                .is_some_and(|subjects| subjects.iter().any(|x| x["name"] == subject.as_str()))),
            "no evidence names the subject {subject}: {:#?}",
            statements.iter().map(|s| &s["subject"]).collect::<Vec<_>>()
        );
        let restored = statements.iter().any(|s| {
            s["predicate"]["workloads"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|w| {
                    w["name"] == "db"
                        && w["volumes"].as_array().into_iter().flatten().any(|v| {
                            v["claim"] == claim
                                && v["namespace"] == dst
                                && matches!(v["checked"].as_str(), Some("restored" | "reread"))
                        })
                })
        });
        ensure!(
            restored,
            "no evidence says {claim} was restored and checked in {dst}: {:#?}",
            statements
                .iter()
                .map(|s| &s["predicate"]["workloads"])
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// Every mover Job in `ns` finished (or is gone) and none of its pods still runs.
async fn check_movers_finished(client: &Client, ns: &str) -> anyhow::Result<usize> {
    let movers = ListParams::default().labels("relocate.io/volume-task");
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let list = jobs
        .list(&movers)
        .await
        .with_context(|| format!("listing the mover Jobs in {ns}"))?;
    for job in &list.items {
        let status = job.status.clone().unwrap_or_default();
        ensure!(
            status.active.unwrap_or(0) == 0 && status.succeeded.unwrap_or(0) >= 1,
            "mover Job {ns}/{} is not finished: {status:?}",
            job.metadata.name.as_deref().unwrap_or("?")
        );
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let running: Vec<String> = pods
        .list(&movers)
        .await
        .with_context(|| format!("listing the mover pods in {ns}"))?
        .items
        .iter()
        .filter(|p| {
            matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Pending" | "Running")
            )
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    ensure!(
        running.is_empty(),
        "mover pods still run in {ns}: {running:?}"
    );
    Ok(list.items.len())
}

async fn flow(client: &Client, env: &Env, run: &str, src: &str, dst: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [src, dst] {
        create(
            &namespaces,
            json!({"metadata": {"name": ns, "labels": {RUN_LABEL: run}}}),
            &format!("namespace {ns}"),
        )
        .await?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        create(
            &secrets,
            json!({"metadata": {"name": "relocate-stores", "namespace": ns},
                   "stringData": {"STAGING_KEY_ID": env.key, "STAGING_SECRET": env.secret}}),
            &format!("Secret {ns}/relocate-stores"),
        )
        .await?;
    }
    let services: Api<Service> = Api::namespaced(client.clone(), src);
    create(
        &services,
        json!({"metadata": {"name": "db", "namespace": src, "labels": {"app": APP}},
               "spec": {"clusterIP": "None", "selector": {"app": APP}, "ports": [{"port": 5432}]}}),
        &format!("Service {src}/db"),
    )
    .await?;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), src);
    create(
        &sets,
        statefulset(src, env),
        &format!("StatefulSet {src}/db"),
    )
    .await?;
    wait_ready(client, src, Duration::from_secs(300))
        .await
        .context("the source StatefulSet never became ready")?;
    let mut before = BTreeMap::new();
    for ordinal in 0..REPLICAS {
        before.insert(ordinal, claim_listing(client, src, ordinal).await?);
    }
    check_source_listings(&before)?;
    eprintln!(
        "source: {REPLICAS} replicas ready in {src}, {} lines of listing each",
        before[&0].len()
    );

    let ws = Workspace::new();
    ws.write("plan.yaml", plan(env, run, src, dst));
    let started = Instant::now();
    let out = tokio::time::timeout(
        RUN_TIMEOUT,
        tokio::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"))
            .args([
                "run",
                "plan.yaml",
                "--state-dir",
                "state",
                "--output",
                "plain",
            ])
            .current_dir(ws.path())
            .env("STAGING_KEY_ID", &env.key)
            .env("STAGING_SECRET", &env.secret)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| anyhow!("relocate run did not finish in {RUN_TIMEOUT:?} (killed)"))?
    .context("starting relocate run")?;
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "relocate run exited {:?} after {:?}:\n{said}",
        out.status.code(),
        started.elapsed()
    );
    eprintln!("relocate run: done in {:?}", started.elapsed());

    wait_ready(client, dst, Duration::from_secs(300))
        .await
        .context("the target StatefulSet is not ready after relocate run succeeded")?;
    let target_set = Api::<StatefulSet>::namespaced(client.clone(), dst)
        .get("db")
        .await
        .with_context(|| format!("reading StatefulSet {dst}/db"))?;
    let replicas = target_set.spec.replicas;
    ensure!(
        replicas == Some(REPLICAS),
        "target StatefulSet {dst}/db runs {replicas:?} replicas, not {REPLICAS}"
    );
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), dst);
    for ordinal in 0..REPLICAS {
        let name = format!("data-db-{ordinal}");
        let claim = claims
            .get(&name)
            .await
            .with_context(|| format!("reading claim {dst}/{name}"))?;
        let phase = claim.status.and_then(|s| s.phase);
        ensure!(
            phase.as_deref() == Some("Bound"),
            "claim {dst}/{name} is {phase:?}, not Bound"
        );
        let after = claim_listing(client, dst, ordinal).await?;
        if after != before[&ordinal] {
            let missing: Vec<&String> = before[&ordinal]
                .iter()
                .filter(|l| !after.contains(l))
                .collect();
            let extra: Vec<&String> = after
                .iter()
                .filter(|l| !before[&ordinal].contains(l))
                .collect();
            return Err(anyhow!(
                "target db-{ordinal}'s claim differs from source db-{ordinal}'s: missing or changed {missing:#?}; not in the source {extra:#?}"
            ));
        }
    }
    check_evidence(&ws, dst)?;
    let source_jobs = check_movers_finished(client, src).await?;
    let target_jobs = check_movers_finished(client, dst).await?;
    eprintln!(
        "target: {REPLICAS} replicas ready in {dst}, each claim equal to its source ordinal's; mover Jobs finished: {source_jobs} in {src}, {target_jobs} in {dst}; staged under s3://{}/{run}/",
        env.bucket
    );
    Ok(())
}

#[test]
#[ignore = "needs a real cluster (KUBECONFIG), the relocate image loaded into it and an S3 endpoint both reach; see the file's header"]
fn a_statefulset_with_data_moves_between_two_namespaces_of_a_real_cluster() {
    let Some(env) = Env::from_env() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let client = match rt.block_on(env.client()) {
        Ok(client) => client,
        Err(e) => panic!("{e:#}"),
    };
    let id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000)
        .unwrap_or_default();
    let run = format!("vol-e2e-{id}");
    let (src, dst) = (
        format!("relocate-vol-src-{id}"),
        format!("relocate-vol-dst-{id}"),
    );
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(flow(&client, &env, &run, &src, &dst))
    }));
    // Always: both namespaces go, with everything in them (claims, Jobs, Secrets); only
    // if this run made them (a namespace of that name someone else has stays).
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&src, &dst] {
        let ours = match rt.block_on(namespaces.get_opt(ns)) {
            Ok(Some(found)) => found
                .metadata
                .labels
                .is_some_and(|l| l.get(RUN_LABEL) == Some(&run)),
            Ok(None) => false,
            Err(e) => {
                eprintln!("CLEANUP FAILED: reading namespace {ns}: {e} (delete it by hand)");
                false
            }
        };
        if !ours {
            continue;
        }
        match rt.block_on(namespaces.delete(ns, &DeleteParams::default())) {
            Ok(_) => eprintln!("deleted namespace {ns}"),
            Err(e) => {
                eprintln!("CLEANUP FAILED: deleting namespace {ns}: {e} (delete it by hand)")
            }
        }
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e:#}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The pod's script, run here on a directory instead of `/data` (as root, like the
/// pod): it writes and lists what [`check_source_listings`] expects, a second start
/// writes nothing, and the two ordinals differ. What the cluster run relies on,
/// checked without a cluster.
#[test]
fn the_pods_script_writes_once_and_lists_what_the_checks_expect() {
    let ws = Workspace::new();
    let mut listings = BTreeMap::new();
    for ordinal in 0..REPLICAS {
        let claim = ws.join(&format!("claim-{ordinal}"));
        std::fs::create_dir_all(&claim).expect("claim dir");
        let script = SCRIPT
            .replace("cd /data", &format!("cd '{}'", claim.display()))
            .replace("exec sleep 2147483647", "exit 0");
        let start = || {
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .env("HOSTNAME", format!("db-{ordinal}"))
                .env("TZ", "UTC")
                .output()
                .expect("sh");
            let log = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{log}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            listing_in(&log).unwrap_or_else(|| panic!("no listing in {log}"))
        };
        let first = start();
        assert_eq!(
            start(),
            first,
            "a second start of db-{ordinal} changed its claim"
        );
        listings.insert(ordinal, first);
    }
    if let Err(e) = check_source_listings(&listings) {
        panic!("{e:#}");
    }
}

#[test]
fn the_real_cluster_plan_validates() {
    let env = Env {
        image: "relocate:e2e".into(),
        endpoint: "http://172.18.0.1:9000".into(),
        bucket: "relocate-e2e".into(),
        key: "k".into(),
        secret: "s".into(),
        region: "us-east-1".into(),
        context: Some("kind-relocate-vol".into()),
        data_image: "debian:bookworm-slim".into(),
        storage_class: None,
    };
    let ws = Workspace::new();
    let text = plan(
        &env,
        "vol-e2e-1",
        "relocate-vol-src-1",
        "relocate-vol-dst-1",
    );
    let path = ws.write("plan.yaml", &text);
    let parsed = plans::parse(&text, &path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let workload = parsed.kubernetes_workload("db").expect("workload db");
    assert_eq!(workload.target_namespace(), "relocate-vol-dst-1");
    assert!(workload.volumes.as_ref().is_some_and(|v| v.copy));
}
