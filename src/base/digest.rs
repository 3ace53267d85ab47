//! Content digests (`sha256:<hex>`): computing and validating them.
//!
//! Hashing is delegated to `sigstore-crypto`; this module owns only the
//! `algorithm:hex` text form used in OCI descriptors and cache file names.

/// Errors validating a digest string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// Not `sha256:` followed by 64 lowercase hex characters.
    #[error("`{0}` is not a sha256 digest (expected sha256: and 64 lowercase hex characters)")]
    Malformed(String),
}

/// `sha256:<hex>` of `data`.
pub fn sha256_prefixed(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// `sha256:<hex>` of the regular file at `path`, read in parts under the
/// caller's options (the checks of [`crate::base::fsio::read`]) and never
/// held whole.
pub fn sha256_prefixed_file(
    path: &std::path::Path,
    opts: crate::base::fsio::ReadOptions,
) -> Result<String, crate::base::fsio::ReadError> {
    let mut hasher = sigstore_verify::crypto::Sha256Hasher::new();
    crate::base::fsio::read_each(path, opts, |part| hasher.update(part))?;
    Ok(format!("sha256:{}", hasher.finalize().to_hex()))
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    sigstore_verify::crypto::sha256(data).to_hex()
}

/// The first 12 hex digits of a digest, for reasons (`sha256:0123456789ab`).
pub fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// Validate a `sha256:<64 hex>` digest and return its hex part.
pub fn sha256_hex_of(digest: &str) -> Result<&str, DigestError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| DigestError::Malformed(digest.to_string()))?;
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(hex)
    } else {
        Err(DigestError::Malformed(digest.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        assert_eq!(
            sha256_prefixed(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_file_digested_in_parts_is_its_bytes_digested_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let bytes: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&p, &bytes).unwrap();
        let opts = crate::base::fsio::ReadOptions::bounded(150_000);
        assert_eq!(
            sha256_prefixed_file(&p, opts).unwrap(),
            sha256_prefixed(&bytes)
        );
        let small = crate::base::fsio::ReadOptions::bounded(149_999);
        assert!(sha256_prefixed_file(&p, small).is_err());
    }

    #[test]
    fn validation() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(sha256_hex_of(&good).unwrap(), "a".repeat(64));
        for bad in [
            "sha256:".to_string(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{}", "a".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}/..", "a".repeat(62)),
        ] {
            assert!(sha256_hex_of(&bad).is_err(), "{bad}");
        }
    }
}
