//! Layer 1: untrusted bytes → typed values (cosign signature layers, DSSE
//! envelopes, in-toto/SLSA provenance statements, public keys). No I/O beyond
//! [`crate::base::fsio`].

pub mod cosign;
pub mod dsse;
pub mod keys;
pub mod policy_artifact;
pub mod provenance;
pub mod referrers;
