//! NIST CAVP SHA-256 known answers (`data/`, see its README) and the million-`a` message,
//! on every engine this CPU runs: in one `update`, byte by byte, and paired with another
//! vector through `update_pair`. Known answers from a third party, so a bug shared by this
//! crate and `sha2` (the other tests' reference) would still show.

mod common;

use common::{digest, digest_pair, engines, stream};
use sha256x2::Sha256Stream;

/// One `Len`/`Msg`/`MD` entry of a `.rsp` file.
struct Vector {
    bits: usize,
    message: Vec<u8>,
    digest: [u8; 32],
}

fn parse(rsp: &str) -> Vec<Vector> {
    let field = |line: &str, name: &str| {
        line.strip_prefix(name)
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            .map(|value| value.trim().to_owned())
    };
    let mut vectors = Vec::new();
    let mut lines = rsp.lines().map(str::trim_end);
    while let Some(line) = lines.next() {
        let Some(bits) = field(line, "Len") else {
            continue;
        };
        let bits: usize = bits.parse().expect("Len is a number");
        let message = field(lines.next().expect("Msg after Len"), "Msg").expect("Msg");
        let md = field(lines.next().expect("MD after Msg"), "MD").expect("MD");
        let mut message = hex::decode(message).expect("Msg is hex");
        // CAVP writes the empty message as `00` with `Len = 0`.
        message.truncate(bits / 8);
        let digest = hex::decode(md)
            .expect("MD is hex")
            .try_into()
            .expect("32 bytes");
        vectors.push(Vector {
            bits,
            message,
            digest,
        });
    }
    vectors
}

fn short() -> Vec<Vector> {
    parse(include_str!("data/SHA256ShortMsg.rsp"))
}

fn long() -> Vec<Vector> {
    parse(include_str!("data/SHA256LongMsg-sample.rsp"))
}

#[test]
fn the_vector_files_are_read_whole() {
    let (short, long) = (short(), long());
    assert_eq!(short.len(), 65);
    assert!(
        short
            .iter()
            .enumerate()
            .all(|(i, v)| v.bits == 8 * i && v.message.len() == i)
    );
    assert_eq!(long.len(), 8);
    assert!(
        long.iter()
            .all(|v| v.bits == 8 * v.message.len() && v.bits >= 1304)
    );
    assert_eq!(long.last().map(|v| v.message.len()), Some(6400));
}

fn check_all(vectors: &[Vector]) {
    for engine in engines() {
        for v in vectors {
            let len = v.message.len();
            assert_eq!(
                digest(engine, &v.message),
                v.digest,
                "{engine:?}, {len} bytes"
            );
            let mut h = stream(engine);
            for byte in &v.message {
                h.update(std::slice::from_ref(byte));
            }
            assert_eq!(
                h.finish(),
                v.digest,
                "{engine:?}, {len} bytes one at a time"
            );
        }
        // Each vector paired with the next, in pieces that leave partial blocks pending.
        for (v, w) in vectors.iter().zip(vectors.iter().cycle().skip(1)) {
            for piece in [1, 64, 100, 4096] {
                let got = digest_pair(engine, &v.message, &w.message, piece);
                assert_eq!(got, (v.digest, w.digest), "{engine:?}, pieces of {piece}");
            }
        }
    }
}

#[test]
fn nist_cavp_short_messages_on_every_engine() {
    check_all(&short());
}

#[test]
fn nist_cavp_long_messages_on_every_engine() {
    check_all(&long());
}

#[test]
fn a_million_a_on_every_engine() {
    // FIPS 180-2 Appendix B.3 (also NIST's "SHA-256 example with a one-million-`a` message").
    let want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    let million = vec![b'a'; 1_000_000];
    for engine in engines() {
        assert_eq!(hex::encode(digest(engine, &million)), want, "{engine:?}");
        // Paired with itself, in uneven pieces so the two streams' pending bytes differ.
        let (mut a, mut b) = (stream(engine), stream(engine));
        let (mut x, mut y) = (&million[..], &million[..]);
        while !x.is_empty() || !y.is_empty() {
            let (px, rx) = x.split_at(x.len().min(65_537));
            let (py, ry) = y.split_at(y.len().min(40_000));
            Sha256Stream::update_pair(&mut a, px, &mut b, py);
            (x, y) = (rx, ry);
        }
        let (a, b) = (hex::encode(a.finish()), hex::encode(b.finish()));
        assert_eq!((a.as_str(), b.as_str()), (want, want), "{engine:?} paired");
    }
}
