//! The node's local cache of signature artifacts, in the state directory.
//!
//! This module owns the state directory layout and the cache entry format.
//! The shim only reads it (it never touches the network); `portcullis fetch`
//! writes it. One file per subject digest, `cache/sha256/<hex>.json`, holds
//! every signature artifact fetched for that digest with the artifact bytes
//! inline, so an entry is replaced by one atomic `rename`: a reader sees the
//! old entry or the new one, never a torn file. Every read re-checks the
//! entry: its subject must be the digest it is filed under (a file swapped
//! for another digest's is refused), and each blob must hash to the digest
//! its descriptor names. Symlinks, non-regular files and files with more
//! than one hard link are refused.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state directory unless `PORTCULLIS_STATE_DIR` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/portcullis";
/// The entry format this version reads and writes.
pub const ENTRY_FORMAT: u32 = 1;
/// Largest cache entry accepted, in bytes.
pub const MAX_ENTRY_BYTES: u64 = 32 * 1024 * 1024;

/// Artifact kinds stored in an entry.
pub mod kind {
    /// cosign's signature image (`sha256-<hex>.sig`).
    pub const COSIGN_SIGNATURE: &str = "cosign-signature";
    /// cosign's attestation image (`sha256-<hex>.att`), DSSE envelope layers.
    pub const COSIGN_ATTESTATION: &str = "cosign-attestation";
    /// A Sigstore bundle attached as an OCI 1.1 referrer.
    pub const SIGSTORE_BUNDLE: &str = "sigstore-bundle";
}
/// Most layers kept per artifact.
pub const MAX_LAYERS: usize = 64;

/// The layers of an artifact that are examined: the newest [`MAX_LAYERS`]
/// (cosign appends a layer per `cosign sign`, so the last are the newest),
/// and how many older ones were left unexamined.
pub fn newest_layers<T>(layers: &[T]) -> (&[T], usize) {
    let skipped = layers.len().saturating_sub(MAX_LAYERS);
    (&layers[skipped..], skipped)
}

/// Errors reading or writing the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The entry exists but cannot be trusted.
    #[error("cache entry {path} is corrupt: {why}; re-run `portcullis fetch` for this image")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A digest that cannot name a cache file.
    #[error(transparent)]
    Digest(#[from] crate::digest::DigestError),
    /// An entry to be written is invalid.
    #[error("refusing to write cache entry: {0}")]
    Invalid(String),
}

/// One layer (blob plus descriptor) of a stored artifact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// The descriptor's media type.
    pub media_type: String,
    /// The descriptor's digest; the blob must hash to it.
    pub digest: String,
    /// The descriptor's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The blob, base64.
    pub data: String,
}

impl Layer {
    /// Build a layer from its descriptor fields and blob bytes.
    pub fn new(media_type: &str, annotations: BTreeMap<String, String>, blob: &[u8]) -> Self {
        use base64::Engine;
        Self {
            media_type: media_type.to_string(),
            digest: crate::digest::sha256_prefixed(blob),
            annotations,
            data: base64::engine::general_purpose::STANDARD.encode(blob),
        }
    }

    /// The blob bytes (already checked against `digest` when read from disk).
    pub fn blob(&self) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .unwrap_or_default()
    }
}

/// A signature artifact as fetched from the registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// What kind (one of [`kind`]).
    pub kind: String,
    /// Where it came from (`registry/repo:tag` or `@digest`).
    pub source: String,
    /// The digest of the artifact's manifest in the registry.
    pub manifest_digest: String,
    /// Its layers.
    pub layers: Vec<Layer>,
}

/// Everything cached for one subject digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Entry format version ([`ENTRY_FORMAT`]).
    pub format: u32,
    /// The digest these artifacts are attached to.
    pub subject: String,
    /// The repository they were fetched from.
    pub repository: String,
    /// When, RFC 3339.
    pub fetched_at: String,
    /// The artifacts.
    pub artifacts: Vec<Artifact>,
}

/// An entry's file as read from the cache, not yet parsed: what the
/// verdict key hashes is exactly what the verification then parses.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// The digest it is filed under.
    pub digest: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl RawEntry {
    /// Parse and check the bytes: an error when they cannot be trusted as
    /// the entry of the digest they are filed under.
    pub fn parse(&self) -> Result<Entry, CacheError> {
        let corrupt = |why: String| CacheError::Corrupt {
            path: self.path.clone(),
            why,
        };
        let entry: Entry = serde_json::from_slice(&self.bytes)
            .map_err(|e| corrupt(format!("invalid JSON: {e}")))?;
        validate(&entry, &self.digest).map_err(corrupt)?;
        Ok(entry)
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// `PORTCULLIS_STATE_DIR`, else [`DEFAULT_STATE_DIR`].
    pub fn from_env() -> Self {
        let root = std::env::var_os("PORTCULLIS_STATE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        Self { root }
    }

    /// A state directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Its root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cache file for a digest.
    pub fn entry_path(&self, digest: &str) -> Result<PathBuf, CacheError> {
        let hex = crate::digest::sha256_hex_of(digest)?;
        Ok(self
            .root
            .join("cache")
            .join("sha256")
            .join(format!("{hex}.json")))
    }

    /// Where journal records wait when journald cannot take them.
    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// Read the entry for `digest`: `Ok(None)` when nothing is cached, an
    /// error when something is cached but cannot be trusted.
    pub fn read(&self, digest: &str) -> Result<Option<Entry>, CacheError> {
        self.read_raw(digest)?.map(|raw| raw.parse()).transpose()
    }

    /// Read the file of `digest`'s entry without parsing it: the bytes a
    /// start hashes into its verdict key and then, unread again, parses and
    /// verifies ([`RawEntry::parse`]). `Ok(None)` when nothing is cached.
    pub fn read_raw(&self, digest: &str) -> Result<Option<RawEntry>, CacheError> {
        let path = self.entry_path(digest)?;
        let corrupt = |why: String| CacheError::Corrupt {
            path: path.clone(),
            why,
        };
        use crate::base::fsio::{self, ReadError, ReadOptions};
        // `fetch` always writes a fresh file and renames it into place, so a
        // genuine entry is a regular file (never a symlink) with exactly one
        // link. A second link means the file is also reachable (and
        // writable) from somewhere else.
        let opts = ReadOptions::bounded(MAX_ENTRY_BYTES)
            .no_symlink()
            .single_link();
        let bytes = match fsio::read(&path, opts) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(ReadError::NotRegular) => {
                return Err(corrupt(
                    "not a regular file (symlink or special file)".into(),
                ))
            }
            Err(ReadError::TooLarge { size, .. }) => {
                return Err(corrupt(format!(
                    "{size} bytes, over the {MAX_ENTRY_BYTES}-byte limit"
                )))
            }
            Err(ReadError::HardLinks(n)) => {
                return Err(corrupt(format!(
                    "the file has {n} hard links, a cache entry has exactly one (a hard link placed in the cache)"
                )))
            }
            Err(ReadError::Io(source)) => return Err(CacheError::Io { path, source }),
        };
        Ok(Some(RawEntry {
            digest: digest.to_string(),
            path,
            bytes,
        }))
    }

    /// Write (replace) the entry for its subject atomically: a temporary
    /// file in the same directory, fsync, rename, fsync of the directory.
    pub fn write(&self, entry: &Entry) -> Result<PathBuf, CacheError> {
        validate(entry, &entry.subject).map_err(CacheError::Invalid)?;
        let path = self.entry_path(&entry.subject)?;
        let dir = path
            .parent()
            .expect("entry path has a parent")
            .to_path_buf();
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| CacheError::Io { path: p, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let bytes = serde_json::to_vec(entry).map_err(|e| CacheError::Invalid(e.to_string()))?;
        crate::base::fsio::write_atomic(&path, &bytes, crate::base::fsio::Durability::Durable)
            .map_err(|source| CacheError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }
}

/// The checks every read and write applies to an entry (format, layer blobs
/// against their digests, limits), for entries that arrive another way.
pub fn check(entry: &Entry) -> Result<(), String> {
    validate(entry, &entry.subject)
}

fn validate(entry: &Entry, filed_under: &str) -> Result<(), String> {
    if entry.format != ENTRY_FORMAT {
        return Err(format!(
            "entry format {} is not the supported format {ENTRY_FORMAT}",
            entry.format
        ));
    }
    if entry.subject != filed_under {
        return Err(format!(
            "it is for {}, not {filed_under} (a file swapped for another digest's)",
            entry.subject
        ));
    }
    for a in &entry.artifacts {
        if a.layers.len() > MAX_LAYERS {
            return Err(format!(
                "{} layers, over the limit of {MAX_LAYERS}",
                a.layers.len()
            ));
        }
        for l in &a.layers {
            use base64::Engine;
            let blob = base64::engine::general_purpose::STANDARD
                .decode(&l.data)
                .map_err(|_| format!("layer {} is not valid base64", l.digest))?;
            let actual = crate::digest::sha256_prefixed(&blob);
            if actual != l.digest {
                return Err(format!(
                    "layer blob hashes to {actual}, not its descriptor's {}",
                    l.digest
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resigned_sig_keeps_its_newest_layers() {
        let layers: Vec<u32> = (0..65).collect();
        let (kept, skipped) = newest_layers(&layers);
        assert_eq!((kept.len(), skipped), (MAX_LAYERS, 1));
        assert_eq!((kept[0], kept[MAX_LAYERS - 1]), (1, 64));
        let few = [1, 2, 3];
        assert_eq!(newest_layers(&few), (&few[..], 0));
    }

    fn entry(subject: &str) -> Entry {
        Entry {
            format: ENTRY_FORMAT,
            subject: subject.to_string(),
            repository: "127.0.0.1:5000/demo/app".into(),
            fetched_at: "2026-11-25T00:00:00Z".into(),
            artifacts: vec![Artifact {
                kind: "cosign-signature".into(),
                source: "127.0.0.1:5000/demo/app:sha256-x.sig".into(),
                manifest_digest: crate::digest::sha256_prefixed(b"m"),
                layers: vec![Layer::new(
                    crate::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                    BTreeMap::from([("k".to_string(), "v".to_string())]),
                    b"payload",
                )],
            }],
        }
    }

    use crate::base::testing::digest;

    #[test]
    fn round_trip_and_absent() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        assert!(s.read(&digest(1)).unwrap().is_none());
        let e = entry(&digest(1));
        s.write(&e).unwrap();
        assert_eq!(s.read(&digest(1)).unwrap().unwrap(), e);
        assert_eq!(
            s.read(&digest(1)).unwrap().unwrap().artifacts[0].layers[0].blob(),
            b"payload"
        );
        // no temporary files remain
        let names: Vec<_> = fs::read_dir(dir.path().join("cache/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn swapped_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        s.write(&entry(&digest(2))).unwrap();
        fs::create_dir_all(s.entry_path(&digest(3)).unwrap().parent().unwrap()).unwrap();
        fs::copy(
            s.entry_path(&digest(2)).unwrap(),
            s.entry_path(&digest(3)).unwrap(),
        )
        .unwrap();
        let err = s.read(&digest(3)).unwrap_err().to_string();
        assert!(err.contains("swapped"), "{err}");
    }

    #[test]
    fn tampered_blob_truncation_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let mut e = entry(&digest(4));
        s.write(&e).unwrap();
        let p = s.entry_path(&digest(4)).unwrap();
        // tamper: replace the blob but keep the descriptor
        e.artifacts[0].layers[0].data = "b3RoZXI=".into();
        fs::write(&p, serde_json::to_vec(&e).unwrap()).unwrap();
        assert!(s
            .read(&digest(4))
            .unwrap_err()
            .to_string()
            .contains("hashes to"));
        let good = serde_json::to_vec(&entry(&digest(4))).unwrap();
        fs::write(&p, &good[..good.len() / 2]).unwrap();
        assert!(matches!(
            s.read(&digest(4)),
            Err(CacheError::Corrupt { .. })
        ));
        fs::write(&p, b"\x00\xff").unwrap();
        assert!(matches!(
            s.read(&digest(4)),
            Err(CacheError::Corrupt { .. })
        ));
        // unknown fields and future formats are refused, not guessed at
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        v["extra"] = 1.into();
        fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(
            s.read(&digest(4)),
            Err(CacheError::Corrupt { .. })
        ));
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        v["format"] = 2.into();
        fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(s
            .read(&digest(4))
            .unwrap_err()
            .to_string()
            .contains("format 2"));
    }

    #[test]
    fn symlinks_and_oversize_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        s.write(&entry(&digest(5))).unwrap();
        let target = s.entry_path(&digest(5)).unwrap();
        let link = s.entry_path(&digest(6)).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(s
            .read(&digest(6))
            .unwrap_err()
            .to_string()
            .contains("symlink"));
        let big = s.entry_path(&digest(7)).unwrap();
        let f = fs::File::create(&big).unwrap();
        f.set_len(MAX_ENTRY_BYTES + 1).unwrap();
        assert!(s
            .read(&digest(7))
            .unwrap_err()
            .to_string()
            .contains("limit"));
        let d = s.entry_path(&digest(8)).unwrap();
        fs::create_dir(&d).unwrap();
        assert!(s.read(&digest(8)).is_err());
    }

    #[test]
    fn hard_linked_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let path = s.write(&entry(&digest(9))).unwrap();
        assert!(s.read(&digest(9)).unwrap().is_some());
        // The same entry, also reachable from outside the cache.
        let outside = dir.path().join("outside.json");
        fs::hard_link(&path, &outside).unwrap();
        let err = s.read(&digest(9)).unwrap_err().to_string();
        assert!(err.contains("2 hard links"), "{err}");
        // A rewrite by fetch replaces the file: one link again.
        s.write(&entry(&digest(9))).unwrap();
        assert!(s.read(&digest(9)).unwrap().is_some());
    }

    #[test]
    fn bad_digests_never_name_files() {
        let s = StateDir::new("/nonexistent");
        assert!(s.entry_path("sha256:../../etc/passwd").is_err());
        assert!(s.read("latest").is_err());
    }

    #[test]
    fn invalid_entries_are_not_written_and_old_state_survives() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let good = entry(&digest(9));
        s.write(&good).unwrap();
        let mut bad = entry(&digest(9));
        bad.artifacts[0].layers[0].digest = digest(1);
        assert!(matches!(s.write(&bad), Err(CacheError::Invalid(_))));
        assert_eq!(s.read(&digest(9)).unwrap().unwrap(), good);
    }
}
