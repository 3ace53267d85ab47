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

use std::path::{Path, PathBuf};

use sigstore_verify::crypto::{KeyAlgorithm, SigningScheme, VerificationKey};
use sigstore_verify::types::{DerPublicKey, SignatureBytes};

use crate::cache::{Entry, StateDir};
use crate::cosign;
use crate::policy::Signer;

/// Largest public key file accepted, in bytes.
pub const MAX_KEY_BYTES: u64 = 64 * 1024;

/// Errors loading a signer.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The key file could not be read.
    #[error("cannot read signer key {path}: {source}")]
    KeyRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is not a usable public key.
    #[error("signer key {path} is not a usable public key: {why}")]
    KeyInvalid {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The cache could not be read.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
}

/// A signer ready to verify: its key parsed once.
pub struct LoadedSigner {
    /// How verdicts name it (`key:/path (sha256:… fingerprint)`).
    pub id: String,
    keys: Vec<VerificationKey>,
}

impl std::fmt::Debug for LoadedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSigner")
            .field("id", &self.id)
            .finish()
    }
}

impl LoadedSigner {
    /// Load a key signer. Keyless signers are checked from Sigstore
    /// material instead (see [`crate::gate`]); asking for one here is an error.
    pub fn load(signer: &Signer) -> Result<Self, VerifyError> {
        match signer {
            Signer::Key { path, .. } => Self::from_key_file(path),
            Signer::Keyless(k) => Err(VerifyError::KeyInvalid {
                path: PathBuf::from(format!("keyless:{}@{}", k.subject, k.issuer)),
                why: "keyless identities are not verifiable by this version at container start; use a key signer".into(),
            }),
        }
    }

    /// Load a PEM public key file.
    pub fn from_key_file(path: &Path) -> Result<Self, VerifyError> {
        let read = |source| VerifyError::KeyRead {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if meta.len() > MAX_KEY_BYTES {
            return Err(VerifyError::KeyInvalid {
                path: path.to_path_buf(),
                why: format!("{} bytes is too large for a public key", meta.len()),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::from_pem(&text, &path.display().to_string()).map_err(|why| VerifyError::KeyInvalid {
            path: path.to_path_buf(),
            why,
        })
    }

    /// Parse a PEM `PUBLIC KEY` (SubjectPublicKeyInfo); `label` names it.
    pub fn from_pem(text: &str, label: &str) -> Result<Self, String> {
        let der = DerPublicKey::from_pem(text.trim()).map_err(|e| e.to_string())?;
        let algorithm = KeyAlgorithm::from_spki(&der).map_err(|e| e.to_string())?;
        // cosign signs with SHA-256 for every ECDSA curve; sigstore's default
        // for P-384 is SHA-384. Accept both for P-384.
        let schemes: &[SigningScheme] = match algorithm {
            KeyAlgorithm::EcdsaP256 => &[SigningScheme::EcdsaP256Sha256],
            KeyAlgorithm::EcdsaP384 => &[
                SigningScheme::EcdsaP384Sha256,
                SigningScheme::EcdsaP384Sha384,
            ],
            KeyAlgorithm::Ed25519 => &[SigningScheme::Ed25519],
            KeyAlgorithm::Rsa => &[SigningScheme::RsaPkcs1Sha256, SigningScheme::RsaPssSha256],
            other => {
                return Err(format!(
                    "key algorithm {other:?} is not supported for cosign signatures"
                ))
            }
        };
        let keys = schemes
            .iter()
            .map(|s| VerificationKey::from_spki_with_scheme(&der, *s).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let fingerprint = crate::digest::sha256_prefixed(der.as_bytes());
        Ok(Self {
            id: format!("key:{label} ({fingerprint})"),
            keys,
        })
    }

    fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        let sig = SignatureBytes::from_bytes(signature);
        self.keys.iter().any(|k| k.verify(payload, &sig).is_ok())
    }

    /// Does `signature` verify over exactly `message` with this signer's key?
    /// No payload format is assumed (DSSE passes its PAE bytes here).
    pub fn verifies_raw(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifies(message, signature)
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
        /// The most specific reason.
        reason: String,
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
    let mut entries = Vec::new();
    for d in digests {
        if let Some(e) = state.read(d)? {
            entries.push(e);
        }
    }
    Ok(entries)
}

/// [`verify_signatures`] over entries already read.
pub fn verify_entries(
    entries: &[Entry],
    digests: &[&str],
    signers: &[LoadedSigner],
) -> Result<Verified, Rejection> {
    let mut examined = 0usize;
    // Reasons ranked: a replayed signature or a wrong key says more than a
    // malformed layer.
    let mut best: Option<(u8, String)> = None;
    let mut note = |rank: u8, msg: String| {
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, msg));
        }
    };
    let mut any_cached = false;
    for entry in entries {
        for artifact in entry.artifacts.iter().filter(|a| a.kind == ARTIFACT_KIND) {
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
                        note(1, format!("signature {}: {e}", short(&layer.digest)));
                        continue;
                    }
                };
                let Some(sig_b64) = layer.annotations.get(cosign::SIGNATURE_ANNOTATION) else {
                    note(
                        1,
                        format!(
                            "signature {}: {}",
                            short(&layer.digest),
                            cosign::CosignError::MissingSignature
                        ),
                    );
                    continue;
                };
                let signature = match cosign::decode_signature(sig_b64) {
                    Ok(s) => s,
                    Err(e) => {
                        note(1, format!("signature {}: {e}", short(&layer.digest)));
                        continue;
                    }
                };
                let Some(signer) = signers.iter().find(|s| s.verifies(&blob, &signature)) else {
                    note(
                        2,
                        format!(
                            "no signature verifies with the rule's signer(s) {}",
                            signers
                                .iter()
                                .map(|s| s.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    continue;
                };
                // Authentic, but for which image?
                if !digests.contains(&payload.manifest_digest.as_str()) {
                    note(
                        3,
                        format!(
                            "a signature by {} names {}, not the image being started ({}): a signature replayed from another image never counts",
                            signer.id,
                            payload.manifest_digest,
                            digests.join(" or ")
                        ),
                    );
                    continue;
                }
                return Ok(Verified {
                    signer: signer.id.clone(),
                    digest: payload.manifest_digest,
                    layer_digest: layer.digest.clone(),
                });
            }
        }
    }
    if !any_cached {
        return Err(Rejection::NothingCached);
    }
    Err(Rejection::NoValidSignature {
        examined,
        reason: best
            .map(|(_, m)| m)
            .unwrap_or_else(|| "no cosign signature layer in the cached artifacts".into()),
    })
}

/// The artifact kind of cosign signature images in the cache.
pub const ARTIFACT_KIND: &str = crate::cache::kind::COSIGN_SIGNATURE;

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Artifact, Layer, ENTRY_FORMAT};
    use sigstore_verify::crypto::KeyPair;
    use std::collections::BTreeMap;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn pem(kp: &KeyPair) -> String {
        let der = kp.public_key_der().unwrap();
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
        };
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

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
    }

    #[test]
    fn platform_digest_signature_counts_for_an_index() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        let e = signed_entry(&d(5), &d(5), &kp);
        assert!(verify_entries(&[e], &[&d(4), &d(5)], &[signer]).is_ok());
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
        let mut e = signed_entry(&d(1), &d(1), &kp);
        e.artifacts[0].layers[0].annotations.clear();
        assert!(verify_entries(&[e], &[&d(1)], &[signer]).is_err());
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
