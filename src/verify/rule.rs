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
use std::time::{Duration, SystemTime};

use crate::base::fsio::Dated;
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
    /// The node's root as the gate read it at container start (the bytes
    /// it hashed into its verdict key and the opened file's modification
    /// time, `Ok(None)` when over
    /// [`crate::verify::sigstore::MAX_TRUST_ROOT_BYTES`]), parsed when
    /// first needed.
    Node(PathBuf, std::io::Result<Option<Dated>>),
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

    /// The node's root at `path` as the gate read it (`read`: its bytes and
    /// modification time, from [`crate::base::fsio::read_bounded_dated`]
    /// with [`crate::verify::sigstore::MAX_TRUST_ROOT_BYTES`]), parsed on
    /// first use: older than `max_age` it refuses (`refuse_stale`) or
    /// verifies with a note ([`LazyTrustRoot::stale_note`]).
    pub fn node(
        path: PathBuf,
        read: std::io::Result<Option<Dated>>,
        max_age: Option<Duration>,
        refuse_stale: bool,
    ) -> Self {
        let mut r = Self::with(Source::Node(path, read));
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

    /// When the node's root that was read was last modified (the age
    /// `max_age` judges), if it was read.
    pub fn modified(&self) -> Option<SystemTime> {
        match &self.source {
            Source::Node(_, Ok(Some(read))) => read.modified,
            _ => None,
        }
    }

    fn load(&self) -> Result<TrustRoot, String> {
        match &self.source {
            Source::Installed(path) => TrustRoot::load(path).map_err(|e| {
                format!(
                    "no usable trust root at {} ({e}); install one (`portcullis trust import`, or --accept-trust-root for a bundled one)",
                    path.display()
                )
            }),
            Source::Node(path, read) => {
                if let Some((max, refuse)) = self.max_age {
                    let age = self.modified().and_then(|t| t.elapsed().ok());
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
                match read {
                    Ok(Some(read)) => {
                        TrustRoot::from_json(&read.bytes, path).map_err(|e| e.to_string())
                    }
                    Ok(None) => Err(BundleError::TrustRootTooLarge { path: path.clone() }.to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                        "no Sigstore trust root at {}: run `portcullis trust update` (or `portcullis trust import FILE` offline)",
                        path.display()
                    )),
                    Err(e) => Err(format!(
                        "cannot read the Sigstore trust root at {}: {e}; reinstall it with `portcullis trust update` (or `portcullis trust import FILE` offline)",
                        path.display()
                    )),
                }
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

/// What a rule requires, loaded once: an image signature from `signature`
/// (`None`: the rule asks for provenance alone), provenance from the
/// provenance signers meeting the requirement, or both. Built only by
/// [`Terms::load`], so at least one is always required: an empty
/// requirement is never a pass.
#[derive(Debug, Clone)]
pub struct Terms {
    signature: Option<RuleSigners>,
    provenance: Option<(RuleSigners, Requirement)>,
}

/// Why a rule's terms do not load, in one line with the fix.
pub const NOTHING_REQUIRED: &str = "the rule names no `[[rule.signer]]` and no `[[rule.provenance.signer]]`: an empty signer list is an error, not a pass; add a `[[rule.signer]]`, or a `[rule.provenance]` with its own `[[rule.provenance.signer]]` to require provenance alone, or set action = \"allow\" for an exemption";

impl Terms {
    /// Load a rule's signers and requirement: `[[rule.signer]]` asks for a
    /// signature; `[rule.provenance]` asks for provenance signed by its own
    /// signers, or by the rule's when it names none. A rule with neither
    /// (or with provenance and no signer anywhere) is an error.
    pub fn load(
        rule_signers: &[Signer],
        provenance: Option<&ProvenancePolicy>,
    ) -> Result<Terms, String> {
        let signature = if rule_signers.is_empty() {
            None
        } else {
            Some(RuleSigners::load(rule_signers).map_err(|e| e.to_string())?)
        };
        let provenance = match provenance {
            None => None,
            Some(p) if !p.signers.is_empty() => Some((
                RuleSigners::load(&p.signers).map_err(|e| e.to_string())?,
                requirement(p)?,
            )),
            Some(p) => match &signature {
                Some(s) => Some((s.clone(), requirement(p)?)),
                None => return Err(NOTHING_REQUIRED.into()),
            },
        };
        if signature.is_none() && provenance.is_none() {
            return Err(NOTHING_REQUIRED.into());
        }
        Ok(Terms {
            signature,
            provenance,
        })
    }

    /// The image signers, when the rule asks for an image signature.
    pub fn signature(&self) -> Option<&RuleSigners> {
        self.signature.as_ref()
    }

    /// The provenance signers and requirement, when the rule asks for provenance.
    pub fn provenance(&self) -> Option<(&RuleSigners, &Requirement)> {
        self.provenance.as_ref().map(|(s, r)| (s, r))
    }

    /// Whether checking these terms reads the trust root whatever is
    /// cached: a keyless signer chains to its CAs and logs, and a key
    /// signer that requires the log checks its entry against the logs.
    pub fn needs_trust_root(&self) -> bool {
        self.signature
            .iter()
            .chain(self.provenance.iter().map(|(s, _)| s))
            .any(|s| !s.keyless.is_empty() || s.keys.iter().any(|k| k.require_tlog))
    }
}

/// Everything a verification under a rule's terms depends on besides the
/// policy text, for the verdict-cache key, read without loading the terms:
/// each signer as written, with the SHA-256 of the bytes of the key file or
/// CA bundle it names. A cached pass is thus found without parsing a key
/// (the warm start's cost), and a changed, missing or unreadable file gives
/// another key: a miss, which loads the terms and refuses with their reason.
pub fn fingerprint(rule_signers: &[Signer], provenance: Option<&ProvenancePolicy>) -> Vec<u8> {
    let mut out = String::from("signature\n");
    for s in rule_signers {
        signer_fingerprint(s, &mut out);
    }
    out.push_str("provenance\n");
    match provenance {
        Some(p) if !p.signers.is_empty() => p
            .signers
            .iter()
            .for_each(|s| signer_fingerprint(s, &mut out)),
        Some(_) => out.push_str("the rule's signers\n"),
        None => out.push_str("none\n"),
    }
    out.into_bytes()
}

/// The files a rule's signers name (key files, private CA bundles): the
/// gate reads each once per decision ([`crate::base::fsio::read_once_within`]),
/// so the key's [`fingerprint`] hashes the bytes the terms then load and the
/// verification checks bundles with.
pub fn signer_files(
    rule_signers: &[Signer],
    provenance: Option<&ProvenancePolicy>,
) -> Vec<std::path::PathBuf> {
    rule_signers
        .iter()
        .chain(provenance.iter().flat_map(|p| p.signers.iter()))
        .filter_map(|s| match s {
            Signer::Key { path, .. } => Some(path.clone()),
            Signer::Keyless(k) => k.ca.clone(),
        })
        .collect()
}

fn signer_fingerprint(signer: &Signer, out: &mut String) {
    use std::fmt::Write as _;
    // Whole reads, the loaders' own: within the gate's decision, where the
    // files are pinned ([`signer_files`]), the loaders get these bytes.
    let digest = |path: &std::path::Path, max: u64| {
        crate::base::fsio::read(path, crate::base::fsio::ReadOptions::bounded(max))
            .map(|bytes| crate::digest::sha256_prefixed(&bytes))
            .unwrap_or_else(|_| "unreadable".into())
    };
    let _ = match signer {
        Signer::Key { path, require_tlog } => writeln!(
            out,
            "key {} {} tlog={require_tlog}",
            path.display(),
            digest(path, crate::formats::keys::MAX_KEY_BYTES)
        ),
        Signer::Keyless(k) => writeln!(
            out,
            "keyless {} {} {:?} tlog={} ca={}",
            k.issuer,
            k.subject,
            k.extensions,
            k.require_tlog,
            k.ca.as_deref()
                .map(|c| format!(
                    "{} {}",
                    c.display(),
                    digest(c, crate::bundle::MAX_TRUST_ROOT_BYTES)
                ))
                .unwrap_or_default()
        ),
    };
}

/// Who may sign a rule's provenance, and what it must say: the
/// `[rule.provenance]` signers (the rule's own signers when it names none)
/// and its requirement. Keyless identities load like keys; both are checked
/// the way the gate checks them. A rule without `[rule.provenance]` is
/// checked against its signers with no further requirement (`portcullis
/// provenance` shows any provenance they signed); no signer at all is an error.
pub fn provenance_terms(
    rule_signers: &[Signer],
    provenance: Option<&ProvenancePolicy>,
) -> Result<(RuleSigners, Requirement), String> {
    let spec = match provenance {
        Some(p) if !p.signers.is_empty() => &p.signers,
        _ => rule_signers,
    };
    if spec.is_empty() {
        return Err(NOTHING_REQUIRED.into());
    }
    let signers = RuleSigners::load(spec).map_err(|e| e.to_string())?;
    let req = match provenance {
        Some(p) => requirement(p)?,
        None => Requirement::default(),
    };
    Ok((signers, req))
}

/// Check the cached signatures of `digests` (cosign layers and Sigstore
/// bundles) against the rule's image signers; the first that verifies wins.
/// `Ok(None)`: the rule asks for provenance alone, and
/// [`check_provenance`] then always has a requirement to check.
pub fn check_signatures(
    entries: &[Entry],
    digests: &[&str],
    terms: &Terms,
    root: &LazyTrustRoot,
) -> Result<Option<Verified>, Rejection> {
    let Some(signers) = &terms.signature else {
        return Ok(None);
    };
    let mut trust = || root.get();
    verify_entries_with(entries, digests, signers, &mut trust).map(Some)
}

/// Check the cached attestations of `digests` against the rule's provenance
/// signers and requirement. `Ok(None)`: the rule asks for no provenance,
/// and [`check_signatures`] then always has a signature to check.
pub fn check_provenance(
    entries: &[Entry],
    digests: &[&str],
    terms: &Terms,
    root: &LazyTrustRoot,
    now: jiff::Timestamp,
) -> Result<Option<ProvenanceVerified>, ProvenanceRejection> {
    let Some((signers, req)) = terms.provenance() else {
        return Ok(None);
    };
    check_provenance_with(entries, digests, signers, req, root, now).map(Some)
}

/// Check the cached attestations of `digests` against `signers` and `req`
/// (`bundle import` and `portcullis provenance`, from [`provenance_terms`]).
pub fn check_provenance_with(
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

    /// A keyless signer, for the image or for its provenance, always reads
    /// the trust root, and so does a key that requires the log; a key
    /// without the log reads it only for what is cached.
    #[test]
    fn the_terms_say_when_they_read_the_trust_root() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pub");
        let kp = sigstore_verify::crypto::KeyPair::generate(
            sigstore_verify::crypto::KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
        std::fs::write(&key, crate::base::testing::public_key_pem(&kp)).unwrap();
        let key_signer = |require_tlog| Signer::Key {
            path: key.clone(),
            require_tlog,
        };
        let needs = |signers: &[Signer], pp: Option<&ProvenancePolicy>| {
            Terms::load(signers, pp).unwrap().needs_trust_root()
        };
        assert!(needs(&[keyless()], None));
        assert!(needs(&[key_signer(true)], None));
        assert!(!needs(&[key_signer(false)], None));
        let pp = ProvenancePolicy {
            signers: vec![keyless()],
            ..Default::default()
        };
        assert!(needs(&[key_signer(false)], Some(&pp)));
        assert!(needs(&[], Some(&pp)));
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
        let r = check_provenance_with(
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

    /// A key signer and a keyless one with a private CA, at `k.pub` and
    /// `ca.pem` in `dir` (not written): the files, then the signers.
    fn key_and_private_ca(
        dir: &std::path::Path,
        require_tlog: bool,
    ) -> (PathBuf, PathBuf, Signer, Signer) {
        let (k, ca) = (dir.join("k.pub"), dir.join("ca.pem"));
        let key = Signer::Key {
            path: k.clone(),
            require_tlog,
        };
        let Signer::Keyless(mut kl) = keyless() else {
            unreachable!()
        };
        kl.ca = Some(ca.clone());
        (k, ca, key, Signer::Keyless(kl))
    }

    /// The verdict-cache key's view of the signers: the files' bytes, not
    /// their names alone, and a file that cannot be read is a key of its own.
    #[test]
    fn the_fingerprint_follows_the_files_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (k, ca, key, kl) = key_and_private_ca(dir.path(), false);
        let signers = [key, kl];
        let fp = || fingerprint(&signers, None);
        let missing = fp();
        assert_eq!(
            String::from_utf8_lossy(&missing)
                .matches("unreadable")
                .count(),
            2
        );
        std::fs::write(&k, "key one").unwrap();
        std::fs::write(&ca, "ca one").unwrap();
        let one = fp();
        assert_ne!(one, missing);
        assert_eq!(fp(), one);
        std::fs::write(&k, "key two").unwrap();
        let two = fp();
        assert_ne!(two, one);
        std::fs::write(&ca, "ca two").unwrap();
        assert_ne!(fp(), two);
        // who signs the provenance is part of it
        let pp = ProvenancePolicy::default();
        assert_ne!(fingerprint(&signers, Some(&pp)), fp());
    }

    /// A key file replaced during a decision: the verdict key's fingerprint,
    /// the loaded terms and a bundle check all use the bytes read first.
    #[test]
    fn a_decision_reads_each_signer_file_once() {
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/provenance");
        let first = std::fs::read(fixtures.join("dsse-ecdsa-p256.pub")).unwrap();
        let second = std::fs::read(fixtures.join("dsse-ecdsa-p384.pub")).unwrap();
        assert_ne!(first, second);
        let dir = tempfile::tempdir().unwrap();
        let (k, ca, key, kl) = key_and_private_ca(dir.path(), true);
        let pp = ProvenancePolicy {
            signers: vec![kl],
            ..Default::default()
        };
        let signers = [key];
        assert_eq!(signer_files(&signers, Some(&pp)), [k.clone(), ca]);

        let load = || {
            let t = Terms::load(&signers, None).unwrap();
            t.signature().unwrap().keys[0].signer.id.clone()
        };
        std::fs::write(&k, &first).unwrap();
        let (fp_first, id_first) = (fingerprint(&signers, None), load());
        std::fs::write(&k, &second).unwrap();
        let (fp_second, id_second) = (fingerprint(&signers, None), load());
        assert!(fp_first != fp_second && id_first != id_second);

        std::fs::write(&k, &first).unwrap();
        let (fp, id, der) =
            crate::base::fsio::read_once_within(signer_files(&signers, None), || {
                let fp = fingerprint(&signers, None);
                std::fs::write(&k, &second).unwrap();
                (fp, load(), crate::formats::keys::load_der(&k).unwrap())
            });
        assert_eq!(fp, fp_first);
        assert_eq!(id, id_first);
        assert_eq!(
            der,
            crate::formats::keys::load_der(&fixtures.join("dsse-ecdsa-p256.pub")).unwrap()
        );
        // Outside the decision, the file as it now is.
        assert_eq!(
            (fingerprint(&signers, None), load()),
            (fp_second, id_second)
        );
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

    /// The gate's root is parsed from the bytes the gate read (and hashed
    /// into its verdict key), and judged by that read's modification time,
    /// never read or stat'ed again: a file at `path` that differs, or is
    /// gone, does not change which root verifies nor how old it is. A
    /// failed read is one line with the fix, worded by what failed.
    #[test]
    fn the_node_root_is_the_bytes_the_gate_read() {
        let production = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/trust-roots/production/trusted_root.json");
        let bytes = std::fs::read(&production).unwrap();
        let gone = PathBuf::from("/nonexistent/trusted_root.json");
        let read = |modified| {
            Ok(Some(Dated {
                bytes: bytes.clone(),
                modified,
            }))
        };
        let root = LazyTrustRoot::node(gone.clone(), read(None), None, false);
        assert!(root.get().is_ok(), "{:?}", root.get().err());

        let day = Duration::from_secs(86_400);
        let read_at = SystemTime::now() - 3 * day;
        let stale = LazyTrustRoot::node(gone.clone(), read(Some(read_at)), Some(day), true);
        assert_eq!(stale.modified(), Some(read_at));
        let e = stale.get().unwrap_err();
        assert!(
            e.contains("is 3 days old, older than trust_root_max_age (1 days)"),
            "{e}"
        );
        let fresh =
            LazyTrustRoot::node(gone.clone(), read(Some(SystemTime::now())), Some(day), true);
        assert!(fresh.get().is_ok() && fresh.stale_note().is_none());

        let read_failed = |kind: std::io::ErrorKind| {
            LazyTrustRoot::node(gone.clone(), Err(kind.into()), None, false)
                .get()
                .unwrap_err()
        };
        let e = read_failed(std::io::ErrorKind::NotFound);
        assert!(
            e.starts_with("no Sigstore trust root at /nonexistent/trusted_root.json"),
            "{e}"
        );
        assert!(
            e.contains("portcullis trust update") && !e.contains('\n'),
            "{e}"
        );
        let e = read_failed(std::io::ErrorKind::PermissionDenied);
        assert!(
            e.starts_with("cannot read the Sigstore trust root at"),
            "{e}"
        );
        assert!(
            e.contains("permission denied")
                && e.contains("portcullis trust update")
                && !e.contains('\n'),
            "{e}"
        );

        let huge = LazyTrustRoot::node(gone.clone(), Ok(None), None, false);
        let e = huge.get().unwrap_err();
        assert!(e.contains("over the") && e.contains("byte limit"), "{e}");

        let garbage = LazyTrustRoot::node(
            gone,
            Ok(Some(Dated {
                bytes: b"{".to_vec(),
                modified: None,
            })),
            None,
            false,
        );
        assert!(garbage.get().is_err());
    }

    mod provenance_only {
        //! A rule that asks for provenance alone: allowed with a conforming
        //! attestation, refused with anything less.
        use super::*;
        use crate::base::testing::digest as d;
        use crate::verify::attestations::tests::{entry, envelope};
        use crate::verify::rejection::Class;
        use sigstore_verify::crypto::{KeyAlgorithm, KeyPair};

        const BUILDER: &str = "https://ci.example/builder@v1";
        const SOURCE: &str = "https://git.example/acme/app";

        fn key_file(dir: &std::path::Path, name: &str, kp: &KeyPair) -> Signer {
            let path = dir.join(name);
            std::fs::write(&path, crate::base::testing::public_key_pem(kp)).unwrap();
            Signer::Key {
                path,
                require_tlog: false,
            }
        }

        fn statement(subject: &str, builder: &str, source: &str) -> Vec<u8> {
            let hex = subject.strip_prefix("sha256:").unwrap();
            serde_json::to_vec(&serde_json::json!({
                "_type": crate::provenance::STATEMENT_V1,
                "subject": [{"name": "img", "digest": {"sha256": hex}}],
                "predicateType": crate::provenance::SLSA_PROVENANCE_V1,
                "predicate": {
                    "buildDefinition": {
                        "buildType": "https://ci.example/build/v1",
                        "externalParameters": {"a": "b"},
                        "resolvedDependencies": [{
                            "uri": format!("git+{source}@refs/heads/main"),
                            "digest": {"gitCommit": "a".repeat(40)}
                        }]
                    },
                    "runDetails": {"builder": {"id": builder}}
                }
            }))
            .unwrap()
        }

        fn rule(signer: Signer) -> ProvenancePolicy {
            ProvenancePolicy {
                builder_ids: vec![BUILDER.into()],
                source_uris: vec![SOURCE.into()],
                signers: vec![signer],
                ..Default::default()
            }
        }

        /// The gate's two calls, as the gate makes them: the class of the
        /// refusal, or the digest the provenance binds.
        fn start(terms: &Terms, entries: &[Entry]) -> Result<String, Class> {
            let root = LazyTrustRoot::new(PathBuf::from("/nonexistent/trusted_root.json"));
            let digests = [d(1)];
            let digests: Vec<&str> = digests.iter().map(String::as_str).collect();
            let sig = check_signatures(entries, &digests, terms, &root).map_err(|e| match e {
                Rejection::NothingCached => Class::NothingCached,
                Rejection::NoValidSignature { reason, .. } => reason.class(),
            })?;
            assert!(sig.is_none(), "a provenance-only rule checks no signature");
            let p = check_provenance(entries, &digests, terms, &root, jiff::Timestamp::now())
                .map_err(|e| match e {
                    ProvenanceRejection::NothingCached => Class::ProvenanceMissing,
                    ProvenanceRejection::NoneAcceptable { reason, .. } => reason.class(),
                })?
                .expect("a provenance-only rule always checks provenance");
            Ok(p.subject)
        }

        #[test]
        fn allowed_with_a_conforming_attestation_refused_with_anything_less() {
            let dir = tempfile::tempdir().unwrap();
            let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
            let other = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
            let terms = Terms::load(&[], Some(&rule(key_file(dir.path(), "k.pub", &kp)))).unwrap();
            assert!(terms.signature().is_none());
            let good = statement(&d(1), BUILDER, SOURCE);
            assert_eq!(
                start(&terms, &[entry(&d(1), &[envelope(&kp, &good)])]),
                Ok(d(1))
            );
            let builder = statement(&d(1), "https://ci.example/other-builder@v1", SOURCE);
            assert_eq!(
                start(&terms, &[entry(&d(1), &[envelope(&kp, &builder)])]),
                Err(Class::ProvenanceUnmet)
            );
            let source = statement(&d(1), BUILDER, "https://git.example/mallory/app");
            assert_eq!(
                start(&terms, &[entry(&d(1), &[envelope(&kp, &source)])]),
                Err(Class::ProvenanceUnmet)
            );
            assert_eq!(
                start(&terms, &[entry(&d(1), &[envelope(&other, &good)])]),
                Err(Class::NotTheSigner)
            );
            let elsewhere = statement(&d(7), BUILDER, SOURCE);
            assert_eq!(
                start(&terms, &[entry(&d(1), &[envelope(&kp, &elsewhere)])]),
                Err(Class::ProvenanceMismatch)
            );
            assert_eq!(start(&terms, &[]), Err(Class::ProvenanceMissing));
            assert_eq!(
                start(&terms, &[entry(&d(1), &[])]),
                Err(Class::ProvenanceMissing)
            );
        }

        #[test]
        fn a_rule_with_neither_is_an_error_naming_the_fix() {
            for pp in [None, Some(ProvenancePolicy::default())] {
                let e = Terms::load(&[], pp.as_ref()).unwrap_err();
                assert!(
                    e.contains("empty signer list is an error, not a pass")
                        && e.contains("[[rule.provenance.signer]]")
                        && !e.contains('\n'),
                    "{e}"
                );
                let e = provenance_terms(&[], pp.as_ref()).unwrap_err();
                assert_eq!(e, NOTHING_REQUIRED);
            }
            let p = crate::policy::Policy::parse(
                "[[rule]]\nname = \"nothing\"\nimages = [\"x.io/*\"]\n[rule.provenance]\nbuilder_ids = [\"b\"]\n",
                std::path::Path::new("/etc/portcullis/policy.toml"),
            );
            let e = p.unwrap_err().to_string();
            assert!(
                e.contains("an empty signer list is an error, not a pass")
                    && e.contains(
                        "its own `[[rule.provenance.signer]]` to require provenance alone"
                    ),
                "{e}"
            );
            let p = crate::policy::Policy::parse(
                "[[rule]]\nname = \"attested\"\nimages = [\"x.io/*\"]\n[rule.provenance]\nbuilder_ids = [\"b\"]\n[[rule.provenance.signer]]\nkey = \"/k.pub\"\n",
                std::path::Path::new("/etc/portcullis/policy.toml"),
            )
            .unwrap();
            assert!(p.rules()[0].signers.is_empty());
            assert_eq!(p.rules()[0].provenance.as_ref().unwrap().signers.len(), 1);
        }

        #[test]
        fn a_rule_with_both_checks_both() {
            let dir = tempfile::tempdir().unwrap();
            let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
            let k = key_file(dir.path(), "k.pub", &kp);
            let terms = Terms::load(std::slice::from_ref(&k), Some(&rule(k.clone()))).unwrap();
            assert!(terms.signature().is_some() && terms.provenance().is_some());
            let root = LazyTrustRoot::new(PathBuf::from("/nonexistent/trusted_root.json"));
            let e = entry(&d(1), &[envelope(&kp, &statement(&d(1), BUILDER, SOURCE))]);
            // The attestation alone does not stand in for the signature it also asks for.
            assert_eq!(
                check_signatures(&[e], &[d(1).as_str()], &terms, &root),
                Err(Rejection::NothingCached)
            );
            let sig_only = Terms::load(std::slice::from_ref(&k), None).unwrap();
            assert!(sig_only.provenance().is_none());
        }
    }
}
