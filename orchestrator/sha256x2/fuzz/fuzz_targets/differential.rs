//! Differential fuzzing: two streams cut from the input, on engines and in `update` /
//! `update_pair` pieces chosen by the input, must hash as `sha2` hashes them. Every
//! engine the CPU runs is reachable; inputs are stretched (each byte repeated) so that
//! short fuzz inputs still reach long streams and large pieces.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::Digest;
use sha256x2::{Engine, Sha256Stream};

/// Reads the control bytes at the front of the input.
struct Control<'a>(&'a [u8]);

impl Control<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn engine(&mut self) -> Engine {
        let runs: Vec<Engine> = Engine::ALL.into_iter().filter(|e| e.available()).collect();
        runs[usize::from(self.byte()) % runs.len()]
    }

    /// A piece length: small, around a block, or up to hundreds of KiB.
    fn piece(&mut self) -> usize {
        let n = usize::from(self.byte());
        match self.byte() % 4 {
            0 => n % 8,
            1 => 64 * (n % 4) + n % 3,
            2 => n * 131,
            _ => n * 2053,
        }
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (piece, after) = rest.split_at(n.min(rest.len()));
    *rest = after;
    piece
}

fuzz_target!(|input: &[u8]| {
    let control_len = input.len().min(64);
    let (control, data) = input.split_at(control_len);
    let mut control = Control(control);
    let stretch = usize::from(control.byte() % 16) + 1;
    let data: Vec<u8> = data
        .iter()
        .flat_map(|b| std::iter::repeat_n(*b, stretch))
        .collect();
    let (a, b) = data.split_at(data.len() * usize::from(control.byte()) / 255);
    let (mut ha, mut hb) = (
        Sha256Stream::with_engine(control.engine()),
        Sha256Stream::with_engine(control.engine()),
    );
    let (Some(ha), Some(hb)) = (&mut ha, &mut hb) else {
        unreachable!("engines are picked from those the CPU runs");
    };
    let (mut x, mut y) = (a, b);
    while !control.0.is_empty() {
        let (n, m) = (control.piece(), control.piece());
        match control.byte() % 4 {
            0 => ha.update(take(&mut x, n)),
            1 => hb.update(take(&mut y, m)),
            2 => Sha256Stream::update_pair(hb, take(&mut y, m), ha, take(&mut x, n)),
            _ => Sha256Stream::update_pair(ha, take(&mut x, n), hb, take(&mut y, m)),
        }
    }
    Sha256Stream::update_pair(ha, x, hb, y);
    assert_eq!(
        ha.clone().finish(),
        <[u8; 32]>::from(sha2::Sha256::digest(a))
    );
    assert_eq!(
        hb.clone().finish(),
        <[u8; 32]>::from(sha2::Sha256::digest(b))
    );
});
