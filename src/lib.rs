//! Portcullis: a gate in front of every container start containerd makes.
//!
//! # The start path, in eight steps
//!
//! 1. [`gate::runc`] — `portcullis-runc`, containerd's `runc` under
//!    node-wide enforcement: `create`, `run` and `restore` are gated; or
//!    [`gate::shim`] — the opt-in shim v2 wrapper: `start` is gated. Both
//!    hand the same request to [`gate::admission`].
//! 2. [`containerd`] — container → image → target digest (and this
//!    platform's manifest when the target is an index).
//! 3. [`policy`] — which rule governs the image, in which mode.
//! 4. [`state::cache`] — the node's signature artifacts, fetched ahead of time.
//! 5. [`verify`] (with [`formats::cosign`]) — does a rule's signer vouch for
//!    this digest? Then [`verify::attestations`] (with [`formats::dsse`] and
//!    [`formats::provenance`]) — does a signed SLSA provenance meet the rule's
//!    `[rule.provenance]`? Both run in a [`gate::sandbox`]: a forked child
//!    without privileges.
//! 6. [`gate`] — the verdict, fail-closed ([`gate::decide`]).
//! 7. [`gate::journal`] — one structured record per verdict, spooled if
//!    journald is away.
//! 8. back in the binary — `exec` the real runc or the inner shim, or refuse
//!    with one line naming the image, its digest and the fix.
//!
//! # Layers
//!
//! The crate is folders by layer; a module imports only from layers below its
//! own (`tests/layering.rs` fails on an upward edge or a cycle):
//!
//! | layer | folder | owns |
//! |---|---|---|
//! | 0 | [`base`] | digests, image references, text helpers, the bounded reader, install-time names |
//! | 1 | [`formats`] | untrusted bytes → typed values: cosign, DSSE, SLSA provenance, public keys, the policy artifact |
//! | 2 | [`state`] | the state directory: signature cache, trust root names, pulled policy releases |
//! | 2 | [`containerd`] | the containerd client and the start path's lookups |
//! | 3 | [`verify`] | trust roots, signers, signatures, attestations, the facts a verdict records |
//! | 4 | [`policy`] | the policy file and rule selection |
//! | 5 | [`gate`] | the start path: shim arguments, decide, verdict cache, sandbox, journal |
//! | 6 | [`ops`] | operator tools: fetch, sync, doctor, heartbeat, audit, bundles, evidence, trust updates, policy publish / pull |
//! | 7 | [`cli`] | the `portcullis` command line |
//!
//! Nothing under [`gate`] reaches [`ops`] or [`cli`]. The CLI reuses the same
//! modules: `check` is steps 2–6 without the `exec`.
//!
//! Short paths for the most used modules (`crate::digest`, `crate::cache`,
//! `crate::journal`, …) are re-exported below.

#![warn(missing_docs)]

pub mod base;
pub mod cli;
pub mod containerd;
pub mod formats;
pub mod gate;
pub mod ops;
pub mod policy;
pub mod state;
pub mod verify;

pub use base::{digest, reference};
pub use formats::{cosign, dsse, provenance};
pub use gate::{admission, journal, runc as runc_gate, sandbox, shim, verdict_cache};
pub use ops::{audit, doctor, evidence, fetch, heartbeat, offline, sync, trust};
pub use state::cache;
pub use verify::{attestations as attestation, sigstore as bundle};
