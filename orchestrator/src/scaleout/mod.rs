//! Scale-out: a workload's copy and verify fanned out over workers, each running one
//! contiguous key range with the same copy engine, and merged back into one manifest.
//!
//! The layers, in the order a sharded step runs them:
//! 1. [`split`]: one streamed listing cut into ranges of about equal weight;
//! 2. [`order`]: the work order and the shards' files in the state store, and
//!    [`exchange`]: rows and documents moved in and out of it;
//! 3. [`executor`]: where the workers run, child processes ([`executor::local`]) or a
//!    Kubernetes Indexed Job ([`executor::kubernetes`]), followed until every shard
//!    has a result, their [`progress`] summed into one display;
//! 4. [`worker`]: `relocate worker`, one range through `transfer`, checkpointed;
//! 5. [`merge`]: each shard's rows replace its range in the coordinator's database,
//!    so the manifest and its Merkle root are the ones an in-process run computes.
//!
//! [`coordinator`] ties them into a `copy` or `verify` step.

pub mod coordinator;
mod error;
pub mod exchange;
pub mod listing;
pub mod executor;
pub mod merge;
pub mod order;
pub mod progress;
pub mod result;
pub mod split;
pub mod worker;

pub use error::ScaleError;
