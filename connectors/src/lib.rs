//! placeholder
pub mod kube;

pub mod store;
pub mod signoff;
