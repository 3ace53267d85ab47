//! `portcullis provenance`: the verified SLSA provenance cached for an image.
//! The image's rule says who may sign its provenance; the check is the one
//! `bundle import` and the gate make ([`crate::verify::rule`]): keyless
//! identities are checked as the gate checks them, not refused.

use std::path::Path;

use crate::attestation::{ProvenanceRejection, ProvenanceVerified};
use crate::cache::StateDir;
use crate::containerd::ImageTarget;
use crate::policy::{Policy, Selection};
use crate::reference::ImageRef;

/// Why the cached provenance could not be checked at all (a precondition,
/// not a rejection of what is cached).
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// The image, its rule, the rule's terms or the cache entries are unusable.
    #[error("{0}")]
    Precondition(String),
}

/// What was checked for an image, and the answer.
#[derive(Debug)]
pub struct Checked {
    /// The image, parsed from containerd's name.
    pub image: ImageRef,
    /// The name of the rule that governs it.
    pub rule: String,
    /// The verified provenance, or why none was acceptable.
    pub outcome: Result<ProvenanceVerified, ProvenanceRejection>,
}

/// Check the provenance cached in `state` for `target` against the rule of
/// `policy` (loaded from `policy_path`) that governs it, as of `now`.
pub fn check_cached(
    policy: &Policy,
    policy_path: &Path,
    state: &StateDir,
    target: &ImageTarget,
    now: jiff::Timestamp,
) -> Result<Checked, ProvenanceError> {
    let pre = |e: String| ProvenanceError::Precondition(e);
    let image = ImageRef::parse(&target.name).map_err(|e| pre(e.to_string()))?;
    let Selection::Rule(rule) = policy.select(&image) else {
        return Err(pre(format!(
            "no rule of {} applies to {image}: nothing says who may sign its provenance",
            policy_path.display()
        )));
    };
    let (signers, req) =
        crate::verify::rule::provenance_terms(&rule.signers, rule.provenance.as_ref())
            .map_err(pre)?;
    let root = crate::verify::rule::LazyTrustRoot::new(crate::gate::trust_root_path(
        state,
        rule.trust_root.as_deref(),
    ));
    let digests = target.digests();
    let entries = crate::verify::read_entries(state, &digests).map_err(|e| pre(e.to_string()))?;
    let outcome =
        crate::verify::rule::check_provenance_with(&entries, &digests, &signers, &req, &root, now);
    Ok(Checked {
        image,
        rule: rule.name.clone(),
        outcome,
    })
}
