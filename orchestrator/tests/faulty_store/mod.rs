//! A fault-injecting `ObjectStore` for the store-fault suite: wraps a real store and,
//! by configuration, fails requests with transient errors, drops a body mid-stream,
//! serves a truncated or corrupted body, stores corrupted bytes on put, answers slowly,
//! or is dead altogether. Every injected fault is counted so the suite can report the
//! figures (and prove a fault was in fact injected: a test whose fault never fired
//! proves nothing).
//!
//! Faults are deterministic: they are chosen per key and per attempt on that key, so a
//! test fails the same way on every machine.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// What goes wrong with a `get` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// The body is served intact.
    None,
    /// The stream yields the first half of the body, then an error (a dropped connection).
    DropMidStream,
    /// The stream yields the first half of the body, then ends without an error.
    Truncate,
    /// Every byte is served, one of them flipped.
    Corrupt,
}

/// The configuration of a [`FaultyStore`]; every field can be changed while it runs.
#[derive(Debug, Clone)]
pub struct Faults {
    /// The first `n` `get`s of each key fail with a transient error before any byte.
    pub transient_gets: u32,
    /// The first `n` `put`s of each key fail with a transient error.
    pub transient_puts: u32,
    /// The first `n` `get`s of each key have this body fault (then bodies are intact);
    /// `u32::MAX` makes the fault permanent.
    pub body_fault_gets: u32,
    /// The body fault applied to those gets.
    pub body_fault: BodyFault,
    /// Bytes stored by `put` get one byte flipped (a target that corrupts on write).
    pub corrupt_puts: bool,
    /// Every request waits this long first.
    pub delay: Duration,
    /// Only keys containing this string are affected (`""`: every key).
    pub only_keys_containing: String,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            transient_gets: 0,
            transient_puts: 0,
            body_fault_gets: 0,
            body_fault: BodyFault::None,
            corrupt_puts: false,
            delay: Duration::ZERO,
            only_keys_containing: String::new(),
        }
    }
}

/// Wraps a store and injects [`Faults`].
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Mutex<Faults>,
    dead: AtomicBool,
    gets: Mutex<HashMap<String, u32>>,
    puts: Mutex<HashMap<String, u32>>,
    /// Faults injected so far.
    pub injected: AtomicU64,
    /// Requests served so far (faulty or not).
    pub requests: AtomicU64,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

const STORE: &str = "FaultyStore";

fn transient(what: &str, key: &Path) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: format!("injected transient failure: {what} {key}: connection reset by peer")
            .into(),
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Faults) -> Arc<Self> {
        Arc::new(Self {
            inner,
            faults: Mutex::new(faults),
            dead: AtomicBool::new(false),
            gets: Mutex::default(),
            puts: Mutex::default(),
            injected: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// Replace the fault configuration.
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().expect("faults lock") = faults;
    }

    /// A dead store refuses every request (listing included).
    pub fn kill(&self, dead: bool) {
        self.dead.store(dead, Ordering::SeqCst);
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    fn faults(&self) -> Faults {
        self.faults.lock().expect("faults lock").clone()
    }

    fn inject(&self) {
        self.injected.fetch_add(1, Ordering::SeqCst);
    }

    /// Count a request; fail it if the store is dead; wait the configured delay.
    async fn enter(&self, what: &str, key: Option<&Path>) -> Result<Faults> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let faults = self.faults();
        if !faults.delay.is_zero() {
            tokio::time::sleep(faults.delay).await;
        }
        if self.dead.load(Ordering::SeqCst) {
            self.inject();
            let key = key.map(|k| k.to_string()).unwrap_or_default();
            return Err(object_store::Error::Generic {
                store: STORE,
                source: format!("injected outage: {what} {key}: connection refused").into(),
            });
        }
        Ok(faults)
    }

    /// The attempt number (from 1) of this request on this key.
    fn attempt(map: &Mutex<HashMap<String, u32>>, key: &Path) -> u32 {
        let mut m = map.lock().expect("attempt lock");
        let n = m.entry(key.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    fn affects(faults: &Faults, key: &Path) -> bool {
        key.as_ref().contains(&faults.only_keys_containing)
    }
}

/// Apply a body fault to a stream of chunks.
fn faulty_body(
    body: Vec<Bytes>,
    fault: BodyFault,
    key: &Path,
) -> BoxStream<'static, Result<Bytes>> {
    let all: Vec<u8> = body.iter().flat_map(|b| b.iter().copied()).collect();
    let half = all.len() / 2;
    let chunks: Vec<Result<Bytes>> = match fault {
        BodyFault::None => body.into_iter().map(Ok).collect(),
        BodyFault::Truncate => vec![Ok(Bytes::copy_from_slice(&all[..half]))],
        BodyFault::DropMidStream => vec![
            Ok(Bytes::copy_from_slice(&all[..half])),
            Err(object_store::Error::Generic {
                store: STORE,
                source: format!("injected: body of {key} cut mid-stream").into(),
            }),
        ],
        BodyFault::Corrupt => {
            let mut bytes = all;
            if let Some(b) = bytes.get_mut(half) {
                *b ^= 0x5a;
            }
            vec![Ok(Bytes::from(bytes))]
        }
    };
    futures::stream::iter(chunks).boxed()
}

fn flip_one_byte(payload: PutPayload) -> PutPayload {
    let mut bytes: Vec<u8> = payload.into_iter().flat_map(|b| b.to_vec()).collect();
    let mid = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(mid) {
        *b ^= 0x01;
    } else {
        bytes.push(0);
    }
    PutPayload::from(bytes)
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let faults = self.enter("put", Some(location)).await?;
        let mut payload = payload;
        if Self::affects(&faults, location) {
            if Self::attempt(&self.puts, location) <= faults.transient_puts {
                self.inject();
                return Err(transient("put", location));
            }
            if faults.corrupt_puts {
                self.inject();
                payload = flip_one_byte(payload);
            }
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.enter("put_multipart", Some(location)).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let faults = self.enter("get", Some(location)).await?;
        if !Self::affects(&faults, location) {
            return self.inner.get_opts(location, options).await;
        }
        let attempt = Self::attempt(&self.gets, location);
        if attempt <= faults.transient_gets {
            self.inject();
            return Err(transient("get", location));
        }
        let body_attempt = attempt - faults.transient_gets;
        let fault = if body_attempt <= faults.body_fault_gets {
            faults.body_fault
        } else {
            BodyFault::None
        };
        let got = self.inner.get_opts(location, options).await?;
        if fault == BodyFault::None {
            return Ok(got);
        }
        self.inject();
        let GetResult {
            meta,
            range,
            attributes,
            extensions,
            payload,
        } = got;
        let chunks: Vec<Bytes> = match payload {
            GetResultPayload::Stream(s) => s
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<_>>>()?,
            other => GetResult {
                meta: meta.clone(),
                range: range.clone(),
                attributes: attributes.clone(),
                extensions: extensions.clone(),
                payload: other,
            }
            .into_stream()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?,
        };
        // The announced size and range stay those of the whole object: that is what a
        // server that cut or mangled the body would have announced.
        Ok(GetResult {
            meta,
            range,
            attributes,
            extensions,
            payload: GetResultPayload::Stream(faulty_body(chunks, fault, location)),
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.enter("get_ranges", Some(location)).await?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if self.dead.load(Ordering::SeqCst) {
            self.inject();
            return futures::stream::once(async {
                Err(object_store::Error::Generic {
                    store: STORE,
                    source: "injected outage: delete".into(),
                })
            })
            .boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.dead.load(Ordering::SeqCst) {
            self.inject();
            return futures::stream::once(async {
                Err(object_store::Error::Generic {
                    store: STORE,
                    source: "injected outage: list: connection refused".into(),
                })
            })
            .boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.enter("list", prefix).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.enter("copy", Some(from)).await?;
        self.inner.copy_opts(from, to, options).await
    }
}
