//! Live counters of a step, shared between the workers and the progress renderer.
//!
//! Workers bump atomics; the renderer samples them on its own clock. This keeps a
//! million per-object events off the event stream.
//!
//! Objects in flight are counted by a guard ([`InFlight`]): taken when an object's
//! transfer starts, released when it is dropped, so whatever ends the transfer (done,
//! failed, skipped, cancelled, the task aborted) the count comes back down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters of one copy or verify step.
#[derive(Debug, Default)]
pub struct Counters {
    /// Objects found so far (listing is streamed, so this grows).
    pub discovered_objects: AtomicU64,
    /// Bytes found so far.
    pub discovered_bytes: AtomicU64,
    /// Objects finished (copied, skipped, verified or failed).
    pub done_objects: AtomicU64,
    /// Bytes finished.
    pub done_bytes: AtomicU64,
    /// Bytes actually transferred (read and written), for the rate.
    pub transferred_bytes: AtomicU64,
    /// Objects copied.
    pub copied: AtomicU64,
    /// Objects skipped as already present and unchanged.
    pub skipped: AtomicU64,
    /// Objects verified.
    pub verified: AtomicU64,
    /// Objects failed (copy error, mismatch, missing, unexpected).
    pub failed: AtomicU64,
    /// Objects removed from the target because the source deleted them.
    pub pruned: AtomicU64,
    /// Bytes of objects skipped as unchanged (done without a byte moved): with
    /// `transferred_bytes` the position of a step that counts bytes still in flight.
    pub skipped_bytes: AtomicU64,
    /// The listing (or the manifest) is read to its end: `discovered_*` are the totals.
    pub listing_complete: AtomicBool,
    /// Transfers started and not yet ended (see [`InFlight`]); a batch of small files
    /// between two local directories counts as one, as it takes one slot of the
    /// workload's `concurrency`.
    pub in_flight: AtomicU64,
}

/// A consistent-enough snapshot for display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// See [`Counters::discovered_objects`].
    pub discovered_objects: u64,
    /// See [`Counters::discovered_bytes`].
    pub discovered_bytes: u64,
    /// See [`Counters::done_objects`].
    pub done_objects: u64,
    /// See [`Counters::done_bytes`].
    pub done_bytes: u64,
    /// See [`Counters::transferred_bytes`].
    pub transferred_bytes: u64,
    /// See [`Counters::copied`].
    pub copied: u64,
    /// See [`Counters::skipped`].
    pub skipped: u64,
    /// See [`Counters::verified`].
    pub verified: u64,
    /// See [`Counters::failed`].
    pub failed: u64,
    /// See [`Counters::pruned`].
    pub pruned: u64,
    /// See [`Counters::skipped_bytes`].
    #[serde(default)]
    pub skipped_bytes: u64,
    /// See [`Counters::listing_complete`].
    #[serde(default)]
    pub listing_complete: bool,
    /// See [`Counters::in_flight`].
    #[serde(default)]
    pub in_flight: u64,
}

/// One transfer in flight: counted in [`Counters::in_flight`] from [`Counters::start`]
/// until dropped. Taken after the transfer's concurrency permit and dropped before it,
/// so the count never exceeds the permits.
#[derive(Debug)]
#[must_use = "the transfer counts as in flight only while the guard lives"]
pub struct InFlight(Arc<Counters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// Add to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A transfer starts: counted in flight until the guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Mark the totals as final.
    pub fn listing_done(&self) {
        self.listing_complete.store(true, Ordering::Relaxed);
    }

    /// Read all counters.
    pub fn snapshot(&self) -> Snapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            discovered_objects: r(&self.discovered_objects),
            discovered_bytes: r(&self.discovered_bytes),
            done_objects: r(&self.done_objects),
            done_bytes: r(&self.done_bytes),
            transferred_bytes: r(&self.transferred_bytes),
            copied: r(&self.copied),
            skipped: r(&self.skipped),
            verified: r(&self.verified),
            failed: r(&self.failed),
            pruned: r(&self.pruned),
            skipped_bytes: r(&self.skipped_bytes),
            listing_complete: self.listing_complete.load(Ordering::Relaxed),
            in_flight: r(&self.in_flight),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_transfer_leaves_the_in_flight_count_however_it_ends() {
        let counters = Arc::new(Counters::default());
        // Ended normally.
        let guard = counters.start();
        assert_eq!(counters.snapshot().in_flight, 1);
        drop(guard);
        assert_eq!(counters.snapshot().in_flight, 0);
        // A task that panics, and one aborted before it was ever polled.
        let c = counters.clone();
        let panicked = tokio::spawn(async move {
            let _g = c.start();
            panic!("the transfer failed hard");
        });
        assert!(panicked.await.is_err());
        let guard = counters.start();
        let aborted = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            drop(guard);
        });
        assert_eq!(counters.snapshot().in_flight, 1);
        aborted.abort();
        assert!(aborted.await.is_err());
        assert_eq!(counters.snapshot().in_flight, 0);
    }
}
