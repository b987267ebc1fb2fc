//! Streaming SHA-256 that can also hash two independent streams at once.
//!
//! relocate's copy and verify hash every byte twice, and with SHA-256 that hashing is most
//! of its CPU time on large local moves (2.8 of about 4 CPU-seconds for 8 × 256 MiB,
//! `perf stat`). `sha2` hashes one stream at a time, and one stream cannot go faster than
//! the SHA unit's round latency; two streams interleaved run 1.5–1.8× faster per core
//! (see `sha_ni`). relocate's local copy and verify read two objects side by side and feed
//! them through [`Sha256Stream::update_pair`]; everything else relocate hashes, and all of
//! what the auditor's `verify` hashes, goes through `sha2`, so a bug here could not hide
//! from the auditor's check.
//!
//! How it is built, in three steps:
//! 1. [`Sha256Stream`] buffers partial blocks and pads the message (FIPS 180-4 §5.1.1);
//! 2. [`Engine`] picks the block function: the two-stream or one-stream kernel on the x86
//!    SHA extensions where the CPU has them, `sha2`'s own compression function elsewhere
//!    (`engine`);
//! 3. the kernels themselves (`sha_ni`) are safe code: intrinsics on values, message
//!    words built from byte slices.
//!
//! Every engine is checked on every CPU that runs it: NIST's CAVP vectors and a
//! differential property test against `sha2` (`tests/`), and a fuzz target (`fuzz/`).
//!
//! This is the workspace's one crate allowed `unsafe`, for exactly two calls into
//! `#[target_feature]` functions, each right after the CPU check (`engine`).

mod engine;
#[cfg(target_arch = "x86_64")]
mod sha_ni;

pub use engine::Engine;

/// Round constants (FIPS 180-4 §4.2.2).
pub(crate) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Initial hash value (FIPS 180-4 §5.3.3).
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const BLOCK: usize = 64;

/// SHA-256 of one stream, fed as its bytes arrive.
#[derive(Clone)]
pub struct Sha256Stream {
    state: [u32; 8],
    /// Available on this CPU (checked when the stream was made).
    engine: Engine,
    /// Bytes of an incomplete block carried to the next update.
    pending: [u8; BLOCK],
    filled: usize,
    length: u64,
}

impl Default for Sha256Stream {
    /// A stream on the fastest engine this CPU runs ([`Engine::best`]).
    fn default() -> Self {
        Sha256Stream {
            state: H0,
            engine: Engine::best(),
            pending: [0; BLOCK],
            filled: 0,
            length: 0,
        }
    }
}

impl Sha256Stream {
    /// A stream on `engine`, or `None` when this CPU does not run it. For tests and
    /// fuzzing, which check every engine on a CPU that has them all; use `default()`.
    #[doc(hidden)]
    pub fn with_engine(engine: Engine) -> Option<Self> {
        engine.available().then(|| Sha256Stream {
            engine,
            ..Sha256Stream::default()
        })
    }

    /// The engine compressing this stream's blocks.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let rest = self.top_up(bytes);
        self.absorb(rest);
    }

    /// Feed `x` to `a` and `y` to `b`, hashing the blocks they have in common side by side
    /// when both streams are on [`Engine::Pair`].
    pub fn update_pair(a: &mut Self, x: &[u8], b: &mut Self, y: &[u8]) {
        let (x, y) = (a.top_up(x), b.top_up(y));
        let both = x.len().min(y.len()) / BLOCK * BLOCK;
        let paired = a.engine == Engine::Pair && b.engine == Engine::Pair;
        let (x, y) = if both > 0 && paired {
            let (sa, sb) = (&mut a.state, &mut b.state);
            engine::compress_pair(Engine::Pair, sa, &x[..both], sb, &y[..both]);
            (&x[both..], &y[both..])
        } else {
            (x, y)
        };
        a.absorb(x);
        b.absorb(y);
    }

    /// The digest.
    pub fn finish(mut self) -> [u8; 32] {
        let bits = self.length.wrapping_mul(8);
        // 0x80, zeros, then the length in bits: the message ends on a block boundary.
        let zeros = (119 - (self.length % BLOCK as u64) as usize) % BLOCK;
        let mut padding = [0u8; 2 * BLOCK];
        padding[0] = 0x80;
        padding[1 + zeros..9 + zeros].copy_from_slice(&bits.to_be_bytes());
        self.update(&padding[..9 + zeros]);
        debug_assert_eq!(self.filled, 0);
        let mut digest = [0u8; 32];
        for (out, word) in digest.chunks_exact_mut(4).zip(self.state) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    /// Complete a pending partial block from `bytes`; returns what is left of `bytes`.
    /// Afterwards either nothing is pending or nothing is left.
    fn top_up<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        self.length = self.length.wrapping_add(bytes.len() as u64);
        if self.filled == 0 {
            return bytes;
        }
        let take = (BLOCK - self.filled).min(bytes.len());
        self.pending[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
        self.filled += take;
        if self.filled == BLOCK {
            engine::compress(self.engine, &mut self.state, &self.pending);
            self.filled = 0;
        }
        &bytes[take..]
    }

    /// Hash the whole blocks of `rest` (after [`Self::top_up`]) and keep its tail.
    fn absorb(&mut self, rest: &[u8]) {
        if rest.is_empty() {
            return;
        }
        let whole = rest.len() / BLOCK * BLOCK;
        engine::compress(self.engine, &mut self.state, &rest[..whole]);
        let tail = &rest[whole..];
        self.pending[..tail.len()].copy_from_slice(tail);
        self.filled = tail.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sha2`'s block function over whole blocks, the reference for the engines'.
    fn reference(state: &mut [u32; 8], blocks: &[u8]) {
        for block in blocks.chunks_exact(BLOCK) {
            let block = sha2::digest::generic_array::GenericArray::from_slice(block);
            sha2::compress256(state, std::slice::from_ref(block));
        }
    }

    #[test]
    fn every_engines_block_function_matches_sha2s() {
        let step = 0x9E37_79B9_7F4A_7C15u64;
        let x: Vec<u8> = (0..64 * 40u64)
            .map(|i| (i.wrapping_mul(step) >> 56) as u8)
            .collect();
        let y: Vec<u8> = x.iter().rev().map(|b| b ^ 0x5A).collect();
        let (mut want_x, mut want_y) = (H0, H0);
        reference(&mut want_x, &x);
        reference(&mut want_y, &y);
        for engine in Engine::ALL.into_iter().filter(|e| e.available()) {
            let mut one = H0;
            engine::compress(engine, &mut one, &x);
            assert_eq!(one, want_x, "{engine:?} alone");
            let (mut a, mut b) = (H0, H0);
            engine::compress_pair(engine, &mut a, &x, &mut b, &y);
            assert_eq!((a, b), (want_x, want_y), "{engine:?} in pairs");
        }
    }

    #[test]
    fn a_stream_is_made_on_the_engine_asked_for() {
        assert_eq!(Sha256Stream::default().engine(), Engine::best());
        for engine in Engine::ALL {
            let stream = Sha256Stream::with_engine(engine);
            assert_eq!(stream.is_some(), engine.available(), "{engine:?}");
            assert!(stream.is_none_or(|s| s.engine() == engine));
        }
        assert!(Engine::Portable.available());
    }

    #[test]
    fn a_forced_engine_runs_its_own_kernels() {
        // Unequal lengths: the pair's common blocks, then the longer one's rest alone.
        let (x, y) = ([7u8; 64 * 5 + 10], [9u8; 64 * 3]);
        for engine in Engine::ALL.into_iter().filter(|e| e.available()) {
            let (mut a, mut b) = (
                Sha256Stream::with_engine(engine),
                Sha256Stream::with_engine(engine),
            );
            let (Some(a), Some(b)) = (&mut a, &mut b) else {
                panic!("{engine:?} is available");
            };
            engine::calls::take();
            Sha256Stream::update_pair(a, &x, b, &y);
            let want = match engine {
                Engine::Pair => vec![Engine::Pair, Engine::Single],
                Engine::Single => vec![Engine::Single],
                Engine::Portable => vec![Engine::Portable],
            };
            assert_eq!(engine::calls::take(), want, "{engine:?}");
            a.update(&x);
            let alone = if engine == Engine::Portable {
                Engine::Portable
            } else {
                Engine::Single
            };
            assert_eq!(engine::calls::take(), [alone], "{engine:?} alone");
        }
    }
}
