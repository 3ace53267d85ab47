//! Layer 2: the only containerd client. The start path's lookups
//! (container → image → target → platform) live in [`lookup`]; its items are
//! re-exported here. [`platform`] chooses this node's manifest from an index
//! exactly as containerd does.

pub mod lookup;
pub mod platform;

pub use lookup::*;
