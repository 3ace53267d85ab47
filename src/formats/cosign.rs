//! cosign's legacy registry format for image signatures and attestations.
//!
//! This module owns the layout cosign uses in a registry: the signature image
//! at tag `sha256-<hex>.sig`, one layer per signature whose blob is a
//! "simple signing" JSON payload naming the signed manifest digest, and the
//! base64 signature in the layer annotation `dev.cosignproject.cosign/signature`;
//! keyless layers (signatures, and the DSSE envelopes of the `.att` image)
//! carry their certificate, chain and Rekor bundle in annotations, which
//! this module re-expresses as Sigstore bundles v0.1.
//! It parses and checks payloads; the cryptography lives in
//! [`crate::verify`].

use serde::Deserialize;

/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Layer annotation holding a keyless signing certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Layer annotation holding the keyless certificate chain (PEM, intermediates then root).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// Layer annotation holding the Rekor bundle (signed entry timestamp and entry).
pub const REKOR_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// Largest certificate, chain or Rekor bundle annotation accepted, in characters.
pub const MAX_ANNOTATION: usize = 64 * 1024;
/// The `critical.type` cosign writes and requires.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Largest payload accepted, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Largest base64 signature annotation accepted, in characters.
pub const MAX_SIGNATURE_B64: usize = 4096;

/// The registry tag holding the signatures of `digest` (`sha256-<hex>.sig`).
pub fn signature_tag(digest: &str) -> Result<String, crate::digest::DigestError> {
    let hex = crate::digest::sha256_hex_of(digest)?;
    Ok(format!("sha256-{hex}.sig"))
}

/// Errors reading a simple-signing payload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CosignError {
    /// Bigger than [`MAX_PAYLOAD_BYTES`].
    #[error("signature payload is {0} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit")]
    PayloadTooLarge(usize),
    /// Not the JSON cosign writes.
    #[error("signature payload is not a simple-signing document: {0}")]
    PayloadJson(String),
    /// `critical.type` is not cosign's.
    #[error("signature payload type is \"{0}\", not \"{SIGNATURE_TYPE}\"")]
    WrongType(String),
    /// `critical.image.docker-manifest-digest` is not a sha256 digest.
    #[error("signature payload names an invalid digest: {0}")]
    BadDigest(String),
    /// The layer has no signature annotation.
    #[error("signature layer has no `{SIGNATURE_ANNOTATION}` annotation")]
    MissingSignature,
    /// A keyless annotation (certificate, chain, Rekor bundle) is unusable.
    #[error("signature layer's {annotation} annotation is unusable: {why}")]
    BadAnnotation {
        /// Which annotation.
        annotation: &'static str,
        /// Why.
        why: String,
    },
    /// The signature annotation is not usable base64.
    #[error("signature annotation is not valid base64 (or over {MAX_SIGNATURE_B64} characters)")]
    BadSignatureEncoding,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    critical: RawCritical,
    #[serde(default)]
    #[allow(dead_code)]
    optional: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCritical {
    identity: RawIdentity,
    image: RawImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// What a verified simple-signing payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The manifest digest the signature covers.
    pub manifest_digest: String,
    /// The repository the signer named (informational: cosign does not bind it).
    pub docker_reference: String,
}

/// Parse and check a simple-signing payload. Duplicate keys are refused.
pub fn parse_payload(bytes: &[u8]) -> Result<Payload, CosignError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(CosignError::PayloadTooLarge(bytes.len()));
    }
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| CosignError::PayloadJson(e.to_string()))?;
    if raw.critical.kind != SIGNATURE_TYPE {
        return Err(CosignError::WrongType(raw.critical.kind));
    }
    let d = raw.critical.image.docker_manifest_digest;
    if crate::digest::sha256_hex_of(&d).is_err() {
        return Err(CosignError::BadDigest(d));
    }
    Ok(Payload {
        manifest_digest: d,
        docker_reference: raw.critical.identity.docker_reference,
    })
}

/// Decode the base64 signature annotation value.
pub fn decode_signature(b64: &str) -> Result<Vec<u8>, CosignError> {
    use base64::Engine;
    if b64.is_empty() || b64.len() > MAX_SIGNATURE_B64 {
        return Err(CosignError::BadSignatureEncoding);
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| CosignError::BadSignatureEncoding)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RekorPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

#[derive(Debug, Deserialize)]
struct BodyHead {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
}

/// Is this a keyless (certificate-carrying) signature layer?
pub fn is_keyless(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations.contains_key(CERTIFICATE_ANNOTATION)
}

pub(crate) fn pem_certificates(
    text: &str,
    annotation: &'static str,
) -> Result<Vec<String>, CosignError> {
    let bad = |why: String| CosignError::BadAnnotation { annotation, why };
    if text.len() > MAX_ANNOTATION {
        return Err(bad("too large".into()));
    }
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    for block in text.split_inclusive(END) {
        let block = block.trim();
        if block.is_empty() {
            continue;
        }
        let der = sigstore_verify::types::DerCertificate::from_pem(block)
            .map_err(|e| bad(e.to_string()))?;
        out.push(der.to_base64());
    }
    if out.is_empty() {
        return Err(bad("no PEM certificate".into()));
    }
    Ok(out)
}

/// Re-express a legacy cosign signature layer (payload, signature,
/// certificate, chain and Rekor bundle annotations) as the equivalent
/// Sigstore bundle v0.1, so that `sigstore-verify` checks it like any other
/// bundle. This is a mapping of fields, not a verification: every check is
/// the crate's. Returns `None` when the layer has no Rekor bundle (a
/// signature without a transparency-log entry has no bundle equivalent).
pub fn legacy_to_bundle(
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<Option<Vec<u8>>, CosignError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let signature = annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or(CosignError::MissingSignature)?;
    decode_signature(signature)?;
    let Some(material) = legacy_material(annotations)? else {
        return Ok(None);
    };
    let digest = sigstore_verify::crypto::sha256(payload);
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64.encode(digest.as_bytes())},
            "signature": signature.trim(),
        },
    });
    serde_json::to_vec(&bundle)
        .map(Some)
        .map_err(|e| CosignError::BadAnnotation {
            annotation: REKOR_BUNDLE_ANNOTATION,
            why: e.to_string(),
        })
}

/// Re-express a legacy cosign attestation layer (the `sha256-<hex>.att`
/// image cosign's classic `attest` and the SLSA container generator write:
/// a DSSE envelope as the blob, the certificate, chain and Rekor bundle in
/// the same annotations as a signature's) as the equivalent Sigstore bundle
/// v0.1 with DSSE content. A mapping of fields only, as for
/// [`legacy_to_bundle`]; `None` when the layer has no Rekor bundle.
pub fn legacy_attestation_to_bundle(
    envelope: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<Option<Vec<u8>>, CosignError> {
    #[derive(Deserialize)]
    struct Env {
        #[serde(rename = "payloadType")]
        payload_type: String,
        payload: String,
        signatures: Vec<EnvSig>,
    }
    #[derive(Deserialize)]
    struct EnvSig {
        #[serde(default)]
        keyid: Option<String>,
        sig: String,
    }
    if envelope.len() > MAX_PAYLOAD_BYTES {
        return Err(CosignError::PayloadTooLarge(envelope.len()));
    }
    let env: Env =
        serde_json::from_slice(envelope).map_err(|e| CosignError::PayloadJson(e.to_string()))?;
    if env.signatures.len() != 1 {
        return Err(CosignError::PayloadJson(format!(
            "a keyless attestation envelope carries one signature, this one {}",
            env.signatures.len()
        )));
    }
    let Some(material) = legacy_material(annotations)? else {
        return Ok(None);
    };
    let sig = &env.signatures[0];
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": env.payload,
            "payloadType": env.payload_type,
            "signatures": [{"sig": sig.sig, "keyid": sig.keyid.clone().unwrap_or_default()}],
        },
    });
    serde_json::to_vec(&bundle)
        .map(Some)
        .map_err(|e| CosignError::BadAnnotation {
            annotation: REKOR_BUNDLE_ANNOTATION,
            why: e.to_string(),
        })
}

/// The verification material of a legacy layer: certificate and chain (or
/// a public-key hint) and the Rekor entry from its bundle annotation;
/// `None` without a Rekor bundle.
fn legacy_material(
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<Option<serde_json::Value>, CosignError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(rekor) = annotations.get(REKOR_BUNDLE_ANNOTATION) else {
        return Ok(None);
    };
    let bad =
        |annotation: &'static str, why: String| CosignError::BadAnnotation { annotation, why };
    if rekor.len() > MAX_ANNOTATION {
        return Err(bad(REKOR_BUNDLE_ANNOTATION, "too large".into()));
    }
    let rb: RekorBundle =
        serde_json::from_str(rekor).map_err(|e| bad(REKOR_BUNDLE_ANNOTATION, e.to_string()))?;
    let body = b64
        .decode(&rb.payload.body)
        .map_err(|_| bad(REKOR_BUNDLE_ANNOTATION, "entry body is not base64".into()))?;
    let head: BodyHead = serde_json::from_slice(&body)
        .map_err(|e| bad(REKOR_BUNDLE_ANNOTATION, format!("entry body: {e}")))?;
    let log_id = hex_decode(&rb.payload.log_id)
        .ok_or_else(|| bad(REKOR_BUNDLE_ANNOTATION, "logID is not hex".into()))?;
    if rb.payload.log_index < 0 || rb.payload.integrated_time < 0 {
        return Err(bad(
            REKOR_BUNDLE_ANNOTATION,
            "negative logIndex or integratedTime".into(),
        ));
    }
    let mut material = match annotations.get(CERTIFICATE_ANNOTATION) {
        Some(cert) => {
            let mut certs = pem_certificates(cert, CERTIFICATE_ANNOTATION)?;
            if let Some(chain) = annotations.get(CHAIN_ANNOTATION) {
                certs.extend(pem_certificates(chain, CHAIN_ANNOTATION)?);
            }
            serde_json::json!({"x509CertificateChain": {"certificates":
                certs.into_iter().map(|c| serde_json::json!({"rawBytes": c})).collect::<Vec<_>>()}})
        }
        None => serde_json::json!({"publicKey": {"hint": ""}}),
    };
    material["tlogEntries"] = serde_json::json!([{
        "logIndex": rb.payload.log_index.to_string(),
        "logId": {"keyId": b64.encode(&log_id)},
        "kindVersion": {"kind": head.kind, "version": head.api_version},
        "integratedTime": rb.payload.integrated_time.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": rb.signed_entry_timestamp},
        "canonicalizedBody": rb.payload.body,
    }]);
    Ok(Some(material))
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

    fn payload(kind: &str, digest: &str) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/demo/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"{kind}"}},"optional":null}}"#
        )
        .into_bytes()
    }

    #[test]
    fn tag_schema() {
        assert_eq!(
            signature_tag(D).unwrap(),
            "sha256-5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270.sig"
        );
        assert!(signature_tag("latest").is_err());
    }

    #[test]
    fn parses_cosign_payload() {
        let p = parse_payload(&payload(SIGNATURE_TYPE, D)).unwrap();
        assert_eq!(p.manifest_digest, D);
        assert_eq!(p.docker_reference, "127.0.0.1:5000/demo/app");
    }

    #[test]
    fn refuses_bad_payloads() {
        assert!(matches!(
            parse_payload(&payload("atomic container signature", D)),
            Err(CosignError::WrongType(_))
        ));
        assert!(matches!(
            parse_payload(&payload(SIGNATURE_TYPE, "sha256:abc")),
            Err(CosignError::BadDigest(_))
        ));
        assert!(matches!(
            parse_payload(b"{"),
            Err(CosignError::PayloadJson(_))
        ));
        assert!(matches!(
            parse_payload(b""),
            Err(CosignError::PayloadJson(_))
        ));
        assert!(matches!(
            parse_payload(&vec![b' '; MAX_PAYLOAD_BYTES + 1]),
            Err(CosignError::PayloadTooLarge(_))
        ));
        // duplicate keys: a second digest must not silently win
        let dup = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"x"}},"image":{{"docker-manifest-digest":"{D}","docker-manifest-digest":"{D}"}},"type":"{SIGNATURE_TYPE}"}}}}"#
        );
        assert!(
            matches!(parse_payload(dup.as_bytes()), Err(CosignError::PayloadJson(m)) if m.contains("duplicate"))
        );
        // unknown critical fields are refused: they could carry claims we ignore
        let extra = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"x"}},"image":{{"docker-manifest-digest":"{D}"}},"type":"{SIGNATURE_TYPE}","extra":1}}}}"#
        );
        assert!(parse_payload(extra.as_bytes()).is_err());
        // deeply nested JSON does not overflow the stack
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_payload(&deep.as_bytes()[..MAX_PAYLOAD_BYTES.min(deep.len())]).is_err());
    }

    #[test]
    fn signature_encoding() {
        assert_eq!(decode_signature("AQID").unwrap(), vec![1, 2, 3]);
        assert!(decode_signature("").is_err());
        assert!(decode_signature("!!!").is_err());
        assert!(decode_signature(&"A".repeat(MAX_SIGNATURE_B64 + 4)).is_err());
    }
}
