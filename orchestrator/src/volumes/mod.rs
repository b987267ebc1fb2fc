//! Volume data: the files of a PersistentVolumeClaim moved through a staging object
//! store, hashed on the way out, re-hashed on the way in, and summed up in a manifest
//! whose Merkle root goes into the stage's evidence.
//!
//! The layers, in the order a move runs them:
//! 1. [`walk`]: the mounted claim read depth-first in byte order of names, never
//!    following a symlink, one directory's names in memory at a time;
//! 2. [`pack`]: each regular file's bytes streamed into size- and count-bounded
//!    segments in the staging store (many small files per request), hashed as they
//!    stream, and every entry's metadata written to the [`manifest`];
//! 3. [`restore`]: the tree written back from the manifest, each file re-hashed as
//!    it is written and compared; files already right are left alone, so a rerun
//!    restores only what is missing or different, and whatever the claim holds that
//!    the manifest does not name is removed first ([`prune`]);
//! 4. [`scan`]: a tree's manifest root recomputed from disk alone, which is what a
//!    `verify` of the target volume compares with the staged root;
//! 5. [`order`] and [`mover`]: `relocate volume pack|restore|verify`, one mover pod
//!    per claim, ordered through the state store like the scale-out workers.
//!
//! Every mover tells how far it is on stderr ([`progress`]); the coordinator follows
//! the pods' logs into the step's live counters.
//!
//! A pack checkpoints after each segment ([`checkpoint`]): a mover killed mid-volume
//! and run again redoes at most one segment.
//!
//! The staging layout under a volume's prefix: `segments/NNNNNN.seg` (file bytes,
//! concatenated), `manifest.ndjson` (one [`manifest::Entry`] a line) and
//! `volume.json` (the [`manifest::VolumeSummary`], written last: its presence means
//! the pack is complete).

mod checkpoint;
pub mod coordinator;
mod delta;
mod error;
pub mod manifest;
pub mod mover;
pub mod order;
pub mod pack;
pub mod progress;
pub mod prune;
pub mod restore;
pub mod scan;
mod segment;
pub mod staged;
pub mod walk;

pub use error::VolumeError;
pub use manifest::{Entry, EntryKind, VolumeSummary};
pub use pack::{PackOptions, pack};
pub use restore::{RestoreSummary, restore};
pub use scan::scan;
