//! Segments in the staging store, seen from the mover's blocking thread.
//!
//! A segment is file bytes concatenated, nothing else: the manifest says which file
//! starts where, and holds the metadata. Not tar: tar pads every file to 512 bytes and
//! adds a 512-byte header, so 1M files of 100 bytes would stage 1 GB for 100 MB of
//! data, and its mtimes are whole seconds; here the overhead is the manifest line.
//!
//! [`SegmentWriter`] buffers up to [`CHUNK`] before each hand-off to the store's
//! multipart writer (whose own buffer is bounded), so memory stays flat whatever the
//! file count; [`SegmentReader`] streams a byte range of a segment, so a restore that
//! needs one file of a segment fetches from that file on, not the whole segment.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;

use super::VolumeError;

/// Bytes gathered before one write to the store.
pub(crate) const CHUNK: usize = 1 << 20;
/// The multipart writer's part size (memory per part in flight).
const PART: usize = 8 << 20;

/// One segment being written.
pub(crate) struct SegmentWriter {
    rt: Handle,
    out: BufWriter,
    location: Path,
    buf: Vec<u8>,
    hasher: Sha256,
    pub(crate) bytes: u64,
    pub(crate) files: u64,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("location", &self.location)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl SegmentWriter {
    pub(crate) fn new(rt: Handle, store: Arc<dyn ObjectStore>, location: Path) -> Self {
        Self {
            rt,
            out: BufWriter::with_capacity(store, location.clone(), PART).with_max_concurrency(2),
            location,
            buf: Vec::with_capacity(CHUNK),
            hasher: Sha256::new(),
            bytes: 0,
            files: 0,
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), VolumeError> {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), VolumeError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let out = &mut self.out;
        self.rt
            .block_on(out.write_all(&chunk))
            .map_err(|e| self.io_error(e))
    }

    fn io_error(&self, e: std::io::Error) -> VolumeError {
        VolumeError::Store {
            what: "writing",
            location: self.location.to_string(),
            source: object_store::Error::Generic {
                store: "staging",
                source: Box::new(e),
            },
        }
    }

    /// Complete the upload; the segment's SHA-256.
    pub(crate) fn finish(mut self) -> Result<String, VolumeError> {
        self.flush()?;
        let out = &mut self.out;
        self.rt
            .block_on(out.shutdown())
            .map_err(|e| self.io_error(e))?;
        Ok(hex::encode(self.hasher.finalize()))
    }
}

/// A byte range of a segment, streamed.
pub(crate) struct SegmentReader {
    rt: Handle,
    pub(crate) segment: u32,
    /// The segment offset of the next byte [`Self::read`] returns.
    pub(crate) position: u64,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    location: Path,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("location", &self.location)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl SegmentReader {
    /// Stream `location` from byte `from` to its end.
    pub(crate) fn open(
        rt: Handle,
        store: &Arc<dyn ObjectStore>,
        location: Path,
        segment: u32,
        from: u64,
    ) -> Result<Self, VolumeError> {
        let options = GetOptions {
            range: (from > 0).then_some(GetRange::Offset(from)),
            ..GetOptions::default()
        };
        let got = rt
            .block_on(store.get_opts(&location, options))
            .map_err(|source| VolumeError::Store {
                what: "reading",
                location: location.to_string(),
                source,
            })?;
        Ok(Self {
            rt,
            segment,
            position: from,
            stream: got.into_stream(),
            chunk: Bytes::new(),
            location,
        })
    }

    /// The next bytes, at most `max`; empty at the segment's end.
    pub(crate) fn read(&mut self, max: usize) -> Result<Bytes, VolumeError> {
        if self.chunk.is_empty() {
            let stream = &mut self.stream;
            match self.rt.block_on(stream.next()) {
                None => return Ok(Bytes::new()),
                Some(Err(source)) => {
                    return Err(VolumeError::Store {
                        what: "reading",
                        location: self.location.to_string(),
                        source,
                    });
                }
                Some(Ok(chunk)) => self.chunk = chunk,
            }
        }
        let n = max.min(self.chunk.len());
        self.position += n as u64;
        Ok(self.chunk.split_to(n))
    }
}
