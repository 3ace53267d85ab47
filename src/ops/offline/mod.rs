//! Offline bundles: everything a node needs to verify some images, in one
//! file, for nodes that cannot reach a registry (`portcullis bundle export`
//! and `portcullis bundle import`), and the same import path for signatures
//! that arrived in containerd's content store through `ctr images import` of
//! an OCI layout (`portcullis bundle import --from-containerd`).
//!
//! This module owns the bundle file format and the rules for letting its
//! contents into the cache. The format (version [`VERSION`]) is a POSIX tar
//! archive with:
//!
//! * `manifest.json` ([`Manifest`]): `format` = [`FORMAT`], `version`, the
//!   images (reference, target digest and media type, this platform's
//!   manifest digest when the target is an index), and one record per item:
//!   its member path, kind, subject digest, image, size and SHA-256.
//! * `items/NNNN.json` members: a cache artifact ([`crate::cache::Artifact`],
//!   kinds `cosign-signature`, `cosign-attestation`, `sigstore-bundle`) filed
//!   for its subject digest; `image-index`: the raw index manifest, so the
//!   importer can tie a platform manifest digest to the image's index digest;
//!   `trust-root`: a `trusted_root.json` (only with `--with-trust-root`).
//!
//! Reading is bounded ([`MAX_BUNDLE_BYTES`], [`MAX_MEMBER_BYTES`],
//! [`MAX_ITEMS`]); only regular members with the paths above are accepted.
//! On import every item is checked on the way in: its SHA-256 against the
//! manifest, its parse as a known kind, its subject against its image's
//! digests (a platform digest only when the bundled index lists it), and
//! each signature or attestation layer against the signers of the policy
//! rule that governs its image, with the trust root in force. Layers that
//! fail are refused with a one-line reason; what passes is merged into the
//! existing cache entry (a union: nothing stored is dropped or replaced) and
//! written atomically through [`crate::cache`]. Re-importing changes nothing.
//! Each item is parsed and verified in the verification sandbox
//! ([`crate::sandbox`]); the parent keeps only the layers the child passed.
//!
//! A bundle never installs a trust root by itself: a bundled root is only
//! installed when the operator passes its SHA-256 (printed by `export`,
//! checked out of band), and then through [`crate::trust::import`], which
//! refuses a root the gate could not load.
//!
//! The parts: [`manifest`] (the format: manifest, records, limits),
//! [`archive`] (the tar file, written and read bounded), [`export`],
//! [`import`](mod@import) (with its report), `check` (one item, in the sandbox),
//! [`from_containerd`](mod@from_containerd), and [`error`].

pub mod archive;
mod check;
pub mod error;
pub mod export;
pub mod from_containerd;
pub mod import;
pub mod manifest;

pub use archive::*;
pub use error::*;
pub use export::*;
pub use from_containerd::*;
pub use import::*;
pub use manifest::*;

#[cfg(test)]
mod tests;
