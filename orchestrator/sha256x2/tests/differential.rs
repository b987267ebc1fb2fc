//! Differential property test: two streams of up to a few MiB, on any engines this CPU
//! runs, fed through any sequence of `update` and `update_pair` pieces (either side
//! first, empty pieces, pieces of a byte or of hundreds of KiB), must hash as `sha2`
//! hashes them. Bounded: 24 cases by default (`PROPTEST_CASES` sets more, for a longer
//! run); the fuzz target (`fuzz/`) runs the same comparison unbounded.

mod common;

use common::{bytes, engines, reference, stream};
use proptest::prelude::*;
use sha256x2::{Engine, Sha256Stream};

/// One step of feeding the two streams.
#[derive(Debug, Clone)]
enum Feed {
    /// `update_pair(a, next n of A, b, next m of B)`.
    Pair(usize, usize),
    /// `update_pair(b, next m of B, a, next n of A)`: the other stream first.
    Swapped(usize, usize),
    /// `a.update(next n of A)`.
    First(usize),
    /// `b.update(next m of B)`.
    Second(usize),
}

fn piece() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=130, 0usize..=70_000, 0usize..=600_000]
}

fn length() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=300, 0usize..=200_000, 0usize..=(3 << 20)]
}

fn feed() -> impl Strategy<Value = Feed> {
    prop_oneof![
        4 => (piece(), piece()).prop_map(|(n, m)| Feed::Pair(n, m)),
        1 => (piece(), piece()).prop_map(|(n, m)| Feed::Swapped(n, m)),
        1 => piece().prop_map(Feed::First),
        1 => piece().prop_map(Feed::Second),
    ]
}

fn engine() -> impl Strategy<Value = Engine> {
    proptest::sample::select(engines())
}

/// 24, or `PROPTEST_CASES` (the explicit count would otherwise override it).
fn cases() -> u32 {
    let set = std::env::var("PROPTEST_CASES").ok();
    set.and_then(|n| n.parse().ok()).unwrap_or(24)
}

/// The first `n` bytes of `rest` (fewer at its end), advancing `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (piece, after) = rest.split_at(n.min(rest.len()));
    *rest = after;
    piece
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_engines_and_any_feeding_of_two_large_streams_match_sha2(
        (seed, len_a, len_b) in (any::<u64>(), length(), length()),
        (engine_a, engine_b) in (engine(), engine()),
        feeds in proptest::collection::vec(feed(), 0..40),
        finish_paired in any::<bool>(),
    ) {
        let (a, b) = (bytes(seed, len_a), bytes(seed ^ 0xA5A5, len_b));
        let (mut ha, mut hb) = (stream(engine_a), stream(engine_b));
        let (mut x, mut y) = (&a[..], &b[..]);
        for feed in &feeds {
            match *feed {
                Feed::Pair(n, m) => {
                    let (px, py) = (take(&mut x, n), take(&mut y, m));
                    Sha256Stream::update_pair(&mut ha, px, &mut hb, py);
                }
                Feed::Swapped(n, m) => {
                    let (px, py) = (take(&mut x, n), take(&mut y, m));
                    Sha256Stream::update_pair(&mut hb, py, &mut ha, px);
                }
                Feed::First(n) => ha.update(take(&mut x, n)),
                Feed::Second(m) => hb.update(take(&mut y, m)),
            }
        }
        if finish_paired {
            Sha256Stream::update_pair(&mut ha, x, &mut hb, y);
        } else {
            ha.update(x);
            hb.update(y);
        }
        prop_assert_eq!(ha.finish(), reference(&a), "first stream, {:?}", engine_a);
        prop_assert_eq!(hb.finish(), reference(&b), "second stream, {:?}", engine_b);
    }
}
