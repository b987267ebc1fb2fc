//! Which block function compresses a stream's blocks, and the CPU check that guards it.
//!
//! Three engines: the two-stream kernel and the one-stream kernel on the x86 SHA
//! extensions (`sha_ni`), and `sha2`'s own compression function, which runs everywhere.
//! A stream gets the best one this CPU has ([`Engine::best`]); tests and the fuzz target
//! force each in turn ([`crate::Sha256Stream::with_engine`]), so every engine is checked
//! on a CPU that has the SHA extensions, not only the one the CPU would pick.
//!
//! The two `unsafe` blocks of the crate are here: each calls a `#[target_feature]`
//! kernel right after asking the CPU for those features, whatever engine was asked for.

use crate::BLOCK;

/// How a stream's 64-byte blocks are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Two streams' blocks interleaved on the x86 SHA extensions where
    /// [`crate::Sha256Stream::update_pair`] has blocks of both; the rest as [`Engine::Single`].
    Pair,
    /// The x86 SHA extensions, one stream at a time (also in `update_pair`).
    Single,
    /// `sha2::compress256`, one stream at a time.
    Portable,
}

impl Engine {
    /// Every engine, fastest first.
    pub const ALL: [Engine; 3] = [Engine::Pair, Engine::Single, Engine::Portable];

    /// The fastest engine this CPU runs: [`Engine::Pair`] where it has the SHA extensions,
    /// [`Engine::Portable`] elsewhere.
    pub fn best() -> Engine {
        if Engine::Pair.available() {
            Engine::Pair
        } else {
            Engine::Portable
        }
    }

    /// Whether this CPU runs the engine (std caches the CPU check).
    pub fn available(self) -> bool {
        match self {
            Engine::Pair | Engine::Single => sha_extensions(),
            Engine::Portable => true,
        }
    }
}

fn sha_extensions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::sha_ni::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Compress the whole blocks of `blocks` into `state` with `engine` (both SHA-extension
/// engines use the one-stream kernel here).
pub(crate) fn compress(engine: Engine, state: &mut [u32; 8], blocks: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    if engine != Engine::Portable && crate::sha_ni::available() {
        #[cfg(test)]
        calls::count(Engine::Single);
        // SAFETY: `sha_ni::available()` has just found every feature `sha_ni::compress`
        // is compiled for on this CPU; the kernel itself reads only through slices.
        #[allow(unsafe_code)]
        unsafe {
            crate::sha_ni::compress(state, blocks)
        };
        return;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = engine;
    #[cfg(test)]
    calls::count(Engine::Portable);
    for block in blocks.chunks_exact(BLOCK) {
        let block = sha2::digest::generic_array::GenericArray::from_slice(block);
        sha2::compress256(state, std::slice::from_ref(block));
    }
}

/// Compress `a`'s blocks into `sa` and `b`'s into `sb` (the same number of whole blocks),
/// interleaved when `engine` is [`Engine::Pair`] and the CPU has the SHA extensions, one
/// after the other otherwise.
pub(crate) fn compress_pair(
    engine: Engine,
    sa: &mut [u32; 8],
    a: &[u8],
    sb: &mut [u32; 8],
    b: &[u8],
) {
    debug_assert_eq!(a.len() / BLOCK, b.len() / BLOCK);
    #[cfg(target_arch = "x86_64")]
    if engine == Engine::Pair && crate::sha_ni::available() {
        #[cfg(test)]
        calls::count(Engine::Pair);
        // SAFETY: as in `compress`: `sha_ni::available()` has just found every feature
        // `sha_ni::compress_pair` is compiled for on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            crate::sha_ni::compress_pair(sa, a, sb, b)
        };
        return;
    }
    compress(engine, sa, a);
    compress(engine, sb, b);
}

/// Which kernels ran on this thread, so the unit tests can check that forcing an engine
/// runs that engine's kernel.
#[cfg(test)]
pub(crate) mod calls {
    use super::Engine;
    use std::cell::RefCell;

    thread_local! {
        static CALLS: RefCell<Vec<Engine>> = const { RefCell::new(Vec::new()) };
    }

    /// `Pair` for the two-stream kernel, `Single` for the one-stream one, `Portable` for
    /// `sha2`'s block function.
    pub(crate) fn count(kernel: Engine) {
        CALLS.with(|c| c.borrow_mut().push(kernel));
    }

    /// The kernels run since the last call, each once, in order of first use.
    pub(crate) fn take() -> Vec<Engine> {
        let mut kernels = CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()));
        let mut seen = Vec::new();
        kernels.retain(|k| {
            let new = !seen.contains(k);
            seen.push(*k);
            new
        });
        kernels
    }
}
