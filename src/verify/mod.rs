//! Layer 3: trust establishment, then signer match. Sigstore bundles and
//! trust roots ([`sigstore`]), signer types ([`signer`]) and the expressions
//! their identities match ([`expression`]), cosign signatures
//! ([`signatures`], re-exported here), attestations ([`attestations`]) and the
//! facts a verdict records ([`facts`]).

pub mod attestations;
pub mod expression;
pub mod facts;
pub mod rejection;
pub mod rule;
pub mod signatures;
pub mod signer;
pub mod sigstore;
pub mod tsa;
#[cfg(test)]
mod tsa_tests;

pub use signatures::*;
