//! Layer 2: the only containerd client. The start path's lookups
//! (container → image → target → platform) live in [`lookup`]; its items are
//! re-exported here. [`platform`] chooses this node's manifest from an index
//! exactly as containerd does; [`origin`] finds which manifest of an index a
//! container's rootfs was unpacked from. [`start`] is the container lookup in
//! the fewest round trips (the gates' start path). [`tasks`] lists the running tasks and stops
//! one (`portcullis reverify`). [`commits`] judges whether a snapshot committed
//! under a chain ID is one an image unpack made (threat T33). [`wire`] is
//! the transport the lookups travel on: gRPC over HTTP/2 (`h2`) on the Unix
//! socket, driven on the calling thread without an async runtime.

pub mod commits;
pub mod lookup;
pub mod origin;
pub mod platform;
pub mod start;
pub mod tasks;
pub mod wire;

pub use lookup::*;
pub use start::lookup_container;
