//! Streams fed in every shape, on every engine this CPU runs, against `sha2`: every
//! length around the padding boundaries, any split of the input, pairs of unequal
//! streams, and pairs of streams on different engines.

mod common;

use common::{bytes, digest, engines, reference, stream};
use sha256x2::Sha256Stream;

#[test]
fn every_length_around_the_padding_boundaries_matches_sha2() {
    for engine in engines() {
        for n in 0..=300 {
            let data = bytes(n as u64, n);
            assert_eq!(
                digest(engine, &data),
                reference(&data),
                "{engine:?}, {n} bytes"
            );
        }
    }
}

#[test]
fn any_split_of_the_input_matches_sha2() {
    let data = bytes(7, 5_000);
    for engine in engines() {
        for step in [1, 3, 63, 64, 65, 127, 1000, 4999] {
            let mut h = stream(engine);
            for part in data.chunks(step) {
                h.update(part);
            }
            assert_eq!(h.finish(), reference(&data), "{engine:?}, parts of {step}");
        }
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
    for engine in engines() {
        for (i, (na, nb, ca, cb)) in cases.into_iter().enumerate() {
            let (a, b) = (bytes(i as u64 * 2 + 1, na), bytes(i as u64 * 2 + 2, nb));
            let (mut ha, mut hb) = (stream(engine), stream(engine));
            let (mut pa, mut pb) = (a.chunks(ca), b.chunks(cb));
            loop {
                match (pa.next(), pb.next()) {
                    (None, None) => break,
                    (Some(x), Some(y)) => Sha256Stream::update_pair(&mut ha, x, &mut hb, y),
                    (Some(x), None) => Sha256Stream::update_pair(&mut ha, x, &mut hb, &[]),
                    (None, Some(y)) => hb.update(y),
                }
            }
            assert_eq!(ha.finish(), reference(&a), "{engine:?}, case {i}: first");
            assert_eq!(hb.finish(), reference(&b), "{engine:?}, case {i}: second");
        }
    }
}

#[test]
fn pairs_of_streams_on_different_engines_match_sha2() {
    // Only two streams both on `Pair` are interleaved; any other pair is hashed one
    // stream after the other, each on its own engine.
    let (a, b) = (bytes(21, 300_001), bytes(22, 200_000));
    for first in engines() {
        for second in engines() {
            let (mut ha, mut hb) = (stream(first), stream(second));
            for (x, y) in a.chunks(32_768).zip(b.chunks(30_000)) {
                Sha256Stream::update_pair(&mut ha, x, &mut hb, y);
            }
            ha.update(&a[b.len().div_ceil(30_000) * 32_768..]);
            assert_eq!(
                hb.clone().finish(),
                reference(&b),
                "{first:?} with {second:?}"
            );
            assert_eq!(ha.finish(), reference(&a), "{first:?} with {second:?}");
        }
    }
}
