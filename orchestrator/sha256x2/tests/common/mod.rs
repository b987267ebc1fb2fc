//! Helpers shared by the integration tests: the engines this CPU runs, deterministic
//! bytes, and `sha2` as the reference.

#![allow(dead_code)]

use sha2::Digest;
use sha256x2::{Engine, Sha256Stream};

/// Every engine this CPU runs. On x86-64 Linux the CPU's own flags are read too, so a CPU
/// with the SHA extensions fails the tests if the crate does not offer its kernels.
pub fn engines() -> Vec<Engine> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") {
        let sha_ni = cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "sha_ni"));
        assert_eq!(
            Engine::Pair.available() && Engine::Single.available(),
            sha_ni,
            "/proc/cpuinfo says sha_ni = {sha_ni}"
        );
    }
    let (run, skip): (Vec<Engine>, Vec<Engine>) =
        Engine::ALL.into_iter().partition(|e| e.available());
    if !skip.is_empty() {
        eprintln!("not on this CPU, not tested: {skip:?}");
    }
    run
}

/// A stream on `engine` (which this CPU runs).
pub fn stream(engine: Engine) -> Sha256Stream {
    Sha256Stream::with_engine(engine).expect("engines() lists only engines this CPU runs")
}

/// Deterministic bytes (splitmix64), so a failure reproduces from its seed.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The digest `sha2` gives.
pub fn reference(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// Hash `data` in one `update`.
pub fn digest(engine: Engine, data: &[u8]) -> [u8; 32] {
    let mut h = stream(engine);
    h.update(data);
    h.finish()
}

/// Hash `a` and `b` side by side in `update_pair` pieces of `piece` bytes (the shorter
/// stream's end is fed as empty pieces), then finish both.
pub fn digest_pair(engine: Engine, a: &[u8], b: &[u8], piece: usize) -> ([u8; 32], [u8; 32]) {
    let (mut ha, mut hb) = (stream(engine), stream(engine));
    let (mut pa, mut pb) = (a.chunks(piece), b.chunks(piece));
    loop {
        match (pa.next(), pb.next()) {
            (None, None) => break,
            (x, y) => Sha256Stream::update_pair(
                &mut ha,
                x.unwrap_or_default(),
                &mut hb,
                y.unwrap_or_default(),
            ),
        }
    }
    (ha.finish(), hb.finish())
}
