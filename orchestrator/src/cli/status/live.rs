//! What `relocate status` says of the step a run is in the middle of. The database
//! holds a step's counts only once it ends; while a run holds the state, its live file
//! (`live.json`, rewritten every second, see [`crate::watch::live`]) has the running
//! step's counters: objects and bytes done of the total, objects in flight, and the
//! bytes moved since the step started, hence its rate.
//!
//! The live file is believed only when the process holding the run lock wrote it: a
//! file left by a killed run says nothing about the present.

use bytesize::ByteSize;
use serde_json::{Value, json};

use crate::state::StateDir;
use crate::watch::live::{self, Live};

/// The live view of the run holding the state (`holder`, as the lock names it).
pub(super) fn read(dir: &StateDir, holder: Option<&str>) -> Option<Live> {
    live::present(live::read(&live::path_in(dir.root())), holder).filter(|l| !l.finished)
}

/// The running step's counters (`None` unless step `index` of `stage` is the live
/// step): counts, bytes done of the total, objects in flight, and the average rate
/// since `started_at` (the step row's start, RFC 3339).
pub(super) fn step(
    live: Option<&Live>,
    stage: &str,
    index: usize,
    started_at: Option<&str>,
) -> Option<Value> {
    let step = live?.step.as_ref()?;
    if step.stage != stage || step.step != index + 1 {
        return None;
    }
    let Some(c) = step.counters else {
        return Some(json!({ "description": step.description }));
    };
    let seconds = started_at
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).as_seconds_f64())
        .filter(|s| *s > 0.0);
    let rate = seconds.map(|s| (c.transferred_bytes as f64 / s) as u64);
    let position = c.done_bytes.max(c.skipped_bytes + c.transferred_bytes);
    Some(json!({
        "description": step.description,
        "counters": c,
        "doneBytes": position,
        "seconds": seconds,
        "bytesPerSecond": rate,
    }))
}

/// One line's worth of a running step: `— 120/2001 objects, 3 in flight, 1.2 MiB/2.0
/// GiB, 512 KiB/s`.
pub(super) fn step_text(kind: &str, v: &Value) -> String {
    let c = &v["counters"];
    if !c.is_object() {
        return v["description"]
            .as_str()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
    }
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let more = if c["listing_complete"] == true {
        ""
    } else {
        "+"
    };
    let iec = |b: u64| ByteSize::b(b).display().iec().to_string();
    let counts = match kind {
        "copy" => format!(
            "{} copied, {} unchanged, {} failed",
            n("copied"),
            n("skipped"),
            n("failed")
        ),
        _ => format!("{} verified, {} failed", n("verified"), n("failed")),
    };
    let rate = v["bytesPerSecond"]
        .as_u64()
        .map(|r| format!(", {}/s", iec(r)))
        .unwrap_or_default();
    format!(
        " — {}/{}{more} objects ({counts}), {} in flight, {}/{}{more}{rate}",
        n("done_objects"),
        n("discovered_objects"),
        n("in_flight"),
        iec(v["doneBytes"].as_u64().unwrap_or(0)),
        iec(n("discovered_bytes")),
    )
}

/// Objects of `workload` in flight now: the live step's count when it works on this
/// workload, else none (rows a run announced but has not finished are not in flight).
pub(super) fn in_flight(live: Option<&Live>, workload: &str) -> u64 {
    live.and_then(|l| l.step.as_ref())
        .filter(|s| s.workload.as_deref() == Some(workload))
        .and_then(|s| s.counters)
        .map_or(0, |c| c.in_flight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::counters::Snapshot;
    use crate::watch::live::LiveStep;

    fn live() -> Live {
        Live {
            pid: 42,
            step: Some(LiveStep {
                stage: "seed".into(),
                step: 1,
                kind: "copy".into(),
                workload: Some("data".into()),
                description: "copy data".into(),
                counters: Some(Snapshot {
                    discovered_objects: 2001,
                    discovered_bytes: 2001 << 20,
                    done_objects: 100,
                    done_bytes: 100 << 20,
                    transferred_bytes: 102 << 20,
                    copied: 100,
                    in_flight: 4,
                    listing_complete: true,
                    ..Snapshot::default()
                }),
            }),
            ..Live::default()
        }
    }

    #[test]
    fn the_running_step_shows_counts_bytes_in_flight_and_rate() {
        let l = live();
        let started = (chrono::Utc::now() - chrono::Duration::seconds(10)).to_rfc3339();
        assert!(step(Some(&l), "seed", 1, Some(&started)).is_none());
        assert!(step(Some(&l), "other", 0, Some(&started)).is_none());
        let v = step(Some(&l), "seed", 0, Some(&started)).expect("live step");
        let text = step_text("copy", &v);
        assert!(
            text.starts_with(" — 100/2001 objects (100 copied, 0 unchanged, 0 failed), 4 in flight, 102.0 MiB/2.0 GiB, "),
            "{text}"
        );
        let rate = v["bytesPerSecond"].as_u64().expect("rate");
        assert!((9 << 20..=11 << 20).contains(&rate), "{rate}");
        assert_eq!(in_flight(Some(&l), "data"), 4);
        assert_eq!(in_flight(Some(&l), "logs"), 0);
        assert_eq!(in_flight(None, "data"), 0);
    }
}
