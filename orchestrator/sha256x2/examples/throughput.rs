//! Throughput of one stream and of a pair, per engine and against `sha2`, fed in 32 KiB
//! chunks as relocate's local copy and verify feed them. Time is the thread's CPU time
//! (`/proc/thread-self/schedstat`, wall time where that is missing), so other work on a
//! busy machine does not count; rounds alternate between the contenders so that what
//! remains (caches, frequency) hits them all alike; the median is printed.
//!
//! `cargo run --release -p sha256x2 --example throughput [MiB] [rounds]` (default 64, 9)

use std::time::Instant;

use sha2::Digest;
use sha256x2::{Engine, Sha256Stream};

const CHUNK: usize = 32 << 10;

type Contender = (String, Box<dyn Fn(&[u8], &[u8]) -> u8>);

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let mib = args.next().and_then(Result::ok).unwrap_or(64);
    let rounds = args.next().and_then(Result::ok).unwrap_or(9);
    let data: Vec<u8> = (0..mib << 20).map(|i| (i * 31 + i / 4099) as u8).collect();
    let other: Vec<u8> = data.iter().rev().copied().collect();

    let mut contenders: Vec<Contender> = vec![(
        "one stream, sha2::Sha256".into(),
        Box::new(|x: &[u8], _: &[u8]| {
            let mut h = sha2::Sha256::new();
            x.chunks(CHUNK).for_each(|c| h.update(c));
            h.finalize()[0]
        }),
    )];
    for engine in Engine::ALL.into_iter().filter(|e| e.available()) {
        contenders.push((
            format!("one stream, sha256x2 {engine:?}"),
            Box::new(move |x: &[u8], _: &[u8]| {
                let mut h = Sha256Stream::with_engine(engine).expect("available");
                x.chunks(CHUNK).for_each(|c| h.update(c));
                h.finish()[0]
            }),
        ));
    }
    contenders.push((
        "two streams, sha2 one after the other".into(),
        Box::new(|x: &[u8], y: &[u8]| {
            let (mut a, mut b) = (sha2::Sha256::new(), sha2::Sha256::new());
            for (c, d) in x.chunks(CHUNK).zip(y.chunks(CHUNK)) {
                a.update(c);
                b.update(d);
            }
            a.finalize()[0] ^ b.finalize()[0]
        }),
    ));
    for engine in Engine::ALL.into_iter().filter(|e| e.available()) {
        contenders.push((
            format!("two streams, sha256x2 update_pair {engine:?}"),
            Box::new(move |x: &[u8], y: &[u8]| {
                let mut a = Sha256Stream::with_engine(engine).expect("available");
                let mut b = a.clone();
                for (c, d) in x.chunks(CHUNK).zip(y.chunks(CHUNK)) {
                    Sha256Stream::update_pair(&mut a, c, &mut b, d);
                }
                a.finish()[0] ^ b.finish()[0]
            }),
        ));
    }

    let mut seconds = vec![Vec::new(); contenders.len()];
    let mut sink = 0u8;
    for _ in 0..rounds {
        for ((_, run), times) in contenders.iter().zip(&mut seconds) {
            let (start, cpu) = (Instant::now(), cpu_seconds());
            sink ^= run(&data, &other);
            times.push(match (cpu, cpu_seconds()) {
                (Some(before), Some(after)) => after - before,
                _ => start.elapsed().as_secs_f64(),
            });
        }
    }
    println!(
        "{mib} MiB per stream, {rounds} rounds: GB/s of bytes hashed per CPU-second, median (min–max)"
    );
    for ((name, _), times) in contenders.iter().zip(&mut seconds) {
        let streams = if name.starts_with("two") { 2.0 } else { 1.0 };
        let bytes = streams * (mib << 20) as f64;
        times.sort_by(f64::total_cmp);
        let rate = |s: f64| bytes / s / 1e9;
        let (median, fast, slow) = (times[times.len() / 2], times[0], times[times.len() - 1]);
        println!(
            "  {name:<45} {:.2} ({:.2}–{:.2})",
            rate(median),
            rate(slow),
            rate(fast)
        );
    }
    std::hint::black_box(sink);
}

/// Time this thread has run on a CPU, in seconds (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}
