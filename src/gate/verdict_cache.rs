//! The verdict cache: a passing verification, remembered for the exact
//! inputs that produced it.
//!
//! This module owns `verdicts/<key>.json` in the state directory. The key is
//! the SHA-256 of every input a verification depends on: the Portcullis
//! version, the policy file's digest and the rule, the digests being
//! started, the bytes of their signature-cache entries, the signers (the
//! bytes of each key file, keyless identities and the bytes of any CA
//! bundle: [`crate::verify::rule::fingerprint`], so a hit parses no key),
//! and the bytes of the trust root. Changing any of them changes the key, so a
//! policy, key, trust-root or cache change invalidates entries by
//! construction. An entry also carries the instant it stops being valid: the
//! earliest of one hour after it was written, the provenance age limit, and
//! the trust root's staleness limit. Only passes are cached; entries are
//! written atomically and an entry that fails to parse, names another key
//! or has expired is ignored (and re-verified), never trusted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cache::StateDir;
use crate::verify::facts::ProvenanceSummary;
use crate::verify::SigstoreFacts;

/// How long a cached pass lives at most.
pub const MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);
/// Largest verdict file read, in bytes.
pub const MAX_ENTRY_BYTES: u64 = 64 * 1024;
const FORMAT: u32 = 1;

/// The inputs of a verification, hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// Hash `parts` (each length-prefixed, so no two lists collide).
    pub fn new<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Key {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"portcullis-verdict\0");
        buf.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
        for p in parts {
            buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
            buf.extend_from_slice(p);
        }
        Key(crate::digest::sha256_hex(&buf))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a cached pass restores into a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hit {
    /// The reason recorded when it was verified.
    pub reason: String,
    /// The signer that vouched.
    pub signer: Option<String>,
    /// The digest signed.
    pub signed_digest: Option<String>,
    /// Sigstore facts, if any.
    pub sigstore: Option<SigstoreFacts>,
    /// Provenance facts, if any.
    pub provenance: Option<ProvenanceSummary>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    format: u32,
    key: String,
    not_after: jiff::Timestamp,
    hit: Hit,
}

fn path(state: &StateDir, key: &Key) -> PathBuf {
    state
        .root()
        .join("verdicts")
        .join(format!("{}.json", key.0))
}

/// A valid cached pass for `key` at `now`, if there is one.
pub fn lookup(state: &StateDir, key: &Key, now: jiff::Timestamp) -> Option<Hit> {
    let p = path(state, key);
    // Never a symlink: Portcullis writes every verdict file itself.
    let opts = crate::base::fsio::ReadOptions::bounded(MAX_ENTRY_BYTES).no_symlink();
    let bytes = crate::base::fsio::read(&p, opts).ok()?;
    let s: Stored = serde_json::from_slice(&bytes).ok()?;
    (s.format == FORMAT && s.key == key.0 && now < s.not_after).then_some(s.hit)
}

/// Remember a pass until `not_after` (capped at [`MAX_LIFETIME`]). Failures
/// are ignored: the cache only ever saves work.
pub fn store(
    state: &StateDir,
    key: &Key,
    hit: &Hit,
    now: jiff::Timestamp,
    not_after: Option<jiff::Timestamp>,
) {
    let cap = now
        .checked_add(jiff::SignedDuration::try_from(MAX_LIFETIME).unwrap_or_default())
        .unwrap_or(now);
    let not_after = not_after.map_or(cap, |n| n.min(cap));
    if not_after <= now {
        return;
    }
    let stored = Stored {
        format: FORMAT,
        key: key.0.clone(),
        not_after,
        hit: hit.clone(),
    };
    let p = path(state, key);
    let Some(dir) = p.parent() else { return };
    let _ = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let bytes = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
        // No fsync: rename makes the entry appear whole to readers, and an
        // entry a crash truncated or zeroed fails to parse or names no key,
        // so it is re-verified, never trusted. The benchmark measured the
        // fsync at several milliseconds per cold start on a busy disk.
        crate::base::fsio::write_atomic(&p, &bytes, crate::base::fsio::Durability::BestEffort)
    })();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit() -> Hit {
        Hit {
            reason: "signature by key:k over sha256:x".into(),
            signer: Some("key:k".into()),
            signed_digest: Some("sha256:x".into()),
            sigstore: None,
            provenance: None,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let k = Key::new([b"a".as_slice(), b"b"]);
        let now = jiff::Timestamp::now();
        assert_eq!(lookup(&s, &k, now), None);
        store(&s, &k, &hit(), now, None);
        assert_eq!(lookup(&s, &k, now), Some(hit()));
        // capped at MAX_LIFETIME
        let later = now
            .checked_add(jiff::SignedDuration::from_secs(3601))
            .unwrap();
        assert_eq!(lookup(&s, &k, later), None);
        // an earlier limit wins
        let k2 = Key::new([b"c".as_slice()]);
        let soon = now
            .checked_add(jiff::SignedDuration::from_secs(10))
            .unwrap();
        store(&s, &k2, &hit(), now, Some(soon));
        assert!(lookup(&s, &k2, now).is_some());
        assert_eq!(lookup(&s, &k2, soon), None);
        // an already-expired limit stores nothing
        let k3 = Key::new([b"d".as_slice()]);
        store(&s, &k3, &hit(), now, Some(now));
        assert!(!path(&s, &k3).exists());
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(
            Key::new([b"ab".as_slice(), b"c"]),
            Key::new([b"a".as_slice(), b"bc"])
        );
        assert_eq!(Key::new([b"x".as_slice()]), Key::new([b"x".as_slice()]));
    }

    #[test]
    fn corrupt_swapped_or_foreign_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let now = jiff::Timestamp::now();
        let k = Key::new([b"k".as_slice()]);
        let other = Key::new([b"other".as_slice()]);
        store(&s, &other, &hit(), now, None);
        // another key's entry copied under this key's name
        std::fs::copy(path(&s, &other), path(&s, &k)).unwrap();
        assert_eq!(lookup(&s, &k, now), None);
        std::fs::write(path(&s, &k), b"{\"format\":1,").unwrap();
        assert_eq!(lookup(&s, &k, now), None);
        // what a crash can leave of an entry written without fsync
        std::fs::write(path(&s, &k), [0u8; 200]).unwrap();
        assert_eq!(lookup(&s, &k, now), None);
        std::fs::write(path(&s, &k), b"").unwrap();
        assert_eq!(lookup(&s, &k, now), None);
        std::fs::remove_file(path(&s, &k)).unwrap();
        std::os::unix::fs::symlink(path(&s, &other), path(&s, &k)).unwrap();
        assert_eq!(lookup(&s, &k, now), None);
    }
}
