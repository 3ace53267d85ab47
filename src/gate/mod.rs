//! Layer 5: the start path. [`shim`] parses the shim's arguments and runs the
//! eight steps of the crate documentation; [`decide`](decide()) turns a
//! container's image into a verdict ([`Decision`]) through the policy, the
//! [`verdict_cache`] and the sandboxed ([`sandbox`]) verification; [`journal`]
//! records it. Nothing here imports [`crate::ops`] or [`crate::cli`].

mod decide;
#[cfg(test)]
mod fifo_tests;
pub mod journal;
pub mod sandbox;
pub mod shim;
pub mod verdict_cache;

pub use decide::*;
