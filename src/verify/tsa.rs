//! RFC 3161 timestamps of a Sigstore bundle from a timestamp authority the
//! trust root does not list (threat T76 in docs/THREAT-MODEL.md).
//!
//! This module owns one classification: for each timestamp a bundle
//! carries, whether a timestamp authority of the trust root verifies it,
//! whether none of them is its signer (an unknown TSA), or whether one is
//! its signer and the token still fails (tampered, outside the authority's
//! window, not over this signature). Every check is the crate's own
//! (`sigstore_tsa::verify_timestamp_for_authority`, one authority at a
//! time); nothing here parses RFC 3161 or X.509. sigstore-verify 0.15.1
//! refuses a bundle when any of its timestamps fails; sigstore-go ignores
//! an unverifiable timestamp and counts the verified ones. Portcullis
//! ignores a timestamp only when no authority of the trust root signed it,
//! by verifying a copy of the bundle without it (which only removes
//! evidence: the remaining time sources must verify on their own), and
//! refuses a bundle whose timestamp from a listed authority fails.

use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::tsa::{verify_timestamp_for_authority, Error as TsaError};
use sigstore_verify::types::bundle::SignatureContent;
use sigstore_verify::types::{Bundle, SignatureBytes};

/// The error sigstore-tsa 0.15.1 gives when an authority's leaf certificate
/// is not the token's CMS signer (and only then).
const NOT_THIS_SIGNER: &str = "CMS signer does not match any trusted TSA certificate";

/// What the trust root says about one timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An authority of the trust root verifies it.
    Verified,
    /// No authority of the trust root is its signer.
    UnknownAuthority,
    /// An authority is its signer (or the token is not over this
    /// signature, or unreadable) and it fails: never ignored.
    Invalid(String),
}

/// Each RFC 3161 timestamp of `bundle`, judged against `root`'s authorities.
pub fn classify(bundle: &Bundle, root: &TrustedRoot) -> Vec<Verdict> {
    let stamps = &bundle
        .verification_material
        .timestamp_verification_data
        .rfc3161_timestamps;
    let signature: Option<SignatureBytes> = match &bundle.content {
        SignatureContent::MessageSignature(m) => Some(m.signature.clone()),
        SignatureContent::DsseEnvelope(e) => Some(e.signature.sig.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    let Some(signature) = signature else {
        return stamps
            .iter()
            .map(|_| Verdict::Invalid("the bundle has no signature to timestamp".into()))
            .collect();
    };
    let authorities = root.tsa_authorities();
    stamps
        .iter()
        .map(|ts| {
            let mut failure = None;
            for authority in &authorities {
                match verify_timestamp_for_authority(&ts.signed_timestamp, &signature, authority) {
                    Ok(_) => return Verdict::Verified,
                    Err(TsaError::SignatureVerificationError(m)) if m == NOT_THIS_SIGNER => {}
                    Err(e) => failure = Some(e.to_string()),
                }
            }
            match failure {
                Some(why) => Verdict::Invalid(why),
                None => Verdict::UnknownAuthority,
            }
        })
        .collect()
}

/// `bundle` without the timestamps whose authority the trust root does not
/// list, and how many were removed; `None` when there is none to remove or
/// when another timestamp is invalid (then the bundle stands refused).
pub fn without_unknown_authorities(bundle: &Bundle, root: &TrustedRoot) -> Option<(Bundle, usize)> {
    let verdicts = classify(bundle, root);
    if verdicts.iter().any(|v| matches!(v, Verdict::Invalid(_))) {
        return None;
    }
    let unknown = verdicts
        .iter()
        .filter(|v| **v == Verdict::UnknownAuthority)
        .count();
    if unknown == 0 {
        return None;
    }
    let mut stripped = bundle.clone();
    let stamps = &mut stripped
        .verification_material
        .timestamp_verification_data
        .rfc3161_timestamps;
    let mut keep = verdicts.iter().map(|v| *v == Verdict::Verified);
    stamps.retain(|_| keep.next().unwrap_or(false));
    Some((stripped, unknown))
}
