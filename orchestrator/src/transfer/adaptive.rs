//! Adaptive concurrency: how many objects a copy keeps in flight, found from the
//! throughput it measures instead of a fixed number.
//!
//! Across a long link every request waits a round trip, so the objects per second of a
//! fixed number in flight is that number over the round trip: 16 small objects across
//! 40 ms move at a few hundred per second whatever the link's bandwidth. The controller
//! starts at [`FLOOR`], measures the work done per window (bytes, plus a per-object
//! weight so that small objects count), and doubles the limit while each doubling still
//! pays (≥ 10% more); when one does not, it steps back to the best limit and holds. A
//! later fall to half the best rate (the objects got larger, the link busier) starts the
//! search again from there. `concurrency:` caps it (the ceiling; [`CEILING`] when unset);
//! memory stays bounded by the copy's byte budget whatever the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::Counters;

/// Objects in flight at the start (and the least ever).
pub const FLOOR: usize = 16;

/// Objects in flight at most when the plan sets no `concurrency`.
pub const CEILING: usize = 256;

/// A window lasts at least this long...
const MIN_WINDOW: Duration = Duration::from_millis(200);

/// ...and until at least this many objects completed in it (or `MAX_WINDOW` passed).
const MIN_OBJECTS: u64 = 32;

/// A window never lasts longer than this (large objects complete rarely).
const MAX_WINDOW: Duration = Duration::from_secs(2);

/// Work one object counts for beyond its bytes: a request's cost in bytes.
const OBJECT_WEIGHT: f64 = 64.0 * 1024.0;

/// A doubling must raise the rate by this factor to be kept.
const GAIN: f64 = 1.10;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Growing,
    Holding,
}

/// The limit's arithmetic, apart from clocks and semaphores so it can be tested alone.
#[derive(Debug, Clone)]
pub struct Controller {
    floor: usize,
    ceiling: usize,
    limit: usize,
    best: (usize, f64),
    phase: Phase,
}

impl Controller {
    /// Between `floor` and `ceiling` objects in flight (a floor above the ceiling is lowered).
    pub fn new(floor: usize, ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        let floor = floor.clamp(1, ceiling);
        Self {
            floor,
            ceiling,
            limit: floor,
            best: (floor, 0.0),
            phase: Phase::Growing,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// One window's measured rate (work per second at the current limit); returns the
    /// limit for the next window.
    pub fn observe(&mut self, rate: f64) -> usize {
        match self.phase {
            Phase::Growing if rate >= self.best.1 * GAIN => {
                self.best = (self.limit, rate);
                if self.limit >= self.ceiling {
                    self.phase = Phase::Holding;
                } else {
                    self.limit = (self.limit * 2).min(self.ceiling);
                }
            }
            Phase::Growing => {
                self.limit = self.best.0;
                self.phase = Phase::Holding;
            }
            Phase::Holding if rate < self.best.1 / 2.0 => {
                self.best = (self.limit, rate);
                self.phase = Phase::Growing;
                if self.limit < self.ceiling {
                    self.limit = (self.limit * 2).min(self.ceiling);
                }
            }
            Phase::Holding => {}
        }
        self.limit = self.limit.clamp(self.floor, self.ceiling);
        self.limit
    }
}

/// A copy's limit, applied to the semaphore its transfers take permits from.
#[derive(Debug)]
pub struct Adaptive {
    controller: Controller,
    sem: Arc<Semaphore>,
    completed: Arc<AtomicU64>,
    window: (Instant, u64, u64),
    /// Permits still to take out of circulation after a step back (they were in use).
    owed: usize,
}

/// Held by one transfer; counts it as completed when dropped.
#[derive(Debug)]
pub struct Done(Arc<AtomicU64>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Adaptive {
    /// Between `floor` and `ceiling`; the returned semaphore starts with `floor` permits.
    pub fn new(floor: usize, ceiling: usize, counters: &Counters) -> (Self, Arc<Semaphore>) {
        let controller = Controller::new(floor, ceiling);
        let sem = Arc::new(Semaphore::new(controller.limit()));
        let bytes = counters.transferred_bytes.load(Ordering::Relaxed);
        let adaptive = Self {
            controller,
            sem: sem.clone(),
            completed: Arc::new(AtomicU64::new(0)),
            window: (Instant::now(), 0, bytes),
            owed: 0,
        };
        (adaptive, sem)
    }

    /// A token for one transfer to hold until it ends.
    pub fn start(&self) -> Done {
        Done(self.completed.clone())
    }

    /// Close the window when it is long enough and move the limit.
    pub fn tick(&mut self, counters: &Counters) {
        if self.owed > 0 {
            self.owed -= self.sem.forget_permits(self.owed);
        }
        let (since, objects0, bytes0) = self.window;
        let elapsed = since.elapsed();
        let objects = self.completed.load(Ordering::Relaxed);
        let enough = objects - objects0 >= MIN_OBJECTS && elapsed >= MIN_WINDOW;
        if !enough && elapsed < MAX_WINDOW {
            return;
        }
        let bytes = counters.transferred_bytes.load(Ordering::Relaxed);
        let work = (bytes - bytes0) as f64 + (objects - objects0) as f64 * OBJECT_WEIGHT;
        let rate = work / elapsed.as_secs_f64();
        let before = self.controller.limit();
        let after = self.controller.observe(rate);
        if after > before {
            let repaid = (after - before).min(self.owed);
            self.owed -= repaid;
            self.sem.add_permits(after - before - repaid);
        } else if after < before {
            // Permits held by transfers in flight are forgotten as they come back.
            let owed = self.owed + before - after;
            self.owed = owed - self.sem.forget_permits(owed);
        }
        if after != before {
            tracing::debug!(
                rate,
                before,
                after,
                "adaptive concurrency: objects in flight"
            );
        }
        self.window = (Instant::now(), objects, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link of `rtt` and `capacity` objects per second: the rate `limit` objects in
    /// flight reach.
    fn link(limit: usize, rtt: f64, capacity: f64) -> f64 {
        (limit as f64 / rtt).min(capacity) * OBJECT_WEIGHT
    }

    fn settle(c: &mut Controller, rtt: f64, capacity: f64) -> usize {
        for _ in 0..20 {
            let rate = link(c.limit(), rtt, capacity);
            c.observe(rate);
        }
        c.limit()
    }

    #[test]
    fn a_long_link_gets_enough_objects_in_flight_to_fill_it() {
        // 40 ms, a server that takes 2,000 objects/s: 80 in flight fill it.
        let mut c = Controller::new(FLOOR, CEILING);
        let limit = settle(&mut c, 0.040, 2000.0);
        assert!((80..=256).contains(&limit), "{limit}");
        assert!(link(limit, 0.040, 2000.0) >= 2000.0 * OBJECT_WEIGHT * 0.99);
    }

    #[test]
    fn a_short_link_stays_near_the_floor_and_the_ceiling_caps() {
        // Loopback: the server, not the round trip, is the limit; more would only queue.
        let mut c = Controller::new(FLOOR, CEILING);
        assert!(settle(&mut c, 0.001, 2000.0) <= 2 * FLOOR);
        // `concurrency: 24` caps a long link's search.
        let mut capped = Controller::new(FLOOR, 24);
        assert_eq!(settle(&mut capped, 0.040, 2000.0), 24);
        // A ceiling under the floor is the limit.
        assert_eq!(Controller::new(FLOOR, 4).limit(), 4);
    }

    #[test]
    fn a_collapse_of_the_rate_starts_the_search_again() {
        let mut c = Controller::new(FLOOR, CEILING);
        let first = settle(&mut c, 0.001, 2000.0);
        // The link grows long (40 ms): the rate falls far below the best; search again.
        let limit = settle(&mut c, 0.040, 2000.0);
        assert!(limit > first && limit >= 64, "{first} -> {limit}");
    }

    #[tokio::test]
    async fn the_semaphore_follows_the_limit() {
        let counters = Counters::default();
        let (mut a, sem) = Adaptive::new(4, 64, &counters);
        assert_eq!(sem.available_permits(), 4);
        for _ in 0..40 {
            drop(a.start());
        }
        a.window.0 -= MAX_WINDOW;
        a.tick(&counters);
        assert_eq!(
            sem.available_permits(),
            8,
            "the first window's rate beats zero: doubled"
        );
    }
}
