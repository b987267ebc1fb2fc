//! Objects in flight (issue 17, points 1 and 2), through the library API and the real
//! binary: the copy and verify engines count a transfer from its start to its end,
//! however it ends, never more at once than the workload's `concurrency`, and back to
//! 0 when the step ends; `status` shows the running step's counts, bytes, rate and
//! objects in flight from the run's live file, and never shows the rows a killed run
//! left `copying` as in flight.

mod util;

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use orchestrator::state::Db;
use orchestrator::transfer::copy::Multipart;
use orchestrator::transfer::ratelimit::RateLimiter;
use orchestrator::transfer::{
    CopyJob, Counters, KeyFilter, VerifyJob, copy_workload, verify_workload,
};
use plans::ChecksumAlgorithm;
use tokio_util::sync::CancellationToken;
use util::{Workspace, header, stdout};

const CONCURRENCY: usize = 4;

async fn source(n: usize, size: usize) -> Arc<InMemory> {
    let store = Arc::new(InMemory::new());
    for i in 0..n {
        let body: Vec<u8> = (0..size).map(|j| (i * 31 + j) as u8).collect();
        store
            .put(
                &Path::from(format!("d/f{i:04}.bin")),
                PutPayload::from(body),
            )
            .await
            .expect("seed source");
    }
    store
}

fn job(source: Arc<dyn ObjectStore>, target: Arc<dyn ObjectStore>, bandwidth: u64) -> CopyJob {
    CopyJob {
        workload: "data".into(),
        source_name: "src".into(),
        target_name: "dst".into(),
        source,
        target,
        filter: KeyFilter::all(),
        algorithm: ChecksumAlgorithm::Sha256,
        concurrency: CONCURRENCY,
        adaptive: true,
        multipart: Multipart::default(),
        limiter: Some(Arc::new(RateLimiter::new(bandwidth))),
        range: None,
        prune: false,
        server_side: None,
        memory_budget: orchestrator::transfer::copy::DEFAULT_MEMORY_BUDGET,
        local: Default::default(),
        symlinks: Default::default(),
        existing_target: Default::default(),
    }
}

/// Samples `counters.in_flight` every millisecond until stopped; the highest seen.
struct Sampler {
    stop: Arc<AtomicBool>,
    highest: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(counters: &Arc<Counters>) -> Self {
        let (stop, highest) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (c, s, h) = (counters.clone(), stop.clone(), highest.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                h.fetch_max(c.snapshot().in_flight, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Self {
            stop,
            highest,
            thread,
        }
    }

    fn highest(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler");
        self.highest.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_in_flight_never_exceed_the_concurrency_and_return_to_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("state.db")).expect("db");
    let (src, dst) = (source(60, 8 << 10).await, Arc::new(InMemory::new()));

    // Copy: 480 KiB at 192 KiB/s (a second's worth passes at once), so transfers
    // overlap for about a second and a half.
    let counters = Arc::new(Counters::default());
    let sampler = Sampler::start(&counters);
    let report = copy_workload(
        &job(src.clone(), dst.clone(), 192 << 10),
        &db,
        &counters,
        &CancellationToken::new(),
    )
    .await
    .expect("copy");
    let highest = sampler.highest();
    assert_eq!(report.copied, 60);
    assert!(
        (2..=CONCURRENCY as u64).contains(&highest),
        "at most {CONCURRENCY} in flight, and transfers did overlap: highest {highest}"
    );
    assert_eq!(counters.snapshot().in_flight, 0, "back to 0 at the end");

    // Verify, the same.
    let counters = Arc::new(Counters::default());
    let sampler = Sampler::start(&counters);
    let verify = VerifyJob {
        workload: "data".into(),
        target_name: "dst".into(),
        target: dst.clone(),
        filter: KeyFilter::all(),
        concurrency: CONCURRENCY,
        range: None,
        local: None,
        checksums: None,
    };
    let report = verify_workload(&verify, &db, &counters, &CancellationToken::new())
        .await
        .expect("verify");
    assert_eq!(report.verified, 60);
    assert!(sampler.highest() <= CONCURRENCY as u64);
    assert_eq!(counters.snapshot().in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_copy_leaves_nothing_counted_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("state.db")).expect("db");
    let (src, dst) = (source(200, 16 << 10).await, Arc::new(InMemory::new()));
    let counters = Arc::new(Counters::default());
    let cancel = CancellationToken::new();
    let stopper = {
        let (cancel, counters) = (cancel.clone(), counters.clone());
        tokio::spawn(async move {
            // Cancel while transfers are under way.
            while counters.snapshot().in_flight == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            cancel.cancel();
        })
    };
    let report = copy_workload(&job(src, dst, 512 << 10), &db, &counters, &cancel)
        .await
        .expect("copy");
    stopper.await.expect("stopper");
    assert!(report.interrupted);
    assert!(report.copied < 200, "{report:?}");
    assert_eq!(counters.snapshot().in_flight, 0);
}

// ---- the real binary -------------------------------------------------------------------

fn spawn_run(ws: &Workspace) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("relocate"))
        .current_dir(ws.path())
        .args([
            "run",
            "plan.yaml",
            "--state-dir",
            "state",
            "--output",
            "plain",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn relocate")
}

fn status(ws: &Workspace) -> String {
    stdout(&ws.relocate(&["status", "plan.yaml", "--state-dir", "state"]))
}

/// The number before ` in flight` on the workload's line.
fn workload_in_flight(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("workload data:"))
        .unwrap_or_else(|| panic!("no workload line in\n{text}"));
    line.split(", ")
        .find_map(|part| part.strip_suffix(" in flight"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no in-flight count in {line:?}"))
}

#[test]
fn status_shows_the_running_steps_counts_bytes_rate_and_in_flight_never_above_the_concurrency() {
    let ws = Workspace::new();
    // 3 MiB at 1 MiB/s: about three seconds mid-copy.
    ws.fill("src", 300, 10 << 10);
    ws.write(
        "plan.yaml",
        header("inflight").replace(
            "objects: { from: src, to: dst }",
            &format!(
                "objects: {{ from: src, to: dst, bandwidth: 1MiB/s, concurrency: {CONCURRENCY} }}"
            ),
        ) + "stages:\n  - name: seed\n    steps: [ { copy: data }, { verify: data } ]\n",
    );
    let mut run = spawn_run(&ws);
    let live = ws.join("state/live.json");
    let start = Instant::now();
    let mut highest = 0;
    let mut mid_copy = None;
    let mut samples = 0;
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(c) = std::fs::read(&live)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|l| l["step"]["counters"].clone())
            .filter(|c| c.is_object())
        {
            samples += 1;
            highest = highest.max(c["in_flight"].as_u64().expect("in_flight in live.json"));
            let done = c["done_objects"].as_u64().unwrap_or(0);
            if mid_copy.is_none() && (30..250).contains(&done) {
                let text = status(&ws);
                assert!(workload_in_flight(&text) <= CONCURRENCY as u64, "{text}");
                mid_copy = Some(text);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text =
        mid_copy.unwrap_or_else(|| panic!("never saw the copy mid-step ({samples} samples)"));
    assert!(
        highest <= CONCURRENCY as u64,
        "in flight {highest} > {CONCURRENCY}"
    );
    let step = text
        .lines()
        .find(|l| l.trim_start().starts_with("1. copy data:"))
        .unwrap_or_else(|| panic!("no copy step in\n{text}"));
    assert!(step.contains("1. copy data: running — "), "{step}");
    // `+`: the listing is still being read.
    assert!(
        step.contains("/300 objects (") || step.contains("/300+ objects ("),
        "{step}"
    );
    assert!(step.contains(" copied, 0 unchanged, 0 failed), "), "{step}");
    assert!(step.contains(" in flight, "), "{step}");
    assert!(step.contains("/2.9 MiB"), "{step}");
    assert!(step.ends_with("/s"), "the rate: {step}");
    let json: serde_json::Value = serde_json::from_slice(
        &ws.relocate(&["status", "plan.yaml", "--state-dir", "state", "--json"])
            .stdout,
    )
    .expect("json");
    let live_step = &json["stages"][0]["steps"][0]["live"];
    assert!(
        live_step["counters"]["in_flight"]
            .as_u64()
            .expect("in flight")
            <= CONCURRENCY as u64
    );
    assert!(
        live_step["bytesPerSecond"].as_u64().is_some(),
        "{live_step}"
    );

    // kill -9 mid-copy: nothing is in flight any more, whatever the rows say.
    run.kill().expect("kill -9");
    run.wait().expect("reap");
    let text = status(&ws);
    assert!(text.contains("no run is going"), "{text}");
    assert!(text.contains("1. copy data: interrupted"), "{text}");
    assert_eq!(workload_in_flight(&text), 0, "{text}");
    assert!(
        text.contains("interrupted (the next run copies them again)"),
        "the announced copies are shown as interrupted:\n{text}"
    );
}
