//! Sigstore bundle verification: does a Sigstore bundle vouch for this
//! artifact, signed by the expected identity or key?
//!
//! This module owns loading the trust material (`trusted_root.json`, from a
//! file the operator names or the state directory's cached copy; never from
//! the network), reading Sigstore bundles, and reporting what a successful
//! verification established. Every cryptographic, X.509 and transparency-log
//! check is `sigstore-verify`'s (the sigstore-rust family); nothing of the
//! kind is written here. What this module adds is policy only:
//!
//! - inputs are bounded in size and parsed without panicking;
//! - a bundle must declare a media type the crate knows (v0.1, v0.2, v0.3):
//!   unknown versions, and bundles with no `mediaType` at all, are refused
//!   (the crate would read a missing media type as v0.1);
//! - a trusted root must declare a known trusted-root media type;
//! - transparency-log verification, certificate-chain and SCT checks are
//!   always on (the crate's defaults); no `skip_*` knob is reachable;
//! - every transparency-log entry must name a log listed in the trusted
//!   root, so the log ID reported in a verdict is one the operator trusts.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{Bundle, KindVersion, MediaType, Sha256Hash};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

/// Largest `trusted_root.json` accepted, in bytes.
pub const MAX_TRUST_ROOT_BYTES: u64 = 1024 * 1024;
/// Largest bundle accepted, in bytes.
pub const MAX_BUNDLE_BYTES: u64 = 8 * 1024 * 1024;
pub use crate::state::trust_names::CACHED_TRUST_ROOT;

pub use crate::base::fsio::read_bounded;
pub(crate) use crate::base::text::{hex, one_line};
/// Trusted-root media types this version reads (protobuf-specs: the v0.2
/// name, and the v0.1 name clients must still accept).
pub const TRUST_ROOT_MEDIA_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "application/vnd.dev.sigstore.trustedroot.v0.2+json",
];

/// Errors loading trust material or verifying a bundle. Every message is one
/// line and says what failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// No trusted root was named and none is cached in the state directory.
    #[error("no trusted root cached at {path}; pass --trusted-root FILE (trust material is never fetched)")]
    NoCachedTrustRoot {
        /// Where the cached root was looked for.
        path: PathBuf,
    },
    /// The trusted root file could not be read.
    #[error("cannot read trusted root {path}: {source}")]
    TrustRootRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The trusted root file is larger than [`MAX_TRUST_ROOT_BYTES`].
    #[error("trusted root {path} is over the {MAX_TRUST_ROOT_BYTES}-byte limit")]
    TrustRootTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The trusted root was read but cannot be used.
    #[error("trusted root {path} is not usable: {why}")]
    TrustRootInvalid {
        /// The file (or a label for in-memory roots).
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The bundle file could not be read.
    #[error("cannot read bundle {path}: {source}")]
    BundleRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bundle is larger than [`MAX_BUNDLE_BYTES`].
    #[error("bundle is over the {MAX_BUNDLE_BYTES}-byte limit")]
    BundleTooLarge,
    /// The bundle is not a well-formed Sigstore bundle.
    #[error("bundle is malformed: {0}")]
    BundleMalformed(String),
    /// The bundle declares no media type, or one this version does not know.
    #[error("bundle media type {0} is not a known Sigstore bundle version (0.1, 0.2 or 0.3)")]
    BundleVersion(String),
    /// The expected signer's key file could not be read.
    #[error("cannot read key {path}: {source}")]
    KeyRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The expected signer's key file is not a usable PEM public key.
    #[error("key {path} is not a usable PEM public key: {why}")]
    KeyInvalid {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The artifact digest is not `sha256:` and 64 lowercase hex characters.
    #[error(transparent)]
    Digest(#[from] crate::digest::DigestError),
    /// A transparency-log entry names a log the trusted root does not list.
    #[error(
        "bundle's transparency-log entry names log {log_id}, which the trusted root does not list"
    )]
    UntrustedLog {
        /// The log ID (hex) the entry names.
        log_id: String,
    },
    /// `sigstore-verify` rejected the bundle.
    #[error("bundle does not verify: {}", one_line(&.0.to_string()))]
    Rejected(#[source] sigstore_verify::Error),
    /// The bundle verified, but its certificate is not the policy's signer.
    #[error("{0}")]
    NotTheSigner(String),
    /// The policy asks for something this version cannot check.
    #[error("{0}")]
    Unsupported(String),
    /// Refused once the timestamps of unknown authorities were set aside.
    #[error("{source} (after ignoring {ignored} RFC 3161 timestamp(s) from a timestamp authority the trust root does not list: add that authority to the trust root, or sign with a transparency-log entry)")]
    RejectedWithoutUnknownTsa {
        /// How many timestamps were set aside.
        ignored: usize,
        /// Why the rest did not verify.
        source: sigstore_verify::Error,
    },
}

/// Trust material for bundle verification, parsed and checked once.
pub struct TrustRoot {
    path: PathBuf,
    root: TrustedRoot,
    verifier: Verifier,
}

impl std::fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustRoot")
            .field("path", &self.path)
            .field("tlogs", &self.root.tlogs.len())
            .field(
                "certificate_authorities",
                &self.root.certificate_authorities.len(),
            )
            .field("ctlogs", &self.root.ctlogs.len())
            .field(
                "timestamp_authorities",
                &self.root.timestamp_authorities.len(),
            )
            .finish()
    }
}

impl TrustRoot {
    /// Load a `trusted_root.json` file.
    pub fn load(path: &Path) -> Result<Self, BundleError> {
        let read = |source| BundleError::TrustRootRead {
            path: path.to_path_buf(),
            source,
        };
        let text = read_bounded(path, MAX_TRUST_ROOT_BYTES)
            .map_err(read)?
            .ok_or_else(|| BundleError::TrustRootTooLarge {
                path: path.to_path_buf(),
            })?;
        Self::from_json(&text, path)
    }

    /// Load the trusted root cached in the state directory
    /// ([`CACHED_TRUST_ROOT`]); its absence is [`BundleError::NoCachedTrustRoot`].
    pub fn load_cached(state_dir: &Path) -> Result<Self, BundleError> {
        let path = state_dir.join(CACHED_TRUST_ROOT);
        match Self::load(&path) {
            Err(BundleError::TrustRootRead { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(BundleError::NoCachedTrustRoot { path })
            }
            other => other,
        }
    }

    /// Parse a trusted root; `path` names it in errors.
    pub fn from_json(json: &[u8], path: &Path) -> Result<Self, BundleError> {
        let invalid = |why: String| BundleError::TrustRootInvalid {
            path: path.to_path_buf(),
            why: one_line(&why),
        };
        let text = std::str::from_utf8(json).map_err(|_| invalid("not UTF-8 text".into()))?;
        let root = TrustedRoot::from_json(text).map_err(|e| invalid(e.to_string()))?;
        if !TRUST_ROOT_MEDIA_TYPES.contains(&root.media_type.as_str()) {
            return Err(invalid(format!(
                "media type {:?} is not a known trusted root version",
                root.media_type
            )));
        }
        let verifier = Verifier::new(&root).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            root,
            verifier,
        })
    }

    /// The parsed trusted root.
    pub fn trusted_root(&self) -> &TrustedRoot {
        &self.root
    }

    /// This root with its certificate authorities replaced by the CA
    /// certificates of a PEM file (bring-your-own PKI): certificates must
    /// then chain to that CA instead of Fulcio; logs and timestamp
    /// authorities stay the root's.
    pub fn with_private_ca(&self, pem_path: &Path) -> Result<TrustRoot, BundleError> {
        let invalid = |why: String| BundleError::TrustRootInvalid {
            path: pem_path.to_path_buf(),
            why,
        };
        let text = read_bounded(pem_path, MAX_TRUST_ROOT_BYTES)
            .map_err(|source| BundleError::TrustRootRead {
                path: pem_path.to_path_buf(),
                source,
            })?
            .ok_or_else(|| invalid("too large for a CA bundle".into()))?;
        let text = String::from_utf8(text).map_err(|_| invalid("not PEM text".into()))?;
        let certs =
            crate::cosign::pem_certificates(&text, "ca").map_err(|e| invalid(e.to_string()))?;
        let first = sigstore_verify::types::DerCertificate::from_base64(&certs[0])
            .map_err(|e| invalid(e.to_string()))?;
        let info = sigstore_verify::crypto::x509::parse_certificate_info(&first)
            .map_err(|e| invalid(format!("CA certificate: {e}")))?;
        let mut v = serde_json::to_value(&self.root).map_err(|e| invalid(e.to_string()))?;
        v["certificateAuthorities"] = serde_json::json!([{
            "subject": {"organization": "private", "commonName": "private"},
            "uri": format!("file://{}", pem_path.display()),
            "certChain": {"certificates": certs.iter().map(|c| serde_json::json!({"rawBytes": c})).collect::<Vec<_>>()},
            "validFor": {"start": info.not_before.to_string()},
        }]);
        let json = serde_json::to_vec(&v).map_err(|e| invalid(e.to_string()))?;
        TrustRoot::from_json(&json, pem_path)
    }

    /// The file the root was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lists_log(&self, key_id: &[u8]) -> bool {
        self.root
            .tlogs
            .iter()
            .any(|t| t.log_id.key_id.as_bytes() == key_id)
    }
}

/// Read a bundle file, refusing one over [`MAX_BUNDLE_BYTES`].
pub fn read_bundle_file(path: &Path) -> Result<Vec<u8>, BundleError> {
    read_bounded(path, MAX_BUNDLE_BYTES)
        .map_err(|source| BundleError::BundleRead {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or(BundleError::BundleTooLarge)
}

/// What was signed.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// The artifact's digest, `sha256:` and 64 lowercase hex characters.
    /// Signature schemes that sign the whole message (Ed25519 message
    /// signatures) cannot be checked from a digest and fail.
    Digest(&'a str),
}

/// Who must have signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// A keyless (Fulcio certificate) signature by this identity.
    Identity {
        /// The certificate's subject alternative name, matched exactly.
        subject: String,
        /// The certificate's OIDC issuer, matched exactly.
        issuer: String,
    },
    /// A managed-key signature by this PEM public key.
    Key {
        /// The PEM `PUBLIC KEY` file.
        pem_path: PathBuf,
    },
    /// A policy's keyless signer: issuer and subject matchers (exact or
    /// anchored regular expressions) and Fulcio extension claims.
    Keyless(Box<crate::verify::signer::Keyless>),
}

/// Where a verified signing time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// A Rekor v1 entry's `integratedTime`, authenticated by its signed entry timestamp.
    RekorIntegratedTime,
    /// An RFC 3161 timestamp from a timestamp authority in the trusted root.
    Rfc3161,
}

impl TimeSource {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::RekorIntegratedTime => "rekor_integrated_time",
            TimeSource::Rfc3161 => "rfc3161",
        }
    }
}

/// One authenticated signing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VerifiedTime {
    /// Its source.
    pub source: TimeSource,
    /// The time.
    pub time: jiff::Timestamp,
}

/// One verified transparency-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// The log's ID (hex SHA-256 of its key), listed in the trusted root.
    pub log_id: String,
    /// The entry's index in that log.
    pub log_index: u64,
    /// The entry kind and version, e.g. `hashedrekord/0.0.1`.
    pub kind: String,
}

/// How the signer was identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignerInfo {
    /// A Fulcio certificate.
    Certificate {
        /// Its subject alternative name (the identity).
        subject: String,
        /// Its OIDC issuer.
        issuer: String,
    },
    /// A managed public key.
    Key {
        /// `sha256:` of the key's DER SubjectPublicKeyInfo.
        fingerprint: String,
    },
}

/// What a successful verification established: the fields a verdict record
/// needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleVerified {
    /// The bundle's media type.
    pub media_type: String,
    /// Who signed.
    pub signer: SignerInfo,
    /// The verified transparency-log entries (at least one).
    pub log_entries: Vec<LogEntry>,
    /// Every authenticated signing time, by source.
    pub timestamps: Vec<VerifiedTime>,
    /// The earliest authenticated signing time; none only for a managed-key
    /// bundle whose log entries carry no authenticated time.
    pub signing_time: Option<jiff::Timestamp>,
    /// RFC 3161 timestamps ignored because no timestamp authority of the
    /// trust root signed them ([`crate::verify::tsa`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub ignored_timestamps: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Verify `bundle_json` for `artifact`, signed as `expectation` says, against
/// `root`.
///
/// A bundle refused while it carries RFC 3161 timestamps from a timestamp
/// authority the trust root does not list is verified once more without
/// them ([`crate::verify::tsa`]): it passes only if its other time sources
/// verify on their own, and the result says how many were ignored.
pub fn verify_bundle(
    bundle_json: &[u8],
    artifact: Artifact<'_>,
    expectation: &Expectation,
    root: &TrustRoot,
) -> Result<BundleVerified, BundleError> {
    let bundle = parse_bundle(bundle_json)?;
    match verify_parsed(&bundle, artifact, expectation, root) {
        Err(BundleError::Rejected(first)) => {
            match crate::verify::tsa::without_unknown_authorities(&bundle, &root.root) {
                None => Err(BundleError::Rejected(first)),
                Some((stripped, ignored)) => {
                    match verify_parsed(&stripped, artifact, expectation, root) {
                        Ok(mut v) => {
                            v.ignored_timestamps = ignored;
                            Ok(v)
                        }
                        // Nothing else to date the signature: say which timestamps were set aside.
                        Err(BundleError::Rejected(e))
                            if matches!(
                                e,
                                sigstore_verify::Error::Timestamp(
                                    sigstore_verify::TimestampError::NoVerifiedTimestamp(_)
                                )
                            ) =>
                        {
                            Err(BundleError::RejectedWithoutUnknownTsa { ignored, source: e })
                        }
                        Err(e) => Err(e),
                    }
                }
            }
        }
        other => other,
    }
}

fn verify_parsed(
    bundle: &Bundle,
    artifact: Artifact<'_>,
    expectation: &Expectation,
    root: &TrustRoot,
) -> Result<BundleVerified, BundleError> {
    let digest;
    let artifact: sigstore_verify::types::Artifact<'_> = match artifact {
        Artifact::Bytes(b) => b.into(),
        Artifact::Digest(d) => {
            let hex = crate::digest::sha256_hex_of(d)?;
            digest = Sha256Hash::from_hex(hex)
                .map_err(|_| crate::digest::DigestError::Malformed(d.to_string()))?;
            digest.into()
        }
    };
    let (result, signer) = match expectation {
        Expectation::Identity { subject, issuer } => {
            let policy = VerificationPolicy::new(subject.as_str(), issuer.as_str());
            let r = root
                .verifier
                .verify(artifact, bundle, &policy)
                .map_err(BundleError::Rejected)?;
            // The crate has matched both claims exactly; report what it read.
            let signer = SignerInfo::Certificate {
                subject: r
                    .identity()
                    .map_or_else(|| subject.clone(), |i| i.as_str().to_string()),
                issuer: r.issuer().unwrap_or(issuer).to_string(),
            };
            (r, signer)
        }
        Expectation::Keyless(k) => {
            // The crate verifies chain, SCT and log; we authorize the signer.
            // A private CA (bring-your-own PKI) replaces the root's CAs and
            // has no certificate-transparency log, so SCTs are not required.
            let private;
            let (verifier, policy) = match &k.ca {
                Some(ca) => {
                    private = root.with_private_ca(ca)?;
                    (
                        &private.verifier,
                        VerificationPolicy::any_identity().skip_sct(),
                    )
                }
                None => (&root.verifier, VerificationPolicy::any_identity()),
            };
            let r = verifier
                .verify(artifact, bundle, &policy)
                .map_err(BundleError::Rejected)?;
            let subject = r
                .identity()
                .map(|i| i.as_str().to_string())
                .ok_or_else(|| BundleError::NotTheSigner("the bundle carries no certificate identity (a key signature, not a keyless one)".into()))?;
            let issuer = r.issuer().map(str::to_string).ok_or_else(|| {
                BundleError::NotTheSigner(format!("certificate of {subject} names no OIDC issuer"))
            })?;
            if !k.issuer.matches(&issuer) {
                return Err(BundleError::NotTheSigner(format!(
                    "certificate issuer {issuer:?} does not match the signer's issuer {}",
                    k.issuer
                )));
            }
            if !k.subject.matches(&subject) {
                return Err(BundleError::NotTheSigner(format!(
                    "certificate subject {subject:?} does not match the signer's subject {}",
                    k.subject
                )));
            }
            if !k.extensions.is_empty() {
                let cert = r.certificate().ok_or_else(|| {
                    BundleError::NotTheSigner("no certificate to read extensions from".into())
                })?;
                for (name, want) in &k.extensions {
                    let got = fulcio_claim(&cert.ci_claims, name);
                    if got != Some(want.as_str()) {
                        return Err(BundleError::NotTheSigner(format!(
                            "certificate extension {name} is {}, the signer requires {want:?}",
                            got.map(|g| format!("{g:?}"))
                                .unwrap_or_else(|| "absent".into())
                        )));
                    }
                }
            }
            (r, SignerInfo::Certificate { subject, issuer })
        }
        Expectation::Key { pem_path } => {
            let key = crate::formats::keys::load_der(pem_path).map_err(|e| match e {
                crate::formats::keys::KeyError::KeyRead { path, source } => {
                    BundleError::KeyRead { path, source }
                }
                crate::formats::keys::KeyError::KeyInvalid { path, why } => {
                    BundleError::KeyInvalid { path, why }
                }
            })?;
            let signer = SignerInfo::Key {
                fingerprint: crate::digest::sha256_prefixed(key.as_bytes()),
            };
            let policy = PublicKeyVerificationPolicy::new(key);
            let r = root
                .verifier
                .verify(artifact, bundle, &policy)
                .map_err(BundleError::Rejected)?;
            (r, signer)
        }
    };
    // Our policy on top of the crate's verdict: a log the operator does not
    // trust is never reported as the log of record.
    let mut log_entries = Vec::new();
    for e in &bundle.verification_material.tlog_entries {
        let key_id = e.log_id.key_id.as_bytes();
        let log_id = hex(key_id);
        if !root.lists_log(key_id) {
            return Err(BundleError::UntrustedLog { log_id });
        }
        log_entries.push(LogEntry {
            log_id,
            log_index: e.log_index.get(),
            kind: format!("{}/{}", e.kind_version.kind(), e.kind_version.version()),
        });
    }
    let timestamps = attribute_times(bundle, result.verified_timestamps());
    let signing_time = timestamps.iter().map(|t| t.time).min();
    Ok(BundleVerified {
        media_type: bundle.media_type().as_str().to_string(),
        signer,
        log_entries,
        timestamps,
        signing_time,
        ignored_timestamps: 0,
    })
}

/// A Fulcio extension claim by its policy name (see
/// [`crate::verify::signer::FULCIO_EXTENSIONS`]).
pub fn fulcio_claim<'c>(
    c: &'c sigstore_verify::crypto::x509::FulcioCiClaims,
    name: &str,
) -> Option<&'c str> {
    let g = &c.deprecated_github;
    let v = match name {
        "build_signer_uri" => &c.build_signer_uri,
        "build_signer_digest" => &c.build_signer_digest,
        "runner_environment" => &c.runner_environment,
        "source_repository_uri" => &c.source_repository_uri,
        "source_repository_digest" => &c.source_repository_digest,
        "source_repository_ref" => &c.source_repository_ref,
        "source_repository_identifier" => &c.source_repository_identifier,
        "source_repository_owner_uri" => &c.source_repository_owner_uri,
        "source_repository_owner_identifier" => &c.source_repository_owner_identifier,
        "build_config_uri" => &c.build_config_uri,
        "build_config_digest" => &c.build_config_digest,
        "build_trigger" => &c.build_trigger,
        "run_invocation_uri" => &c.run_invocation_uri,
        "source_repository_visibility_at_signing" => &c.source_repository_visibility_at_signing,
        "deployment_environment" => &c.deployment_environment,
        "github_workflow_trigger" => &g.workflow_trigger,
        "github_workflow_sha" => &g.workflow_sha,
        "github_workflow_name" => &g.workflow_name,
        "github_workflow_repository" => &g.workflow_repository,
        "github_workflow_ref" => &g.workflow_ref,
        _ => return None,
    };
    v.as_deref()
}

/// Parse a bundle, refusing unknown versions (and a missing `mediaType`)
/// before the full parse.
fn parse_bundle(json: &[u8]) -> Result<Bundle, BundleError> {
    if json.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleError::BundleTooLarge);
    }
    let text = std::str::from_utf8(json)
        .map_err(|_| BundleError::BundleMalformed("not UTF-8 text".into()))?;
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "mediaType")]
        media_type: Option<serde_json::Value>,
    }
    let head: Head = serde_json::from_str(text)
        .map_err(|e| BundleError::BundleMalformed(one_line(&e.to_string())))?;
    match head.media_type {
        Some(serde_json::Value::String(m)) => {
            if MediaType::from_str(&m).is_err() {
                return Err(BundleError::BundleVersion(format!("{m:?}")));
            }
        }
        Some(other) => return Err(BundleError::BundleVersion(one_line(&other.to_string()))),
        None => return Err(BundleError::BundleVersion("(none)".into())),
    }
    Bundle::from_json(text).map_err(|e| BundleError::BundleMalformed(one_line(&e.to_string())))
}

/// Split the crate's authenticated times by source. Integrated times are
/// those of Rekor v1 entries with a signed entry timestamp (the entries whose
/// time the crate authenticates); every other verified time is an RFC 3161
/// timestamp.
fn attribute_times(bundle: &Bundle, verified: &[jiff::Timestamp]) -> Vec<VerifiedTime> {
    let mut rest: Vec<jiff::Timestamp> = verified.to_vec();
    let mut out = Vec::new();
    for e in &bundle.verification_material.tlog_entries {
        let v1 = matches!(
            e.kind_version,
            KindVersion::HashedRekordV001 | KindVersion::DsseV001 | KindVersion::IntotoV002
        );
        let Some(time) = e
            .integrated_time
            .filter(|_| v1 && e.inclusion_promise.is_some())
        else {
            continue;
        };
        if let Some(i) = rest.iter().position(|t| *t == time) {
            rest.remove(i);
            out.push(VerifiedTime {
                source: TimeSource::RekorIntegratedTime,
                time,
            });
        }
    }
    out.extend(rest.into_iter().map(|time| VerifiedTime {
        source: TimeSource::Rfc3161,
        time,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCTION_ROOT: &str = sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT;

    fn root() -> TrustRoot {
        TrustRoot::from_json(PRODUCTION_ROOT.as_bytes(), Path::new("embedded")).unwrap()
    }

    fn identity() -> Expectation {
        Expectation::Identity {
            subject: "someone@example.com".into(),
            issuer: "https://issuer.example".into(),
        }
    }

    fn verify(json: &[u8]) -> Result<BundleVerified, BundleError> {
        verify_bundle(json, Artifact::Bytes(b"hello"), &identity(), &root())
    }

    /// A structurally plausible v0.3 bundle whose contents are nonsense.
    fn bundle_with_media_type(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType":{m:?},"#))
            .unwrap_or_default();
        format!(
            r#"{{{mt}"verificationMaterial":{{"certificate":{{"rawBytes":"AAAA"}},"tlogEntries":[]}},"messageSignature":{{"messageDigest":{{"algorithm":"SHA2_256","digest":"AAAA"}},"signature":"AAAA"}}}}"#
        )
    }

    #[test]
    fn empty_and_garbage_bundles_are_malformed() {
        for bad in [
            &b""[..],
            b"   ",
            b"{",
            b"[]",
            b"null",
            b"\xff\xfe",
            b"{\"mediaType\":",
        ] {
            let e = verify(bad).unwrap_err();
            assert!(matches!(e, BundleError::BundleMalformed(_)), "{bad:?}: {e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn truncated_bundle_is_an_error() {
        let full = bundle_with_media_type(Some("application/vnd.dev.sigstore.bundle.v0.3+json"));
        for n in 0..full.len() {
            let e = verify(&full.as_bytes()[..n]).unwrap_err();
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        // whole but nonsensical: still refused, not a panic
        assert!(verify(full.as_bytes()).is_err());
    }

    #[test]
    fn unknown_and_missing_versions_are_refused() {
        for mt in [
            Some("application/vnd.dev.sigstore.bundle+json;version=99.9"),
            Some("application/vnd.dev.sigstore.bundle.v0.4+json"),
            Some("application/json"),
            Some(""),
            None,
        ] {
            let e = verify(bundle_with_media_type(mt).as_bytes()).unwrap_err();
            assert!(matches!(e, BundleError::BundleVersion(_)), "{mt:?}: {e}");
        }
        let e = verify(br#"{"mediaType":3}"#).unwrap_err();
        assert!(matches!(e, BundleError::BundleVersion(_)), "{e}");
    }

    #[test]
    fn wrong_media_type_for_content_is_refused() {
        // v0.3 forbids certificate chains; v0.1 requires a signed entry timestamp.
        let chain = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"x509CertificateChain":{"certificates":[{"rawBytes":"AAAA"}]},"tlogEntries":[]},"messageSignature":{"signature":"AAAA"}}"#;
        assert!(verify(chain.as_bytes()).is_err());
        let v01 =
            bundle_with_media_type(Some("application/vnd.dev.sigstore.bundle+json;version=0.1"));
        assert!(matches!(
            verify(v01.as_bytes()).unwrap_err(),
            BundleError::Rejected(_)
        ));
    }

    #[test]
    fn oversized_bundle_is_refused_before_parsing() {
        let big = vec![b' '; MAX_BUNDLE_BYTES as usize + 1];
        assert!(matches!(
            verify(&big).unwrap_err(),
            BundleError::BundleTooLarge
        ));
    }

    #[test]
    fn bad_digest_is_refused() {
        let b = bundle_with_media_type(Some("application/vnd.dev.sigstore.bundle.v0.3+json"));
        for d in ["sha256:abc", "sha512:00", "", "sha256:ZZ"] {
            let e =
                verify_bundle(b.as_bytes(), Artifact::Digest(d), &identity(), &root()).unwrap_err();
            assert!(matches!(e, BundleError::Digest(_)), "{d}: {e}");
        }
    }

    #[test]
    fn garbage_trust_roots_are_refused() {
        let p = Path::new("t.json");
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"\xff",
            b"{}",
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=9"}"#,
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[{"baseUrl":"x","hashAlgorithm":"SHA2_256","publicKey":{"rawBytes":"AAAA","keyDetails":"PKIX_ECDSA_P256_SHA_256"},"logId":{"keyId":"AAAA"}}]}"#,
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","certificateAuthorities":[{"uri":"x","certChain":{"certificates":[{"rawBytes":"AAAA"}]}}]}"#,
        ] {
            let e = TrustRoot::from_json(bad, p).unwrap_err();
            assert!(
                matches!(e, BundleError::TrustRootInvalid { .. }),
                "{bad:?}: {e}"
            );
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        // the real thing, truncated anywhere, is refused
        for n in (0..PRODUCTION_ROOT.len()).step_by(97) {
            assert!(TrustRoot::from_json(&PRODUCTION_ROOT.as_bytes()[..n], p).is_err());
        }
        assert!(TrustRoot::from_json(PRODUCTION_ROOT.as_bytes(), p).is_ok());
    }

    #[test]
    fn trust_root_files_are_bounded_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = TrustRoot::load_cached(dir.path()).unwrap_err();
        assert!(
            matches!(e, BundleError::NoCachedTrustRoot { .. })
                && e.to_string().contains("--trusted-root"),
            "{e}"
        );
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_TRUST_ROOT_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            TrustRoot::load(&big).unwrap_err(),
            BundleError::TrustRootTooLarge { .. }
        ));
        let e = TrustRoot::load(dir.path()).unwrap_err();
        assert!(matches!(e, BundleError::TrustRootRead { .. }), "{e}");
        std::fs::create_dir_all(dir.path().join("trust")).unwrap();
        std::fs::write(dir.path().join(CACHED_TRUST_ROOT), PRODUCTION_ROOT).unwrap();
        assert!(TrustRoot::load_cached(dir.path()).is_ok());
    }

    #[test]
    fn bad_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = bundle_with_media_type(Some("application/vnd.dev.sigstore.bundle.v0.3+json"));
        let key = |name: &str, content: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, content).unwrap();
            Expectation::Key { pem_path: p }
        };
        for exp in [
            key("empty.pub", b""),
            key(
                "garbage.pub",
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            ),
            key("binary.pub", b"\xff\x00"),
            Expectation::Key {
                pem_path: dir.path().join("missing.pub"),
            },
        ] {
            let e = verify_bundle(b.as_bytes(), Artifact::Bytes(b"x"), &exp, &root()).unwrap_err();
            assert!(
                matches!(
                    e,
                    BundleError::KeyRead { .. } | BundleError::KeyInvalid { .. }
                ),
                "{exp:?}: {e}"
            );
        }
    }
}

#[cfg(test)]
mod claim_tests {
    #[test]
    fn every_policy_extension_name_reads_a_claim() {
        let mut c = sigstore_verify::crypto::x509::FulcioCiClaims::default();
        for name in crate::verify::signer::FULCIO_EXTENSIONS {
            assert_eq!(super::fulcio_claim(&c, name), None, "{name}");
        }
        c.build_signer_uri = Some("a".into());
        c.source_repository_ref = Some("refs/tags/v1".into());
        c.deprecated_github.workflow_repository = Some("acme/app".into());
        assert_eq!(super::fulcio_claim(&c, "build_signer_uri"), Some("a"));
        assert_eq!(
            super::fulcio_claim(&c, "source_repository_ref"),
            Some("refs/tags/v1")
        );
        assert_eq!(
            super::fulcio_claim(&c, "github_workflow_repository"),
            Some("acme/app")
        );
        assert_eq!(super::fulcio_claim(&c, "no_such_claim"), None);
    }
}
