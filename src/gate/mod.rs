//! Layer 5: the start path. [`shim`] parses the shim's arguments and runs the
//! eight steps of the crate documentation; [`decide`](decide()) turns a
//! container's image into a verdict ([`Decision`]) through the policy, the
//! [`verdict_cache`] and the sandboxed ([`sandbox`]) verification; [`journal`]
//! records it. [`admission`] is the one start sequence both gates run (lookup,
//! decide, journal, policy copy); [`runc`] is the OCI-runtime gate
//! (`portcullis-runc`) that sees every runc container. Nothing here imports [`crate::ops`] or [`crate::cli`].

pub mod admission;
pub mod ahead;
mod decide;
#[cfg(test)]
mod fifo_tests;
pub mod journal;
pub mod runc;
pub mod sandbox;
pub mod shim;
pub mod verdict_cache;

pub use decide::*;
