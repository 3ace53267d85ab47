//! Layer 2: the only containerd client. The start path's lookups
//! (container → image → target → platform) live in [`lookup`]; its items are
//! re-exported here.

pub mod lookup;

pub use lookup::*;
