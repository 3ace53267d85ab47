//! The bundle's manifest (`manifest.json`) and what a bundle holds once
//! read: the image and item records, the member names and digests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cache::{self};

/// The `format` field of a bundle's manifest.
pub const FORMAT: &str = "portcullis-offline-bundle";
/// The bundle format version this release writes and reads.
pub const VERSION: u32 = 1;
/// The manifest's member path.
pub const MANIFEST_PATH: &str = "manifest.json";
/// Largest bundle file read, in bytes.
pub const MAX_BUNDLE_BYTES: u64 = 512 * 1024 * 1024;
/// Largest member (manifest or item), in bytes.
pub const MAX_MEMBER_BYTES: u64 = cache::MAX_ENTRY_BYTES;
/// Most items in one bundle.
pub const MAX_ITEMS: usize = 4096;

/// Item kinds besides the cache artifact kinds of [`crate::cache::kind`].
pub mod item_kind {
    /// The raw image index manifest (its SHA-256 is the image digest).
    pub const IMAGE_INDEX: &str = "image-index";
    /// A Sigstore `trusted_root.json`.
    pub const TRUST_ROOT: &str = "trust-root";
}

/// A bundle's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// When it was written, RFC 3339.
    pub created_at: String,
    /// The images it is for.
    pub images: Vec<ImageRecord>,
    /// Its items.
    pub items: Vec<ItemRecord>,
}

/// One image of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImageRecord {
    /// The normalized reference (selects the policy rule on import).
    pub reference: String,
    /// The target digest (index or manifest).
    pub digest: String,
    /// The target's media type.
    pub media_type: String,
    /// The exporting node's platform manifest, when the target is an index.
    pub platform_digest: Option<String>,
}

/// One item of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ItemRecord {
    /// Member path (`items/NNNN.json`).
    pub path: String,
    /// Kind: a cache artifact kind, `image-index` or `trust-root`.
    pub kind: String,
    /// The digest it is about (none for a trust root).
    pub subject: Option<String>,
    /// The image reference it belongs to (none for a trust root).
    pub image: Option<String>,
    /// The trust root's name (trust roots only).
    pub name: Option<String>,
    /// Member size in bytes.
    pub size: u64,
    /// `sha256:` of the member bytes.
    pub sha256: String,
}

/// A bundle's contents, read and bounded (from a file, or assembled from
/// containerd's content store).
#[derive(Debug, Clone)]
pub struct Contents {
    /// Where it came from, for messages.
    pub source: String,
    /// The manifest.
    pub manifest: Manifest,
    /// Member bytes by path.
    pub members: BTreeMap<String, Vec<u8>>,
}

pub(super) fn member_name(n: usize) -> String {
    format!("items/{n:04}.json")
}

pub(super) fn sha(bytes: &[u8]) -> String {
    crate::digest::sha256_prefixed(bytes)
}
