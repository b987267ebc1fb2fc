//! The Kubernetes connector: everything relocate does to clusters, nothing about stages.
//!
//! A Kubernetes workload moves in four movements, each a plain function over a
//! [`kube::Client`] so the orchestrator can journal intent before every effect:
//! [`export`] reads and [`clean`]s the source's manifests, [`transform`] rewrites them for
//! the target (pure), [`apply`] server-side-applies them and [`wait_ready`] waits for the
//! rollout; [`plan_freeze`] / [`apply_freeze`] / [`restore`] / [`stop_target`] stop and
//! restart the source and target around the cutover. Digests ([`manifest_digest`]) bind
//! what was deployed to the evidence; [`mask_secrets`] and [`render_diff`] are what a human
//! reads, never Secret values.

mod apply;
mod clean;
mod clean_service;
mod connect;
mod diff;
mod digest;
mod dry_run;
mod error;
mod export;
mod kinds;
mod mask;
mod ownership;
mod pod_reasons;
mod readiness;
mod rename;
mod resource;
mod scale;
mod transform;
pub mod volumes;
mod wait;
pub mod workers;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod mock_tests;

pub use apply::{Applied, ApplyOptions, FIELD_MANAGER, apply};
pub use clean::clean;
pub use connect::connect;
pub use diff::render_diff;
pub use digest::{canonical_json, manifest_digest};
pub use dry_run::{DryRunReport, dry_run};
pub use error::KubeError;
pub use export::export;
pub use kinds::{DEFAULT_KINDS, KindSpec, resolve_kind};
pub use mask::mask_secrets;
pub use readiness::{Readiness, readiness};
pub use rename::unrewritten as namespace_rename_warnings;
pub use resource::{Resource, ResourceId};
pub use scale::{
    FrozenEntry, FrozenState, UndoReport, apply_freeze, late_jobs, plan_freeze, restore,
    stop_target, wait_scaled_down,
};
pub use transform::transform;
pub use wait::{CALL_TIMEOUT, ReadyProgress, WaitOptions, wait_ready};
