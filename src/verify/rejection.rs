//! Why a start was refused, as a class: the typed, ordered reasons of the
//! verification core ([`Rejected`], one per examined signature or
//! attestation, the most telling kept) and the class every failing verdict
//! carries into the journal as `PORTCULLIS_REJECTION` ([`Class`]), for
//! evidence packs to count denials by class rather than by prose.

use std::fmt;

/// Why one examined signature or attestation does not count. The variants
/// are ordered from least to most telling: when several layers fail, the
/// reason kept is the greatest (the first of equals).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejected {
    /// Nothing examined is a signature by anybody the rule names.
    NoSignature(String),
    /// An attestation of another predicate type than SLSA provenance.
    NotProvenance(String),
    /// A signature or attestation that cannot be parsed.
    Malformed(String),
    /// Authentic material by nobody the rule names, or a signature or log
    /// entry that does not verify.
    NotTheSigner(String),
    /// A valid signature over another image: replayed.
    Replayed(String),
    /// A signed statement whose subject or content does not describe the
    /// image being started.
    ProvenanceMismatch(String),
    /// Signed provenance that does not meet the rule's requirement.
    ProvenanceUnmet(String),
    /// Sigstore material met, but no usable trust root to check it against.
    NoTrustRoot(String),
}

impl Rejected {
    /// Its class.
    pub fn class(&self) -> Class {
        match self {
            Rejected::NoSignature(_) => Class::NoSignature,
            Rejected::NotProvenance(_) => Class::NotProvenance,
            Rejected::Malformed(_) => Class::Malformed,
            Rejected::NotTheSigner(_) => Class::NotTheSigner,
            Rejected::Replayed(_) => Class::Replayed,
            Rejected::ProvenanceMismatch(_) => Class::ProvenanceMismatch,
            Rejected::ProvenanceUnmet(_) => Class::ProvenanceUnmet,
            Rejected::NoTrustRoot(_) => Class::NoTrustRoot,
        }
    }

    /// The same class, the prose prefixed (`what: prose`).
    pub fn prefixed(self, what: impl fmt::Display) -> Self {
        self.map(|m| format!("{what}: {m}"))
    }

    fn map(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Rejected::NoSignature(m) => Rejected::NoSignature(f(m)),
            Rejected::NotProvenance(m) => Rejected::NotProvenance(f(m)),
            Rejected::Malformed(m) => Rejected::Malformed(f(m)),
            Rejected::NotTheSigner(m) => Rejected::NotTheSigner(f(m)),
            Rejected::Replayed(m) => Rejected::Replayed(f(m)),
            Rejected::ProvenanceMismatch(m) => Rejected::ProvenanceMismatch(f(m)),
            Rejected::ProvenanceUnmet(m) => Rejected::ProvenanceUnmet(f(m)),
            Rejected::NoTrustRoot(m) => Rejected::NoTrustRoot(f(m)),
        }
    }

    /// Keep the most telling of `best` and `new`: `new` replaces `best`
    /// only when its class is greater, so the first of equals stays.
    pub fn keep_most_telling(best: &mut Option<Rejected>, new: Rejected) {
        if best.as_ref().is_none_or(|b| new.class() > b.class()) {
            *best = Some(new);
        }
    }
}

impl std::ops::Deref for Rejected {
    type Target = str;

    /// The prose, as the journal and the operator read it.
    fn deref(&self) -> &str {
        let (Rejected::NoSignature(m)
        | Rejected::NotProvenance(m)
        | Rejected::Malformed(m)
        | Rejected::NotTheSigner(m)
        | Rejected::Replayed(m)
        | Rejected::ProvenanceMismatch(m)
        | Rejected::ProvenanceUnmet(m)
        | Rejected::NoTrustRoot(m)) = self;
        m
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

/// The class of a failing verdict: `PORTCULLIS_REJECTION` in the journal,
/// the key of an evidence pack's `rejections` tally.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Only attestations of other predicate types than SLSA provenance.
    NotProvenance,
    /// A signature or attestation that cannot be parsed.
    Malformed,
    /// No signature by the rule's signers (or none verifies).
    NotTheSigner,
    /// A valid signature over another image.
    Replayed,
    /// Signed provenance about something else than the image started.
    ProvenanceMismatch,
    /// Signed provenance that does not meet the rule's requirement.
    ProvenanceUnmet,
    /// No usable (or a too old) trust root for Sigstore material.
    NoTrustRoot,
    /// Signatures cached, none by anyone: nothing examined counts.
    NoSignature,
    /// No signature cached for the image on this node.
    NothingCached,
    /// No provenance attestation cached for the image on this node.
    ProvenanceMissing,
    /// The policy file is unreadable or invalid.
    Policy,
    /// No rule matches and the policy default is deny.
    NoRule,
    /// A rule with `action = "deny"` matched.
    DeniedByRule,
    /// A rule's signers or provenance terms cannot be loaded (key file,
    /// pattern).
    Signers,
    /// The node's signature cache cannot be read.
    Cache,
    /// containerd could not say which image the container runs.
    Lookup,
    /// The image name cannot be parsed as a reference.
    Reference,
    /// The container's rootfs does not descend from the verified image.
    Lineage,
    /// The rootfs the runtime is given is not the one containerd prepared.
    Rootfs,
    /// An index with several candidate manifests for this node, without a
    /// signature over the index.
    Platform,
    /// Verification could not run in its sandbox.
    Sandbox,
}

impl Class {
    /// The journal spelling (kebab-case).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::NotProvenance => "not-provenance",
            Class::Malformed => "malformed",
            Class::NotTheSigner => "not-the-signer",
            Class::Replayed => "replayed",
            Class::ProvenanceMismatch => "provenance-mismatch",
            Class::ProvenanceUnmet => "provenance-unmet",
            Class::NoTrustRoot => "no-trust-root",
            Class::NoSignature => "no-signature",
            Class::NothingCached => "nothing-cached",
            Class::ProvenanceMissing => "provenance-missing",
            Class::Policy => "policy",
            Class::NoRule => "no-rule",
            Class::DeniedByRule => "denied-by-rule",
            Class::Signers => "signers",
            Class::Cache => "cache",
            Class::Lookup => "lookup",
            Class::Reference => "reference",
            Class::Lineage => "lineage",
            Class::Rootfs => "rootfs",
            Class::Platform => "platform",
            Class::Sandbox => "sandbox",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_telling_reason_is_kept_and_the_first_of_equals() {
        let mut best = None;
        Rejected::keep_most_telling(&mut best, Rejected::Malformed("a".into()));
        Rejected::keep_most_telling(&mut best, Rejected::NotTheSigner("b".into()));
        Rejected::keep_most_telling(&mut best, Rejected::NotTheSigner("c".into()));
        Rejected::keep_most_telling(&mut best, Rejected::NotProvenance("d".into()));
        assert_eq!(best, Some(Rejected::NotTheSigner("b".into())));
        Rejected::keep_most_telling(&mut best, Rejected::NoTrustRoot("e".into()));
        assert_eq!(best.as_ref().map(Rejected::class), Some(Class::NoTrustRoot));
        assert_eq!(best.unwrap().to_string(), "e");
        assert!(Rejected::Replayed(String::new()) > Rejected::NotTheSigner("z".into()));
    }

    #[test]
    fn classes_are_spelled_in_kebab_case_alike_in_json_and_journal() {
        for c in [
            Class::NotTheSigner,
            Class::ProvenanceMissing,
            Class::DeniedByRule,
        ] {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        assert_eq!(Class::NoTrustRoot.to_string(), "no-trust-root");
    }
}
