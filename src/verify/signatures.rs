//! Signature verification: does any of a rule's signers vouch for this digest?
//!
//! This module owns the cryptographic check of cosign key signatures from the
//! cache against the policy's signers. The primitives are `sigstore-crypto`'s
//! (the sigstore-rust family); nothing cryptographic is written here. A
//! signature counts only when it verifies with a signer's key over the exact
//! payload bytes, the payload is a cosign simple-signing document, and the
//! digest it names is one of the digests being started (the image's index
//! digest or this platform's manifest digest). A signature made for another
//! digest never counts.

use std::path::PathBuf;

use crate::cache::{Entry, RawEntry, StateDir};
use crate::cosign;
use crate::digest::short;
use crate::verify::rejection::Rejected;
use crate::verify::signer::{Keyless, Signer};

/// Errors loading a signer.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The key file could not be read, or is not a usable public key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The cache could not be read.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
}

pub use crate::formats::keys::{KeyError, LoadedSigner, MAX_KEY_BYTES};

impl LoadedSigner {
    /// Load a key signer. Keyless signers are checked from Sigstore
    /// material instead (see [`crate::gate`]); asking for one here is an error.
    pub fn load(signer: &Signer) -> Result<Self, VerifyError> {
        match signer {
            Signer::Key { path, .. } => Self::from_key_file(path).map_err(Into::into),
            Signer::Keyless(k) => Err(KeyError::KeyInvalid {
                path: PathBuf::from(format!("keyless:{}@{}", k.subject, k.issuer)),
                why: "keyless identities are not verifiable by this version at container start; use a key signer".into(),
            }.into()),
        }
    }
}

/// A signature that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signer that vouched.
    pub signer: String,
    /// The digest the signature names.
    pub digest: String,
    /// The signature layer's digest in the registry.
    pub layer_digest: String,
    /// Transparency-log and certificate facts, when Sigstore material was verified.
    pub sigstore: Option<SigstoreFacts>,
}

/// Why no signature passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Nothing is cached for any of the digests.
    NothingCached,
    /// Signatures are cached but none counts; the reason is the most telling one.
    NoValidSignature {
        /// How many signature layers were examined.
        examined: usize,
        /// The most telling reason.
        reason: Rejected,
    },
}

/// Check every cached cosign signature of `digests` against `signers`; the
/// first that verifies wins. `digests` are the digests being started (index
/// digest first, then the platform manifest digest).
pub fn verify_signatures(
    state: &StateDir,
    digests: &[&str],
    signers: &[LoadedSigner],
) -> Result<Result<Verified, Rejection>, VerifyError> {
    let entries = read_entries(state, digests)?;
    Ok(verify_entries(&entries, digests, signers))
}

/// Read the cache entries of `digests` (absent ones are skipped).
pub fn read_entries(state: &StateDir, digests: &[&str]) -> Result<Vec<Entry>, VerifyError> {
    EntryReads::read(state, digests).parse()
}

/// The key part of a cache entry that could not be read (never a digest).
pub const UNREADABLE: &str = "unreadable";

/// The cache entries of the digests being started, each file read once. A
/// start's verdict key hashes these bytes and its verification parses the
/// same bytes, so a verdict binds the entries that verified even when
/// `fetch` or `sync` replaces a file in between, and no entry is read twice.
#[derive(Debug)]
pub struct EntryReads(Vec<Result<Option<RawEntry>, crate::cache::CacheError>>);

impl EntryReads {
    /// Read (without parsing) the entry of each digest, in order.
    pub fn read(state: &StateDir, digests: &[&str]) -> Self {
        Self(digests.iter().map(|d| state.read_raw(d)).collect())
    }

    /// `sha256:<hex>` of each read's bytes, in the digests' order: `None`
    /// when nothing is cached, [`UNREADABLE`] when the read failed. A failed
    /// read must not key like an absent entry: a pass stored while the entry
    /// was absent would then be reused, where a fresh decision refuses with
    /// the read's reason (and so stores no verdict under this key).
    pub fn digests(&self) -> impl Iterator<Item = Option<String>> + '_ {
        self.0.iter().map(|r| match r {
            Ok(Some(raw)) => Some(crate::digest::sha256_prefixed(&raw.bytes)),
            Ok(None) => None,
            Err(_) => Some(UNREADABLE.to_string()),
        })
    }

    /// Parse the bytes read: the entries (absent ones skipped), or the first
    /// read or parse that failed.
    pub fn parse(self) -> Result<Vec<Entry>, VerifyError> {
        let mut entries = Vec::new();
        for read in self.0 {
            if let Some(raw) = read? {
                entries.push(raw.parse()?);
            }
        }
        Ok(entries)
    }
}

/// [`verify_signatures`] over entries already read, for key signers only.
pub fn verify_entries(
    entries: &[Entry],
    digests: &[&str],
    signers: &[LoadedSigner],
) -> Result<Verified, Rejection> {
    let keys = signers
        .iter()
        .map(|s| KeySigner {
            signer: s.clone(),
            path: None,
            require_tlog: false,
        })
        .collect();
    let rs = RuleSigners {
        keys,
        keyless: Vec::new(),
    };
    verify_entries_with(entries, digests, &rs, &mut || {
        Err("no trust root is needed for key signatures".into())
    })
}

/// A key signer of a rule.
#[derive(Debug, Clone)]
pub struct KeySigner {
    /// The parsed key.
    pub signer: LoadedSigner,
    /// The key file (needed to check a transparency-log entry).
    pub path: Option<PathBuf>,
    /// Whether a transparency-log entry is required.
    pub require_tlog: bool,
}

/// A rule's signers, loaded.
#[derive(Debug, Clone, Default)]
pub struct RuleSigners {
    /// Key signers.
    pub keys: Vec<KeySigner>,
    /// Keyless identities.
    pub keyless: Vec<Keyless>,
}

impl RuleSigners {
    /// Load every signer: keys are read and parsed, and identity
    /// expressions compiled, now ([`crate::verify::signer::Matcher::prepare`]).
    pub fn load(signers: &[Signer]) -> Result<RuleSigners, VerifyError> {
        let mut out = RuleSigners::default();
        for s in signers {
            match s {
                Signer::Key { path, require_tlog } => out.keys.push(KeySigner {
                    signer: LoadedSigner::from_key_file(path)?,
                    path: Some(path.clone()),
                    require_tlog: *require_tlog,
                }),
                Signer::Keyless(k) => {
                    k.issuer.prepare();
                    k.subject.prepare();
                    out.keyless.push((**k).clone())
                }
            }
        }
        Ok(out)
    }

    /// Verify a Sigstore bundle for `subject` against each signer in turn
    /// (keyless identities, then keys); the first that accepts it wins.
    /// `Ok` carries how verdicts name the signer; `Err` a ranked reason (the
    /// first signer's refusal, or the trust root's absence).
    pub fn verify_bundle<'a>(
        &self,
        blob: &[u8],
        subject: &str,
        trust: &mut TrustProvider<'a>,
    ) -> Result<(String, crate::bundle::BundleVerified), Rejected> {
        use crate::bundle::{verify_bundle, Artifact, Expectation};
        // Before the trust root is needed: a key-only deployment may have none.
        if let Some(found) = self.key_bundle_without_log(blob, subject) {
            return found;
        }
        let expectations = self
            .keyless
            .iter()
            .map(|k| Expectation::Keyless(Box::new(k.clone())))
            .chain(
                self.keys
                    .iter()
                    .filter_map(|k| k.path.clone().map(|pem_path| Expectation::Key { pem_path })),
            );
        let mut first_err = None;
        for exp in expectations {
            let root = trust().map_err(Rejected::NoTrustRoot)?;
            match verify_bundle(blob, Artifact::Digest(subject), &exp, root) {
                Ok(v) => return Ok((signer_label(&v, &exp), v)),
                Err(e) => {
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        Err(Rejected::NotTheSigner(first_err.unwrap_or_else(|| {
            "no signer of the rule can verify a Sigstore bundle".into()
        })))
    }

    /// A bundle signed with a key and carrying no log entry and no
    /// timestamp at all (cosign's new bundle format signed offline, with a
    /// signing config naming no service), for the rule's keys that do not
    /// require the log: checked as the DSSE envelope it holds, by the same
    /// code as a legacy `.att` envelope, and bound to `subject` through its
    /// statement. The crate refuses such a bundle outright (v0.3 requires an
    /// inclusion proof); a key signer with `require_tlog = false` already
    /// accepts the same signature without a log in the legacy forms.
    /// `None` when this does not apply, and the crate judges the bundle: a
    /// bundle with any log entry, timestamp or certificate, a message
    /// signature, or no key without the log requirement (the crate then
    /// refuses a bundle with nothing to check in a log).
    fn key_bundle_without_log(
        &self,
        blob: &[u8],
        subject: &str,
    ) -> Option<Result<(String, crate::bundle::BundleVerified), Rejected>> {
        let offline = crate::dsse::OfflineKeyBundle::parse(blob)?;
        let keys: Vec<&KeySigner> = self.keys.iter().filter(|k| !k.require_tlog).collect();
        if keys.is_empty() {
            return None;
        }
        let loaded: Vec<LoadedSigner> = keys.iter().map(|k| k.signer.clone()).collect();
        let envelope = match crate::dsse::Envelope::parse(&offline.envelope) {
            Ok(e) => e,
            Err(e) => {
                return Some(Err(Rejected::Malformed(format!(
                    "bundle's DSSE envelope: {e}"
                ))))
            }
        };
        let verified = match envelope.verify(&loaded) {
            Ok(v) => v,
            Err(e) => {
                return Some(Err(Rejected::NotTheSigner(format!(
                    "a bundle without a log entry (checked with the key signers that do not require one, {}): {e}",
                    loaded.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                ))))
            }
        };
        let bound = crate::provenance::Statement::parse(verified.payload)
            .ok()
            .is_some_and(|st| st.subject_for(&[subject]).is_ok());
        if !bound {
            return Some(Err(Rejected::NotTheSigner(format!(
                "a bundle signed by {} names another subject than {subject}",
                verified.signer
            ))));
        }
        let k = keys.iter().find(|k| k.signer.id == verified.signer)?;
        let fingerprint = match k.path.as_deref().map(crate::formats::keys::load_der) {
            Some(Ok(der)) => crate::digest::sha256_prefixed(der.as_bytes()),
            _ => String::new(),
        };
        Some(Ok((
            verified.signer.clone(),
            crate::bundle::BundleVerified {
                media_type: offline.media_type,
                signer: crate::bundle::SignerInfo::Key { fingerprint },
                log_entries: Vec::new(),
                timestamps: Vec::new(),
                signing_time: None,
                ignored_timestamps: 0,
            },
        )))
    }

    /// Names of the signers, for reasons.
    pub fn describe(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.signer.id.clone())
            .chain(
                self.keyless
                    .iter()
                    .map(|k| format!("keyless {} (issuer {})", k.subject, k.issuer)),
            )
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The transparency-log and certificate facts of a Sigstore-verified signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SigstoreFacts {
    /// Certificate identity (keyless) — empty for key signatures.
    pub subject: Option<String>,
    /// Certificate OIDC issuer (keyless).
    pub issuer: Option<String>,
    /// Rekor log ID (hex) of the first entry.
    pub log_id: Option<String>,
    /// Its index.
    pub log_index: Option<u64>,
    /// Where the signing time comes from (`rekor_integrated_time`, `rfc3161`).
    pub time_source: Option<String>,
    /// The authenticated signing time.
    pub signed_at: Option<String>,
    /// RFC 3161 timestamps set aside: no timestamp authority of the trust
    /// root signed them (see [`crate::verify::tsa`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_timestamps: Option<usize>,
}

impl SigstoreFacts {
    fn from(v: &crate::bundle::BundleVerified) -> Self {
        let (subject, issuer) = match &v.signer {
            crate::bundle::SignerInfo::Certificate { subject, issuer } => {
                (Some(subject.clone()), Some(issuer.clone()))
            }
            crate::bundle::SignerInfo::Key { .. } => (None, None),
        };
        let first_time = v.timestamps.iter().min_by_key(|t| t.time);
        SigstoreFacts {
            subject,
            issuer,
            log_id: v.log_entries.first().map(|e| e.log_id.clone()),
            log_index: v.log_entries.first().map(|e| e.log_index),
            time_source: first_time.map(|t| t.source.as_str().to_string()),
            signed_at: v.signing_time.map(|t| t.to_string()),
            ignored_timestamps: Some(v.ignored_timestamps).filter(|n| *n > 0),
        }
    }
}

/// Provides the trust root for Sigstore checks, loaded on first use.
pub type TrustProvider<'a> = dyn FnMut() -> Result<&'a crate::bundle::TrustRoot, String> + 'a;

/// Check every cached signature of `digests` (cosign `.sig` layers, key or
/// keyless, and Sigstore bundles attached as referrers) against a rule's
/// signers; the first that verifies wins.
pub fn verify_entries_with<'a>(
    entries: &[Entry],
    digests: &[&str],
    signers: &RuleSigners,
    trust: &mut TrustProvider<'a>,
) -> Result<Verified, Rejection> {
    let mut examined = 0usize;
    // Reasons ranked: a replayed signature or a wrong signer says more than
    // a malformed layer.
    let mut best: Option<Rejected> = None;
    let mut note = |why: Rejected| Rejected::keep_most_telling(&mut best, why);
    let mut any_cached = false;
    let who = signers.describe();
    for entry in entries {
        for artifact in &entry.artifacts {
            if artifact.kind == crate::cache::kind::SIGSTORE_BUNDLE {
                for layer in &artifact.layers {
                    let blob = layer.blob();
                    if !is_signature_bundle(&blob) {
                        continue;
                    }
                    any_cached = true;
                    examined += 1;
                    match signers.verify_bundle(&blob, &entry.subject, trust) {
                        Ok((signer, v)) => {
                            return Ok(Verified {
                                signer,
                                digest: entry.subject.clone(),
                                layer_digest: layer.digest.clone(),
                                sigstore: Some(SigstoreFacts::from(&v)),
                            })
                        }
                        Err(why) => note(
                            why.prefixed(format_args!("Sigstore bundle {}", short(&layer.digest))),
                        ),
                    }
                }
                continue;
            }
            if artifact.kind != ARTIFACT_KIND {
                continue;
            }
            for layer in &artifact.layers {
                any_cached = true;
                if layer.media_type != cosign::SIMPLE_SIGNING_MEDIA_TYPE {
                    continue;
                }
                examined += 1;
                let blob = layer.blob();
                let payload = match cosign::parse_payload(&blob) {
                    Ok(p) => p,
                    Err(e) => {
                        note(Rejected::Malformed(format!(
                            "signature {}: {e}",
                            short(&layer.digest)
                        )));
                        continue;
                    }
                };
                let Some(sig_b64) = layer.annotations.get(cosign::SIGNATURE_ANNOTATION) else {
                    note(Rejected::Malformed(format!(
                        "signature {}: {}",
                        short(&layer.digest),
                        cosign::CosignError::MissingSignature
                    )));
                    continue;
                };
                let signature = match cosign::decode_signature(sig_b64) {
                    Ok(s) => s,
                    Err(e) => {
                        note(Rejected::Malformed(format!(
                            "signature {}: {e}",
                            short(&layer.digest)
                        )));
                        continue;
                    }
                };
                let outcome = if cosign::is_keyless(&layer.annotations) {
                    keyless_layer(&blob, layer, signers, trust)
                } else {
                    key_layer(&blob, &signature, layer, signers, trust)
                };
                let (signer, facts) = match outcome {
                    Ok(x) => x,
                    Err(why) => {
                        note(why);
                        continue;
                    }
                };
                // Authentic, but for which image?
                if !digests.contains(&payload.manifest_digest.as_str()) {
                    note(Rejected::Replayed(format!(
                        "a signature by {signer} names {}, not the image being started ({}): a signature replayed from another image never counts",
                        payload.manifest_digest,
                        digests.join(" or ")
                    )));
                    continue;
                }
                return Ok(Verified {
                    signer,
                    digest: payload.manifest_digest,
                    layer_digest: layer.digest.clone(),
                    sigstore: facts,
                });
            }
        }
    }
    if !any_cached {
        return Err(Rejection::NothingCached);
    }
    Err(Rejection::NoValidSignature {
        examined,
        reason: best.unwrap_or_else(|| {
            Rejected::NoSignature(format!("no signature by {who} in the cached artifacts"))
        }),
    })
}

type LayerOutcome = Result<(String, Option<SigstoreFacts>), Rejected>;

fn key_layer(
    blob: &[u8],
    signature: &[u8],
    layer: &crate::cache::Layer,
    signers: &RuleSigners,
    trust: &mut TrustProvider<'_>,
) -> LayerOutcome {
    let Some(k) = signers
        .keys
        .iter()
        .find(|k| k.signer.verifies(blob, signature))
    else {
        return Err(Rejected::NotTheSigner(format!(
            "no signature verifies with the rule's signer(s) {}",
            signers.describe()
        )));
    };
    if !k.require_tlog {
        return Ok((k.signer.id.clone(), None));
    }
    let bundle = match cosign::legacy_to_bundle(blob, &layer.annotations) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(Rejected::NotTheSigner(
                format!(
                    "the signature by {} has no transparency-log entry, and the signer requires one (require_tlog)",
                    k.signer.id
                ),
            ))
        }
        Err(e) => {
            return Err(Rejected::Malformed(format!(
                "signature {}: {e}",
                short(&layer.digest)
            )))
        }
    };
    let root = trust().map_err(Rejected::NoTrustRoot)?;
    let exp = crate::bundle::Expectation::Key {
        pem_path: k.path.clone().unwrap_or_default(),
    };
    match crate::bundle::verify_bundle(&bundle, crate::bundle::Artifact::Bytes(blob), &exp, root) {
        Ok(v) => Ok((k.signer.id.clone(), Some(SigstoreFacts::from(&v)))),
        Err(e) => Err(Rejected::NotTheSigner(format!(
            "transparency-log entry of the signature by {}: {e}",
            k.signer.id
        ))),
    }
}

fn keyless_layer(
    blob: &[u8],
    layer: &crate::cache::Layer,
    signers: &RuleSigners,
    trust: &mut TrustProvider<'_>,
) -> LayerOutcome {
    if signers.keyless.is_empty() {
        return Err(Rejected::NotTheSigner(format!(
            "a keyless signature, but the rule's signer(s) are keys: {}",
            signers.describe()
        )));
    }
    let bundle = match cosign::legacy_to_bundle(blob, &layer.annotations) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(Rejected::NotTheSigner(format!(
                "keyless signature {} has no Rekor bundle: nothing proves when it was made",
                short(&layer.digest)
            )))
        }
        Err(e) => {
            return Err(Rejected::Malformed(format!(
                "signature {}: {e}",
                short(&layer.digest)
            )))
        }
    };
    let root = trust().map_err(Rejected::NoTrustRoot)?;
    let mut first_err = None;
    for k in &signers.keyless {
        let exp = crate::bundle::Expectation::Keyless(Box::new(k.clone()));
        match crate::bundle::verify_bundle(
            &bundle,
            crate::bundle::Artifact::Bytes(blob),
            &exp,
            root,
        ) {
            Ok(v) => {
                let facts = SigstoreFacts::from(&v);
                return Ok((signer_label(&v, &exp), Some(facts)));
            }
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    Err(Rejected::NotTheSigner(format!(
        "keyless signature {}: {}",
        short(&layer.digest),
        first_err.unwrap_or_default()
    )))
}

fn signer_label(v: &crate::bundle::BundleVerified, exp: &crate::bundle::Expectation) -> String {
    match (&v.signer, exp) {
        (crate::bundle::SignerInfo::Certificate { subject, issuer }, _) => {
            format!("keyless:{subject} (issuer {issuer})")
        }
        (
            crate::bundle::SignerInfo::Key { fingerprint },
            crate::bundle::Expectation::Key { pem_path },
        ) => {
            format!("key:{} ({fingerprint})", pem_path.display())
        }
        (crate::bundle::SignerInfo::Key { fingerprint }, _) => format!("key:{fingerprint}"),
    }
}

/// cosign's predicate type for image signatures in the new bundle format.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Is a Sigstore bundle an image signature (a message signature, or a DSSE
/// statement of cosign's signing predicate) rather than an attestation?
pub fn is_signature_bundle(blob: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "messageSignature")]
        message_signature: Option<serde_json::Value>,
        #[serde(rename = "dsseEnvelope")]
        dsse_envelope: Option<Dsse>,
    }
    #[derive(serde::Deserialize)]
    struct Dsse {
        payload: String,
    }
    #[derive(serde::Deserialize)]
    struct Statement {
        #[serde(rename = "predicateType")]
        predicate_type: String,
    }
    let Ok(h) = serde_json::from_slice::<Head>(blob) else {
        // Unparseable: let the verifier say why.
        return true;
    };
    if h.message_signature.is_some() {
        return true;
    }
    let Some(d) = h.dsse_envelope else {
        return true;
    };
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(d.payload)
        .ok()
        .and_then(|p| serde_json::from_slice::<Statement>(&p).ok())
        .is_some_and(|s| s.predicate_type == COSIGN_SIGN_PREDICATE)
}

/// The artifact kind of cosign signature images in the cache.
pub const ARTIFACT_KIND: &str = crate::cache::kind::COSIGN_SIGNATURE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Artifact, Layer, ENTRY_FORMAT};
    use sigstore_verify::crypto::{KeyAlgorithm, KeyPair};
    use std::collections::BTreeMap;

    use crate::base::testing::digest as d;

    use crate::base::testing::public_key_pem as pem;

    fn payload(digest: &str) -> Vec<u8> {
        format!(r#"{{"critical":{{"identity":{{"docker-reference":"r"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#).into_bytes()
    }

    fn signed_entry(subject: &str, names: &str, kp: &KeyPair) -> Entry {
        use base64::Engine;
        let p = payload(names);
        let sig = kp.sign(&p).unwrap();
        let ann = BTreeMap::from([(
            cosign::SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(sig.as_bytes()),
        )]);
        Entry {
            format: ENTRY_FORMAT,
            subject: subject.into(),
            repository: "r".into(),
            fetched_at: "t".into(),
            artifacts: vec![Artifact {
                kind: ARTIFACT_KIND.into(),
                source: "s".into(),
                manifest_digest: d(0),
                layers: vec![Layer::new(cosign::SIMPLE_SIGNING_MEDIA_TYPE, ann, &p)],
            }],
        }
    }

    #[test]
    fn a_key_verifies_its_own_signature_only() {
        // sigstore-crypto generates only ECDSA keys; Ed25519 and RSA
        // signatures come from sigstore-rs in the integration suite.
        let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let other = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        let wrong = LoadedSigner::from_pem(&pem(&other), "o").unwrap();
        let e = signed_entry(&d(1), &d(1), &kp);
        let ok = verify_entries(
            std::slice::from_ref(&e),
            &[&d(1)],
            std::slice::from_ref(&signer),
        )
        .unwrap();
        assert_eq!(ok.digest, d(1));
        assert!(ok.signer.starts_with("key:k (sha256:"));
        let err = verify_entries(&[e], &[&d(1)], &[wrong]).unwrap_err();
        assert!(
            matches!(err, Rejection::NoValidSignature { examined: 1, ref reason } if reason.contains("no signature verifies")),
            "{err:?}"
        );
        assert!(
            matches!(&err, Rejection::NoValidSignature { reason, .. } if reason.class() == crate::verify::rejection::Class::NotTheSigner),
            "{err:?}"
        );
    }

    /// cosign's new bundle format signed with a key offline: a v0.3 bundle
    /// with a public-key hint, a DSSE envelope of cosign's signing statement
    /// and nothing for a log.
    fn offline_key_bundle(kp: &KeyPair, subject: &str, material: &str) -> Vec<u8> {
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"img","digest":{{"sha256":"{}"}}}}],"predicateType":"{COSIGN_SIGN_PREDICATE}","predicate":{{}}}}"#,
            subject.trim_start_matches("sha256:")
        );
        let env = crate::verify::attestations::tests::envelope(kp, statement.as_bytes());
        format!(
            r#"{{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{material},"dsseEnvelope":{}}}"#,
            String::from_utf8(env).unwrap()
        )
        .into_bytes()
    }

    #[test]
    fn offline_key_bundle_verifies_only_for_a_key_without_the_log_requirement() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let other = KeyPair::generate_ecdsa_p256().unwrap();
        let hint = r#"{"publicKey":{"hint":"x"}}"#;
        let signers = |kp: &KeyPair, require_tlog: bool| RuleSigners {
            keys: vec![KeySigner {
                signer: LoadedSigner::from_pem(&pem(kp), "k").unwrap(),
                path: None,
                require_tlog,
            }],
            keyless: Vec::new(),
        };
        let mut no_root = || Err::<&crate::bundle::TrustRoot, String>("no trust root here".into());
        let b = offline_key_bundle(&kp, &d(1), hint);
        // the right key, no log required: verified, by the key, with no log facts
        let (signer, v) = signers(&kp, false)
            .verify_bundle(&b, &d(1), &mut no_root)
            .unwrap();
        assert!(signer.starts_with("key:k"), "{signer}");
        assert!(v.log_entries.is_empty() && v.signing_time.is_none());
        // another key: refused, naming why
        let err = signers(&other, false)
            .verify_bundle(&b, &d(1), &mut no_root)
            .unwrap_err();
        assert!(err.to_string().contains("without a log entry"), "{err}");
        // the statement names another image: refused
        let err = signers(&kp, false)
            .verify_bundle(&b, &d(2), &mut no_root)
            .unwrap_err();
        assert!(err.to_string().contains("another subject"), "{err}");
        // a key that requires the log: the Sigstore verifier judges it (here
        // without a trust root, which is the reason)
        assert!(signers(&kp, true)
            .verify_bundle(&b, &d(1), &mut no_root)
            .is_err());
        // any log entry, timestamp or certificate: never taken by this path
        for material in [
            r#"{"publicKey":{"hint":"x"},"tlogEntries":[{"logIndex":"1"}]}"#,
            r#"{"publicKey":{"hint":"x"},"timestampVerificationData":{"rfc3161Timestamps":[{"signedTimestamp":"AA=="}]}}"#,
            r#"{"certificate":{"rawBytes":"AA=="}}"#,
        ] {
            let b = offline_key_bundle(&kp, &d(1), material);
            assert!(
                crate::dsse::OfflineKeyBundle::parse(&b).is_none(),
                "{material}"
            );
            assert!(
                signers(&kp, false)
                    .verify_bundle(&b, &d(1), &mut no_root)
                    .is_err(),
                "{material}"
            );
        }
    }

    #[test]
    fn replayed_signature_never_counts() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        // a genuine signature for d(2), copied under d(3)'s tag
        let e = signed_entry(&d(3), &d(2), &kp);
        let err = verify_entries(&[e], &[&d(3)], &[signer]).unwrap_err();
        assert!(
            matches!(err, Rejection::NoValidSignature { ref reason, .. } if reason.contains("replayed")),
            "{err:?}"
        );
        assert!(
            matches!(&err, Rejection::NoValidSignature { reason, .. } if reason.class() == crate::verify::rejection::Class::Replayed),
            "{err:?}"
        );
    }

    #[test]
    fn platform_digest_signature_counts_for_an_index() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        // d(4) is the index, d(5) the platform manifest: the signature is
        // filed under and names d(5), and counts for a start of the index.
        let e = signed_entry(&d(5), &d(5), &kp);
        let v = verify_entries(&[e], &[&d(4), &d(5)], &[signer]).unwrap();
        assert_eq!(v.digest, d(5));
    }

    #[test]
    fn tampered_payload_or_signature_fails() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        let mut e = signed_entry(&d(1), &d(1), &kp);
        // flip the payload: the signature no longer covers it
        let mut p = payload(&d(1));
        p.push(b' ');
        let ann = e.artifacts[0].layers[0].annotations.clone();
        e.artifacts[0].layers[0] = Layer::new(cosign::SIMPLE_SIGNING_MEDIA_TYPE, ann, &p);
        assert!(verify_entries(
            std::slice::from_ref(&e),
            &[&d(1)],
            std::slice::from_ref(&signer)
        )
        .is_err());
        // truncated signature and invalid base64
        let mut e = signed_entry(&d(1), &d(1), &kp);
        let sig = e.artifacts[0].layers[0]
            .annotations
            .get_mut(cosign::SIGNATURE_ANNOTATION)
            .unwrap();
        sig.truncate(sig.len() / 2);
        assert!(verify_entries(
            std::slice::from_ref(&e),
            &[&d(1)],
            std::slice::from_ref(&signer)
        )
        .is_err());
        let mut e = signed_entry(&d(1), &d(1), &kp);
        e.artifacts[0].layers[0]
            .annotations
            .insert(cosign::SIGNATURE_ANNOTATION.into(), "%%%".into());
        let err = verify_entries(
            std::slice::from_ref(&e),
            &[&d(1)],
            std::slice::from_ref(&signer),
        )
        .unwrap_err();
        assert!(
            matches!(err, Rejection::NoValidSignature { ref reason, .. } if reason.contains("base64")),
            "{err:?}"
        );
        assert!(
            matches!(&err, Rejection::NoValidSignature { reason, .. } if reason.class() == crate::verify::rejection::Class::Malformed),
            "{err:?}"
        );
        let mut e = signed_entry(&d(1), &d(1), &kp);
        e.artifacts[0].layers[0].annotations.clear();
        assert!(verify_entries(&[e], &[&d(1)], &[signer]).is_err());
    }

    #[test]
    fn require_tlog_refuses_a_key_signature_without_a_log_entry() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        let e = signed_entry(&d(1), &d(1), &kp);
        let rs = RuleSigners {
            keys: vec![KeySigner {
                signer,
                path: Some("/k.pub".into()),
                require_tlog: true,
            }],
            keyless: vec![],
        };
        let err =
            verify_entries_with(&[e], &[&d(1)], &rs, &mut || Err("unused".into())).unwrap_err();
        assert!(
            matches!(err, Rejection::NoValidSignature { ref reason, .. } if reason.contains("no transparency-log entry")),
            "{err:?}"
        );
        assert!(
            matches!(&err, Rejection::NoValidSignature { reason, .. } if reason.class() == crate::verify::rejection::Class::NotTheSigner),
            "{err:?}"
        );
    }

    #[test]
    fn nothing_cached_is_its_own_reason() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        assert_eq!(
            verify_entries(&[], &[&d(1)], &[signer]).unwrap_err(),
            Rejection::NothingCached
        );
    }

    #[test]
    fn bad_keys_are_refused_with_reasons() {
        assert!(LoadedSigner::from_pem("", "x").is_err());
        assert!(LoadedSigner::from_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
            "x"
        )
        .is_err());
        assert!(LoadedSigner::from_pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            "x"
        )
        .is_err());
        let dir = tempfile::tempdir().unwrap();
        let e = LoadedSigner::from_key_file(&dir.path().join("missing.pub")).unwrap_err();
        assert!(e.to_string().contains("cannot read signer key"), "{e}");
    }
}

#[cfg(test)]
pub(crate) mod sigstore_tests {
    //! Real Sigstore material (the sigstore-conformance bundles, production
    //! trust root) re-expressed as cosign legacy layers: the mapping plus
    //! `sigstore-verify` must accept the genuine ones and refuse tampering.
    use super::*;
    use crate::cache::{kind, Artifact as CacheArtifact, Layer, ENTRY_FORMAT};
    use crate::policy::Matcher;
    use base64::Engine;
    use std::collections::BTreeMap;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
    const ID: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    const ISSUER: &str = "https://token.actions.githubusercontent.com";

    pub(crate) fn shared() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
    }

    fn root() -> crate::bundle::TrustRoot {
        crate::bundle::TrustRoot::load(&shared().join("trust-roots/production/trusted_root.json"))
            .expect("the production trust root (tests/data) must be present")
    }

    /// Legacy annotations from a v0.1 conformance bundle (what cosign would
    /// have written for the same signing event).
    pub(crate) fn legacy_from(case: &str) -> (Vec<u8>, BTreeMap<String, String>) {
        let dir = shared().join("sigstore-conformance/test/assets/bundle-verify");
        let artifact = std::fs::read(dir.join("a.txt")).unwrap();
        let b: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(case).join("bundle.sigstore.json")).unwrap(),
        )
        .unwrap();
        let vm = &b["verificationMaterial"];
        let certs = vm["x509CertificateChain"]["certificates"]
            .as_array()
            .unwrap();
        let pem = |raw: &serde_json::Value| {
            let der = B64.decode(raw["rawBytes"].as_str().unwrap()).unwrap();
            sigstore_verify::types::DerCertificate::new(der).to_pem()
        };
        let e = &vm["tlogEntries"][0];
        let log_id = B64.decode(e["logId"]["keyId"].as_str().unwrap()).unwrap();
        let rekor = serde_json::json!({
            "SignedEntryTimestamp": e["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": e["canonicalizedBody"],
                "integratedTime": e["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
                "logIndex": e["logIndex"].as_str().unwrap().parse::<i64>().unwrap(),
                "logID": log_id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            }
        });
        let mut ann = BTreeMap::new();
        ann.insert(
            cosign::SIGNATURE_ANNOTATION.to_string(),
            b["messageSignature"]["signature"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        ann.insert(cosign::CERTIFICATE_ANNOTATION.to_string(), pem(&certs[0]));
        if certs.len() > 1 {
            ann.insert(
                cosign::CHAIN_ANNOTATION.to_string(),
                certs[1..].iter().map(pem).collect::<String>(),
            );
        }
        ann.insert(
            cosign::REKOR_BUNDLE_ANNOTATION.to_string(),
            rekor.to_string(),
        );
        (artifact, ann)
    }

    fn keyless(subject: Matcher, issuer: Matcher) -> Keyless {
        Keyless {
            issuer,
            subject,
            extensions: Vec::new(),
            ca: None,
            require_tlog: true,
        }
    }

    fn verify(
        ann: &BTreeMap<String, String>,
        payload: &[u8],
        k: Keyless,
    ) -> Result<crate::bundle::BundleVerified, crate::bundle::BundleError> {
        let bundle = cosign::legacy_to_bundle(payload, ann).unwrap().unwrap();
        crate::bundle::verify_bundle(
            &bundle,
            crate::bundle::Artifact::Bytes(payload),
            &crate::bundle::Expectation::Keyless(Box::new(k)),
            &root(),
        )
    }

    /// The policy parses identity expressions; loading the rule's signers
    /// compiles them, so a verification child inherits them compiled.
    #[test]
    fn loaded_keyless_signers_carry_their_expressions_compiled() {
        let subject = Matcher::regex("https://github.com/acme/.+").unwrap();
        let issuer = Matcher::Exact(ISSUER.into());
        let signer = Signer::Keyless(Box::new(keyless(subject, issuer)));
        let Signer::Keyless(k) = &signer else {
            unreachable!()
        };
        let Matcher::Regex(_, policy_cell) = &k.subject else {
            unreachable!()
        };
        assert!(policy_cell.get().is_none(), "compiled before the load");
        let loaded = RuleSigners::load(std::slice::from_ref(&signer)).unwrap();
        let Matcher::Regex(_, cell) = &loaded.keyless[0].subject else {
            unreachable!()
        };
        assert!(
            cell.get().is_some_and(Option::is_some),
            "not compiled at load"
        );
        assert!(loaded.keyless[0]
            .subject
            .matches("https://github.com/acme/app"));
        assert!(!loaded.keyless[0]
            .subject
            .matches("https://github.com/other/app"));
    }

    #[test]
    fn genuine_legacy_keyless_signature_verifies_with_set() {
        let (payload, ann) = legacy_from("happy-path-v0.1");
        let v = verify(
            &ann,
            &payload,
            keyless(Matcher::Exact(ID.into()), Matcher::Exact(ISSUER.into())),
        )
        .unwrap();
        assert_eq!(
            v.signer,
            crate::bundle::SignerInfo::Certificate {
                subject: ID.into(),
                issuer: ISSUER.into()
            }
        );
        assert_eq!(v.log_entries[0].log_index, 27246492);
        assert_eq!(
            v.timestamps[0].source,
            crate::bundle::TimeSource::RekorIntegratedTime
        );
        let facts = SigstoreFacts::from(&v);
        assert_eq!(facts.time_source.as_deref(), Some("rekor_integrated_time"));
    }

    #[test]
    fn identity_matchers_and_tampering() {
        let (payload, ann) = legacy_from("happy-path-v0.1");
        let re = |s: &str| {
            let p = crate::policy::Policy::parse(
                &format!("[[rule]]\nname=\"r\"\nimages=[\"x.io/*\"]\n[[rule.signer]]\nissuer=\"{ISSUER}\"\nsubject_regex='{s}'\n"),
                std::path::Path::new("/p.toml"),
            )
            .unwrap();
            match &p.rules()[0].signers[0] {
                Signer::Keyless(k) => (**k).clone(),
                _ => unreachable!(),
            }
        };
        assert!(verify(
            &ann,
            &payload,
            re("https://github.com/sigstore-conformance/.+@refs/heads/main")
        )
        .is_ok());
        // anchored: a prefix alone does not match
        assert!(verify(
            &ann,
            &payload,
            re("https://github.com/sigstore-conformance/")
        )
        .is_err());
        let wrong_issuer = keyless(
            Matcher::Exact(ID.into()),
            Matcher::Exact("https://accounts.google.com".into()),
        );
        assert!(verify(&ann, &payload, wrong_issuer)
            .unwrap_err()
            .to_string()
            .contains("issuer"));
        // a tampered signed entry timestamp
        let mut bad = ann.clone();
        let mut rekor: serde_json::Value =
            serde_json::from_str(&bad[cosign::REKOR_BUNDLE_ANNOTATION]).unwrap();
        rekor["Payload"]["integratedTime"] =
            (rekor["Payload"]["integratedTime"].as_i64().unwrap() + 1).into();
        bad.insert(cosign::REKOR_BUNDLE_ANNOTATION.into(), rekor.to_string());
        assert!(verify(
            &bad,
            &payload,
            keyless(Matcher::Exact(ID.into()), Matcher::Exact(ISSUER.into()))
        )
        .is_err());
        // another payload under the same signature
        assert!(verify(
            &ann,
            b"other",
            keyless(Matcher::Exact(ID.into()), Matcher::Exact(ISSUER.into()))
        )
        .is_err());
    }

    #[test]
    fn legacy_layers_flow_through_the_rule_check() {
        // The conformance artifact is not a simple-signing payload, so the
        // rule check refuses it at the payload step: nothing reaches crypto
        // without naming an image digest.
        let (payload, ann) = legacy_from("happy-path-v0.1");
        let d = format!("sha256:{}", "ab".repeat(32));
        let entry = Entry {
            format: ENTRY_FORMAT,
            subject: d.clone(),
            repository: "r".into(),
            fetched_at: "t".into(),
            artifacts: vec![CacheArtifact {
                kind: kind::COSIGN_SIGNATURE.into(),
                source: "s".into(),
                manifest_digest: d.clone(),
                layers: vec![Layer::new(cosign::SIMPLE_SIGNING_MEDIA_TYPE, ann, &payload)],
            }],
        };
        let rs = RuleSigners {
            keys: vec![],
            keyless: vec![keyless(
                Matcher::Exact(ID.into()),
                Matcher::Exact(ISSUER.into()),
            )],
        };
        let r = root();
        let err = verify_entries_with(&[entry], &[&d], &rs, &mut || Ok(&r)).unwrap_err();
        assert!(
            matches!(err, Rejection::NoValidSignature { ref reason, .. } if reason.contains("simple-signing")),
            "{err:?}"
        );
    }

    #[test]
    fn missing_trust_root_is_the_reason() {
        let (payload, mut ann) = legacy_from("happy-path-v0.1");
        let d = format!("sha256:{}", "cd".repeat(32));
        let p = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        let _ = payload;
        ann.insert(cosign::SIGNATURE_ANNOTATION.into(), B64.encode(b"sig"));
        let entry = Entry {
            format: ENTRY_FORMAT,
            subject: d.clone(),
            repository: "r".into(),
            fetched_at: "t".into(),
            artifacts: vec![CacheArtifact {
                kind: kind::COSIGN_SIGNATURE.into(),
                source: "s".into(),
                manifest_digest: d.clone(),
                layers: vec![Layer::new(
                    cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                    ann,
                    p.as_bytes(),
                )],
            }],
        };
        let rs = RuleSigners {
            keys: vec![],
            keyless: vec![keyless(
                Matcher::Exact(ID.into()),
                Matcher::Exact(ISSUER.into()),
            )],
        };
        let err = verify_entries_with(&[entry], &[&d], &rs, &mut || {
            Err("no Sigstore trust root at /x: run `portcullis trust update`".into())
        })
        .unwrap_err();
        assert!(
            matches!(err, Rejection::NoValidSignature { ref reason, .. } if reason.contains("trust update")),
            "{err:?}"
        );
        assert!(
            matches!(&err, Rejection::NoValidSignature { reason, .. } if reason.class() == crate::verify::rejection::Class::NoTrustRoot),
            "{err:?}"
        );
    }
}
