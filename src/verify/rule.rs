//! A rule's provenance check, written once: the signers and requirement a
//! rule's `[rule.provenance]` names (keys and keyless identities alike), the
//! trust root loaded lazily (only when Sigstore material is met), and the
//! check of the cached attestations for the digests being started.
//! The gate ([`crate::gate::decide`]), `bundle import`
//! ([`crate::ops::offline`]), evidence re-verification
//! ([`crate::ops::evidence`]) and `portcullis provenance` ([`crate::cli`])
//! call it: signatures first, then provenance.

use std::cell::OnceCell;
use std::path::PathBuf;
use std::time::Duration;

use crate::formats::provenance::Requirement;
use crate::state::cache::Entry;
use crate::verify::attestations::{
    requirement, verify_provenance_with, ProvenanceRejection, ProvenanceVerified,
};
use crate::verify::signatures::{verify_entries_with, Rejection, RuleSigners, Verified};
use crate::verify::signer::{ProvenancePolicy, Signer};
use crate::verify::sigstore::{BundleError, TrustRoot};

/// Where a rule's trust root comes from; each source words its failure for
/// the operator who meets it.
#[derive(Debug)]
enum Source {
    /// An installed root read by an operator command (`bundle import`,
    /// `portcullis provenance`).
    Installed(PathBuf),
    /// The node's root read at container start.
    Node(PathBuf),
    /// A root shipped in an evidence pack, or why the pack has none.
    Pack(Result<PathBuf, String>),
}

/// A rule's trust root, read on first use (once per decision), with its
/// staleness checked then when a maximum age is set.
#[derive(Debug)]
pub struct LazyTrustRoot {
    source: Source,
    max_age: Option<(Duration, bool)>,
    stale_note: OnceCell<String>,
    cell: OnceCell<Result<TrustRoot, String>>,
}

impl LazyTrustRoot {
    fn with(source: Source) -> Self {
        Self {
            source,
            max_age: None,
            stale_note: OnceCell::new(),
            cell: OnceCell::new(),
        }
    }

    /// The installed root at `path`, not read yet.
    pub fn new(path: PathBuf) -> Self {
        Self::with(Source::Installed(path))
    }

    /// The node's root at `path` as the gate reads it: older than
    /// `max_age` it refuses (`refuse_stale`) or verifies with a note
    /// ([`LazyTrustRoot::stale_note`]).
    pub fn node(path: PathBuf, max_age: Option<Duration>, refuse_stale: bool) -> Self {
        let mut r = Self::with(Source::Node(path));
        r.max_age = max_age.map(|m| (m, refuse_stale));
        r
    }

    /// A root shipped in an evidence pack (`Err` says why the pack has none).
    pub fn pack(file: Result<PathBuf, String>) -> Self {
        Self::with(Source::Pack(file))
    }

    /// The staleness warning met while loading, if any.
    pub fn stale_note(&self) -> Option<&str> {
        self.stale_note.get().map(String::as_str)
    }

    fn load(&self) -> Result<TrustRoot, String> {
        match &self.source {
            Source::Installed(path) => TrustRoot::load(path).map_err(|e| {
                format!(
                    "no usable trust root at {} ({e}); install one (`portcullis trust import`, or --accept-trust-root for a bundled one)",
                    path.display()
                )
            }),
            Source::Node(path) => {
                if let Some((max, refuse)) = self.max_age {
                    let age = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if let Some(age) = age.filter(|a| *a > max) {
                        let msg = format!(
                            "trust root {} is {} days old, older than trust_root_max_age ({} days); run `portcullis trust update`",
                            path.display(),
                            age.as_secs() / 86_400,
                            max.as_secs() / 86_400
                        );
                        if refuse {
                            return Err(msg);
                        }
                        let _ = self.stale_note.set(msg);
                    }
                }
                TrustRoot::load(path).map_err(|e| match e {
                    BundleError::TrustRootRead { .. } => format!(
                        "no Sigstore trust root at {}: run `portcullis trust update` (or `portcullis trust import FILE` offline)",
                        path.display()
                    ),
                    other => other.to_string(),
                })
            }
            Source::Pack(Ok(file)) => TrustRoot::load(file).map_err(|e| e.to_string()),
            Source::Pack(Err(why)) => Err(why.clone()),
        }
    }

    /// The root, read now if not already; the error is one line with the fix.
    pub fn get(&self) -> Result<&TrustRoot, String> {
        self.cell
            .get_or_init(|| self.load())
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

/// Check the cached signatures of `digests` (cosign layers and Sigstore
/// bundles) against a rule's `signers`; the first that verifies wins.
pub fn check_signatures(
    entries: &[Entry],
    digests: &[&str],
    signers: &RuleSigners,
    root: &LazyTrustRoot,
) -> Result<Verified, Rejection> {
    let mut trust = || root.get();
    verify_entries_with(entries, digests, signers, &mut trust)
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
