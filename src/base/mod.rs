//! Layer 0: helpers that import nothing from the crate — digests, image
//! references, text helpers, the one bounded file reader, what is mounted at a path,
//! install-time names, the start of a gate's process and its allocator on musl, a deadline for a
//! blocking call we do not own.

#[cfg(target_env = "musl")]
mod alloc;
pub mod deadline;
pub mod digest;
pub mod entry;
pub mod fsio;
pub mod mounts;
pub mod names;
pub mod reference;
pub mod text;

#[cfg(test)]
pub mod testing;
