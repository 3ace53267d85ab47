//! DSSE envelopes (`application/vnd.dsse.envelope.v1+json`) carrying in-toto
//! statements.
//!
//! This module owns the envelope format and its signature check: strict
//! parsing of `{payloadType, payload, signatures: [{keyid?, sig}]}`, the
//! pre-authentication encoding (PAE) that DSSE signs, and the verification of
//! an envelope's signatures against the policy's signers. It also finds the envelope
//! of a key-signed Sigstore bundle that carries nothing for a log
//! ([`OfflineKeyBundle`]). The cryptography is
//! `sigstore-crypto`'s, reached through [`LoadedSigner::verifies_raw`]; what
//! the statement inside says is [`crate::provenance`]'s business.
//!
//! Rules, from the DSSE protocol and envelope specifications:
//!
//! * A signature is over `PAE(payloadType, payload)`, never over the bare
//!   payload, so the payload type is authenticated too. A signature made over
//!   the payload alone does not verify.
//! * Only `application/vnd.in-toto+json` is accepted as the payload type; any
//!   other is refused before any cryptography, naming the type found.
//! * `payload` and `sig` are base64, standard or URL-safe alphabet (the
//!   envelope spec allows either), padding optional.
//! * `keyid` is an unauthenticated hint: it is recorded, never used to pick
//!   or to trust a key. Every signature is tried with every signer.
//! * One verifying signature from any of the signers suffices.
//! * Unknown envelope fields are ignored, as the envelope spec requires of
//!   consumers (they are outside the signed bytes, so they cannot carry
//!   claims); a duplicated known field is refused, so no second `payload`
//!   can stand in for the signed one.
//! * Sizes are bounded: [`MAX_ENVELOPE_BYTES`], [`MAX_SIGNATURES`],
//!   [`MAX_SIGNATURE_B64`], [`MAX_KEYID_CHARS`].

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::Deserialize;

use crate::formats::keys::LoadedSigner;

/// Media type of a DSSE envelope (as an OCI layer or referrer artifact).
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The only payload type accepted: an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Largest envelope accepted, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 2 * 1024 * 1024;
/// Most signatures accepted in one envelope.
pub const MAX_SIGNATURES: usize = 16;
/// Largest base64 signature accepted, in characters.
pub const MAX_SIGNATURE_B64: usize = 8192;
/// Longest `keyid` accepted, in characters.
pub const MAX_KEYID_CHARS: usize = 1024;

/// Errors reading or verifying an envelope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DsseError {
    /// Bigger than [`MAX_ENVELOPE_BYTES`].
    #[error("DSSE envelope is {0} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not the JSON a DSSE envelope is.
    #[error("not a DSSE envelope: {0}")]
    Json(String),
    /// The payload is not an in-toto statement.
    #[error("DSSE payload type is {0:?}, not \"{IN_TOTO_PAYLOAD_TYPE}\"")]
    WrongPayloadType(String),
    /// `payload` is not base64.
    #[error("DSSE payload is not valid base64")]
    PayloadEncoding,
    /// The envelope carries no signature.
    #[error("DSSE envelope has no signatures")]
    NoSignatures,
    /// More than [`MAX_SIGNATURES`] signatures.
    #[error("DSSE envelope has {0} signatures, over the limit of {MAX_SIGNATURES}")]
    TooManySignatures(usize),
    /// A `sig` is not usable base64.
    #[error("DSSE signature {index} is not valid base64 (or is empty, or over {MAX_SIGNATURE_B64} characters)")]
    SignatureEncoding {
        /// Its position in `signatures`.
        index: usize,
    },
    /// A `keyid` is longer than [`MAX_KEYID_CHARS`].
    #[error("DSSE signature {index} has a keyid over {MAX_KEYID_CHARS} characters")]
    KeyIdTooLong {
        /// Its position in `signatures`.
        index: usize,
    },
    /// Verification was asked for with no signer at all.
    #[error("no signer to verify the DSSE envelope with")]
    NoSigners,
    /// No signature verifies with any signer.
    #[error("none of the envelope's {signatures} DSSE signature(s) verifies with the signer(s) {signers}", signers = .signers.join(", "))]
    NotVerified {
        /// How many signatures were tried.
        signatures: usize,
        /// The signers tried.
        signers: Vec<String>,
    },
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(default)]
    keyid: Option<String>,
    sig: String,
}

/// One signature of an envelope, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The unauthenticated key hint, if any (empty is the same as none).
    pub keyid: Option<String>,
    /// The raw signature bytes.
    pub sig: Vec<u8>,
}

/// A parsed envelope whose payload type is in-toto. Its payload is reachable
/// through [`Envelope::verify`]; [`Envelope::payload_unverified`] exists for
/// diagnostics only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    payload_type: String,
    payload: Vec<u8>,
    signatures: Vec<Signature>,
}

/// What a successful [`Envelope::verify`] vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The payload bytes the signature covers (an in-toto statement).
    pub payload: &'a [u8],
    /// The [`LoadedSigner::id`] of the signer whose key verified.
    pub signer: String,
    /// The `keyid` hint of the signature that verified (informational).
    pub keyid: Option<String>,
}

/// The DSSE envelope of a Sigstore bundle that a key signed and that
/// carries nothing to check in a log: a public-key hint, no transparency-log
/// entry and no RFC 3161 timestamp (cosign's new bundle format signed with a
/// key and a signing config naming no service). Parsing only: which keys may
/// verify it is the caller's decision.
#[derive(Debug)]
pub struct OfflineKeyBundle {
    /// The bundle's media type.
    pub media_type: String,
    /// The `dsseEnvelope` member, as envelope JSON for [`Envelope::parse`].
    pub envelope: Vec<u8>,
}

impl OfflineKeyBundle {
    /// `Some` only for a bundle of exactly that shape; `None` for anything
    /// else (a message signature, a certificate, any log entry or timestamp,
    /// unparseable JSON), which the Sigstore verifier then judges alone.
    pub fn parse(blob: &[u8]) -> Option<OfflineKeyBundle> {
        #[derive(serde::Deserialize)]
        struct Bundle {
            #[serde(rename = "mediaType")]
            media_type: String,
            #[serde(rename = "verificationMaterial")]
            material: Material,
            #[serde(rename = "dsseEnvelope")]
            envelope: Option<serde_json::Value>,
            #[serde(rename = "messageSignature")]
            message_signature: Option<serde_json::Value>,
        }
        #[derive(serde::Deserialize)]
        struct Material {
            #[serde(rename = "publicKey")]
            public_key: Option<serde_json::Value>,
            certificate: Option<serde_json::Value>,
            #[serde(rename = "x509CertificateChain")]
            chain: Option<serde_json::Value>,
            #[serde(rename = "tlogEntries", default)]
            tlog_entries: Vec<serde_json::Value>,
            #[serde(rename = "timestampVerificationData")]
            timestamps: Option<Timestamps>,
        }
        #[derive(serde::Deserialize)]
        struct Timestamps {
            #[serde(rename = "rfc3161Timestamps", default)]
            rfc3161: Vec<serde_json::Value>,
        }
        if blob.len() > MAX_ENVELOPE_BYTES {
            return None;
        }
        let b: Bundle = serde_json::from_slice(blob).ok()?;
        let m = &b.material;
        let no_time = m.timestamps.as_ref().is_none_or(|t| t.rfc3161.is_empty());
        if m.public_key.is_none()
            || m.certificate.is_some()
            || m.chain.is_some()
            || !m.tlog_entries.is_empty()
            || !no_time
            || b.message_signature.is_some()
        {
            return None;
        }
        let envelope = serde_json::to_vec(&b.envelope?).ok()?;
        Some(OfflineKeyBundle {
            media_type: b.media_type,
            envelope,
        })
    }
}

/// The DSSE pre-authentication encoding:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII
/// decimal byte counts.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let head = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    );
    let mut out = Vec::with_capacity(head.len() + payload.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out
}

const fn lenient(alphabet: &'static alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

const STANDARD_ANY_PAD: GeneralPurpose = lenient(&alphabet::STANDARD);
const URL_SAFE_ANY_PAD: GeneralPurpose = lenient(&alphabet::URL_SAFE);

/// Decode base64 in the standard or the URL-safe alphabet, padded or not.
pub(crate) fn decode_b64(text: &str) -> Option<Vec<u8>> {
    STANDARD_ANY_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_ANY_PAD.decode(text))
        .ok()
}

impl Envelope {
    /// Parse an envelope. Refuses oversized input, malformed JSON, duplicate
    /// fields, a payload type other than in-toto, bad base64, and envelopes
    /// with no (or too many) signatures. Does not verify anything.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, DsseError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(DsseError::TooLarge(bytes.len()));
        }
        let raw: RawEnvelope =
            serde_json::from_slice(bytes).map_err(|e| DsseError::Json(e.to_string()))?;
        if raw.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(DsseError::WrongPayloadType(raw.payload_type));
        }
        if raw.signatures.is_empty() {
            return Err(DsseError::NoSignatures);
        }
        if raw.signatures.len() > MAX_SIGNATURES {
            return Err(DsseError::TooManySignatures(raw.signatures.len()));
        }
        let payload = decode_b64(&raw.payload).ok_or(DsseError::PayloadEncoding)?;
        let signatures = raw
            .signatures
            .into_iter()
            .enumerate()
            .map(|(index, s)| {
                if s.sig.is_empty() || s.sig.len() > MAX_SIGNATURE_B64 {
                    return Err(DsseError::SignatureEncoding { index });
                }
                let sig = decode_b64(&s.sig).ok_or(DsseError::SignatureEncoding { index })?;
                if sig.is_empty() {
                    return Err(DsseError::SignatureEncoding { index });
                }
                if s.keyid.as_ref().is_some_and(|k| k.len() > MAX_KEYID_CHARS) {
                    return Err(DsseError::KeyIdTooLong { index });
                }
                Ok(Signature {
                    keyid: s.keyid.filter(|k| !k.is_empty()),
                    sig,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Envelope {
            payload_type: raw.payload_type,
            payload,
            signatures,
        })
    }

    /// The payload type (always [`IN_TOTO_PAYLOAD_TYPE`] once parsed).
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The signatures, decoded.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The payload before any signature check. For diagnostics only: nothing
    /// read from it may be trusted.
    pub fn payload_unverified(&self) -> &[u8] {
        &self.payload
    }

    /// The bytes each signature must cover.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Does any signature verify with any of `signers`? The first pair that
    /// does wins; `keyid` plays no part in the choice.
    pub fn verify(&self, signers: &[LoadedSigner]) -> Result<Verified<'_>, DsseError> {
        if signers.is_empty() {
            return Err(DsseError::NoSigners);
        }
        let message = self.pae();
        for signature in &self.signatures {
            if let Some(signer) = signers
                .iter()
                .find(|s| s.verifies_raw(&message, &signature.sig))
            {
                return Ok(Verified {
                    payload: &self.payload,
                    signer: signer.id.clone(),
                    keyid: signature.keyid.clone(),
                });
            }
        }
        Err(DsseError::NotVerified {
            signatures: self.signatures.len(),
            signers: signers.iter().map(|s| s.id.clone()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use sigstore_verify::crypto::{KeyAlgorithm, KeyPair};
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/provenance")
    }

    use crate::base::testing::public_key_pem as pem;

    fn signer(kp: &KeyPair, label: &str) -> LoadedSigner {
        LoadedSigner::from_pem(&pem(kp), label).unwrap()
    }

    const STATEMENT: &[u8] = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"aa"}}],"predicateType":"p","predicate":{}}"#;

    fn envelope_json(
        payload_type: &str,
        payload: &[u8],
        sigs: &[(Option<&str>, Vec<u8>)],
    ) -> String {
        let sigs: Vec<serde_json::Value> = sigs
            .iter()
            .map(|(k, s)| {
                let mut o = serde_json::json!({ "sig": STANDARD.encode(s) });
                if let Some(k) = k {
                    o["keyid"] = serde_json::Value::String((*k).to_string());
                }
                o
            })
            .collect();
        serde_json::json!({
            "payloadType": payload_type,
            "payload": STANDARD.encode(payload),
            "signatures": sigs,
        })
        .to_string()
    }

    fn signed(kp: &KeyPair, payload: &[u8]) -> String {
        let sig = kp.sign(&pae(IN_TOTO_PAYLOAD_TYPE, payload)).unwrap();
        envelope_json(
            IN_TOTO_PAYLOAD_TYPE,
            payload,
            &[(Some("k1"), sig.as_bytes().to_vec())],
        )
    }

    #[test]
    fn pae_matches_the_protocol_example() {
        // The DSSE protocol's worked example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        // Lengths are byte counts, not character counts.
        assert_eq!(pae("é", b""), "DSSEv1 2 é 0 ".as_bytes().to_vec());
        assert_eq!(
            pae(IN_TOTO_PAYLOAD_TYPE, b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec()
        );
    }

    #[test]
    fn verifies_with_the_right_key_only() {
        let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let other = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let env = Envelope::parse(signed(&kp, STATEMENT).as_bytes()).unwrap();
        assert_eq!(env.payload_type(), IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(env.signatures().len(), 1);
        let v = env.verify(&[signer(&kp, "good")]).unwrap();
        assert_eq!(v.payload, STATEMENT);
        assert!(v.signer.starts_with("key:good (sha256:"), "{}", v.signer);
        assert_eq!(v.keyid.as_deref(), Some("k1"));
        // any one signer of several suffices
        assert!(env
            .verify(&[signer(&other, "other"), signer(&kp, "good")])
            .is_ok());
        let err = env.verify(&[signer(&other, "other")]).unwrap_err();
        assert!(
            matches!(&err, DsseError::NotVerified { signatures: 1, signers } if signers.len() == 1),
            "{err:?}"
        );
        assert!(err.to_string().contains("key:other"), "{err}");
        assert_eq!(env.verify(&[]).unwrap_err(), DsseError::NoSigners);
    }

    #[test]
    fn a_signature_over_the_bare_payload_is_not_a_dsse_signature() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let sig = kp.sign(STATEMENT).unwrap();
        let json = envelope_json(
            IN_TOTO_PAYLOAD_TYPE,
            STATEMENT,
            &[(None, sig.as_bytes().to_vec())],
        );
        let env = Envelope::parse(json.as_bytes()).unwrap();
        assert!(matches!(
            env.verify(&[signer(&kp, "k")]),
            Err(DsseError::NotVerified { .. })
        ));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let s = signer(&kp, "k");
        let sig = kp
            .sign(&pae(IN_TOTO_PAYLOAD_TYPE, STATEMENT))
            .unwrap()
            .as_bytes()
            .to_vec();
        // payload changed by one byte
        let mut p = STATEMENT.to_vec();
        let last = p.len() - 2;
        p[last] = b' ';
        let env = Envelope::parse(
            envelope_json(IN_TOTO_PAYLOAD_TYPE, &p, &[(None, sig.clone())]).as_bytes(),
        )
        .unwrap();
        assert!(env.verify(std::slice::from_ref(&s)).is_err());
        // signature bit flipped
        let mut bad = sig.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        let env = Envelope::parse(
            envelope_json(IN_TOTO_PAYLOAD_TYPE, STATEMENT, &[(None, bad)]).as_bytes(),
        )
        .unwrap();
        assert!(env.verify(std::slice::from_ref(&s)).is_err());
        // truncated signature
        let env = Envelope::parse(
            envelope_json(
                IN_TOTO_PAYLOAD_TYPE,
                STATEMENT,
                &[(None, sig[..sig.len() / 2].to_vec())],
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(env.verify(std::slice::from_ref(&s)).is_err());
    }

    #[test]
    fn keyid_is_a_hint_never_a_gate() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let junk = KeyPair::generate_ecdsa_p256().unwrap();
        let good = kp
            .sign(&pae(IN_TOTO_PAYLOAD_TYPE, STATEMENT))
            .unwrap()
            .as_bytes()
            .to_vec();
        let wrong = junk
            .sign(&pae(IN_TOTO_PAYLOAD_TYPE, STATEMENT))
            .unwrap()
            .as_bytes()
            .to_vec();
        // a junk signature first, the good one second with a misleading keyid
        let json = envelope_json(
            IN_TOTO_PAYLOAD_TYPE,
            STATEMENT,
            &[(Some("the-right-key"), wrong), (Some("nonsense"), good)],
        );
        let env = Envelope::parse(json.as_bytes()).unwrap();
        let v = env.verify(&[signer(&kp, "k")]).unwrap();
        assert_eq!(v.keyid.as_deref(), Some("nonsense"));
        // an empty keyid is the same as none
        let json = json.replace("nonsense", "");
        let env = Envelope::parse(json.as_bytes()).unwrap();
        assert_eq!(env.signatures()[1].keyid, None);
        assert_eq!(env.verify(&[signer(&kp, "k")]).unwrap().keyid, None);
    }

    #[test]
    fn only_in_toto_payloads_are_accepted() {
        let json = envelope_json("application/json", STATEMENT, &[(None, vec![1, 2, 3])]);
        let err = Envelope::parse(json.as_bytes()).unwrap_err();
        assert_eq!(err, DsseError::WrongPayloadType("application/json".into()));
        assert_eq!(
            err.to_string(),
            r#"DSSE payload type is "application/json", not "application/vnd.in-toto+json""#
        );
        // case matters: the type is an opaque, case-sensitive string
        let json = envelope_json(
            "application/vnd.in-toto+JSON",
            STATEMENT,
            &[(None, vec![1])],
        );
        assert!(matches!(
            Envelope::parse(json.as_bytes()),
            Err(DsseError::WrongPayloadType(_))
        ));
        // control characters in the type are escaped in the message
        let json = envelope_json("evil\n\u{1b}[31m", STATEMENT, &[(None, vec![1])]);
        let msg = Envelope::parse(json.as_bytes()).unwrap_err().to_string();
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg}");
    }

    #[test]
    fn structure_is_strict() {
        let sig = STANDARD.encode([1u8, 2, 3]);
        let p = STANDARD.encode(STATEMENT);
        let t = IN_TOTO_PAYLOAD_TYPE;
        let cases = [
            // missing fields
            format!(r#"{{"payload":"{p}","signatures":[{{"sig":"{sig}"}}]}}"#),
            format!(r#"{{"payloadType":"{t}","signatures":[{{"sig":"{sig}"}}]}}"#),
            format!(r#"{{"payloadType":"{t}","payload":"{p}"}}"#),
            format!(r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"keyid":"k"}}]}}"#),
            // wrong types
            format!(r#"{{"payloadType":1,"payload":"{p}","signatures":[{{"sig":"{sig}"}}]}}"#),
            format!(r#"{{"payloadType":"{t}","payload":null,"signatures":[{{"sig":"{sig}"}}]}}"#),
            format!(r#"{{"payloadType":"{t}","payload":"{p}","signatures":{{"sig":"{sig}"}}}}"#),
            format!(
                r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"sig":"{sig}","keyid":7}}]}}"#
            ),
            // a second payload must not replace the signed one
            format!(
                r#"{{"payloadType":"{t}","payload":"{p}","payload":"e30=","signatures":[{{"sig":"{sig}"}}]}}"#
            ),
            format!(
                r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"sig":"{sig}","sig":"{sig}"}}]}}"#
            ),
            // not an object at all
            "[]".to_string(),
            "null".to_string(),
            String::new(),
            "{".to_string(),
        ];
        for c in &cases {
            assert!(
                matches!(Envelope::parse(c.as_bytes()), Err(DsseError::Json(_))),
                "{c}"
            );
        }
        let dup = &cases[8];
        assert!(Envelope::parse(dup.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("duplicate field"));
        // unknown fields are ignored (the envelope spec requires it)
        let extra = format!(
            r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"sig":"{sig}","cert":"x"}}],"extension":{{"a":1}}}}"#
        );
        assert!(Envelope::parse(extra.as_bytes()).is_ok());
        // ...however deeply nested: skipped without recursion (no stack
        // overflow), bounded by MAX_ENVELOPE_BYTES, and never signed over.
        let deep = format!(
            r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"sig":"{sig}"}}],"x":{}}}"#,
            "[".repeat(100_000) + &"]".repeat(100_000)
        );
        assert_eq!(Envelope::parse(deep.as_bytes()).unwrap().payload, STATEMENT);
        // a null keyid is the same as none
        let nullkey = format!(
            r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"sig":"{sig}","keyid":null}}]}}"#
        );
        assert_eq!(
            Envelope::parse(nullkey.as_bytes()).unwrap().signatures()[0].keyid,
            None
        );
    }

    #[test]
    fn encodings_and_limits() {
        let t = IN_TOTO_PAYLOAD_TYPE;
        let p = STANDARD.encode(STATEMENT);
        // URL-safe, unpadded base64 is allowed by the envelope spec
        let url = format!(
            r#"{{"payloadType":"{t}","payload":"{}","signatures":[{{"sig":"{}"}}]}}"#,
            URL_SAFE_NO_PAD.encode(b"\xfb\xff payload?"),
            URL_SAFE_NO_PAD.encode([0xfbu8, 0xff, 0xfe])
        );
        let env = Envelope::parse(url.as_bytes()).unwrap();
        assert_eq!(env.payload_unverified(), b"\xfb\xff payload?");
        assert_eq!(env.signatures()[0].sig, vec![0xfb, 0xff, 0xfe]);
        // bad base64 in payload or sig
        let bad_payload =
            format!(r#"{{"payloadType":"{t}","payload":"%%%","signatures":[{{"sig":"AQID"}}]}}"#);
        assert_eq!(
            Envelope::parse(bad_payload.as_bytes()).unwrap_err(),
            DsseError::PayloadEncoding
        );
        for bad_sig in ["", "%%%", "AQ ID", "A"] {
            let j = format!(
                r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"sig":"AQID"}},{{"sig":"{bad_sig}"}}]}}"#
            );
            assert_eq!(
                Envelope::parse(j.as_bytes()).unwrap_err(),
                DsseError::SignatureEncoding { index: 1 },
                "{bad_sig:?}"
            );
        }
        let long_sig = "A".repeat(MAX_SIGNATURE_B64 + 4);
        let j = format!(
            r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"sig":"{long_sig}"}}]}}"#
        );
        assert_eq!(
            Envelope::parse(j.as_bytes()).unwrap_err(),
            DsseError::SignatureEncoding { index: 0 }
        );
        let long_keyid = "k".repeat(MAX_KEYID_CHARS + 1);
        let j = format!(
            r#"{{"payloadType":"{t}","payload":"{p}","signatures":[{{"sig":"AQID","keyid":"{long_keyid}"}}]}}"#
        );
        assert_eq!(
            Envelope::parse(j.as_bytes()).unwrap_err(),
            DsseError::KeyIdTooLong { index: 0 }
        );
        // no signatures, too many signatures
        let none = format!(r#"{{"payloadType":"{t}","payload":"{p}","signatures":[]}}"#);
        assert_eq!(
            Envelope::parse(none.as_bytes()).unwrap_err(),
            DsseError::NoSignatures
        );
        let many = envelope_json(
            IN_TOTO_PAYLOAD_TYPE,
            STATEMENT,
            &vec![(None, vec![1u8]); MAX_SIGNATURES + 1],
        );
        assert_eq!(
            Envelope::parse(many.as_bytes()).unwrap_err(),
            DsseError::TooManySignatures(MAX_SIGNATURES + 1)
        );
        // size limit, checked before parsing
        let huge = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert_eq!(
            Envelope::parse(&huge).unwrap_err(),
            DsseError::TooLarge(MAX_ENVELOPE_BYTES + 1)
        );
        // deep nesting is an error, not a stack overflow
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Envelope::parse(&deep.as_bytes()[..MAX_ENVELOPE_BYTES.min(deep.len())]).is_err());
        // an empty payload parses (the spec allows it); the statement parser refuses it later
        let empty =
            format!(r#"{{"payloadType":"{t}","payload":"","signatures":[{{"sig":"AQID"}}]}}"#);
        assert_eq!(
            Envelope::parse(empty.as_bytes())
                .unwrap()
                .payload_unverified(),
            b""
        );
    }

    #[test]
    fn garbage_never_panics() {
        let kp = KeyPair::generate_ecdsa_p256().unwrap();
        let good = signed(&kp, STATEMENT).into_bytes();
        let s = signer(&kp, "k");
        // every truncation, and a pseudo-random byte flip at every position
        let mut x: u32 = 0x2545_f491;
        for i in 0..good.len() {
            let _ = Envelope::parse(&good[..i]).map(|e| e.verify(std::slice::from_ref(&s)).is_ok());
            let mut m = good.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            m[i] = (x & 0xff) as u8;
            if let Ok(e) = Envelope::parse(&m) {
                // anything that still verifies must carry the signed payload
                if let Ok(v) = e.verify(std::slice::from_ref(&s)) {
                    assert_eq!(v.payload, STATEMENT);
                }
            }
        }
    }

    // Envelopes made by an independent implementation (securesystemslib's
    // DSSE, see tests/fixtures/provenance/README.md).
    #[test]
    fn securesystemslib_envelopes_verify() {
        for (envelope, key) in [
            ("dsse-ecdsa-p256.json", "dsse-ecdsa-p256.pub"),
            ("dsse-ecdsa-p384.json", "dsse-ecdsa-p384.pub"),
            ("dsse-ed25519.json", "dsse-ed25519.pub"),
            ("dsse-rsa-pss.json", "dsse-rsa-pss.pub"),
        ] {
            let bytes = std::fs::read(fixtures().join(envelope)).unwrap();
            let key = LoadedSigner::from_key_file(&fixtures().join(key)).unwrap();
            let env = Envelope::parse(&bytes).unwrap();
            let v = env
                .verify(std::slice::from_ref(&key))
                .unwrap_or_else(|e| panic!("{envelope}: {e}"));
            assert!(
                v.keyid.is_some(),
                "{envelope}: securesystemslib sets keyids"
            );
            // the payload is the attestation fixture, byte for byte
            let statement =
                std::fs::read(fixtures().join("github-attest-build-provenance.json")).unwrap();
            assert_eq!(v.payload, statement.as_slice(), "{envelope}");
            // and it is a usable statement for the image it names
            let st = crate::provenance::Statement::parse(v.payload).unwrap();
            assert!(st
                .subject_for(&[
                    "sha256:9f2a0d5e83b1c47f6e0a2d9b8c7f1e3a5b4d6c8e0f2a4b6c8d0e2f4a6b8c0d1e"
                ])
                .is_ok());
        }
    }

    #[test]
    fn tampered_securesystemslib_envelopes_are_refused() {
        let bytes = std::fs::read(fixtures().join("dsse-ecdsa-p256.json")).unwrap();
        let key = LoadedSigner::from_key_file(&fixtures().join("dsse-ecdsa-p256.pub")).unwrap();
        let original: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        // 1. the statement re-pointed at another image
        let payload = STANDARD
            .decode(original["payload"].as_str().unwrap())
            .unwrap();
        let text = String::from_utf8(payload).unwrap();
        let forged = text.replace(
            "9f2a0d5e83b1c47f6e0a2d9b8c7f1e3a5b4d6c8e0f2a4b6c8d0e2f4a6b8c0d1e",
            "0000000000000000000000000000000000000000000000000000000000000000",
        );
        assert_ne!(forged, text);
        let mut t = original.clone();
        t["payload"] = serde_json::Value::String(STANDARD.encode(forged.as_bytes()));
        let env = Envelope::parse(t.to_string().as_bytes()).unwrap();
        assert!(matches!(
            env.verify(std::slice::from_ref(&key)),
            Err(DsseError::NotVerified { .. })
        ));
        // 2. one bit of the signature flipped
        let mut t = original.clone();
        let mut sig = STANDARD
            .decode(t["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let n = sig.len();
        sig[n - 1] ^= 0x01;
        t["signatures"][0]["sig"] = serde_json::Value::String(STANDARD.encode(&sig));
        let env = Envelope::parse(t.to_string().as_bytes()).unwrap();
        assert!(env.verify(std::slice::from_ref(&key)).is_err());
        // 3. another key's envelope does not verify with this key
        let other = std::fs::read(fixtures().join("dsse-ed25519.json")).unwrap();
        let env = Envelope::parse(&other).unwrap();
        assert!(env.verify(std::slice::from_ref(&key)).is_err());
        // 4. the untouched envelope still verifies (the edits above were the cause)
        let env = Envelope::parse(&bytes).unwrap();
        assert!(env.verify(&[key]).is_ok());
    }
}
