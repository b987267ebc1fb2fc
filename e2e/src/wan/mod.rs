//! A WAN in the test harness: a TCP proxy that puts a long, narrow link between relocate
//! and a server, and counts what crosses it.
//!
//! Kernel queueing disciplines are not available where these tests run, so the link is a
//! proxy on loopback: [`WanProxy::start`] listens on a free port and forwards to the
//! server with a one-way delay each way and a shared token-bucket bandwidth ([`Link`]),
//! and counts the HTTP/1.1 requests by what they do to an S3 store ([`RequestKind`]) and
//! the bytes each way ([`Counts`]). A test points a store's endpoint at the proxy
//! ([`through`]) and reads the counts afterwards.

mod count;
mod proxy;
mod shaper;

pub use count::{Counts, RequestKind, RequestParser, classify};
pub use proxy::{Link, WanProxy};
pub use shaper::Shaper;

use crate::servers::TestServer;

/// The same server as seen through `proxy` (its endpoint replaced by the proxy's).
pub fn through(server: &TestServer, proxy: &WanProxy) -> TestServer {
    let mut endpoint = proxy.endpoint();
    // Azurite's endpoint carries the account as its path: keep it.
    if let Some(path) = server
        .endpoint
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
    {
        endpoint.push_str(path);
    }
    TestServer {
        endpoint,
        ..server.clone()
    }
}
