//! A bandwidth cap shared by all transfers of a workload: one token bucket.
//!
//! Tokens are bytes; the bucket refills at `rate` bytes per second up to one second's
//! worth. A transfer takes tokens for each chunk before forwarding it; when the bucket
//! runs dry it waits exactly as long as the deficit takes to refill, so the cap holds
//! across any number of concurrent objects (not a sleep per object).

use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Mutex;

/// A shared byte-rate limiter.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A limiter of `bytes_per_second`.
    pub fn new(bytes_per_second: u64) -> Self {
        let rate = bytes_per_second.max(1) as f64;
        Self {
            rate,
            burst: rate,
            state: Mutex::new(Bucket {
                tokens: rate,
                last: Instant::now(),
            }),
        }
    }

    /// Wait until `n` bytes may pass.
    ///
    /// Callers are served in lock order; the lock is held while waiting so that a large
    /// request is not starved by a stream of small ones.
    pub async fn acquire(&self, n: u64) {
        let mut b = self.state.lock().await;
        let now = Instant::now();
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * self.rate).min(self.burst);
        b.last = now;
        b.tokens -= n as f64;
        if b.tokens < 0.0 {
            let wait = Duration::from_secs_f64(-b.tokens / self.rate);
            tokio::time::sleep(wait).await;
            b.tokens = 0.0;
            b.last = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn the_cap_holds_across_concurrent_transfers() {
        let limiter = Arc::new(RateLimiter::new(1_000_000));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    l.acquire(100_000).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 4 MB at 1 MB/s with a 1 MB initial burst: 3 s of waiting.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((2.9..3.2).contains(&elapsed), "{elapsed}");
    }
}
