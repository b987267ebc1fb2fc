//! Coordinator figures for scale-out: split time and peak memory at 1M keys, merge
//! (a shard's rows replacing its range in the state database) at 1M rows.
//! `cargo run --release -p e2e --example scaleout_figures [keys]`

use std::time::Instant;

use orchestrator::scaleout::split::Splitter;
use orchestrator::state::{Db, ShardRow};
use orchestrator::transfer::KeyRange;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let key = |i: u64| {
        format!(
            "tenant-{:04}/2026/11/{:02}/event-{i:010}.json.gz",
            i % 3001,
            i % 30
        )
    };
    let before = peak_rss_mib();
    let start = Instant::now();
    let mut splitter = Splitter::new(64);
    for i in 0..keys {
        splitter.push(&key(i), (i * 7919) % 4_000_000);
    }
    let split = splitter.finish();
    println!(
        "split: {keys} keys into {} ranges in {:.2} s; peak RSS {:.0} MiB (was {before:.0} MiB before)",
        split.shards.len(),
        start.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let dir = tempfile::tempdir()?;
    let db = Db::open(&dir.path().join("state.db"))?;
    let mut i = 0u64;
    let start = Instant::now();
    let merged = db.replace_range("w", &KeyRange::default(), || {
        if i >= keys {
            return Ok(None);
        }
        let page: Vec<ShardRow> = (i..(i + 4096).min(keys))
            .map(|n| ShardRow {
                key: format!("k{n:012}"),
                size: n,
                etag: Some(format!("\"{n:x}\"")),
                modified: Some("2026-11-30T12:00:00Z".into()),
                algorithm: Some("sha256".into()),
                source_hash: Some(format!("{n:064x}")),
                target_hash: None,
                status: "copied".into(),
                epoch: 1,
                error: None,
            })
            .collect();
        i += page.len() as u64;
        Ok(Some(page))
    })?;
    println!(
        "merge: {merged} rows in {:.2} s; peak RSS {:.0} MiB",
        start.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}
