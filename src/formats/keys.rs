//! Public keys: PEM (SubjectPublicKeyInfo) parsing and the signer a key
//! becomes. The primitives are `sigstore-crypto`'s; nothing cryptographic is
//! written here.

use std::path::{Path, PathBuf};

use sigstore_verify::crypto::{KeyAlgorithm, SigningScheme, VerificationKey};
use sigstore_verify::types::{DerPublicKey, SignatureBytes};

use crate::base::fsio::{read_bounded, ReadError, ReadOptions};
use crate::base::text::one_line;

/// Largest public key file accepted, in bytes.
pub const MAX_KEY_BYTES: u64 = 64 * 1024;

/// Errors loading a public key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
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
}

/// A signer ready to verify: its key parsed once.
#[derive(Clone)]
pub struct LoadedSigner {
    /// How verdicts name it (`key:/path (sha256:… fingerprint)`).
    pub id: String,
    keys: std::sync::Arc<Vec<VerificationKey>>,
}

impl std::fmt::Debug for LoadedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSigner")
            .field("id", &self.id)
            .finish()
    }
}

impl LoadedSigner {
    /// Load a PEM public key file.
    pub fn from_key_file(path: &Path) -> Result<Self, KeyError> {
        let read = |source| KeyError::KeyRead {
            path: path.to_path_buf(),
            source,
        };
        let bytes = match crate::base::fsio::read(path, ReadOptions::bounded(MAX_KEY_BYTES)) {
            Ok(b) => b,
            Err(ReadError::TooLarge { size, .. }) => {
                return Err(KeyError::KeyInvalid {
                    path: path.to_path_buf(),
                    why: format!("{size} bytes is too large for a public key"),
                })
            }
            Err(ReadError::Io(e)) => return Err(read(e)),
            Err(e) => return Err(read(std::io::Error::other(e))),
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        Self::from_pem(&text, &path.display().to_string()).map_err(|why| KeyError::KeyInvalid {
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
        let fingerprint = crate::base::digest::sha256_prefixed(der.as_bytes());
        Ok(Self {
            id: format!("key:{label} ({fingerprint})"),
            keys: std::sync::Arc::new(keys),
        })
    }

    pub(crate) fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        let sig = SignatureBytes::from_bytes(signature);
        self.keys.iter().any(|k| k.verify(payload, &sig).is_ok())
    }

    /// Does `signature` verify over exactly `message` with this signer's key?
    /// No payload format is assumed (DSSE passes its PAE bytes here).
    pub fn verifies_raw(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifies(message, signature)
    }
}

/// Read and parse a PEM public key file (bounded), refusing what is not a
/// key at all so the error names the file.
pub fn load_der(path: &Path) -> Result<DerPublicKey, KeyError> {
    let text = read_bounded(path, MAX_KEY_BYTES)
        .map_err(|source| KeyError::KeyRead {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| KeyError::KeyInvalid {
            path: path.to_path_buf(),
            why: "too large for a public key".into(),
        })?;
    let invalid = |why: String| KeyError::KeyInvalid {
        path: path.to_path_buf(),
        why: one_line(&why),
    };
    let text = String::from_utf8(text).map_err(|_| invalid("not UTF-8 text".into()))?;
    let der = DerPublicKey::from_pem(text.trim()).map_err(|e| invalid(e.to_string()))?;
    // Refuse here what is not a key at all, so the error names the key file.
    sigstore_verify::crypto::KeyAlgorithm::from_spki(&der).map_err(|e| invalid(e.to_string()))?;
    Ok(der)
}
