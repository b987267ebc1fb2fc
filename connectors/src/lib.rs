//! placeholder
pub mod kube;

pub mod signoff;
pub mod store;
