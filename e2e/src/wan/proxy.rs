//! The proxy: accepts connections on loopback, opens one to the server per connection, and
//! carries bytes both ways through the link's shaper and delay while counting requests.
//!
//! Each direction of a connection is a reader and a writer joined by a bounded queue of
//! timestamped chunks: the reader takes the chunk's bytes from the shaper (the link's
//! serialisation) and stamps it with the time it may arrive (now + one-way delay); the
//! writer waits until then. Reading never waits for the delay, so many chunks are in
//! flight at once, as on a real long link, and a request that waits for its answer pays
//! the full round trip.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::count::{Counts, RequestParser};
use super::shaper::{MAX_TAKE, Shaper};

/// The link's shape: delay each way and bandwidth.
#[derive(Debug, Clone, Copy, Default)]
pub struct Link {
    /// One-way delay client → server.
    pub delay_up: Duration,
    /// One-way delay server → client.
    pub delay_down: Duration,
    /// Bytes per second in each direction; `None` leaves the link unshaped.
    pub rate: Option<u64>,
}

impl Link {
    /// A link of this round-trip time (half each way), unshaped.
    pub fn rtt(rtt: Duration) -> Self {
        Self {
            delay_up: rtt / 2,
            delay_down: rtt / 2,
            rate: None,
        }
    }

    /// The same link shaped to `bits_per_second` each way.
    pub fn mbit(self, megabits_per_second: u64) -> Self {
        Self {
            rate: Some(megabits_per_second * 1_000_000 / 8),
            ..self
        }
    }
}

/// Chunks in flight per direction of a connection (at most `MAX_TAKE` bytes each).
const QUEUE: usize = 1024;

#[derive(Debug, Default)]
struct Tally {
    counts: Mutex<Counts>,
    up: AtomicU64,
    down: AtomicU64,
}

impl Tally {
    fn snapshot(&self) -> Counts {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        counts.bytes_up = self.up.load(Ordering::Relaxed);
        counts.bytes_down = self.down.load(Ordering::Relaxed);
        counts
    }
}

/// A running proxy in front of one server; stops (with every connection) when dropped.
#[derive(Debug)]
pub struct WanProxy {
    addr: SocketAddr,
    tally: Arc<Tally>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for WanProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[derive(Debug)]
struct Ends {
    upstream: SocketAddr,
    link: Link,
    shape_up: Option<Shaper>,
    shape_down: Option<Shaper>,
    tally: Arc<Tally>,
}

impl WanProxy {
    /// Listen on a free loopback port and forward to `upstream` (an `http://host:port…`
    /// endpoint or a `host:port`) over `link`.
    pub async fn start(upstream: &str, link: Link) -> std::io::Result<Self> {
        let upstream = resolve(upstream).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let tally = Arc::new(Tally::default());
        let ends = Arc::new(Ends {
            upstream,
            link,
            shape_up: link.rate.map(Shaper::new),
            shape_down: link.rate.map(Shaper::new),
            tally: tally.clone(),
        });
        let accept = tokio::spawn(async move {
            // Connections live in this set: aborting the accept loop drops them all.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                connections.spawn(serve(client, ends.clone()));
            }
        });
        Ok(Self {
            addr,
            tally,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint clients use instead of the server's.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What crossed the link so far.
    pub fn counts(&self) -> Counts {
        self.tally.snapshot()
    }

    /// What crossed the link since the last reset, and start counting afresh.
    pub fn take_counts(&self) -> Counts {
        let mut counts = self
            .tally
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut taken = std::mem::take(&mut *counts);
        taken.bytes_up = self.tally.up.swap(0, Ordering::Relaxed);
        taken.bytes_down = self.tally.down.swap(0, Ordering::Relaxed);
        taken
    }
}

async fn resolve(upstream: &str) -> std::io::Result<SocketAddr> {
    let authority = upstream
        .split_once("://")
        .map_or(upstream, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{upstream}: no address")))
}

async fn serve(client: TcpStream, ends: Arc<Ends>) {
    let server = match TcpStream::connect(ends.upstream).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("wan proxy: cannot reach {}: {e}", ends.upstream);
            return;
        }
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut parser = RequestParser::default();
    let tally = ends.tally.clone();
    let mut observe_up = move |chunk: &[u8]| {
        tally.up.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        parser.feed(chunk, &mut |kind, line| {
            let mut counts = tally
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *counts.requests.entry(kind).or_default() += 1;
            counts.lines.push(line);
        });
    };
    let tally = ends.tally.clone();
    let mut observe_down = move |chunk: &[u8]| {
        tally.down.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    };
    tokio::join!(
        direction(
            client_read,
            server_write,
            ends.link.delay_up,
            ends.shape_up.as_ref(),
            &mut observe_up
        ),
        direction(
            server_read,
            client_write,
            ends.link.delay_down,
            ends.shape_down.as_ref(),
            &mut observe_down
        ),
    );
}

/// Carry one direction until its reader ends, then close the writer's side.
async fn direction(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: Duration,
    shaper: Option<&Shaper>,
    observe: &mut (dyn FnMut(&[u8]) + Send),
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(QUEUE);
    let read = async move {
        let mut buf = vec![0u8; MAX_TAKE];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Some(s) = shaper {
                s.take(n).await;
            }
            observe(&buf[..n]);
            let chunk = Bytes::copy_from_slice(&buf[..n]);
            if tx.send((Instant::now() + delay, chunk)).await.is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
