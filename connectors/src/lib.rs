//! relocate's connectors: everything that talks to the outside world, behind small
//! interfaces, and nothing about stages, state or plans' ordering.
//!
//! - [`store`]: a plan's store (URL plus `object_store` options, secrets by reference)
//!   opened as an `Arc<dyn ObjectStore>` rooted at its prefix, with a pre-flight check;
//! - [`kube`]: Kubernetes export, clean, transform, server-side apply, readiness,
//!   freeze and restore, as plain functions over a `kube::Client`;
//! - [`signoff`]: Ed25519 keys, DSSE envelopes, in-toto statements, approvals and the
//!   hooks (command, webhook, file drop) that ask an approver for one.
//!
//! The orchestrator composes these into stages and journals every effect.

pub mod kube;
pub mod signoff;
pub mod store;
