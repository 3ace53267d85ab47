//! Provenance at the gate: from the cached attestations of a digest to one
//! verified SLSA provenance that meets the rule.
//!
//! This module owns the order of the provenance checks over what
//! `portcullis fetch` cached: cosign's `.att` DSSE envelope layers (parsed
//! by [`crate::dsse`], verified with key signers; keyless layers, with
//! certificate, chain and Rekor bundle annotations, re-expressed as a
//! Sigstore bundle v0.1 and verified by `sigstore-verify` against the trust
//! root) and Sigstore bundles with
//! DSSE content attached as referrers (GitHub artifact attestations, cosign's
//! new bundle format; verified by `sigstore-verify` for key or keyless
//! signers). Then: bind the statement to the digest being started, validate
//! the predicate ([`crate::provenance`]) and check the rule's requirement.
//! The first attestation that passes every step wins; when none does, the
//! reason is the most telling failure (a requirement not met says more than
//! a statement about another image, which says more than a bad signature).

use std::time::Duration;

use crate::cache::{kind, Entry};
use crate::digest::short;
use crate::dsse::Envelope;
use crate::provenance::{self, Pattern, Provenance, Requirement};
use crate::verify::rejection::Rejected;
use crate::verify::signer::ProvenancePolicy;
use crate::verify::{LoadedSigner, RuleSigners, TrustProvider};

/// Media type of DSSE envelope layers.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A provenance that passed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProvenanceVerified {
    /// The normalized provenance.
    pub provenance: Provenance,
    /// `sha256:` of the verified in-toto statement bytes.
    pub statement_digest: String,
    /// The signer that vouched for the envelope.
    pub signer: String,
    /// The digest being started that the statement names as its subject.
    pub subject: String,
    /// The verified statement itself.
    pub statement: serde_json::Value,
}

/// Why no provenance passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvenanceRejection {
    /// No attestation is cached for the digests.
    NothingCached,
    /// Attestations are cached, none passes; the most telling reason.
    NoneAcceptable {
        /// How many envelopes were examined.
        examined: usize,
        /// The most telling reason.
        reason: Rejected,
    },
}

/// Compile the policy's `[rule.provenance]` into a requirement. Source
/// URIs are compared without git's `git+` scheme prefix (provenance writes
/// `git+https://…`, the normalized source is `https://…`), so `source_uris`
/// patterns may be written either way.
pub fn requirement(p: &ProvenancePolicy) -> Result<Requirement, String> {
    let compile = |list: &[String]| -> Result<Vec<Pattern>, String> {
        list.iter()
            .map(|s| Pattern::new(s).map_err(|e| e.to_string()))
            .collect()
    };
    let sources: Vec<String> = p
        .source_uris
        .iter()
        .map(|s| s.strip_prefix("git+").unwrap_or(s).to_string())
        .collect();
    Ok(Requirement {
        builder_ids: compile(&p.builder_ids)?,
        source_uris: compile(&sources)?,
        build_types: compile(&p.build_types)?,
        source_refs: compile(&p.source_refs)?,
        max_age: p.max_age.map(|d| Duration::from_secs(d.as_secs())),
    })
}

/// Check the cached `.att` attestations of `digests` (index digest first,
/// then the platform manifest) against key `signers` and `req`.
pub fn verify_provenance(
    entries: &[Entry],
    digests: &[&str],
    signers: &[LoadedSigner],
    req: &Requirement,
    now: jiff::Timestamp,
) -> Result<ProvenanceVerified, ProvenanceRejection> {
    let rs = RuleSigners {
        keys: signers
            .iter()
            .map(|s| crate::verify::KeySigner {
                signer: s.clone(),
                path: None,
                require_tlog: false,
            })
            .collect(),
        keyless: Vec::new(),
    };
    verify_provenance_with(entries, digests, &rs, req, now, &mut || {
        Err("no trust root is needed for key-signed envelopes".into())
    })
}

/// Check every cached attestation (`.att` envelopes and DSSE bundles) of
/// `digests` against a rule's provenance signers and `req`.
pub fn verify_provenance_with<'a>(
    entries: &[Entry],
    digests: &[&str],
    rule_signers: &RuleSigners,
    req: &Requirement,
    now: jiff::Timestamp,
    trust: &mut TrustProvider<'a>,
) -> Result<ProvenanceVerified, ProvenanceRejection> {
    let signers: Vec<LoadedSigner> = rule_signers.keys.iter().map(|k| k.signer.clone()).collect();
    let mut examined = 0usize;
    let mut best: Option<Rejected> = None;
    let mut note = |why: Rejected| Rejected::keep_most_telling(&mut best, why);
    let layers = entries.iter().flat_map(|e| {
        e.artifacts
            .iter()
            .filter(|a| a.kind == kind::COSIGN_ATTESTATION)
            .flat_map(|a| a.layers.iter())
            .filter(|l| l.media_type == DSSE_MEDIA_TYPE)
            .map(move |l| (e.subject.as_str(), l))
    });
    for (entry_subject, layer) in layers {
        examined += 1;
        let blob = layer.blob();
        let envelope = match Envelope::parse(&blob) {
            Ok(e) => e,
            Err(e) => {
                note(Rejected::Malformed(format!(
                    "attestation {}: {e}",
                    short(&layer.digest)
                )));
                continue;
            }
        };
        // A keyless layer (certificate, chain and Rekor bundle in its
        // annotations, as cosign's classic `attest` and the SLSA container
        // generator write it) is checked as the Sigstore bundle it is
        // equivalent to, by the crate, against the trust root; a key-signed
        // one against the rule's keys.
        let keyless = crate::formats::cosign::is_keyless(&layer.annotations)
            && !rule_signers.keyless.is_empty();
        let verified = if keyless {
            match keyless_envelope(&blob, entry_subject, layer, rule_signers, trust) {
                Ok(signer) => crate::dsse::Verified {
                    payload: envelope.payload_unverified(),
                    signer,
                    keyid: None,
                },
                Err(why) => {
                    note(why);
                    continue;
                }
            }
        } else {
            match envelope.verify(&signers) {
                Ok(v) => {
                    if let Err(why) = key_envelope_tlog(
                        &blob,
                        entry_subject,
                        layer,
                        &v.signer,
                        rule_signers,
                        trust,
                    ) {
                        note(why);
                        continue;
                    }
                    v
                }
                Err(e) => {
                    note(Rejected::NotTheSigner(format!(
                        "attestation {}: {e}",
                        short(&layer.digest)
                    )));
                    continue;
                }
            }
        };
        let (prov, subject) = match provenance::extract_bound(verified.payload, digests) {
            Ok(p) => p,
            Err(provenance::ProvenanceError::NotProvenance(t)) => {
                note(Rejected::NotProvenance(format!(
                    "attestation {} has predicate type {t:?}, not SLSA provenance",
                    short(&layer.digest)
                )));
                continue;
            }
            Err(e) => {
                note(Rejected::ProvenanceMismatch(format!(
                    "attestation {} by {}: {e}",
                    short(&layer.digest),
                    verified.signer
                )));
                continue;
            }
        };
        if let Err(unmet) = req.check(&prov, now) {
            note(Rejected::ProvenanceUnmet(format!(
                "provenance by {}: {unmet}",
                verified.signer
            )));
            continue;
        }
        let statement = serde_json::from_slice(verified.payload).unwrap_or(serde_json::Value::Null);
        return Ok(ProvenanceVerified {
            statement_digest: crate::digest::sha256_prefixed(verified.payload),
            signer: verified.signer.clone(),
            subject: subject.to_string(),
            provenance: prov,
            statement,
        });
    }
    for entry in entries {
        let bundles = entry
            .artifacts
            .iter()
            .filter(|a| a.kind == kind::SIGSTORE_BUNDLE)
            .flat_map(|a| a.layers.iter());
        for layer in bundles {
            let blob = layer.blob();
            let Some(statement) = dsse_statement(&blob) else {
                continue; // a signature bundle, not an attestation
            };
            examined += 1;
            let signer = match rule_signers.verify_bundle(&blob, &entry.subject, trust) {
                Ok((signer, _)) => signer,
                Err(why) => {
                    note(why.prefixed(format_args!("attestation bundle {}", short(&layer.digest))));
                    continue;
                }
            };
            let (prov, subject) = match provenance::extract_bound(&statement, digests) {
                Ok(p) => p,
                Err(provenance::ProvenanceError::NotProvenance(t)) => {
                    note(Rejected::NotProvenance(format!(
                        "attestation bundle {} has predicate type {t:?}, not SLSA provenance",
                        short(&layer.digest)
                    )));
                    continue;
                }
                Err(e) => {
                    note(Rejected::ProvenanceMismatch(format!(
                        "attestation bundle {} by {signer}: {e}",
                        short(&layer.digest)
                    )));
                    continue;
                }
            };
            if let Err(unmet) = req.check(&prov, now) {
                note(Rejected::ProvenanceUnmet(format!(
                    "provenance by {signer}: {unmet}"
                )));
                continue;
            }
            return Ok(ProvenanceVerified {
                statement_digest: crate::digest::sha256_prefixed(&statement),
                signer,
                subject: subject.to_string(),
                provenance: prov,
                statement: serde_json::from_slice(&statement).unwrap_or(serde_json::Value::Null),
            });
        }
    }
    if examined == 0 {
        return Err(ProvenanceRejection::NothingCached);
    }
    Err(ProvenanceRejection::NoneAcceptable {
        examined,
        reason: best.unwrap_or_else(|| Rejected::Malformed(String::new())),
    })
}

/// Verify a keyless `.att` layer: re-expressed as a Sigstore bundle v0.1
/// ([`crate::formats::cosign::legacy_attestation_to_bundle`]) and checked by
/// the crate against the rule's keyless signers and the trust root. The
/// envelope's payload is then the verified statement (the crate has checked
/// the DSSE signature over it and the Rekor entry's consistency with it).
fn keyless_envelope(
    blob: &[u8],
    subject: &str,
    layer: &crate::cache::Layer,
    rule_signers: &RuleSigners,
    trust: &mut TrustProvider<'_>,
) -> Result<String, Rejected> {
    let bundle =
        match crate::formats::cosign::legacy_attestation_to_bundle(blob, &layer.annotations) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(Rejected::NotTheSigner(format!(
                    "keyless attestation {} has no Rekor bundle: nothing proves when it was made",
                    short(&layer.digest)
                )))
            }
            Err(e) => {
                return Err(Rejected::Malformed(format!(
                    "attestation {}: {e}",
                    short(&layer.digest)
                )))
            }
        };
    let keyless_only = RuleSigners {
        keys: Vec::new(),
        keyless: rule_signers.keyless.clone(),
    };
    keyless_only
        .verify_bundle(&bundle, subject, trust)
        .map(|(signer, _)| signer)
        .map_err(|why| why.prefixed(format_args!("keyless attestation {}", short(&layer.digest))))
}

/// A key-signed `.att` envelope whose key requires a transparency-log entry
/// (`require_tlog = true`): the layer's Rekor bundle annotation, re-expressed
/// as a Sigstore bundle, must verify (entry, SET, key) through the crate
/// against the trust root. No entry, or one that does not verify, refuses
/// the layer, as for a `.sig` layer. Keys without the requirement pass.
fn key_envelope_tlog(
    blob: &[u8],
    subject: &str,
    layer: &crate::cache::Layer,
    signer_id: &str,
    rule_signers: &RuleSigners,
    trust: &mut TrustProvider<'_>,
) -> Result<(), Rejected> {
    let Some(k) = rule_signers
        .keys
        .iter()
        .find(|k| k.signer.id == signer_id && k.require_tlog)
    else {
        return Ok(());
    };
    let bundle = match crate::formats::cosign::legacy_attestation_to_bundle(blob, &layer.annotations)
    {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(Rejected::NotTheSigner(format!(
                "the attestation {} by {} has no transparency-log entry, and the signer requires one (require_tlog)",
                short(&layer.digest),
                k.signer.id
            )))
        }
        Err(e) => {
            return Err(Rejected::Malformed(format!(
                "attestation {}: {e}",
                short(&layer.digest)
            )))
        }
    };
    let this_key = RuleSigners {
        keys: vec![k.clone()],
        keyless: Vec::new(),
    };
    this_key
        .verify_bundle(&bundle, subject, trust)
        .map(|_| ())
        .map_err(|why| {
            why.prefixed(format_args!(
                "transparency-log entry of the attestation {} by {}",
                short(&layer.digest),
                k.signer.id
            ))
        })
}

/// The in-toto statement of a DSSE Sigstore bundle that is an attestation
/// (not cosign's image-signing predicate); `None` for anything else.
fn dsse_statement(blob: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "messageSignature")]
        message_signature: Option<serde_json::Value>,
        #[serde(rename = "dsseEnvelope")]
        dsse_envelope: Option<Dsse>,
    }
    #[derive(serde::Deserialize)]
    struct Statement {
        #[serde(rename = "predicateType")]
        predicate_type: String,
    }
    #[derive(serde::Deserialize)]
    struct Dsse {
        payload: String,
        #[serde(rename = "payloadType")]
        payload_type: String,
    }
    use base64::Engine;
    let h: Head = serde_json::from_slice(blob).ok()?;
    if h.message_signature.is_some() {
        return None;
    }
    let d = h.dsse_envelope?;
    if d.payload_type != crate::dsse::IN_TOTO_PAYLOAD_TYPE {
        return None;
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(d.payload)
        .ok()?;
    // cosign's image-signing statement is a signature, not an attestation
    // (the same test as `verify::is_signature_bundle`, on the decoded payload).
    let st: Statement = serde_json::from_slice(&payload).ok()?;
    (st.predicate_type != crate::verify::COSIGN_SIGN_PREDICATE).then_some(payload)
}

#[cfg(test)]
pub(super) mod tests {
    //! Each class of a refused attestation comes from its own case. The
    //! entry and envelope fixtures serve `verify::rule`'s tests too.
    use super::*;
    use crate::cache::{Artifact, Layer, ENTRY_FORMAT};
    use crate::verify::rejection::Class;
    use base64::Engine;
    use sigstore_verify::crypto::{KeyAlgorithm, KeyPair};

    use crate::base::testing::digest as d;

    use crate::base::testing::public_key_pem as pem;

    fn statement(subject: &str, predicate_type: &str) -> Vec<u8> {
        let hex = subject.strip_prefix("sha256:").unwrap();
        format!(
            r#"{{"_type":"{}","subject":[{{"name":"img","digest":{{"sha256":"{hex}"}}}}],"predicateType":"{predicate_type}","predicate":{{"buildDefinition":{{"buildType":"https://example.com/build","externalParameters":{{"a":"b"}}}},"runDetails":{{"builder":{{"id":"https://example.com/builder"}}}}}}}}"#,
            provenance::STATEMENT_V1
        )
        .into_bytes()
    }

    /// A cache entry for `subject` holding `blobs` as `.att` DSSE layers.
    pub(in crate::verify) fn entry(subject: &str, blobs: &[Vec<u8>]) -> Entry {
        Entry {
            format: ENTRY_FORMAT,
            subject: subject.into(),
            repository: "r".into(),
            fetched_at: "t".into(),
            artifacts: vec![Artifact {
                kind: kind::COSIGN_ATTESTATION.into(),
                source: "s".into(),
                manifest_digest: d(0),
                layers: blobs
                    .iter()
                    .map(|b| Layer::new(DSSE_MEDIA_TYPE, Default::default(), b))
                    .collect(),
            }],
        }
    }

    /// An in-toto DSSE envelope over `payload`, signed by `kp`.
    pub(in crate::verify) fn envelope(kp: &KeyPair, payload: &[u8]) -> Vec<u8> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let pae = crate::dsse::pae(crate::dsse::IN_TOTO_PAYLOAD_TYPE, payload);
        let sig = kp.sign(&pae).unwrap();
        format!(
            r#"{{"payloadType":"{}","payload":"{}","signatures":[{{"keyid":"","sig":"{}"}}]}}"#,
            crate::dsse::IN_TOTO_PAYLOAD_TYPE,
            b64(payload),
            b64(sig.as_bytes())
        )
        .into_bytes()
    }

    fn class_of(
        blobs: &[Vec<u8>],
        signer: &LoadedSigner,
        req: &Requirement,
    ) -> Result<ProvenanceVerified, Class> {
        let e = entry(&d(1), blobs);
        verify_provenance(
            &[e],
            &[&d(1)],
            std::slice::from_ref(signer),
            req,
            jiff::Timestamp::now(),
        )
        .map_err(|r| match r {
            ProvenanceRejection::NothingCached => Class::ProvenanceMissing,
            ProvenanceRejection::NoneAcceptable { reason, .. } => reason.class(),
        })
    }

    #[test]
    fn each_class_comes_from_its_case() {
        let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let other = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        let any = Requirement::default();
        let good = statement(&d(1), provenance::SLSA_PROVENANCE_V1);
        assert!(class_of(&[envelope(&kp, &good)], &signer, &any).is_ok());
        assert_eq!(
            class_of(&[], &signer, &any).unwrap_err(),
            Class::ProvenanceMissing
        );
        assert_eq!(
            class_of(&[b"{not json".to_vec()], &signer, &any).unwrap_err(),
            Class::Malformed
        );
        assert_eq!(
            class_of(&[envelope(&other, &good)], &signer, &any).unwrap_err(),
            Class::NotTheSigner
        );
        let sbom = statement(&d(1), "https://spdx.dev/Document");
        assert_eq!(
            class_of(&[envelope(&kp, &sbom)], &signer, &any).unwrap_err(),
            Class::NotProvenance
        );
        let elsewhere = statement(&d(7), provenance::SLSA_PROVENANCE_V1);
        assert_eq!(
            class_of(&[envelope(&kp, &elsewhere)], &signer, &any).unwrap_err(),
            Class::ProvenanceMismatch
        );
        let strict = Requirement {
            builder_ids: vec![Pattern::new("https://other.example/builder").unwrap()],
            ..Requirement::default()
        };
        assert_eq!(
            class_of(&[envelope(&kp, &good)], &signer, &strict).unwrap_err(),
            Class::ProvenanceUnmet
        );
        // The most telling reason wins, whatever the order met.
        let mixed = [
            envelope(&kp, &good),
            b"{not json".to_vec(),
            envelope(&other, &good),
        ];
        let e = entry(&d(1), &mixed);
        let r = verify_provenance(&[e], &[&d(1)], &[signer], &strict, jiff::Timestamp::now());
        assert!(
            matches!(&r, Err(ProvenanceRejection::NoneAcceptable { examined: 3, reason }) if reason.class() == Class::ProvenanceUnmet && reason.starts_with("provenance by")),
            "{r:?}"
        );
    }

    #[test]
    fn require_tlog_refuses_a_key_attestation_without_a_log_entry() {
        let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let signer = LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
        let good = statement(&d(1), provenance::SLSA_PROVENANCE_V1);
        let e = entry(&d(1), &[envelope(&kp, &good)]);
        let rs = |require_tlog| RuleSigners {
            keys: vec![crate::verify::KeySigner {
                signer: signer.clone(),
                path: None,
                require_tlog,
            }],
            keyless: Vec::new(),
        };
        let run = |rs: &RuleSigners| {
            verify_provenance_with(
                std::slice::from_ref(&e),
                &[&d(1)],
                rs,
                &Requirement::default(),
                jiff::Timestamp::now(),
                &mut || Err("no trust root in this test".into()),
            )
        };
        assert!(run(&rs(false)).is_ok());
        let r = run(&rs(true));
        assert!(
            matches!(&r, Err(ProvenanceRejection::NoneAcceptable { reason, .. })
                if reason.class() == Class::NotTheSigner && reason.contains("require_tlog")),
            "{r:?}"
        );
    }

    mod keyless_att {
        //! cosign's legacy `.att` layer signed keyless (certificate, chain
        //! and Rekor bundle in annotations), made by the local Fulcio/Rekor
        //! stand-in and re-laid out by integration/keyless/legacy-att.sh.
        use super::*;
        use crate::verify::signer::{Keyless, Matcher};
        use std::collections::BTreeMap;

        const ISSUER: &str = "https://token.actions.githubusercontent.com";
        const GEN: &str = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0";

        fn fixture(name: &str) -> String {
            std::fs::read_to_string(format!(
                "{}/tests/fixtures/keyless-att/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        }

        fn entry_with(annotations: BTreeMap<String, String>) -> (Entry, String) {
            let subject = fixture("subject.txt").trim().to_string();
            let blob = fixture("envelope.json");
            let mut e = entry(&subject, &[]);
            e.artifacts[0].layers = vec![Layer::new(DSSE_MEDIA_TYPE, annotations, blob.as_bytes())];
            (e, subject)
        }

        fn annotations() -> BTreeMap<String, String> {
            serde_json::from_str(&fixture("annotations.json")).unwrap()
        }

        fn signer(subject: &str) -> RuleSigners {
            RuleSigners {
                keys: Vec::new(),
                keyless: vec![Keyless {
                    issuer: Matcher::Exact(ISSUER.into()),
                    subject: Matcher::Exact(subject.into()),
                    extensions: vec![],
                    ca: None,
                    require_tlog: true,
                }],
            }
        }

        fn check(
            e: &Entry,
            subject: &str,
            signers: &RuleSigners,
            req: &Requirement,
        ) -> Result<ProvenanceVerified, ProvenanceRejection> {
            let path = format!(
                "{}/tests/fixtures/keyless-att/trusted_root.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let root = crate::bundle::TrustRoot::load(std::path::Path::new(&path)).unwrap();
            let mut trust = || Ok(&root);
            verify_provenance_with(
                std::slice::from_ref(e),
                &[subject],
                signers,
                req,
                jiff::Timestamp::now(),
                &mut trust,
            )
        }

        fn class(r: Result<ProvenanceVerified, ProvenanceRejection>) -> Class {
            match r {
                Ok(v) => panic!("expected a refusal, passed: {}", v.signer),
                Err(ProvenanceRejection::NothingCached) => Class::ProvenanceMissing,
                Err(ProvenanceRejection::NoneAcceptable { reason, .. }) => reason.class(),
            }
        }

        #[test]
        fn verifies_offline_against_the_trust_root() {
            let (e, subject) = entry_with(annotations());
            let req = Requirement {
                builder_ids: vec![Pattern::new(GEN).unwrap()],
                source_uris: vec![Pattern::new("https://github.com/acme/app").unwrap()],
                ..Requirement::default()
            };
            let v = check(&e, &subject, &signer(GEN), &req).unwrap();
            assert_eq!(v.signer, format!("keyless:{GEN} (issuer {ISSUER})"));
            assert_eq!(v.provenance.builder_id, GEN);
            assert_eq!(
                v.provenance.predicate_type,
                provenance::SLSA_PROVENANCE_V0_2
            );
            assert_eq!(v.subject, subject);
        }

        #[test]
        fn refused_with_anything_less() {
            let (e, subject) = entry_with(annotations());
            let any = Requirement::default();
            // Another identity.
            let other =
                "https://github.com/mallory/builder/.github/workflows/build.yml@refs/heads/main";
            assert_eq!(
                class(check(&e, &subject, &signer(other), &any)),
                Class::NotTheSigner
            );
            // Another builder or source required.
            let strict = Requirement {
                builder_ids: vec![Pattern::new("https://other.example/builder").unwrap()],
                ..Requirement::default()
            };
            assert_eq!(
                class(check(&e, &subject, &signer(GEN), &strict)),
                Class::ProvenanceUnmet
            );
            let source = Requirement {
                source_uris: vec![Pattern::new("https://github.com/mallory/app").unwrap()],
                ..Requirement::default()
            };
            assert_eq!(
                class(check(&e, &subject, &signer(GEN), &source)),
                Class::ProvenanceUnmet
            );
            // Another image: the statement names another digest.
            let (e2, _) = entry_with(annotations());
            let elsewhere = d(9);
            let mut e2 = e2;
            e2.subject = elsewhere.clone();
            assert_eq!(
                class(check(&e2, &elsewhere, &signer(GEN), &any)),
                Class::NotTheSigner
            );
            // No Rekor bundle: nothing proves when it was signed.
            let mut a = annotations();
            a.remove(crate::formats::cosign::REKOR_BUNDLE_ANNOTATION);
            let (e3, _) = entry_with(a);
            assert_eq!(
                class(check(&e3, &subject, &signer(GEN), &any)),
                Class::NotTheSigner
            );
            // A forged SET.
            let mut a = annotations();
            let rb = a
                .get_mut(crate::formats::cosign::REKOR_BUNDLE_ANNOTATION)
                .unwrap();
            let mut v: serde_json::Value = serde_json::from_str(rb).unwrap();
            v["Payload"]["logIndex"] =
                serde_json::json!(v["Payload"]["logIndex"].as_i64().unwrap() + 1);
            *rb = v.to_string();
            let (e4, _) = entry_with(a);
            assert_eq!(
                class(check(&e4, &subject, &signer(GEN), &any)),
                Class::NotTheSigner
            );
            // A rule with key signers only does not take a keyless layer.
            let keys_only = RuleSigners::default();
            assert_eq!(
                class(check(&e, &subject, &keys_only, &any)),
                Class::NotTheSigner
            );
        }
    }
}
