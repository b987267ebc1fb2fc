//! A background clock that samples the current step's counters for a renderer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::transfer::Counters;

/// The step being sampled: a label and its counters.
pub type Current = Arc<Mutex<Option<(String, Arc<Counters>)>>>;

/// Calls `tick` with the current step every `every` until dropped.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
    current: Current,
}

impl Ticker {
    /// Start sampling.
    pub fn start(every: Duration, tick: impl Fn(&str, &Counters) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let current: Current = Arc::default();
        let (stop2, current2) = (stop.clone(), current.clone());
        let spawned = std::thread::Builder::new()
            .name("relocate-progress".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    let step = current2.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if let Some((label, counters)) = step {
                        tick(&label, &counters);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no progress ticker: {e}");
        }
        Self { stop, current }
    }

    /// Sample this step from now on (or nothing).
    pub fn set(&self, step: Option<(String, Arc<Counters>)>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = step;
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
