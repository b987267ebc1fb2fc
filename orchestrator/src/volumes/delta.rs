//! The delta of a pack: what the last complete pack of the claim staged, so the copy
//! after `freeze` uploads only what changed since the seed.
//!
//! Every file is still read and hashed (the evidence's hashes are those of the bytes
//! on the frozen volume, not of a size and a time). A file whose size and SHA-256
//! equal its entry in the last pack's manifest keeps that entry's segment and offset
//! and is not uploaded again; the others stream into new segments, numbered after the
//! last pack's, which stay in place. The last manifest is read alongside the walk, in
//! the same walk order, one entry at a time: memory stays flat. It is taken only when
//! its SHA-256 and root match its `volume.json`, and a restore re-hashes every file it
//! writes, so a forged earlier pack can make a file be uploaded again, never restored
//! wrong.

use std::cmp::Ordering;
use std::iter::Peekable;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use tokio::runtime::Handle;

use super::manifest::entries;
use super::staged::{fetch_manifest, read_summary};
use super::walk::walk_order;
use super::{Entry, EntryKind, VolumeError, VolumeSummary};

/// The last complete pack of a claim.
pub(crate) struct Previous {
    /// Its `volume.json`.
    pub(crate) summary: VolumeSummary,
    manifest: tempfile::NamedTempFile,
}

/// The last complete pack under `prefix`, if there is one and it checks out; `None`
/// otherwise (a first pack, or one whose staged files do not match: then every file
/// is uploaded).
pub(crate) async fn previous(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
) -> Option<Previous> {
    let summary = match read_summary(store, prefix).await {
        Ok(summary) => summary,
        Err(VolumeError::NotPacked { .. }) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "the last pack's volume.json is unreadable: every file is uploaded");
            return None;
        }
    };
    let (rt, store, prefix, checked) = (
        Handle::current(),
        store.clone(),
        prefix.clone(),
        summary.clone(),
    );
    let manifest =
        tokio::task::spawn_blocking(move || fetch_manifest(&rt, &store, &prefix, &checked))
            .await
            .ok()?;
    match manifest {
        Ok(manifest) => Some(Previous { summary, manifest }),
        Err(e) => {
            tracing::warn!(error = %e, "the last pack's manifest does not check out: every file is uploaded");
            None
        }
    }
}

/// A manifest's entries, one line at a time.
type Entries = Peekable<Box<dyn Iterator<Item = Result<Entry, VolumeError>>>>;

/// The last pack's entries, read forward as the walk goes.
pub(crate) struct Cursor {
    entries: Option<Entries>,
}

impl Cursor {
    /// Over `previous`'s manifest (none: every lookup misses).
    pub(crate) fn new(previous: Option<&Previous>) -> Self {
        let entries = previous.and_then(|p| match entries(p.manifest.path()) {
            Ok(it) => {
                let boxed: Box<dyn Iterator<Item = Result<Entry, VolumeError>>> = Box::new(it);
                Some(boxed.peekable())
            }
            Err(e) => {
                tracing::warn!(error = %e, "the last pack's manifest cannot be read: every file is uploaded");
                None
            }
        });
        Self { entries }
    }

    /// The last pack's staged file at `path`, if it had one there; paths must come in
    /// walk order.
    pub(crate) fn staged_file(&mut self, path: &str) -> Option<Entry> {
        let entries = self.entries.as_mut()?;
        loop {
            let order = match entries.peek()? {
                Ok(e) => walk_order(&e.path, path),
                Err(_) => {
                    // A manifest that turns bad halfway: no more reuse, nothing wrong.
                    self.entries = None;
                    return None;
                }
            };
            match order {
                Ordering::Less => {
                    entries.next();
                }
                Ordering::Equal => {
                    return entries
                        .next()
                        .and_then(Result::ok)
                        .filter(|e| e.kind == EntryKind::File && e.segment.is_some());
                }
                Ordering::Greater => return None,
            }
        }
    }
}
