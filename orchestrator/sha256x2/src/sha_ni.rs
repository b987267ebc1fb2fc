//! SHA-256 block compression on the x86 SHA extensions, one stream or two interleaved.
//!
//! Why two: within one stream every `sha256rnds2` waits for the one before it, so a single
//! stream leaves the SHA unit idle between rounds (1.5 GB/s per core on an AMD EPYC Zen 3,
//! the same as `sha2` and `openssl speed -evp sha256`). Two independent streams fill those
//! gaps: 2.2–2.7 GB/s per core for the pair on the same machine. Three or four streams
//! were no faster (2.3–2.8 GB/s): two already keep the unit busy.
//!
//! The code is safe Rust: the intrinsics are safe inside a `#[target_feature]` function
//! and the message words are built from byte slices, never loaded through pointers. The
//! caller (`engine`) checks the CPU right before each call. Correctness is pinned by
//! NIST's vectors and differential tests against `sha2` (`tests/`), on every engine.

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_extract_epi32, _mm_set_epi32,
    _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi32,
};

use crate::K;

/// Whether this CPU has what the functions below need: every feature of their
/// `#[target_feature]` list (`sse2` is in every x86-64, `ssse3` comes with `sse4.1`).
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse4.1")
        && std::arch::is_x86_feature_detected!("avx")
}

/// Four big-endian message words of a 64-byte block, as one vector.
macro_rules! message {
    ($block:expr, $i:expr) => {{
        let b = &$block[$i * 16..$i * 16 + 16];
        let w = |j: usize| {
            u32::from_be_bytes([b[j * 4], b[j * 4 + 1], b[j * 4 + 2], b[j * 4 + 3]]) as i32
        };
        _mm_set_epi32(w(3), w(2), w(1), w(0))
    }};
}

/// The next four schedule words from the previous sixteen (`w0` is replaced).
macro_rules! schedule {
    ($w0:ident, $w1:ident, $w2:ident, $w3:ident) => {
        $w0 = _mm_sha256msg2_epu32(
            _mm_add_epi32(_mm_sha256msg1_epu32($w0, $w1), _mm_alignr_epi8($w3, $w2, 4)),
            $w3,
        );
    };
}

/// Four rounds on the state `(abef, cdgh)` with schedule words `w` and constants `k`.
macro_rules! rounds {
    ($abef:ident, $cdgh:ident, $w:expr, $k:expr) => {
        let m = _mm_add_epi32($w, $k);
        $cdgh = _mm_sha256rnds2_epu32($cdgh, $abef, m);
        $abef = _mm_sha256rnds2_epu32($abef, $cdgh, _mm_shuffle_epi32(m, 0x0E));
    };
}

/// Constants for rounds `4i..4i+4`.
macro_rules! constants {
    ($i:expr) => {
        _mm_set_epi32(
            K[$i * 4 + 3] as i32,
            K[$i * 4 + 2] as i32,
            K[$i * 4 + 1] as i32,
            K[$i * 4] as i32,
        )
    };
}

/// The state as the two vectors `sha256rnds2` works on: ABEF and CDGH.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1,avx")]
fn load(s: &[u32; 8]) -> (__m128i, __m128i) {
    let w = |i: usize| s[i] as i32;
    (
        _mm_set_epi32(w(0), w(1), w(4), w(5)),
        _mm_set_epi32(w(2), w(3), w(6), w(7)),
    )
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1,avx")]
fn store(s: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
    s[0] = _mm_extract_epi32::<3>(abef) as u32;
    s[1] = _mm_extract_epi32::<2>(abef) as u32;
    s[4] = _mm_extract_epi32::<1>(abef) as u32;
    s[5] = _mm_extract_epi32::<0>(abef) as u32;
    s[2] = _mm_extract_epi32::<3>(cdgh) as u32;
    s[3] = _mm_extract_epi32::<2>(cdgh) as u32;
    s[6] = _mm_extract_epi32::<1>(cdgh) as u32;
    s[7] = _mm_extract_epi32::<0>(cdgh) as u32;
}

/// Compress the whole 64-byte blocks of `blocks` into `state`.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1,avx")]
pub(crate) fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    let (mut abef, mut cdgh) = load(state);
    for block in blocks.chunks_exact(64) {
        let (abef0, cdgh0) = (abef, cdgh);
        let (mut w0, mut w1, mut w2, mut w3) = (
            message!(block, 0),
            message!(block, 1),
            message!(block, 2),
            message!(block, 3),
        );
        rounds!(abef, cdgh, w0, constants!(0));
        rounds!(abef, cdgh, w1, constants!(1));
        rounds!(abef, cdgh, w2, constants!(2));
        rounds!(abef, cdgh, w3, constants!(3));
        for i in [4, 8, 12] {
            schedule!(w0, w1, w2, w3);
            rounds!(abef, cdgh, w0, constants!(i));
            schedule!(w1, w2, w3, w0);
            rounds!(abef, cdgh, w1, constants!(i + 1));
            schedule!(w2, w3, w0, w1);
            rounds!(abef, cdgh, w2, constants!(i + 2));
            schedule!(w3, w0, w1, w2);
            rounds!(abef, cdgh, w3, constants!(i + 3));
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    store(state, abef, cdgh);
}

/// Compress `a`'s blocks into `sa` and `b`'s into `sb`, interleaved; both hold the same
/// number of whole blocks.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1,avx")]
pub(crate) fn compress_pair(sa: &mut [u32; 8], a: &[u8], sb: &mut [u32; 8], b: &[u8]) {
    let (mut a_abef, mut a_cdgh) = load(sa);
    let (mut b_abef, mut b_cdgh) = load(sb);
    for (x, y) in a.chunks_exact(64).zip(b.chunks_exact(64)) {
        let saved = (a_abef, a_cdgh, b_abef, b_cdgh);
        let (mut a0, mut a1, mut a2, mut a3) = (
            message!(x, 0),
            message!(x, 1),
            message!(x, 2),
            message!(x, 3),
        );
        let (mut b0, mut b1, mut b2, mut b3) = (
            message!(y, 0),
            message!(y, 1),
            message!(y, 2),
            message!(y, 3),
        );
        macro_rules! both {
            ($i:expr, $a:ident, $b:ident) => {
                let k = constants!($i);
                rounds!(a_abef, a_cdgh, $a, k);
                rounds!(b_abef, b_cdgh, $b, k);
            };
        }
        both!(0, a0, b0);
        both!(1, a1, b1);
        both!(2, a2, b2);
        both!(3, a3, b3);
        for i in [4, 8, 12] {
            schedule!(a0, a1, a2, a3);
            schedule!(b0, b1, b2, b3);
            both!(i, a0, b0);
            schedule!(a1, a2, a3, a0);
            schedule!(b1, b2, b3, b0);
            both!(i + 1, a1, b1);
            schedule!(a2, a3, a0, a1);
            schedule!(b2, b3, b0, b1);
            both!(i + 2, a2, b2);
            schedule!(a3, a0, a1, a2);
            schedule!(b3, b0, b1, b2);
            both!(i + 3, a3, b3);
        }
        a_abef = _mm_add_epi32(a_abef, saved.0);
        a_cdgh = _mm_add_epi32(a_cdgh, saved.1);
        b_abef = _mm_add_epi32(b_abef, saved.2);
        b_cdgh = _mm_add_epi32(b_cdgh, saved.3);
    }
    store(sa, a_abef, a_cdgh);
    store(sb, b_abef, b_cdgh);
}
