//! relocate's end-to-end harness: the real servers that `scripts/test.sh` starts, fresh buckets
//! on them, and the same store opened on every backend for behaviour suites.
//!
//! Tests call [`servers::moto`], [`servers::s3s`] or [`servers::azurite`] for a server, or
//! [`backends::all_backends`] for one fresh location on each backend (local files, memory, moto,
//! s3s-fs, Azurite). Without the servers (`RELOCATE_TEST_SERVERS` unset) they panic with how to
//! start them: a real-server test is never skipped silently.

pub mod backends;
mod hmac;
pub mod servers;
pub mod wan;

pub use backends::{Backend, all_backends};
pub use servers::TestServer;
