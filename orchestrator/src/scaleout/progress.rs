//! Workers' progress lines (NDJSON on stdout, or a pod's log) and their sum, which
//! the coordinator shows as one step's progress.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::result::ShardResult;
use crate::transfer::Counters;
use crate::transfer::counters::Snapshot;

/// One line a worker prints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerLine {
    /// `progress` or `finished`.
    pub event: String,
    /// The shard.
    pub shard: u32,
    /// Its counters so far.
    pub counters: Snapshot,
    /// Failed objects, on `finished`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
}

impl WorkerLine {
    /// A progress line.
    pub fn progress(shard: u32, counters: &Counters) -> Self {
        Self {
            event: "progress".into(),
            shard,
            counters: counters.snapshot(),
            failed: None,
        }
    }

    /// The last line.
    pub fn finished(shard: u32, counters: &Counters, result: &ShardResult) -> Self {
        Self {
            event: "finished".into(),
            shard,
            counters: counters.snapshot(),
            failed: Some(result.failed()),
        }
    }
}

/// The latest counters of every shard, summed into the step's [`Counters`].
#[derive(Debug, Default)]
pub struct Aggregate {
    latest: Mutex<BTreeMap<u32, Snapshot>>,
}

impl Aggregate {
    /// Take a worker's line (anything else on its stdout is logged, not parsed).
    pub fn take_line(&self, line: &str, into: &Counters) {
        match serde_json::from_str::<WorkerLine>(line) {
            Ok(l) => self.update(l.shard, l.counters, into),
            Err(_) if line.trim().is_empty() => {}
            Err(_) => tracing::info!("worker: {line}"),
        }
    }

    /// Record a shard's counters and refresh the sum. A shard's counters restart
    /// with each of its runs; the sum keeps the latest of each.
    pub fn update(&self, shard: u32, snapshot: Snapshot, into: &Counters) {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.insert(shard, snapshot);
        let mut sum = Snapshot::default();
        for s in latest.values() {
            sum.done_objects += s.done_objects;
            sum.done_bytes += s.done_bytes;
            sum.transferred_bytes += s.transferred_bytes;
            sum.copied += s.copied;
            sum.skipped += s.skipped;
            sum.verified += s.verified;
            sum.failed += s.failed;
            sum.pruned += s.pruned;
            sum.skipped_bytes += s.skipped_bytes;
            sum.in_flight += s.in_flight;
        }
        let set = |c: &std::sync::atomic::AtomicU64, v| c.store(v, Ordering::Relaxed);
        set(&into.done_objects, sum.done_objects);
        set(&into.done_bytes, sum.done_bytes);
        set(&into.transferred_bytes, sum.transferred_bytes);
        set(&into.copied, sum.copied);
        set(&into.skipped, sum.skipped);
        set(&into.verified, sum.verified);
        set(&into.failed, sum.failed);
        set(&into.pruned, sum.pruned);
        set(&into.skipped_bytes, sum.skipped_bytes);
        set(&into.in_flight, sum.in_flight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_keeps_each_shards_latest_line() {
        let (agg, total) = (Aggregate::default(), Counters::default());
        let line = |shard: u32, done: u64| {
            let c = Counters::default();
            Counters::add(&c.done_objects, done);
            serde_json::to_string(&WorkerLine::progress(shard, &c)).unwrap()
        };
        agg.take_line(&line(0, 5), &total);
        agg.take_line(&line(1, 7), &total);
        agg.take_line(&line(0, 9), &total);
        agg.take_line("not json: a log line", &total);
        assert_eq!(total.snapshot().done_objects, 16);
    }
}
