//! A stateful workload moved by `relocate run`, through two fake API servers whose Job
//! controllers run the mover pods as local `relocate volume …` processes (each claim a
//! temporary directory) and a staging bucket on s3s-fs: a seed `copy` while the source
//! runs, `freeze`, the delta `copy`, `deploy` (claims created and restored before the
//! StatefulSet), `verify` (the target re-read). The target's claim equals the source's
//! by an independent listing; the evidence names the claim's manifest and root; a claim
//! too small for its data, and one that never binds, fail naming the claim, with the
//! source kept frozen until the operator reruns or rolls back.

mod fake_kube;
mod util;
mod volumes_tree;

use std::path::Path;

use fake_kube::plan::CutoverPlan;
use fake_kube::{FakeCluster, kubeconfig};
use serde_json::{Value, json};
use util::{Workspace, stderr, stdout};
use volumes_tree::{listing, odd_tree};

const STATEFULSETS: &str = "/apis/apps/v1/namespaces/analysis/statefulsets";

fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test servers (`source scripts/servers.sh && start_servers`) or run scripts/test.sh"
        )
    })
}

/// The analyzer's database: one replica, one template claim of `storage`.
fn database(storage: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "analysis", "labels": {"app": "analyzer"}},
           "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "db", "image": "registry.msk.example/pg:16.3"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}}]}})
}

/// A local-path class as kind has it; the default when `default`.
fn storage_class(name: &str, default: bool) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
           "metadata": {"name": name, "annotations": {
               "storageclass.kubernetes.io/is-default-class": if default { "true" } else { "false" }}},
           "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
           "volumeBindingMode": "WaitForFirstConsumer"})
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

struct Move {
    ws: Workspace,
    src: FakeCluster,
    dst: FakeCluster,
    source_dir: std::path::PathBuf,
    target_dir: std::path::PathBuf,
}

/// Two clusters, a staging bucket, the plan; the source claim holds the odd tree.
fn setup(storage: &str, steps: &str, volume_keys: &str) -> Move {
    let (src, dst) = (FakeCluster::start(), FakeCluster::start());
    src.api.create_namespace("analysis");
    dst.api.create_namespace("analysis-zrh");
    dst.api
        .insert_cluster_scoped("storageclasses", storage_class("standard", true));
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", kubeconfig(&src, &dst));
    let (endpoint, root) = (
        server("RELOCATE_TEST_S3S_ENDPOINT"),
        server("RELOCATE_TEST_S3S_ROOT"),
    );
    let bucket = format!(
        "volumes-{}-{}",
        std::process::id(),
        ws.path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x")
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    std::fs::create_dir_all(Path::new(&root).join(&bucket)).expect("bucket");
    let top = format!(
        r#"stores:
  staging:
    region: zurich
    url: "s3://{bucket}/"
    options: {{ endpoint: "{endpoint}", allow_http: "true", region: us-east-1, access_key_id: "${{env:STAGING_KEY_ID}}", secret_access_key: "${{env:STAGING_SECRET}}" }}
"#
    );
    let workload = format!(
        "      waitTimeout: 20s
      volumes:
        copy: true
        staging: staging
        image: registry.zrh.example.ch/relocate:test
        credentials: {{ secretName: relocate-stores }}
        timeout: 60s
{volume_keys}"
    );
    let plan = CutoverPlan {
        workload: &workload,
        top: &top,
        ..CutoverPlan::new("stateful", steps)
    };
    ws.write("plan.yaml", plan.render());
    for (cluster, ns) in [(&src, "analysis"), (&dst, "analysis-zrh")] {
        cluster.set_job_entrypoint(assert_cmd::cargo::cargo_bin("relocate"));
        secret(cluster, ns);
    }
    src.insert(STATEFULSETS, database(storage));
    let (source_dir, target_dir) = (ws.join("claims/msk"), ws.join("claims/zrh"));
    std::fs::create_dir_all(&source_dir).expect("source claim");
    std::fs::create_dir_all(&target_dir).expect("target claim");
    odd_tree(&source_dir);
    src.set_claim_dir("analysis", "data-db-0", &source_dir);
    dst.set_claim_dir("analysis-zrh", "data-db-0", &target_dir);
    // The source's claims exist as the StatefulSet controller makes them.
    {
        let mut store = src.objects.lock().expect("lock");
        fake_kube::workloads::reconcile(&mut store);
    }
    Move {
        ws,
        src,
        dst,
        source_dir,
        target_dir,
    }
}

const MOVE: &str = "{ copy: analyzer }, { freeze: analyzer }, { copy: analyzer }, { deploy: analyzer }, { verify: analyzer }";

/// The operator's run, with the staging store's credentials (the coordinator reads the
/// staged manifests too).
fn command(m: &Move) -> std::process::Command {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"));
    command
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .current_dir(m.ws.path())
        .env("STAGING_KEY_ID", server("RELOCATE_TEST_S3S_ACCESS_KEY"))
        .env("STAGING_SECRET", server("RELOCATE_TEST_S3S_SECRET_KEY"));
    command
}

fn run(m: &Move) -> std::process::Output {
    command(m).output().expect("run relocate")
}

fn both(out: &std::process::Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

fn evidence(ws: &Workspace) -> Value {
    let dir = ws.join("state/evidence");
    let path = std::fs::read_dir(&dir)
        .expect("evidence dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with(".intoto.json"))
        .expect("an evidence file");
    let envelope: Value =
        serde_json::from_slice(&std::fs::read(path).expect("evidence")).expect("json");
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        envelope["payload"].as_str().expect("payload"),
    )
    .expect("base64");
    serde_json::from_slice(&payload).expect("statement")
}

#[test]
fn a_statefulsets_claim_moves_with_it_and_its_root_is_in_the_evidence() {
    let m = setup("1Gi", MOVE, "");
    let before = listing(&m.source_dir);
    // Every progress line the movers print reaches the operator (default: one a
    // claim every ten seconds).
    let out = command(&m)
        .env("RELOCATE_VOLUME_PROGRESS_MS", "0")
        .output()
        .expect("run relocate");
    let text = both(&out);
    assert!(out.status.success(), "run failed:\n{text}");
    // The movers' progress, read from their pods' logs: the pack finds its totals as
    // it walks, the restore and the re-read count up to the packed ones.
    assert!(text.contains("claim data-db-0: packed "), "{text}");
    // The delta after the freeze uploads nothing: no file changed since the seed.
    assert!(
        text.contains("file(s) (11392546 byte(s)) unchanged since the last pack")
            && text.contains("0 copied, 506 unchanged"),
        "{text}"
    );
    let restored = text
        .lines()
        .rfind(|l| l.contains("claim data-db-0: restored ") && l.contains(" file(s), "))
        .unwrap_or_else(|| panic!("no restore progress:\n{text}"));
    let (done, total) = restored
        .split("restored ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|r| r.split_once('/'))
        .expect("n/m files");
    assert_eq!(
        done, total,
        "the last restore line is not complete: {restored}"
    );
    assert!(text.contains("claim data-db-0: re-read "), "{text}");
    assert_eq!(
        listing(&m.target_dir),
        before,
        "the target claim differs from the source"
    );
    assert_eq!(
        listing(&m.source_dir),
        before,
        "the source claim was changed"
    );
    // The seed says it is not point-in-time; the delta does not.
    assert!(text.contains("not point-in-time"), "{text}");
    // The deploy re-read the claim before the workload started; the verify step finds
    // it in use and does not re-read what the database now writes.
    assert!(
        text.contains("re-read at zrh before the workload starts"),
        "{text}"
    );
    assert!(
        text.contains("is in use by db-0: not re-read now"),
        "{text}"
    );
    // Restored (and re-hashed) before any workload was applied.
    let restored = text.find("restored and re-hashed").expect("restore line");
    let applied = text.find("applied").expect("apply line");
    assert!(
        restored < applied,
        "the workload was applied before its data:\n{text}"
    );
    // The target StatefulSet runs its recorded replica on the restored claim.
    let target_set = m
        .dst
        .get(&STATEFULSETS.replace("/analysis/", "/analysis-zrh/"), "db")
        .expect("target StatefulSet");
    assert_eq!(target_set["spec"]["replicas"], 1);
    let claim = m
        .dst
        .get(
            "/api/v1/namespaces/analysis-zrh/persistentvolumeclaims",
            "data-db-0",
        )
        .expect("target claim");
    assert_eq!(claim["status"]["phase"], "Bound", "{claim}");

    let statement = evidence(&m.ws);
    let workload = statement["predicate"]["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .find(|w| w["name"] == "analyzer")
        .expect("analyzer in the evidence")
        .clone();
    let volume = &workload["volumes"][0];
    assert_eq!(volume["claim"], "data-db-0", "{workload}");
    assert_eq!(volume["namespace"], "analysis-zrh");
    assert_eq!(volume["checked"], "reread", "{volume}");
    // Where the check was made, and that the copy it checks was made under the freeze.
    assert_eq!(volume["checkedIn"], "cutover attempt 1", "{volume}");
    assert_eq!(volume["packedFrom"], "frozen", "{volume}");
    let manifest =
        m.ws.join("state/volumes/analyzer/data-db-0.manifest.ndjson");
    let bytes = std::fs::read(&manifest).expect("the claim's manifest is kept");
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    assert_eq!(volume["manifestDigest"], digest.as_str());
    let root = volume["root"].as_str().expect("root");
    assert!(
        statement["subject"]
            .as_array()
            .expect("subjects")
            .iter()
            .any(|s| s["name"] == "volume:analyzer/data-db-0"
                && format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap_or("")) == root),
        "no subject for the claim: {}",
        statement["subject"]
    );
    assert!(
        volume["sparse"]
            .as_array()
            .is_some_and(|s| s.iter().any(|p| p == "sparse.bin"))
    );
    assert_eq!(volume["notMoved"], json!(["app.sock"]));
}

#[test]
fn a_claim_smaller_than_its_data_fails_the_deploy_before_anything_is_applied() {
    // 1 MiB requested; the odd tree holds more.
    let m = setup("1Mi", MOVE, "");
    let out = run(&m);
    let text = both(&out);
    assert!(
        !out.status.success(),
        "a too small claim was accepted:\n{text}"
    );
    assert!(
        text.contains("claim analysis-zrh/data-db-0 requests 1048576 bytes"),
        "{text}"
    );
    assert!(
        m.dst
            .get(&STATEFULSETS.replace("/analysis/", "/analysis-zrh/"), "db")
            .is_none(),
        "the StatefulSet was applied to the target"
    );
    // The source stays frozen (its data is staged; restarting it would make the copy
    // stale), and the failure says how to go on either way.
    let source = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(source["spec"]["replicas"], 0, "the source was restarted");
    assert!(
        text.contains("the source stays frozen")
            && text.contains("relocate rollback plan.yaml --stage cutover"),
        "{text}"
    );
    let out = rollback(&m, "cutover");
    assert!(out.status.success(), "rollback failed:\n{}", both(&out));
    let source = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(
        source["spec"]["replicas"], 1,
        "the rollback did not put the source back in service"
    );
}

fn rollback(m: &Move, stage: &str) -> std::process::Output {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .args([
            "rollback",
            "plan.yaml",
            "--stage",
            stage,
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .current_dir(m.ws.path())
        .output()
        .expect("run relocate rollback")
}

#[test]
fn a_target_claim_that_never_binds_fails_naming_it() {
    let m = setup("1Gi", MOVE, "");
    m.dst.set_claim_unbindable("analysis-zrh", "data-db-0");
    let plan = std::fs::read_to_string(m.ws.join("plan.yaml")).expect("plan");
    m.ws.write("plan.yaml", plan.replace("timeout: 60s", "timeout: 4s"));
    let out = run(&m);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("claim analysis-zrh/data-db-0 is still Pending"),
        "{text}"
    );
    assert!(
        std::fs::read_dir(&m.target_dir)
            .expect("dir")
            .next()
            .is_none(),
        "nothing may be restored into a claim that never bound"
    );
    // Its mover never ran: deleted, so it cannot start once the claim binds.
    assert_eq!(m.dst.deleted_jobs().len(), 1, "{:?}", m.dst.deleted_jobs());
    // Kept frozen: once the class binds (the operator fixed it), a rerun finishes the
    // move without the source having run in between.
    let source = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(source["spec"]["replicas"], 0, "the source was restarted");
    m.dst.set_claim_bindable("analysis-zrh", "data-db-0");
    let before = listing(&m.source_dir);
    let out = run(&m);
    let text = both(&out);
    assert!(out.status.success(), "the rerun failed:\n{text}");
    assert_eq!(listing(&m.target_dir), before, "the target claim differs");
}

#[test]
fn a_seed_with_a_snapshot_class_reads_a_clone_of_the_claim_and_deletes_it_after() {
    let m = setup(
        "1Gi",
        "{ copy: analyzer }",
        "        snapshotClass: csi-snapclass\n",
    );
    let out = run(&m);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("snapshotted as"), "{text}");
    assert!(
        !text.contains("not point-in-time"),
        "a snapshot seed is point-in-time:\n{text}"
    );
    let jobs = m.src.job_requests();
    let mounted: Vec<&str> = jobs
        .iter()
        .filter_map(|j| {
            j["spec"]["template"]["spec"]["volumes"]
                .as_array()?
                .iter()
                .find_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        })
        .collect();
    assert_eq!(mounted.len(), 1, "{jobs:?}");
    assert_ne!(
        mounted[0], "data-db-0",
        "the live claim was read, not its snapshot"
    );
    let claims = "/api/v1/namespaces/analysis/persistentvolumeclaims";
    assert!(
        m.src.get(claims, mounted[0]).is_none(),
        "the clone claim was left behind"
    );
    assert!(
        m.src
            .get(
                "/apis/snapshot.storage.k8s.io/v1/namespaces/analysis/volumesnapshots",
                mounted[0]
            )
            .is_none(),
        "the snapshot was left behind"
    );
    assert!(
        m.ws.join("state/volumes/analyzer/data-db-0.manifest.ndjson")
            .exists()
    );
    // The evidence says the seed is point-in-time (a snapshot) and only packed.
    let statement = evidence(&m.ws);
    let volume = &statement["predicate"]["workloads"][0]["volumes"][0];
    assert_eq!(volume["packedFrom"], "snapshot", "{volume}");
    assert_eq!(volume["checked"], "packed", "{volume}");
    assert_eq!(volume["checkedIn"], "cutover attempt 1", "{volume}");
}

#[test]
fn a_coordinator_killed_mid_restore_re_attaches_to_its_mover_on_rerun() {
    let m = setup("1Gi", MOVE, "");
    // Enough bytes that the restore is still running when the coordinator dies.
    let big: Vec<u8> = (0..40_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(m.source_dir.join("big2.bin"), &big).expect("big file");
    let before = listing(&m.source_dir);
    let exits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = exits.clone();
    m.dst
        .on_pod_exit(move |exit| seen.lock().expect("lock").push(exit.clone()));
    let mut child = command(&m)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let restore_started = || {
        m.dst.job_requests().iter().any(|j| {
            j["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "restore"))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !restore_started() {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never started"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let posted = m.dst.job_requests().len();

    let out = run(&m);
    let text = both(&out);
    assert!(out.status.success(), "the rerun failed:\n{text}");
    assert_eq!(listing(&m.target_dir), before, "the target claim differs");
    let restores: Vec<String> = m
        .dst
        .job_requests()
        .iter()
        .filter(|j| {
            j["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "restore"))
        })
        .map(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        restores.len() >= 2,
        "the rerun did not ask for its mover: {restores:?}"
    );
    assert!(
        restores.iter().all(|n| n == &restores[0]),
        "the rerun made a new restore Job instead of re-attaching: {restores:?}"
    );
    // One pod ran the restore, once; its report accepted, the Job went with it.
    let ran: Vec<i32> = exits
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e.job == restores[0])
        .map(|e| e.exit_code)
        .collect();
    assert_eq!(ran, [0], "the restore ran other than once");
    assert!(m.dst.job("analysis-zrh", &restores[0]).is_none());
    assert!(posted >= 1);
}

#[test]
fn a_deploy_refuses_a_copy_made_before_the_source_was_put_back_in_service() {
    // Stage `cutover` freezes and copies; stage `switch` deploys and fails (the claim
    // is too small), and the operator rolls the source back into service. The rerun
    // must not restore the old copy: the source has written since.
    let m = setup("1Mi", "{ freeze: analyzer }, { copy: analyzer }", "");
    let plan = std::fs::read_to_string(m.ws.join("plan.yaml")).expect("plan");
    m.ws.write(
        "plan.yaml",
        format!("{plan}  - name: switch\n    steps: [ {{ deploy: analyzer }} ]\n"),
    );
    let first = run(&m);
    assert!(!first.status.success(), "{}", both(&first));
    assert!(
        both(&first).contains("requests 1048576 bytes"),
        "{}",
        both(&first)
    );
    // The failed deploy keeps the source frozen; the operator puts it back in service.
    let source = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(source["spec"]["replicas"], 0, "the source was restarted");
    let out = rollback(&m, "switch");
    assert!(out.status.success(), "{}", both(&out));
    let source = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(source["spec"]["replicas"], 1, "the source serves again");
    // The operator fixes the size at the source; the rerun reaches the deploy again.
    let mut set = source.clone();
    set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
        json!("1Gi");
    m.src.insert(STATEFULSETS, set);
    let second = run(&m);
    let text = both(&second);
    assert!(
        !second.status.success(),
        "an old copy was restored:\n{text}"
    );
    assert!(
        text.contains("did not run under the source's current freeze"),
        "{text}"
    );
    assert!(
        std::fs::read_dir(&m.target_dir)
            .expect("dir")
            .next()
            .is_none(),
        "nothing may be restored from the old copy"
    );
}

#[test]
fn a_deploy_never_restores_into_a_claim_a_pod_at_the_target_mounts() {
    // `adopt: true` lets the deploy take over the existing claim; it still may not
    // write into it while a pod mounts it.
    let m = setup("1Gi", MOVE, "      adopt: true\n");
    // Something at the target already runs on the claim's name.
    m.dst.insert(
        "/api/v1/namespaces/analysis-zrh/persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "data-db-0", "namespace": "analysis-zrh"},
               "spec": {"resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Bound"}}),
    );
    m.dst.insert(
        "/api/v1/namespaces/analysis-zrh/pods",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "legacy-0", "namespace": "analysis-zrh"},
               "spec": {"containers": [{"name": "c", "image": "x"}],
                        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data-db-0"}}]},
               "status": {"phase": "Running"}}),
    );
    std::fs::write(m.target_dir.join("live.db"), b"written by legacy-0").expect("write");
    let out = run(&m);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("claims in use at zrh/analysis-zrh: data-db-0 (by legacy-0)"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(m.target_dir.join("live.db")).expect("still there"),
        b"written by legacy-0",
        "the claim in use was written into"
    );
}

#[test]
fn a_mover_whose_image_cannot_be_pulled_fails_the_copy_naming_the_reason() {
    let m = setup("1Gi", "{ copy: analyzer }", "");
    m.src.clear_job_entrypoint();
    let out = command(&m)
        .env("RELOCATE_STUCK_POD_SECONDS", "1")
        .output()
        .expect("run");
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("cannot start (ErrImagePull"), "{text}");
    assert!(text.contains("claim data-db-0"), "{text}");
}

/// The target's database pods run only on the tainted `db` pool, and each mounts two
/// claims: the restore's movers (the claims' first consumers, which bind them) must land
/// where the database can run, and both claims of one pod on one node. Without the
/// workload's constraints a mover lands on the general pool; without co-location the
/// scheduler spreads the two movers over two zones, and the pod could never start.
#[test]
fn restore_movers_bind_claims_where_the_workload_runs_and_one_pods_claims_together() {
    let m = setup("1Gi", MOVE, "");
    let mut set = database("1Gi");
    set["spec"]["template"]["spec"]["nodeSelector"] = json!({"pool": "db"});
    set["spec"]["template"]["spec"]["tolerations"] =
        json!([{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]);
    set["spec"]["volumeClaimTemplates"]
        .as_array_mut()
        .expect("templates")
        .push(json!({"metadata": {"name": "wal"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}));
    m.src.insert(STATEFULSETS, set);
    {
        let mut store = m.src.objects.lock().expect("lock");
        fake_kube::workloads::reconcile(&mut store);
    }
    let (wal_source, wal_target) = (m.ws.join("claims/msk-wal"), m.ws.join("claims/zrh-wal"));
    std::fs::create_dir_all(wal_source.join("pg_wal")).expect("wal");
    std::fs::create_dir_all(&wal_target).expect("wal target");
    std::fs::write(
        wal_source.join("pg_wal/000000010000000000000001"),
        vec![7u8; 65536],
    )
    .expect("segment");
    m.src.set_claim_dir("analysis", "wal-db-0", &wal_source);
    m.dst.set_claim_dir("analysis-zrh", "wal-db-0", &wal_target);
    m.dst.add_node(
        "zrh-a-1",
        &[
            ("topology.kubernetes.io/zone", "zrh-a"),
            ("pool", "general"),
        ],
        &[],
    );
    for (node, zone) in [("zrh-b-1", "zrh-b"), ("zrh-c-1", "zrh-c")] {
        m.dst.add_node(
            node,
            &[("topology.kubernetes.io/zone", zone), ("pool", "db")],
            &[("dedicated", "db", "NoSchedule")],
        );
    }
    let before = (listing(&m.source_dir), listing(&wal_source));
    let out = run(&m);
    let text = both(&out);
    assert!(out.status.success(), "run failed:\n{text}");
    assert_eq!((listing(&m.target_dir), listing(&wal_target)), before);
    let data = m.dst.claim_selected_node("analysis-zrh", "data-db-0");
    let wal = m.dst.claim_selected_node("analysis-zrh", "wal-db-0");
    assert!(
        matches!(data.as_deref(), Some("zrh-b-1" | "zrh-c-1")),
        "data-db-0 was bound for {data:?}, not a node of the database's pool"
    );
    assert_eq!(
        wal, data,
        "the pod's two claims were bound for different nodes"
    );
    // Every mover at the target carried the database's toleration.
    for job in m.dst.job_requests() {
        let spec = &job["spec"]["template"]["spec"];
        assert_eq!(spec["nodeSelector"], json!({"pool": "db"}), "{job}");
        assert_eq!(spec["tolerations"][0]["key"], "dedicated", "{job}");
    }
}

/// The database's claim names no class, and the target has no default one: it would
/// stay Pending for ever. The deploy refuses it before creating anything, naming the
/// claim and the fix, and keeps the source frozen.
#[test]
fn a_claim_without_a_class_at_a_target_without_a_default_class_is_refused_before_anything_is_created()
 {
    let m = setup("1Gi", MOVE, "");
    m.dst
        .api
        .insert_cluster_scoped("storageclasses", storage_class("standard", false));
    let out = run(&m);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("claims data-db-0 name no storage class and zrh has no default StorageClass")
            && text.contains("transform.jsonPatches"),
        "{text}"
    );
    assert!(
        m.dst
            .get(
                "/api/v1/namespaces/analysis-zrh/persistentvolumeclaims",
                "data-db-0"
            )
            .is_none(),
        "the claim was created"
    );
    assert!(m.dst.job_requests().is_empty(), "a mover was started");
    let source = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(source["spec"]["replicas"], 0, "the source was restarted");
}

/// `runAsUser`: every mover runs as the volume's user, non-root, with no capability
/// added (a `restricted` namespace admits it), and the move completes.
#[test]
fn movers_run_as_the_plans_user_without_root_or_added_capabilities() {
    let m = setup(
        "1Gi",
        MOVE,
        "        runAsUser: 999\n        runAsGroup: 998\n",
    );
    let out = run(&m);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    let jobs = [m.src.job_requests(), m.dst.job_requests()].concat();
    assert!(jobs.len() >= 4, "pack twice, restore, re-read: {jobs:?}");
    for job in &jobs {
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsUser"], 999, "{job}");
        assert_eq!(pod["securityContext"]["runAsGroup"], 998, "{job}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{job}");
        let container = &pod["containers"][0]["securityContext"];
        assert!(container["capabilities"].get("add").is_none(), "{job}");
    }
}

/// Ctrl-C while a restore runs: the run stops waiting at once (exit 130), saying the
/// movers go on in the cluster; the rerun re-attaches to the same Job and finishes.
#[test]
fn ctrl_c_during_a_restore_stops_waiting_and_the_rerun_re_attaches() {
    let m = setup("1Gi", MOVE, "");
    let big: Vec<u8> = (0..40_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(m.source_dir.join("big2.bin"), &big).expect("big file");
    let before = listing(&m.source_dir);
    let child = command(&m)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let restores = || -> Vec<String> {
        m.dst
            .job_requests()
            .iter()
            .filter(|j| {
                j["spec"]["template"]["spec"]["containers"][0]["args"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "restore"))
            })
            .filter_map(|j| j["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while restores().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let interrupted_at = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let text = both(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        interrupted_at.elapsed() < std::time::Duration::from_secs(10),
        "the run waited {:?} for its movers after Ctrl-C",
        interrupted_at.elapsed()
    );
    assert!(
        text.contains("stopped waiting for the restore movers")
            && text.contains("they go on in analysis-zrh"),
        "{text}"
    );
    let first = restores();

    let out = run(&m);
    let text = both(&out);
    assert!(out.status.success(), "the rerun failed:\n{text}");
    assert_eq!(listing(&m.target_dir), before, "the target claim differs");
    let all = restores();
    assert!(
        all.iter().all(|n| n == &first[0]),
        "the rerun made a new restore Job instead of re-attaching: {all:?}"
    );
}

/// A deploy refusing a copy older than the source's last return to service (the
/// scenario above) must not say that "the source stays frozen" with the source
/// running, nor skip the cutover's rollback as if staged data were worth the downtime.
#[test]
fn a_deploy_refusing_a_stale_copy_does_not_claim_the_running_source_stays_frozen() {
    let m = setup("1Mi", "{ freeze: analyzer }, { copy: analyzer }", "");
    let plan = std::fs::read_to_string(m.ws.join("plan.yaml")).expect("plan");
    m.ws.write(
        "plan.yaml",
        format!("{plan}  - name: switch\n    steps: [ {{ deploy: analyzer }} ]\n"),
    );
    let first = run(&m);
    assert!(!first.status.success(), "{}", both(&first));
    let out = rollback(&m, "switch");
    assert!(out.status.success(), "{}", both(&out));
    let mut set = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(set["spec"]["replicas"], 1, "the source serves again");
    set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
        json!("1Gi");
    m.src.insert(STATEFULSETS, set);
    let second = run(&m);
    let text = both(&second);
    assert!(!second.status.success(), "{text}");
    assert!(
        text.contains("did not run under the source's current freeze"),
        "{text}"
    );
    assert!(
        !text.contains("the source stays frozen"),
        "the failure says a running source stays frozen:\n{text}"
    );
    let source = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(source["spec"]["replicas"], 1, "the source stopped serving");
}

/// A restore as the plan's `runAsUser` (here nobody, as the fake kubelet runs it) of a
/// volume holding other users' files cannot give them their owner: the deploy fails
/// right after the restore, naming the claim, a file and `runAsUser`, not later on a
/// re-read that says nothing of why.
#[test]
fn a_restore_as_run_as_user_that_cannot_restore_owners_fails_naming_them() {
    use std::os::unix::fs::PermissionsExt;
    let m = setup(
        "1Gi",
        MOVE,
        "        runAsUser: 65534\n        runAsGroup: 65534\n",
    );
    m.dst.run_pods_as_their_user();
    for dir in [m.ws.path().to_path_buf(), m.ws.join("claims")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::os::unix::fs::chown(&m.target_dir, Some(65534), Some(65534)).expect("chown");
    let out = run(&m);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("claim data-db-0:")
            && text.contains("could not be given their owner (")
            && text.contains("data/a.txt")
            && text.contains("runAsUser"),
        "{text}"
    );
    assert!(
        m.dst
            .get(&STATEFULSETS.replace("/analysis/", "/analysis-zrh/"), "db")
            .is_none(),
        "the StatefulSet was applied to the target"
    );
}

/// Attempt 1 restores and re-reads the claim, then its rollout times out (rolled
/// back). A pod at the target still mounts the claim when attempt 2 deploys. The
/// rollback forgot attempt 1's checks (the pod may have written since), so attempt 2
/// neither carries them into its evidence nor writes under the pod: it refuses the
/// claim in use, naming the pod; once the pod is gone it restores and re-reads anew.
#[test]
fn a_deploy_after_a_rollback_re_checks_claims_instead_of_carrying_over_the_old_checks() {
    let m = setup(
        "1Gi",
        "{ copy: analyzer }, { freeze: analyzer }, { copy: analyzer }, { deploy: analyzer }",
        "",
    );
    let plan = std::fs::read_to_string(m.ws.join("plan.yaml")).expect("plan");
    m.ws.write(
        "plan.yaml",
        plan.replace("waitTimeout: 20s", "waitTimeout: 2s"),
    );
    m.dst.api.rollout_polls(1_000_000);
    let first = run(&m);
    assert!(!first.status.success(), "{}", both(&first));
    assert!(
        both(&first).contains("re-read at zrh before the workload starts"),
        "{}",
        both(&first)
    );
    m.dst.api.rollout_polls(0);
    m.dst.insert(
        "/api/v1/namespaces/analysis-zrh/pods",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "db-0", "namespace": "analysis-zrh"},
               "spec": {"containers": [{"name": "db", "image": "x"}],
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]},
               "status": {"phase": "Running"}}),
    );
    let second = run(&m);
    let text = both(&second);
    assert!(!second.status.success(), "{text}");
    assert!(
        text.contains("claims in use at zrh/analysis-zrh: data-db-0 (by db-0)"),
        "{text}"
    );
    assert!(!text.contains("not restored again"), "{text}");
    m.dst.objects.lock().expect("lock").remove(&(
        "/api/v1/namespaces/analysis-zrh/pods".to_owned(),
        "db-0".to_owned(),
    ));
    let third = run(&m);
    let text = both(&third);
    assert!(third.status.success(), "{text}");
    let statement = evidence(&m.ws);
    let volume = &statement["predicate"]["workloads"][0]["volumes"][0];
    assert_eq!(statement["predicate"]["attempt"], 3, "{statement}");
    assert_eq!(volume["checked"], "reread", "{volume}");
    assert_eq!(volume["checkedIn"], "cutover attempt 3", "{volume}");
}

/// The source's database pod runs on a node relabelled since it was scheduled: the
/// StatefulSet's `nodeSelector` no longer matches it (selectors are checked only at
/// scheduling). The seed's mover must run where the pod holds the claim attached,
/// with the workload's toleration for that node's taint, not wait for a node that
/// matches both the pin and the selector (there is none).
#[test]
fn a_seed_reads_the_claim_on_the_node_holding_it_even_when_that_node_no_longer_matches_the_workloads_selector()
 {
    let m = setup("1Gi", "{ copy: analyzer }", "");
    let mut set = database("1Gi");
    set["spec"]["template"]["spec"]["nodeSelector"] = json!({"pool": "db"});
    set["spec"]["template"]["spec"]["tolerations"] =
        json!([{"key": "dedicated", "operator": "Exists"}]);
    m.src.insert(STATEFULSETS, set);
    m.src.add_node(
        "msk-1",
        &[("pool", "legacy")],
        &[("dedicated", "db", "NoSchedule")],
    );
    m.src.add_node(
        "msk-2",
        &[("pool", "db")],
        &[("dedicated", "db", "NoSchedule")],
    );
    m.src.insert(
        "/api/v1/namespaces/analysis/pods",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "db-0-on-msk-1", "namespace": "analysis"},
               "spec": {"nodeName": "msk-1", "containers": [{"name": "db", "image": "x"}],
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]},
               "status": {"phase": "Running"}}),
    );
    let out = command(&m)
        .env("RELOCATE_STUCK_POD_SECONDS", "2")
        .output()
        .expect("run");
    let text = both(&out);
    assert!(
        out.status.success(),
        "the seed did not run on msk-1:\n{text}"
    );
    for job in m.src.job_requests() {
        let spec = &job["spec"]["template"]["spec"];
        assert_eq!(spec["tolerations"][0]["key"], "dedicated", "{job}");
    }
}

/// A claim too small for its data keeps the source frozen, and the fix its message
/// names (a storage request raised through `transform.jsonPatches`) is a plan change,
/// which the record refuses (it is bound to the plan it started with). The failure
/// must say so, and the way out it gives (roll back with this plan, then run the
/// changed one from a new state directory) must work.
#[test]
fn a_source_kept_frozen_says_a_fix_in_the_plan_needs_a_rollback_and_a_new_state_dir() {
    let m = setup("1Mi", MOVE, "");
    let out = run(&m);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("a fix in the plan means `relocate rollback plan.yaml --stage cutover` first, then the changed plan with a new --state-dir"),
        "{text}"
    );
    let plan = std::fs::read_to_string(m.ws.join("plan.yaml")).expect("plan");
    m.ws.write("plan.yaml", plan.replace("timeout: 60s", "timeout: 61s"));
    let refused = run(&m);
    assert!(
        both(&refused).contains("the record is bound to the plan it started with"),
        "{}",
        both(&refused)
    );
    m.ws.write("plan.yaml", &plan);
    let out = rollback(&m, "cutover");
    assert!(out.status.success(), "{}", both(&out));
    let source = m.src.get(STATEFULSETS, "db").expect("source");
    assert_eq!(source["spec"]["replicas"], 1, "the source serves again");
}

/// A pod's second claim is restored after its first (on the first's node): its mover
/// gets the whole `timeout` from its own start, not what the first one left of it.
/// Each restore here takes 4 s of a 6 s timeout; the two together take more.
#[test]
fn a_claim_restored_after_the_claim_its_pod_mounts_with_it_gets_its_own_timeout() {
    let m = setup("1Gi", MOVE, "");
    let plan = std::fs::read_to_string(m.ws.join("plan.yaml")).expect("plan");
    m.ws.write("plan.yaml", plan.replace("timeout: 60s", "timeout: 6s"));
    let (wal_source, wal_target) = with_wal(&m);
    for claim in ["data-db-0", "wal-db-0"] {
        m.dst.delay_pods_of_claim("analysis-zrh", claim, 4);
    }
    let out = run(&m);
    let text = both(&out);
    assert!(out.status.success(), "run failed:\n{text}");
    assert_eq!(listing(&wal_target), listing(&wal_source));
}

/// Ctrl-C while the deploy waits for its restore movers stops the run at once (exit
/// 130), leaving the movers to the cluster and nothing applied at the target; the
/// rerun re-attaches and finishes. It waited for every mover (and the re-read) and
/// then applied the workload, though the operator had asked it to stop.
#[test]
fn ctrl_c_during_a_restore_stops_the_run_before_the_workload_is_applied_and_the_rerun_finishes() {
    let m = setup("1Gi", MOVE, "");
    m.dst.delay_pods_of_claim("analysis-zrh", "data-db-0", 8);
    let mut child = command(&m)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn relocate");
    let started = std::time::Instant::now();
    let restoring = |m: &Move| {
        m.dst.job_requests().iter().any(|j| {
            j["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.contains("-4-r-"))
        })
    };
    while !restoring(&m) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no restore mover: {:?} {:?}",
            m.dst
                .job_requests()
                .iter()
                .map(|j| j["metadata"]["name"].clone())
                .collect::<Vec<_>>(),
            child.try_wait()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let sent = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if sent.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("relocate did not stop");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(4),
        "Ctrl-C took {:?} to stop the run (exit {status:?})",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        m.dst
            .get(&STATEFULSETS.replace("/analysis/", "/analysis-zrh/"), "db")
            .is_none(),
        "the workload was applied after Ctrl-C"
    );
    let before = listing(&m.source_dir);
    let out = run(&m);
    assert!(out.status.success(), "the rerun failed:\n{}", both(&out));
    assert_eq!(listing(&m.target_dir), before, "the target claim differs");
}

/// The database gets a second claim template, `wal`, with a small file: its pod
/// mounts `data-db-0` and `wal-db-0`. Returns the wal claim's source and target dirs.
fn with_wal(m: &Move) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut set = database("1Gi");
    set["spec"]["volumeClaimTemplates"]
        .as_array_mut()
        .expect("templates")
        .push(json!({"metadata": {"name": "wal"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}));
    m.src.insert(STATEFULSETS, set);
    {
        let mut store = m.src.objects.lock().expect("lock");
        fake_kube::workloads::reconcile(&mut store);
    }
    let (wal_source, wal_target) = (m.ws.join("claims/msk-wal"), m.ws.join("claims/zrh-wal"));
    std::fs::create_dir_all(&wal_source).expect("wal");
    std::fs::create_dir_all(&wal_target).expect("wal target");
    std::fs::write(wal_source.join("segment"), vec![7u8; 4096]).expect("segment");
    m.src.set_claim_dir("analysis", "wal-db-0", &wal_source);
    m.dst.set_claim_dir("analysis-zrh", "wal-db-0", &wal_target);
    (wal_source, wal_target)
}

/// The first claim's mover pod is gone by the time the second claim's mover starts
/// (garbage-collected, or its node drained): the second is still restored on the node
/// the first claim was provisioned for, not wherever spreading puts it (another zone,
/// where the database's pod could never mount both).
#[test]
fn a_pods_second_claim_binds_next_to_the_first_even_when_the_first_movers_pod_is_gone() {
    let m = setup("1Gi", MOVE, "");
    let (wal_source, wal_target) = with_wal(&m);
    for (node, zone) in [("zrh-a-1", "zrh-a"), ("zrh-b-1", "zrh-b")] {
        m.dst
            .add_node(node, &[("topology.kubernetes.io/zone", zone)], &[]);
    }
    m.dst.gc_succeeded_pods();
    let out = run(&m);
    let text = both(&out);
    // Both claims were restored; the first mover's report is then refused, as its pod
    // (which alone seals the report, through its termination message) is gone.
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("claim data-db-0: the restore report is refused: no succeeded pod of the Job is left to vouch for it"),
        "{text}"
    );
    assert_eq!(listing(&wal_target), listing(&wal_source));
    let data = m.dst.claim_selected_node("analysis-zrh", "data-db-0");
    let wal = m.dst.claim_selected_node("analysis-zrh", "wal-db-0");
    assert!(data.is_some(), "data-db-0 was never bound");
    assert_eq!(
        wal, data,
        "the pod's two claims were bound for different nodes"
    );
}

/// The target already holds the pod's `wal` claim, provisioned for a node in zone b
/// (adopted). The first claim's mover must run there too: spread elsewhere, it would
/// bind `data` in zone a, and the database's pod could never mount both.
#[test]
fn a_pods_first_claim_binds_where_an_adopted_claim_it_is_mounted_with_was_provisioned() {
    let m = setup("1Gi", MOVE, "      adopt: true\n");
    let (wal_source, wal_target) = with_wal(&m);
    for (node, zone) in [("zrh-a-1", "zrh-a"), ("zrh-b-1", "zrh-b")] {
        m.dst
            .add_node(node, &[("topology.kubernetes.io/zone", zone)], &[]);
    }
    m.dst.insert(
        "/api/v1/namespaces/analysis-zrh/persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "wal-db-0", "namespace": "analysis-zrh",
                            "annotations": {"volume.kubernetes.io/selected-node": "zrh-b-1"}},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
               "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}),
    );
    let out = run(&m);
    let text = both(&out);
    assert!(out.status.success(), "run failed:\n{text}");
    assert_eq!(listing(&wal_target), listing(&wal_source));
    assert_eq!(
        m.dst
            .claim_selected_node("analysis-zrh", "data-db-0")
            .as_deref(),
        Some("zrh-b-1"),
        "data-db-0 was bound away from the node its pod's wal claim is on"
    );
}

/// No node at the target takes the database's pods (no `pool: db` node): the restore
/// mover, which carries the workload's selector, is never scheduled. The failure must
/// say that, with the scheduler's reason, not that the claim stayed Pending "after its
/// restore pod was scheduled" and point at the storage class.
#[test]
fn a_restore_mover_no_node_can_take_fails_with_the_schedulers_reason() {
    let m = setup("1Gi", MOVE, "");
    let plan = std::fs::read_to_string(m.ws.join("plan.yaml")).expect("plan");
    m.ws.write("plan.yaml", plan.replace("timeout: 60s", "timeout: 4s"));
    let mut set = database("1Gi");
    set["spec"]["template"]["spec"]["nodeSelector"] = json!({"pool": "db"});
    m.src.insert(STATEFULSETS, set);
    m.dst.add_node("zrh-a-1", &[("pool", "general")], &[]);
    let out = run(&m);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("claim data-db-0")
            && text.contains("its pod was never scheduled (Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector")
            && text.contains("still so after 4s")
            && text.contains("The Job was deleted"),
        "{text}"
    );
    assert!(
        !text.contains("after its restore pod was scheduled"),
        "{text}"
    );
}

/// `rollback --source-only` leaves the target's database running on its claims: the
/// restore and re-read made before no longer vouch for what they hold. The next deploy
/// (same packed data) must not carry those checks over into its evidence; it refuses
/// the claims in use, naming them.
#[test]
fn a_source_only_rollback_forgets_the_target_claims_checks() {
    let m = setup("1Gi", MOVE, "");
    let out = run(&m);
    assert!(out.status.success(), "{}", both(&out));
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .args([
            "rollback",
            "plan.yaml",
            "--stage",
            "cutover",
            "--source-only",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .current_dir(m.ws.path())
        .output()
        .expect("rollback");
    assert!(out.status.success(), "{}", both(&out));
    let out = run(&m);
    let text = both(&out);
    assert!(
        !out.status.success(),
        "the earlier checks were carried over:\n{text}"
    );
    assert!(
        text.contains("claims in use at zrh/analysis-zrh: data-db-0 (by db-0)"),
        "{text}"
    );
}
