//! Audit evidence: one pack that answers an SSDF / SLSA auditor for a period
//! (`portcullis evidence`), its offline check (`evidence verify`) and the
//! fleet view (`evidence merge`).
//!
//! This module owns the pack: what goes in, where, and how it is checked.
//! It reads the node's own records back from journald (verdicts, heartbeats
//! from [`crate::heartbeat`], task starts and observer records from
//! [`crate::sync`]), containerd's current container records, and the state
//! directory (signature cache, archived policies and trust roots). It copies
//! every document a verdict relied on into the pack and re-verifies it *from
//! the pack alone* with the same code the gate uses ([`crate::verify`],
//! [`crate::attestation`]), as of the recorded decision time, against the
//! trust root whose digest the verdict recorded. Every file is listed with
//! its SHA-256 in `MANIFEST.sha256` (the `sha256sum -c` format).
//!
//! What it cannot see it says: policy versions or trust roots whose text was
//! never archived, periods without heartbeats or without an event observer,
//! containerd unreachable, journald Forward Secure Sealing not enabled.
//! The report ([`html`]) is one self-contained HTML file.
//!
//! The parts, in the order a pack is made:
//! - [`error`]: the one error, [`EvidenceError`];
//! - [`model`]: the pack's types (node and fleet), as written to `evidence.json`;
//! - [`records`]: the node's journal records read back;
//! - [`coverage`]: heartbeats, observed intervals, containerd's records, gaps;
//! - [`revoked`]: containers that ran on after their verdict stopped holding;
//! - [`derive`](mod@derive): what follows from the records alone;
//! - [`collect`]: `portcullis evidence`, building a pack;
//! - [`reverify`](mod@reverify): each image's documents checked again from the pack;
//! - [`judge`](mod@judge): the audit steps and the summary;
//! - [`manifest`]: the pack's files and `MANIFEST.sha256`;
//! - [`check`]: `portcullis evidence verify`;
//! - [`fleet`]: what a fleet pack states that follows from its node packs;
//! - [`merge`](mod@merge): `portcullis evidence merge`, the fleet view;
//! - [`collector`]: one fleet pack from a collector's journal directory;
//! - [`html`]: the report.

pub mod check;
pub mod collect;
pub mod collector;
pub mod coverage;
pub mod derive;
pub mod error;
pub mod fleet;
pub mod html;
pub mod judge;
pub mod manifest;
pub mod merge;
pub mod model;
pub mod records;
pub mod reverify;
pub mod revoked;

pub use check::*;
pub use collect::*;
pub use collector::*;
pub use coverage::*;
pub use derive::*;
pub use error::*;
pub use fleet::*;
pub use judge::*;
pub use manifest::*;
pub use merge::*;
pub use model::*;
pub use records::*;
pub use reverify::*;
pub use revoked::*;

#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod tests;
