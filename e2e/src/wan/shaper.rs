//! The link's bandwidth: one token bucket per direction, shared by every connection, as a
//! real link is shared by every flow crossing it.
//!
//! Tokens are bytes, refilled every [`TICK`] with a tick's worth of the rate; the bucket
//! holds at most two ticks' worth, so a burst after an idle moment stays short and the
//! measured rate over any fraction of a second stays close to the configured one. The
//! bucket itself is the `leaky-bucket` crate's (fair: waiting senders are served in
//! order).

use std::time::Duration;

use leaky_bucket::RateLimiter;

/// How often the bucket refills.
const TICK: Duration = Duration::from_millis(20);

/// Largest single take, so one big read cannot hog the link for long.
pub(super) const MAX_TAKE: usize = 16 << 10;

/// One direction's bandwidth.
#[derive(Debug)]
pub struct Shaper {
    bucket: RateLimiter,
}

impl Shaper {
    /// A link of `bytes_per_second` in this direction.
    pub fn new(bytes_per_second: u64) -> Self {
        let per_tick = (bytes_per_second as f64 * TICK.as_secs_f64()).ceil().max(1.0) as usize;
        let bucket = RateLimiter::builder()
            .initial(0)
            .refill(per_tick)
            .interval(TICK)
            .max((per_tick * 2).max(MAX_TAKE))
            .fair(true)
            .build();
        Self { bucket }
    }

    /// Wait until `n` bytes may cross.
    pub async fn take(&self, n: usize) {
        let mut left = n;
        while left > 0 {
            let now = left.min(MAX_TAKE);
            self.bucket.acquire(now).await;
            left -= now;
        }
    }
}
