//! `portcullis policy publish`: pack a policy and every file it refers to
//! into one artifact, sign its manifest digest the way `cosign sign --key`
//! does, push both, and/or write them as an OCI image layout tar.
//!
//! Each referenced file (a signer's `key` or `ca`, a rule's `trust_root`
//! file, or a trust root the rule names, taken from the publisher's state
//! directory) is shipped as `files/<hex12>-<name>` and the reference in
//! `policy.toml` rewritten to it, so the policy resolves every file inside
//! its own release on the node.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::cache::StateDir;
use crate::formats::policy_artifact::{self as art, File, Layout, Metadata};
use crate::policy::references::{file_references, rewrite, RefKind};

use super::registry::{block_on, Registry, RegistryError};

/// Largest referenced file packed, in bytes.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest private key file read, in bytes.
pub const MAX_PRIVATE_KEY_BYTES: u64 = 16 * 1024;

/// Errors publishing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The policy is unusable.
    #[error("{0}")]
    Policy(String),
    /// A referenced file could not be read.
    #[error("policy refers to {path} ({what}), which cannot be read: {why}; fix the path or create the file")]
    Reference {
        /// The file.
        path: PathBuf,
        /// Which reference.
        what: String,
        /// Why.
        why: String,
    },
    /// The signing key is unusable.
    #[error("signing key {path}: {why}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The artifact could not be built.
    #[error(transparent)]
    Artifact(#[from] art::ArtifactError),
    /// The registry failed.
    #[error("{0}; nothing was published at the reference (push again)")]
    Registry(#[from] RegistryError),
    /// The layout file could not be written.
    #[error("cannot write {path}: {source}")]
    Out {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither a reference nor an output file.
    #[error("nothing to do: give --ref REGISTRY/REPO:TAG, --out FILE, or both")]
    NoTarget,
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The policy file.
    pub policy: PathBuf,
    /// Where to push (`registry/repository:tag`).
    pub reference: Option<String>,
    /// The serial (monotonically increasing per reference).
    pub serial: u64,
    /// How long the artifact stays acceptable.
    pub expires_in: std::time::Duration,
    /// An unencrypted PKCS#8 PEM ECDSA P-256 private key; `None`: unsigned
    /// (sign the printed digest with `cosign sign`).
    pub key: Option<PathBuf>,
    /// Write an OCI image layout tar here too.
    pub out: Option<PathBuf>,
    /// HTTP instead of HTTPS (loopback registries).
    pub plain_http: bool,
    /// The publisher's state directory (for trust roots named in the policy).
    pub state: StateDir,
}

/// One file packed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Packed {
    /// Its path in the artifact.
    pub path: String,
    /// Where it came from.
    pub from: String,
}

/// What `policy publish` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    /// The reference pushed, if any.
    pub reference: Option<String>,
    /// The artifact manifest digest (what a signature covers).
    pub digest: String,
    /// The annotations.
    pub metadata: Metadata,
    /// The files packed besides policy.toml.
    pub files: Vec<Packed>,
    /// The signing key's public key fingerprint, when signed here.
    pub signed_by: Option<String>,
    /// The signature tag (`sha256-<hex>.sig`).
    pub signature_tag: String,
    /// The layout file written, if any.
    pub out: Option<PathBuf>,
}

/// The built artifact, before any push.
pub struct Built {
    /// Its blobs: empty config, layer.
    pub layer: Vec<u8>,
    /// Its manifest.
    pub manifest: Vec<u8>,
    /// Metadata.
    pub meta: Metadata,
    /// Files packed besides policy.toml.
    pub files: Vec<Packed>,
}

/// Pack the policy and its files.
pub fn build(
    policy: &Path,
    state: &StateDir,
    serial: u64,
    expires_in: std::time::Duration,
    now: jiff::Timestamp,
) -> Result<Built, PublishError> {
    let loaded =
        crate::policy::Policy::load(policy).map_err(|e| PublishError::Policy(e.to_string()))?;
    let real = std::fs::canonicalize(policy)
        .map_err(|e| PublishError::Policy(format!("cannot resolve {}: {e}", policy.display())))?;
    let text = String::from_utf8(
        crate::base::fsio::read_bounded(&real, crate::policy::MAX_POLICY_BYTES)
            .ok()
            .flatten()
            .unwrap_or_default(),
    )
    .map_err(|_| PublishError::Policy("the policy is not UTF-8".into()))?;
    if crate::digest::sha256_prefixed(text.as_bytes()) != loaded.digest {
        return Err(PublishError::Policy(format!(
            "{} changed while it was read; publish again",
            policy.display()
        )));
    }
    let base = real.parent().unwrap_or(Path::new("/"));
    let refs = file_references(&text).map_err(PublishError::Policy)?;
    let mut files: Vec<File> = Vec::new();
    let mut packed = Vec::new();
    let mut new_values = Vec::new();
    for r in &refs {
        let (src, name) = match r.kind {
            RefKind::TrustRootName => {
                let n = crate::state::trust_names::RootName::parse(&r.value).map_err(|e| {
                    PublishError::Policy(format!("trust_root \"{}\": {e}", r.value))
                })?;
                (
                    crate::state::trust_names::root_path(state, &n),
                    format!("{}-trusted_root.json", n.as_str()),
                )
            }
            _ => {
                let p = Path::new(&r.value);
                let src = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    base.join(p)
                };
                let name = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "file".into());
                (src, name)
            }
        };
        let what = match r.kind {
            RefKind::Key => "key",
            RefKind::Ca => "ca",
            RefKind::TrustRootFile | RefKind::TrustRootName => "trust_root",
        };
        let bytes = match crate::base::fsio::read_bounded(&src, MAX_FILE_BYTES) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(PublishError::Reference {
                    path: src,
                    what: what.into(),
                    why: format!("over {MAX_FILE_BYTES} bytes"),
                })
            }
            Err(e) => {
                return Err(PublishError::Reference {
                    path: src,
                    what: what.into(),
                    why: e.to_string(),
                })
            }
        };
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .trim_start_matches('.')
            .chars()
            .take(100)
            .collect();
        let hex = crate::digest::sha256_hex(&bytes);
        let path = format!("{}/{}-{clean}", art::FILES_DIR, &hex[..12]);
        if !files.iter().any(|f| f.path == path) {
            files.push(File {
                path: path.clone(),
                bytes,
            });
            packed.push(Packed {
                path: path.clone(),
                from: src.display().to_string(),
            });
        }
        new_values.push(path);
    }
    let out_text = rewrite(&text, &refs, &new_values);
    // The rewritten policy must still be valid, and name only packed files.
    let probe = Path::new("/portcullis-policy-artifact").join(art::POLICY_FILE);
    crate::policy::Policy::parse(&out_text, &probe)
        .map_err(|e| PublishError::Policy(format!("the packed policy is invalid: {e}")))?;
    let meta = Metadata {
        serial,
        expires: now
            .checked_add(
                jiff::SignedDuration::try_from(expires_in).unwrap_or(jiff::SignedDuration::MAX),
            )
            .map_err(|e| PublishError::Policy(format!("expiry out of range: {e}")))?,
        created: now,
        policy_digest: crate::digest::sha256_prefixed(out_text.as_bytes()),
    };
    files.push(File {
        path: art::POLICY_FILE.into(),
        bytes: out_text.into_bytes(),
    });
    let layer = art::pack(&files)?;
    let manifest = art::manifest(&layer, &meta);
    // Annotations are written with whole seconds; report what was written.
    let meta = art::parse_manifest(&manifest)?.meta;
    Ok(Built {
        layer,
        manifest,
        meta,
        files: packed,
    })
}

/// Read an unencrypted PKCS#8 PEM private key (ECDSA P-256).
pub fn load_private_key(path: &Path) -> Result<sigstore_verify::crypto::KeyPair, PublishError> {
    let bad = |why: String| PublishError::Key {
        path: path.to_path_buf(),
        why,
    };
    let bytes = crate::base::fsio::read_bounded(path, MAX_PRIVATE_KEY_BYTES)
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("too large for a private key".into()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not PEM text".into()))?;
    if text.contains("ENCRYPTED") {
        return Err(bad("encrypted keys (cosign's own format included) are not read here; publish with --no-sign and sign the printed digest with `cosign sign --key KEY REF@DIGEST`".into()));
    }
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let body = text
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(b, _)| b)
        .ok_or_else(|| bad(format!("no `{BEGIN}` block: give an unencrypted PKCS#8 key (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out KEY.pem`)")))?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.split_whitespace().collect::<String>())
        .map_err(|e| bad(format!("PEM body is not base64: {e}")))?;
    sigstore_verify::crypto::KeyPair::from_pkcs8_der(&der)
        .map_err(|e| bad(format!("not an ECDSA P-256 PKCS#8 key: {e}")))
}

/// A `.sig` image: its config, payload and manifest.
pub type SignatureImage = (Vec<u8>, Vec<u8>, Vec<u8>);

/// A `.sig` image for `digest`: (config, payload, manifest).
pub fn sign(
    key: &sigstore_verify::crypto::KeyPair,
    repository: &str,
    digest: &str,
) -> Result<SignatureImage, PublishError> {
    let payload = art::simple_signing_payload(repository, digest);
    let sig = key.sign(&payload).map_err(|e| PublishError::Key {
        path: PathBuf::new(),
        why: format!("signing failed: {e}"),
    })?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig.as_bytes());
    let config = art::signature_config(&payload);
    let manifest = art::signature_manifest(&config, &payload, &b64);
    Ok((config, payload, manifest))
}

/// Publish: build, sign, push and/or write the layout.
pub fn publish(o: &PublishOptions) -> Result<PublishReport, PublishError> {
    if o.reference.is_none() && o.out.is_none() {
        return Err(PublishError::NoTarget);
    }
    let key = o.key.as_deref().map(load_private_key).transpose()?;
    let built = build(
        &o.policy,
        &o.state,
        o.serial,
        o.expires_in,
        jiff::Timestamp::now(),
    )?;
    let digest = crate::digest::sha256_prefixed(&built.manifest);
    let sig_tag =
        crate::cosign::signature_tag(&digest).map_err(|e| PublishError::Policy(e.to_string()))?;
    let registry = o
        .reference
        .as_deref()
        .map(|r| Registry::new(r, o.plain_http))
        .transpose()?;
    let repository = registry
        .as_ref()
        .map(Registry::repository)
        .unwrap_or_else(|| "portcullis-policy".into());
    let signed = key
        .as_ref()
        .map(|k| sign(k, &repository, &digest))
        .transpose()?;
    let signed_by = key
        .as_ref()
        .and_then(|k| k.public_key_der().ok())
        .map(|d| crate::digest::sha256_prefixed(d.as_bytes()));
    if let Some(reg) = &registry {
        let name = reg.reference.registry().to_string();
        block_on(&name, async {
            reg.push(&[art::EMPTY_CONFIG, &built.layer], &built.manifest, None)
                .await?;
            if let Some((config, payload, manifest)) = &signed {
                reg.push(&[config, payload], manifest, Some(&sig_tag))
                    .await?;
            }
            Ok(())
        })?;
    }
    if let Some(out) = &o.out {
        let mut l = Layout::default();
        l.blob(art::EMPTY_CONFIG);
        l.blob(&built.layer);
        let tag = registry
            .as_ref()
            .and_then(|r| r.reference.tag().map(String::from))
            .unwrap_or_else(|| format!("serial-{}", o.serial));
        l.manifest(&built.manifest, &tag);
        if let Some((config, payload, manifest)) = &signed {
            l.blob(config);
            l.blob(payload);
            l.manifest(manifest, &sig_tag);
        }
        let tar = l.to_tar()?;
        crate::base::fsio::write_atomic(out, &tar, crate::base::fsio::Durability::Durable)
            .map_err(|source| PublishError::Out {
                path: out.clone(),
                source,
            })?;
    }
    Ok(PublishReport {
        reference: registry.as_ref().map(|r| r.reference.whole()),
        digest,
        metadata: built.meta,
        files: built.files,
        signed_by,
        signature_tag: sig_tag,
        out: o.out.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_every_reference_and_rewrites_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("keys")).unwrap();
        std::fs::write(d.join("keys/release.pub"), "K1").unwrap();
        std::fs::write(d.join("ca.pem"), "CA").unwrap();
        let state = StateDir::new(d.join("state"));
        let named = crate::state::trust_names::root_path(
            &state,
            &crate::state::trust_names::RootName::parse("staging").unwrap(),
        );
        std::fs::create_dir_all(named.parent().unwrap()).unwrap();
        std::fs::write(&named, "{}").unwrap();
        let policy = d.join("policy.toml");
        std::fs::write(
            &policy,
            format!(
                "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"a\"\nimages = [\"r.io/**\"]\n[[rule.signer]]\nkey = \"keys/release.pub\"\n[[rule]]\nname = \"b\"\nimages = [\"q.io/**\"]\ntrust_root = \"staging\"\n[[rule.signer]]\nissuer = \"https://i\"\nsubject = \"s\"\nca = \"{}\"\n",
                d.join("ca.pem").display()
            ),
        )
        .unwrap();
        let now: jiff::Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        let b = build(
            &policy,
            &state,
            3,
            std::time::Duration::from_secs(86400),
            now,
        )
        .unwrap();
        assert_eq!(b.meta.serial, 3);
        assert_eq!(b.meta.expires.to_string(), "2026-01-02T00:00:00Z");
        let files = art::unpack(&b.layer).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("-release.pub")));
        assert!(names
            .iter()
            .any(|n| n.ends_with("-staging-trusted_root.json")));
        let text = String::from_utf8(
            files
                .iter()
                .find(|f| f.path == "policy.toml")
                .unwrap()
                .bytes
                .clone(),
        )
        .unwrap();
        assert_eq!(
            crate::digest::sha256_prefixed(text.as_bytes()),
            b.meta.policy_digest
        );
        assert!(
            !text.contains("keys/release.pub") && !text.contains("\"staging\""),
            "{text}"
        );
        // Same input, same time: the same digest.
        let again = build(
            &policy,
            &state,
            3,
            std::time::Duration::from_secs(86400),
            now,
        )
        .unwrap();
        assert_eq!(again.manifest, b.manifest);
        // A missing key is named.
        std::fs::remove_file(d.join("keys/release.pub")).unwrap();
        let err = build(&policy, &state, 3, std::time::Duration::from_secs(60), now)
            .err()
            .unwrap();
        assert!(err.to_string().contains("release.pub"), "{err}");
    }

    #[test]
    fn private_key_forms() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("k.pem");
        std::fs::write(&k, "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nxx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n").unwrap();
        assert!(load_private_key(&k)
            .err()
            .unwrap()
            .to_string()
            .contains("--no-sign"));
        std::fs::write(
            &k,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(load_private_key(&k).is_err());
        std::fs::write(&k, "nothing").unwrap();
        assert!(load_private_key(&k)
            .err()
            .unwrap()
            .to_string()
            .contains("PKCS#8"));
    }
}
