//! A rule's provenance check, written once: the signers and requirement a
//! rule's `[rule.provenance]` names (keys and keyless identities alike), the
//! trust root loaded lazily (only when Sigstore material is met), and the
//! check of the cached attestations for the digests being started.
//! `bundle import` ([`crate::ops::offline`]) and `portcullis provenance`
//! ([`crate::cli`]) call it.

use std::cell::OnceCell;
use std::path::PathBuf;

use crate::formats::provenance::Requirement;
use crate::state::cache::Entry;
use crate::verify::attestations::{
    requirement, verify_provenance_with, ProvenanceRejection, ProvenanceVerified,
};
use crate::verify::signatures::RuleSigners;
use crate::verify::signer::{ProvenancePolicy, Signer};
use crate::verify::sigstore::TrustRoot;

/// A rule's trust root, read on first use (once per decision).
#[derive(Debug)]
pub struct LazyTrustRoot {
    path: PathBuf,
    cell: OnceCell<Result<TrustRoot, String>>,
}

impl LazyTrustRoot {
    /// The root at `path`, not read yet.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            cell: OnceCell::new(),
        }
    }

    /// The root, read now if not already; the error is one line with the fix.
    pub fn get(&self) -> Result<&TrustRoot, String> {
        self.cell
            .get_or_init(|| {
                TrustRoot::load(&self.path).map_err(|e| {
                    format!(
                        "no usable trust root at {} ({e}); install one (`portcullis trust import`, or --accept-trust-root for a bundled one)",
                        self.path.display()
                    )
                })
            })
            .as_ref()
            .map_err(String::clone)
    }
}

/// Who may sign a rule's provenance, and what it must say: the
/// `[rule.provenance]` signers (the rule's own signers when it names none)
/// and its requirement. Keyless identities load like keys; both are checked
/// the way the gate checks them.
pub fn provenance_terms(
    rule_signers: &[Signer],
    provenance: Option<&ProvenancePolicy>,
) -> Result<(RuleSigners, Requirement), String> {
    let spec = match provenance {
        Some(p) if !p.signers.is_empty() => &p.signers,
        _ => rule_signers,
    };
    let signers = RuleSigners::load(spec).map_err(|e| e.to_string())?;
    let req = match provenance {
        Some(p) => requirement(p)?,
        None => Requirement::default(),
    };
    Ok((signers, req))
}

/// Check the cached attestations of `digests` against `signers` and `req`.
pub fn check_provenance(
    entries: &[Entry],
    digests: &[&str],
    signers: &RuleSigners,
    req: &Requirement,
    root: &LazyTrustRoot,
    now: jiff::Timestamp,
) -> Result<ProvenanceVerified, ProvenanceRejection> {
    let mut trust = || root.get();
    verify_provenance_with(entries, digests, signers, req, now, &mut trust)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::signer::{Keyless, Matcher};

    fn keyless() -> Signer {
        Signer::Keyless(Box::new(Keyless {
            issuer: Matcher::Exact("https://token.actions.githubusercontent.com".into()),
            subject: Matcher::Exact(
                "https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1".into(),
            ),
            extensions: vec![],
            ca: None,
            require_tlog: true,
        }))
    }

    /// The drift this module ends: `portcullis provenance` loaded signers
    /// with a loader that refused keyless identities ("keyless identities are
    /// not verifiable by this version at container start"), while the gate
    /// accepts them.
    #[test]
    fn a_keyless_rule_is_checked_not_refused() {
        let (signers, _) = provenance_terms(&[keyless()], None).unwrap();
        assert_eq!(signers.keyless.len(), 1);
        assert!(signers.keys.is_empty());
        let pp = ProvenancePolicy {
            signers: vec![keyless()],
            ..Default::default()
        };
        let (signers, _) = provenance_terms(&[], Some(&pp)).unwrap();
        assert_eq!(signers.keyless.len(), 1);
        // Nothing cached: the answer is "nothing cached", not a load error,
        // and the trust root is never read.
        let root = LazyTrustRoot::new(PathBuf::from("/nonexistent/trusted_root.json"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = check_provenance(
            &[],
            &[d.as_str()],
            &signers,
            &Requirement::default(),
            &root,
            jiff::Timestamp::now(),
        );
        assert!(
            matches!(r, Err(ProvenanceRejection::NothingCached)),
            "{r:?}"
        );
        assert!(root.cell.get().is_none());
    }

    #[test]
    fn a_missing_trust_root_is_one_line_with_the_fix() {
        let root = LazyTrustRoot::new(PathBuf::from("/nonexistent/trusted_root.json"));
        let e = root.get().unwrap_err();
        assert!(
            e.contains("portcullis trust import") && !e.contains('\n'),
            "{e}"
        );
    }
}
