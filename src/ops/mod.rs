//! Layer 6: operator tools. They use the layers below; the start path
//! ([`crate::gate`]) never imports them, and they import each other only where
//! `tests/layering.rs` allows it (`sync` → `fetch`).

pub mod audit;
pub mod doctor;
pub mod evidence;
pub mod fetch;
pub mod heartbeat;
pub mod offline;
pub mod policy_dist;
pub mod provenance;
pub mod reverify;
pub mod sync;
pub mod trust;
