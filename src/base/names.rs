//! Install-time names other layers agree on.

/// The runtime type the shim answers to.
pub const RUNTIME_TYPE: &str = "io.containerd.portcullis.v2";
