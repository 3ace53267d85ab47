//! The facts a verdict records about what verified: the provenance summary
//! (the Sigstore facts live beside the signature check in
//! [`crate::verify::signatures`]).

use serde::Serialize;

/// The provenance facts a verdict records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ProvenanceSummary {
    /// The builder ID.
    pub builder: String,
    /// The source repository, if derivable.
    pub source: Option<String>,
    /// The source ref, if derivable.
    pub source_ref: Option<String>,
    /// The build type.
    pub build_type: String,
    /// The predicate type.
    pub predicate_type: String,
    /// `sha256:` of the verified statement.
    pub statement_digest: String,
    /// Who signed the attestation.
    pub signer: String,
}
