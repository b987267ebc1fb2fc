//! Streaming SHA-256 that can also hash two independent streams at once.
//!
//! relocate's copy and verify hash every byte twice, and with SHA-256 that hashing is most
//! of its CPU time on large local moves (2.8 of about 4 CPU-seconds for 8 × 256 MiB,
//! `perf stat`). `sha2` hashes one stream at a time, and one stream cannot go faster than
//! the SHA unit's round latency; two streams interleaved run 1.5–1.8× faster per core
//! (see `sha_ni`). relocate's local copy and verify read two objects side by side and feed
//! them through [`Sha256Stream::update_pair`].
//!
//! Blocks go through `sha_ni` where the CPU has the SHA extensions and through `sha2`'s
//! own compression function elsewhere; buffering and padding follow FIPS 180-4 §5.1.1,
//! and every path is tested against `sha2` below.
//!
//! This is the workspace's one crate allowed `unsafe`, for exactly two calls into
//! `#[target_feature]` functions, each after the CPU check. The kernels themselves are
//! safe code: intrinsics on values, message words built from byte slices.

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

#[cfg(target_arch = "x86_64")]
mod sha_ni;

/// SHA-256 of one stream, fed as its bytes arrive.
#[derive(Clone)]
pub struct Sha256Stream {
    state: [u32; 8],
    /// Bytes of an incomplete block carried to the next update.
    pending: [u8; BLOCK],
    filled: usize,
    length: u64,
}

impl Default for Sha256Stream {
    fn default() -> Self {
        Sha256Stream {
            state: H0,
            pending: [0; BLOCK],
            filled: 0,
            length: 0,
        }
    }
}

impl Sha256Stream {
    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let rest = self.top_up(bytes);
        self.absorb(rest);
    }

    /// Feed `x` to `a` and `y` to `b`, hashing the blocks they have in common side by side.
    pub fn update_pair(a: &mut Self, x: &[u8], b: &mut Self, y: &[u8]) {
        let (x, y) = (a.top_up(x), b.top_up(y));
        let both = x.len().min(y.len()) / BLOCK * BLOCK;
        let (x, y) = if both > 0 && engine() == Engine::ShaNi {
            compress_pair(&mut a.state, &x[..both], &mut b.state, &y[..both]);
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
            compress(&mut self.state, &self.pending);
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
        compress(&mut self.state, &rest[..whole]);
        let tail = &rest[whole..];
        self.pending[..tail.len()].copy_from_slice(tail);
        self.filled = tail.len();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// The x86 SHA extensions (`sha_ni`).
    ShaNi,
    /// `sha2`'s compression function, one block per call.
    Portable,
}

/// Which block function this CPU gets (std caches the CPU check).
fn engine() -> Engine {
    #[cfg(target_arch = "x86_64")]
    if crate::sha_ni::available() {
        return Engine::ShaNi;
    }
    Engine::Portable
}

fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    if engine() == Engine::ShaNi {
        // SAFETY: `engine()` is `ShaNi` only when `sha_ni::available()` found every
        // feature the function is compiled for on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            crate::sha_ni::compress(state, blocks)
        };
        return;
    }
    for block in blocks.chunks_exact(BLOCK) {
        let block = sha2::digest::generic_array::GenericArray::from_slice(block);
        sha2::compress256(state, std::slice::from_ref(block));
    }
}

/// Both streams' blocks at once; only called when the engine is `ShaNi`.
fn compress_pair(sa: &mut [u32; 8], a: &[u8], sb: &mut [u32; 8], b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: as in `compress`: callers check that the engine is `ShaNi`.
        #[allow(unsafe_code)]
        unsafe {
            crate::sha_ni::compress_pair(sa, a, sb, b)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        compress(sa, a);
        compress(sb, b);
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;

    /// Deterministic bytes (the high byte of a Weyl sequence), so a failure reproduces.
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let step = 0x9E37_79B9_7F4A_7C15u64;
        (1..=n as u64)
            .map(|i| (seed.wrapping_add(i).wrapping_mul(step) >> 56) as u8)
            .collect()
    }

    fn reference(data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    #[test]
    fn known_answers() {
        let digest = |data: &[u8]| {
            let mut h = Sha256Stream::default();
            h.update(data);
            hex::encode(h.finish())
        };
        assert_eq!(
            digest(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            digest(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn every_length_around_the_padding_boundaries_matches_sha2() {
        for n in 0..=300 {
            let data = bytes(n as u64, n);
            let mut h = Sha256Stream::default();
            h.update(&data);
            assert_eq!(h.finish(), reference(&data), "length {n}");
        }
    }

    #[test]
    fn any_split_of_the_input_matches_sha2() {
        let data = bytes(7, 5_000);
        for step in [1, 3, 63, 64, 65, 127, 1000, 4999] {
            let mut h = Sha256Stream::default();
            for part in data.chunks(step) {
                h.update(part);
            }
            assert_eq!(h.finish(), reference(&data), "parts of {step}");
        }
    }

    #[test]
    fn pairs_of_unequal_streams_match_sha2_for_each() {
        // Different lengths and chunk sizes, so pairs start and end on different offsets:
        // pending partial blocks on either side, one side running out first.
        let cases = [
            (0usize, 0usize, 64usize, 64usize),
            (1, 200, 32, 32),
            (100_000, 65_537, 32_768, 32_768),
            (4_096, 70_000, 1_000, 777),
            (333, 333, 7, 64),
            (1 << 20, (1 << 20) + 63, 32_768, 32_768),
        ];
        for (i, (na, nb, ca, cb)) in cases.into_iter().enumerate() {
            let (a, b) = (bytes(i as u64 * 2 + 1, na), bytes(i as u64 * 2 + 2, nb));
            let (mut ha, mut hb) = (Sha256Stream::default(), Sha256Stream::default());
            let (mut pa, mut pb) = (a.chunks(ca), b.chunks(cb));
            loop {
                match (pa.next(), pb.next()) {
                    (None, None) => break,
                    (Some(x), Some(y)) => Sha256Stream::update_pair(&mut ha, x, &mut hb, y),
                    (Some(x), None) => Sha256Stream::update_pair(&mut ha, x, &mut hb, &[]),
                    (None, Some(y)) => hb.update(y),
                }
            }
            assert_eq!(ha.finish(), reference(&a), "case {i}: first stream");
            assert_eq!(hb.finish(), reference(&b), "case {i}: second stream");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_pairs_of_streams_in_random_pieces_match_sha2(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
            pieces in proptest::collection::vec((1usize..700, 1usize..700), 1..12),
        ) {
            let (mut ha, mut hb) = (Sha256Stream::default(), Sha256Stream::default());
            let (mut x, mut y) = (&a[..], &b[..]);
            for (n, m) in pieces.iter().cycle().take(64) {
                let (px, rx) = x.split_at((*n).min(x.len()));
                let (py, ry) = y.split_at((*m).min(y.len()));
                Sha256Stream::update_pair(&mut ha, px, &mut hb, py);
                (x, y) = (rx, ry);
            }
            ha.update(x);
            hb.update(y);
            proptest::prop_assert_eq!(ha.finish(), reference(&a));
            proptest::prop_assert_eq!(hb.finish(), reference(&b));
        }
    }

    #[test]
    fn the_sha_extensions_match_sha2s_block_function() {
        let portable = |data: &[u8]| {
            let mut state = H0;
            for block in data.chunks_exact(BLOCK) {
                let block = sha2::digest::generic_array::GenericArray::from_slice(block);
                sha2::compress256(&mut state, std::slice::from_ref(block));
            }
            state
        };
        let (x, y) = (bytes(11, 64 * 40), bytes(12, 64 * 40));
        let mut one = H0;
        compress(&mut one, &x);
        assert_eq!(one, portable(&x));
        if engine() == Engine::ShaNi {
            let (mut a, mut b) = (H0, H0);
            compress_pair(&mut a, &x, &mut b, &y);
            assert_eq!((a, b), (portable(&x), portable(&y)));
        }
    }
}
