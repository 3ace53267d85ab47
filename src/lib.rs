//! Portcullis: a gate in front of containerd's runtime shim.
//!
//! The path of a container start, one module per step:
//!
//! 1. [`shim`] — the shim v2 command line; only `start` is gated.
//! 2. [`containerd`] — container → image → target digest (and this
//!    platform's manifest when the target is an index).
//! 3. [`policy`] — which rule governs the image, in which mode.
//! 4. [`cache`] — the node's signature artifacts, fetched ahead of time.
//! 5. [`verify`] (with [`cosign`]) — does a rule's signer vouch for this digest?
//!    Then [`attestation`] (with [`dsse`] and [`provenance`]) — does a signed
//!    SLSA provenance meet the rule's `[rule.provenance]`?
//!    Both run in a [`sandbox`]: a forked child without privileges.
//! 6. [`gate`] — the verdict, fail-closed.
//! 7. [`journal`] — one structured record per verdict, spooled if journald is away.
//! 8. back in [`shim`] — `exec` the inner shim, or refuse with one line.
//!
//! The CLI ([`cli`]) reuses the same modules: `check` is steps 2–6 without
//! the `exec`; `fetch` ([`fetch`]) fills the cache; `audit` ([`audit`]) reads
//! the journal back; `sync` ([`sync`]) fetches as containerd pulls; `doctor`
//! ([`doctor`]) checks the node's set-up; `bundle` ([`offline`]) carries a
//! node's signatures to nodes with no registry access; `heartbeat`
//! ([`heartbeat`]) states the gate's mode, policy and trust roots in the
//! journal; `evidence` ([`evidence`]) turns all of it into an audit
//! evidence pack.

pub mod attestation;
pub mod audit;
pub mod bundle;
pub mod cache;
pub mod cli;
pub mod containerd;
pub mod cosign;
pub mod digest;
pub mod doctor;
pub mod dsse;
pub mod evidence;
pub mod fetch;
pub mod gate;
pub mod heartbeat;
pub mod journal;
pub mod offline;
pub mod platform;
pub mod policy;
pub mod provenance;
pub mod reference;
pub mod sandbox;
pub mod shim;
pub mod sync;
pub mod trust;
pub mod verdict_cache;
pub mod verify;
