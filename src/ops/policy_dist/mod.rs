//! Policy distribution over an OCI registry: `portcullis policy publish`
//! ([`publish`]) and `portcullis policy pull` ([`pull`]).
//!
//! This module owns the node's source file ([`Source`]: which artifact, and
//! the bootstrap signer that must have signed it) and the registry client
//! settings both commands share ([`registry`]). The artifact's bytes are
//! [`crate::formats::policy_artifact`]'s; its signature is checked by the
//! same code as an image's ([`crate::verify::signatures`]); the install is
//! [`crate::state::policy_store`]'s.

use std::path::{Path, PathBuf};

pub mod publish;
pub mod pull;
pub mod registry;

pub use crate::state::policy_store::DEFAULT_SOURCE;
/// Largest source file accepted, in bytes.
pub const MAX_SOURCE_BYTES: u64 = 64 * 1024;

/// Errors reading the source file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// It could not be read.
    #[error(
        "cannot read policy source {path}: {why}; create it (see `man portcullis-policy-pull`)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// It is not a valid source file.
    #[error("policy source {path} is invalid: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    reference: Option<String>,
    #[serde(default)]
    plain_http: bool,
    keep: Option<usize>,
    signer: RawSigner,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    key: Option<String>,
    issuer: Option<String>,
    subject: Option<String>,
    trust_root: Option<String>,
}

/// The node's source file: which artifact to pull and who must have signed it.
///
/// ```toml
/// reference = "registry.example/fleet/policy:prod"
/// keep = 5                      # releases kept on the node
/// [signer]
/// key = "/etc/portcullis/policy-signer.pub"
/// # or a keyless identity, checked against a trust root by name or path:
/// # issuer = "https://token.actions.githubusercontent.com"
/// # subject = "https://github.com/acme/fleet/.github/workflows/policy.yml@refs/heads/main"
/// # trust_root = "public-good"
/// ```
#[derive(Debug, Clone)]
pub struct Source {
    /// The file it was read from.
    pub path: PathBuf,
    /// The artifact's reference (`registry/repository:tag`); `None` when
    /// the node only takes files (`policy pull --from-file`).
    pub reference: Option<String>,
    /// Talk HTTP to the registry (loopback test registries only).
    pub plain_http: bool,
    /// Releases kept.
    pub keep: usize,
    /// The bootstrap signer.
    pub signer: crate::verify::signer::Signer,
    /// The trust root of a keyless signer (name or absolute path).
    pub trust_root: Option<String>,
}

impl Source {
    /// Read and check a source file; a relative key path is relative to it.
    pub fn load(path: &Path) -> Result<Source, SourceError> {
        let bytes = crate::base::fsio::read_bounded(path, MAX_SOURCE_BYTES)
            .map_err(|e| SourceError::Read {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?
            .ok_or_else(|| SourceError::Read {
                path: path.to_path_buf(),
                why: format!("over {MAX_SOURCE_BYTES} bytes"),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| SourceError::Invalid {
            path: path.to_path_buf(),
            why: "not UTF-8".into(),
        })?;
        Self::parse(&text, path)
    }

    /// Check source text; `path` names it and anchors relative key paths.
    pub fn parse(text: &str, path: &Path) -> Result<Source, SourceError> {
        let invalid = |why: String| SourceError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        let raw: RawSource = toml::from_str(text)
            .map_err(|e| invalid(crate::base::text::one_line(&e.to_string())))?;
        if let Some(r) = &raw.reference {
            crate::reference::ImageRef::parse(r)
                .map_err(|e| invalid(format!("`reference` \"{r}\": {e}")))?;
        }
        let base = path.parent().unwrap_or(Path::new("/"));
        let s = raw.signer;
        let signer = match (s.key, s.issuer, s.subject) {
            (Some(k), None, None) if s.trust_root.is_none() => {
                crate::verify::signer::Signer::Key {
                    path: base.join(k),
                    require_tlog: false,
                }
            }
            (None, Some(issuer), Some(subject)) => {
                crate::verify::signer::Signer::Keyless(Box::new(crate::verify::signer::Keyless {
                    issuer: crate::verify::signer::Matcher::Exact(issuer),
                    subject: crate::verify::signer::Matcher::Exact(subject),
                    extensions: Vec::new(),
                    ca: None,
                    require_tlog: true,
                }))
            }
            _ => {
                return Err(invalid(
                    "[signer] needs either `key` (a PEM public key) or `issuer` and `subject` (a keyless identity, with an optional `trust_root`)".into(),
                ))
            }
        };
        if let Some(t) = &s.trust_root {
            if !t.starts_with('/') {
                crate::state::trust_names::RootName::parse(t)
                    .map_err(|e| invalid(format!("`trust_root`: {e}")))?;
            }
        }
        Ok(Source {
            path: path.to_path_buf(),
            reference: raw.reference,
            plain_http: raw.plain_http,
            keep: raw
                .keep
                .unwrap_or(crate::state::policy_store::DEFAULT_KEEP)
                .max(1),
            signer,
            trust_root: s.trust_root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_forms() {
        let p = Path::new("/etc/portcullis/policy-source.toml");
        let s = Source::parse(
            "reference = \"r.io/fleet/policy:prod\"\n[signer]\nkey = \"signer.pub\"\n",
            p,
        )
        .unwrap();
        assert_eq!(s.keep, crate::state::policy_store::DEFAULT_KEEP);
        assert_eq!(
            s.signer,
            crate::verify::signer::Signer::Key {
                path: "/etc/portcullis/signer.pub".into(),
                require_tlog: false
            }
        );
        let k = Source::parse(
            "reference = \"r.io/p:1\"\nkeep = 2\n[signer]\nissuer = \"https://i\"\nsubject = \"s\"\ntrust_root = \"staging\"\n",
            p,
        )
        .unwrap();
        assert!(matches!(
            k.signer,
            crate::verify::signer::Signer::Keyless(_)
        ));
        assert_eq!(k.trust_root.as_deref(), Some("staging"));
        for bad in [
            "reference = \"r.io/p:1\"\n",
            "reference = \"r.io/p:1\"\n[signer]\n",
            "reference = \"r.io/p:1\"\n[signer]\nkey = \"k\"\nissuer = \"i\"\nsubject = \"s\"\n",
            "reference = \"r.io/p:1\"\n[signer]\nkey = \"k\"\ntrust_root = \"x\"\n",
            "reference = \"r.io/p:1\"\nother = 1\n[signer]\nkey = \"k\"\n",
            "reference = \"NOT A REF\"\n[signer]\nkey = \"k\"\n",
            "reference = \"r.io/p:1\"\n[signer]\nissuer = \"i\"\nsubject = \"s\"\ntrust_root = \"../x\"\n",
        ] {
            assert!(Source::parse(bad, p).is_err(), "{bad}");
        }
    }
}
