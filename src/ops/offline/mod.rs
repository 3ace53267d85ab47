//! Offline bundles: everything a node needs to verify some images, in one
//! file, for nodes that cannot reach a registry (`portcullis bundle export`
//! and `portcullis bundle import`), and the same import path for signatures
//! that arrived in containerd's content store through `ctr images import` of
//! an OCI layout (`portcullis bundle import --from-containerd`).
//!
//! This module owns the bundle file format and the rules for letting its
//! contents into the cache. The format (version [`VERSION`]) is a POSIX tar
//! archive with:
//!
//! * `manifest.json` ([`Manifest`]): `format` = [`FORMAT`], `version`, the
//!   images (reference, target digest and media type, this platform's
//!   manifest digest when the target is an index), and one record per item:
//!   its member path, kind, subject digest, image, size and SHA-256.
//! * `items/NNNN.json` members: a cache artifact ([`crate::cache::Artifact`],
//!   kinds `cosign-signature`, `cosign-attestation`, `sigstore-bundle`) filed
//!   for its subject digest; `image-index`: the raw index manifest, so the
//!   importer can tie a platform manifest digest to the image's index digest;
//!   `trust-root`: a `trusted_root.json` (only with `--with-trust-root`).
//!
//! Reading is bounded ([`MAX_BUNDLE_BYTES`], [`MAX_MEMBER_BYTES`],
//! [`MAX_ITEMS`]); only regular members with the paths above are accepted.
//! On import every item is checked on the way in: its SHA-256 against the
//! manifest, its parse as a known kind, its subject against its image's
//! digests (a platform digest only when the bundled index lists it), and
//! each signature or attestation layer against the signers of the policy
//! rule that governs its image, with the trust root in force. Layers that
//! fail are refused with a one-line reason; what passes is merged into the
//! existing cache entry (a union: nothing stored is dropped or replaced) and
//! written atomically through [`crate::cache`]. Re-importing changes nothing.
//! Each item is parsed and verified in the verification sandbox
//! ([`crate::sandbox`]); the parent keeps only the layers the child passed.
//!
//! A bundle never installs a trust root by itself: a bundled root is only
//! installed when the operator passes its SHA-256 (printed by `export`,
//! checked out of band), and then through [`crate::trust::import`], which
//! refuses a root the gate could not load.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::{self, kind, Artifact, Entry, Layer, StateDir, ENTRY_FORMAT};
use crate::containerd::{self, ImageTarget, INDEX_TYPES, MANIFEST_TYPES};
use crate::policy::{Action, Policy, Selection};
use crate::reference::ImageRef;
use crate::trust::RootName;

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

/// Errors of bundle export and import (item refusals are not errors: they
/// are reported per item).
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bundle file as a whole is unusable.
    #[error("bundle {path} refused: {why}")]
    BadBundle {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Nothing cached to export.
    #[error("nothing cached for {image} ({digests}); run `portcullis fetch {pinned}` first")]
    NothingCached {
        /// The image.
        image: String,
        /// The digests looked up.
        digests: String,
        /// What to fetch.
        pinned: String,
    },
    /// The cache could not be read.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// A trust root could not be read or installed.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// containerd could not answer.
    #[error(transparent)]
    Containerd(#[from] containerd::LookupError),
    /// The operator's request cannot be met; the message says why and what to do.
    #[error("{0}")]
    Usage(String),
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

/// An image to export: containerd's answer plus its index blob, if any.
#[derive(Debug, Clone)]
pub struct ExportImage {
    /// The image as resolved.
    pub target: ImageTarget,
    /// The raw index manifest when the target is an index.
    pub index: Option<Vec<u8>>,
}

/// What `bundle export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The file.
    pub file: String,
    /// `sha256:` of the whole file.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// Bundle format version.
    pub version: u32,
    /// The images.
    pub images: Vec<ImageRecord>,
    /// The items.
    pub items: Vec<ItemRecord>,
}

/// What happened to one item on import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Verified and written to the cache.
    Stored,
    /// Verified; the cache already held all of it.
    Unchanged,
    /// An index or trust root that was checked and used.
    Checked,
    /// A trust root installed on the operator's explicit request.
    Installed,
    /// Not taken, by design (a trust root the operator did not accept).
    Skipped,
    /// Failed a check; nothing of it was stored.
    Refused,
}

/// One item's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ItemOutcome {
    /// Member path.
    pub path: String,
    /// Kind.
    pub kind: String,
    /// Subject digest.
    pub subject: Option<String>,
    /// Image reference.
    pub image: Option<String>,
    /// The outcome.
    pub status: Status,
    /// Layers verified and kept.
    pub layers: usize,
    /// Layers refused (each with a reason in `refusals`).
    pub refused_layers: usize,
    /// One line per refusal.
    pub refusals: Vec<String>,
    /// A note for the other statuses.
    pub note: Option<String>,
}

/// What `bundle import` did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The bundle file or `containerd:<namespace>`.
    pub source: String,
    /// Per item.
    pub items: Vec<ItemOutcome>,
    /// Items stored.
    pub stored: usize,
    /// Items already present.
    pub unchanged: usize,
    /// Items (or layers of items) refused.
    pub refused: usize,
    /// Items skipped by design.
    pub skipped: usize,
}

impl ImportReport {
    /// Did every item pass?
    pub fn all_accepted(&self) -> bool {
        self.refused == 0
    }
}

/// Import options.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Install a bundled trust root whose `sha256:` is this (the operator
    /// checked it out of band); without it no bundled root is installed.
    pub accept_trust_root: Option<String>,
}

fn member_name(n: usize) -> String {
    format!("items/{n:04}.json")
}

fn sha(bytes: &[u8]) -> String {
    crate::digest::sha256_prefixed(bytes)
}

/// Assemble the contents of a bundle for `images` from the cache (and the
/// given trust roots).
pub fn collect(
    images: &[ExportImage],
    state: &StateDir,
    trust_roots: &[(RootName, PathBuf)],
    progress: &mut dyn FnMut(&str),
) -> Result<Contents, OfflineError> {
    let mut members = BTreeMap::new();
    let mut manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: jiff::Timestamp::now().to_string(),
        images: Vec::new(),
        items: Vec::new(),
    };
    let add = |members: &mut BTreeMap<String, Vec<u8>>,
               manifest: &mut Manifest,
               kind: &str,
               subject: Option<&str>,
               image: Option<&str>,
               name: Option<&str>,
               bytes: Vec<u8>| {
        let path = member_name(manifest.items.len());
        manifest.items.push(ItemRecord {
            path: path.clone(),
            kind: kind.into(),
            subject: subject.map(String::from),
            image: image.map(String::from),
            name: name.map(String::from),
            size: bytes.len() as u64,
            sha256: sha(&bytes),
        });
        members.insert(path, bytes);
    };
    for img in images {
        let t = &img.target;
        let reference = ImageRef::parse(&t.name)
            .map(|r| r.normalized().to_string())
            .map_err(|e| OfflineError::Usage(format!("{}: {e}", t.name)))?;
        progress(&format!("collecting {reference} ({})", t.target_digest));
        manifest.images.push(ImageRecord {
            reference: reference.clone(),
            digest: t.target_digest.clone(),
            media_type: t.target_media_type.clone(),
            platform_digest: t.platform_digest.clone(),
        });
        if let Some(index) = &img.index {
            if sha(index) != t.target_digest {
                return Err(OfflineError::Usage(format!(
                    "the index read for {reference} hashes to {}, not {}",
                    sha(index),
                    t.target_digest
                )));
            }
            add(
                &mut members,
                &mut manifest,
                item_kind::IMAGE_INDEX,
                Some(&t.target_digest),
                Some(&reference),
                None,
                index.clone(),
            );
        }
        let mut found = 0;
        for d in t.digests() {
            let Some(entry) = state.read(d)? else {
                continue;
            };
            for a in &entry.artifacts {
                let bytes =
                    serde_json::to_vec(a).map_err(|e| OfflineError::Usage(e.to_string()))?;
                add(
                    &mut members,
                    &mut manifest,
                    &a.kind,
                    Some(d),
                    Some(&reference),
                    None,
                    bytes,
                );
                found += 1;
            }
        }
        if found == 0 {
            let pinned = ImageRef::parse(&t.name)
                .map(|r| r.pinned(&t.target_digest))
                .unwrap_or_else(|_| t.name.clone());
            return Err(OfflineError::NothingCached {
                image: reference,
                digests: t.digests().join(", "),
                pinned,
            });
        }
        progress(&format!("{reference}: {found} artifact(s)"));
    }
    for (name, path) in trust_roots {
        let bytes = std::fs::read(path).map_err(|source| OfflineError::Io {
            path: path.clone(),
            source,
        })?;
        progress(&format!(
            "including trust root \"{name}\" from {} ({})",
            path.display(),
            sha(&bytes)
        ));
        add(
            &mut members,
            &mut manifest,
            item_kind::TRUST_ROOT,
            None,
            None,
            Some(name.as_str()),
            bytes,
        );
    }
    Ok(Contents {
        source: "export".into(),
        manifest,
        members,
    })
}

/// Write `contents` as a bundle file at `out`, atomically (a temporary file
/// in the same directory, renamed into place).
pub fn write(contents: &Contents, out: &Path) -> Result<ExportReport, OfflineError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| OfflineError::Io { path: p, source }
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".portcullis-bundle-")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    {
        let mut b = tar::Builder::new(tmp.as_file_mut());
        let manifest = serde_json::to_vec_pretty(&contents.manifest)
            .map_err(|e| OfflineError::Usage(e.to_string()))?;
        let mut append = |path: &str, bytes: &[u8]| -> std::io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_path(path)?;
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, bytes)
        };
        append(MANIFEST_PATH, &manifest).map_err(io(out))?;
        for item in &contents.manifest.items {
            append(&item.path, &contents.members[&item.path]).map_err(io(out))?;
        }
        b.finish().map_err(io(out))?;
    }
    tmp.as_file().sync_all().map_err(io(out))?;
    tmp.persist(out).map_err(|e| OfflineError::Io {
        path: out.to_path_buf(),
        source: e.error,
    })?;
    let bytes = std::fs::read(out).map_err(io(out))?;
    Ok(ExportReport {
        file: out.display().to_string(),
        sha256: sha(&bytes),
        bytes: bytes.len() as u64,
        version: VERSION,
        images: contents.manifest.images.clone(),
        items: contents.manifest.items.clone(),
    })
}

/// The trust roots the rules governing `images` use: the node's default
/// root, or a named one; a rule naming a root by file path is left out
/// (`progress` says so).
pub fn trust_roots_for(
    policy: &Policy,
    images: &[ExportImage],
    state: &StateDir,
    progress: &mut dyn FnMut(&str),
) -> Vec<(RootName, PathBuf)> {
    let mut out: Vec<(RootName, PathBuf)> = Vec::new();
    for img in images {
        let Ok(r) = ImageRef::parse(&img.target.name) else {
            continue;
        };
        let named = match policy.select(&r) {
            Selection::Rule(rule) if rule.action == Action::Verify => rule.trust_root.clone(),
            _ => continue,
        };
        let name = match named.as_deref() {
            None => RootName::default(),
            Some(p) if p.starts_with('/') => {
                progress(&format!(
                    "not bundling trust root {p} (the policy names it by path; copy it to the node yourself)"
                ));
                continue;
            }
            Some(n) => match RootName::parse(n) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        if !out.iter().any(|(n, _)| *n == name) {
            let path = crate::trust::root_path(state, &name);
            out.push((name, path));
        }
    }
    out
}

/// Read a bundle file: bounded, regular members with known paths only, the
/// manifest first-class (format and version checked).
pub fn read(path: &Path) -> Result<Contents, OfflineError> {
    let shown = path.display().to_string();
    let bad = |why: String| OfflineError::BadBundle {
        path: shown.clone(),
        why,
    };
    let file = std::fs::File::open(path).map_err(|source| OfflineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| OfflineError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len > MAX_BUNDLE_BYTES {
        return Err(bad(format!(
            "{len} bytes, over the {MAX_BUNDLE_BYTES}-byte limit"
        )));
    }
    read_from(file, &shown)
}

/// [`read`] from any reader (at most [`MAX_BUNDLE_BYTES`] are read);
/// `source` names it in messages.
pub fn read_from(input: impl Read, source: &str) -> Result<Contents, OfflineError> {
    let shown = source.to_string();
    let bad = |why: String| OfflineError::BadBundle {
        path: shown.clone(),
        why,
    };
    let mut archive = tar::Archive::new(input.take(MAX_BUNDLE_BYTES));
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("not a tar archive: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| bad(format!("member with an unusable path: {e}")))?
            .to_string_lossy()
            .into_owned();
        if !entry.header().entry_type().is_file() {
            return Err(bad(format!("member {name:?} is not a regular file")));
        }
        if !valid_member_path(&name) {
            return Err(bad(format!(
                "unexpected member {name:?} (only {MANIFEST_PATH} and items/NNNN.json)"
            )));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_MEMBER_BYTES {
            return Err(bad(format!(
                "member {name} is {size} bytes, over the {MAX_MEMBER_BYTES}-byte limit"
            )));
        }
        if members.len() > MAX_ITEMS {
            return Err(bad(format!("more than {MAX_ITEMS} items")));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(MAX_MEMBER_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("member {name}: {e}")))?;
        if members.insert(name.clone(), bytes).is_some() {
            return Err(bad(format!("member {name} appears twice")));
        }
    }
    let raw = members
        .remove(MANIFEST_PATH)
        .ok_or_else(|| bad(format!("no {MANIFEST_PATH}")))?;
    let manifest = parse_manifest(&raw).map_err(bad)?;
    Ok(Contents {
        source: shown,
        manifest,
        members,
    })
}

fn valid_member_path(name: &str) -> bool {
    if name == MANIFEST_PATH {
        return true;
    }
    let Some(rest) = name.strip_prefix("items/") else {
        return false;
    };
    let Some(stem) = rest.strip_suffix(".json") else {
        return false;
    };
    !stem.is_empty() && stem.len() <= 16 && stem.bytes().all(|b| b.is_ascii_digit())
}

fn parse_manifest(raw: &[u8]) -> Result<Manifest, String> {
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
        version: Option<u32>,
    }
    let head: Head =
        serde_json::from_slice(raw).map_err(|e| format!("{MANIFEST_PATH} is not JSON: {e}"))?;
    if head.format.as_deref() != Some(FORMAT) {
        return Err(format!(
            "{MANIFEST_PATH} has format {:?}, not {FORMAT:?}",
            head.format
        ));
    }
    if head.version != Some(VERSION) {
        return Err(format!(
            "bundle format version {:?}; this portcullis reads version {VERSION} (export it with a matching portcullis)",
            head.version
        ));
    }
    let m: Manifest = serde_json::from_slice(raw).map_err(|e| format!("{MANIFEST_PATH}: {e}"))?;
    if m.items.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} items"));
    }
    Ok(m)
}

/// Import a bundle file.
pub fn import_file(
    path: &Path,
    state: &StateDir,
    policy: &Policy,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<ImportReport, OfflineError> {
    let contents = read(path)?;
    progress(&format!(
        "{}: {} image(s), {} item(s)",
        contents.source,
        contents.manifest.images.len(),
        contents.manifest.items.len()
    ));
    import(&contents, state, policy, opts, progress)
}

/// The digests an image's items may be filed under, each with whether it
/// was established (a platform digest only when the index lists it).
struct ImageCheck {
    image: ImageRef,
    digests: Vec<String>,
    platform_problem: Option<String>,
}

fn check_images(contents: &Contents) -> BTreeMap<String, Result<ImageCheck, String>> {
    let mut out = BTreeMap::new();
    for img in &contents.manifest.images {
        let res = (|| {
            let image = ImageRef::parse(&img.reference).map_err(|e| e.to_string())?;
            crate::digest::sha256_hex_of(&img.digest).map_err(|e| e.to_string())?;
            let mut digests = vec![img.digest.clone()];
            let mut platform_problem = None;
            if let Some(p) = &img.platform_digest {
                crate::digest::sha256_hex_of(p).map_err(|e| e.to_string())?;
                let index = contents.manifest.items.iter().find(|i| {
                    i.kind == item_kind::IMAGE_INDEX
                        && i.subject.as_deref() == Some(&img.digest)
                        && i.image.as_deref() == Some(&img.reference)
                });
                let listed = index
                    .and_then(|i| contents.members.get(&i.path))
                    .filter(|b| sha(b) == img.digest)
                    .map(|b| index_lists(b, p));
                match listed {
                    Some(true) => digests.push(p.clone()),
                    Some(false) => {
                        platform_problem =
                            Some(format!("the index {} does not list {p}", img.digest))
                    }
                    None => {
                        platform_problem = Some(format!(
                            "the bundle has no intact index {} to tie {p} to",
                            img.digest
                        ))
                    }
                }
            }
            Ok(ImageCheck {
                image,
                digests,
                platform_problem,
            })
        })();
        out.insert(img.reference.clone(), res);
    }
    out
}

fn index_lists(index: &[u8], digest: &str) -> bool {
    #[derive(Deserialize)]
    struct Index {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        manifests: Vec<Desc>,
    }
    #[derive(Deserialize)]
    struct Desc {
        digest: String,
    }
    serde_json::from_slice::<Index>(index).is_ok_and(|i| {
        (i.media_type.is_empty() || INDEX_TYPES.contains(&i.media_type.as_str()))
            && i.manifests.iter().any(|m| m.digest == digest)
    })
}

/// Verify and store `contents` (see the module docs for the checks).
pub fn import(
    contents: &Contents,
    state: &StateDir,
    policy: &Policy,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<ImportReport, OfflineError> {
    let items = &contents.manifest.items;
    let mut outcomes: Vec<ItemOutcome> = items
        .iter()
        .map(|i| ItemOutcome {
            path: i.path.clone(),
            kind: i.kind.clone(),
            subject: i.subject.clone(),
            image: i.image.clone(),
            status: Status::Refused,
            layers: 0,
            refused_layers: 0,
            refusals: Vec::new(),
            note: None,
        })
        .collect();
    // Archive level: every item present and intact.
    let mut intact = vec![false; items.len()];
    for (n, i) in items.iter().enumerate() {
        match contents.members.get(&i.path) {
            None => outcomes[n]
                .refusals
                .push(format!("{}: missing from the bundle", i.path)),
            Some(b) if sha(b) != i.sha256 || b.len() as u64 != i.size => {
                outcomes[n].refusals.push(format!(
                    "{}: content hashes to {} ({} bytes), the manifest says {} ({} bytes): altered after export",
                    i.path,
                    sha(b),
                    b.len(),
                    i.sha256,
                    i.size
                ))
            }
            Some(_) => intact[n] = true,
        }
    }
    // Trust roots first: only the one the operator named by digest.
    let mut accepted_root = false;
    for (n, i) in items.iter().enumerate() {
        if i.kind != item_kind::TRUST_ROOT || !intact[n] {
            continue;
        }
        let name = i.name.as_deref().unwrap_or("");
        let o = &mut outcomes[n];
        if opts.accept_trust_root.as_deref() != Some(i.sha256.as_str()) {
            o.status = Status::Skipped;
            o.note = Some(format!(
                "bundled trust root \"{name}\" ({}) not installed; after checking that digest out of band, pass --accept-trust-root {}",
                i.sha256, i.sha256
            ));
            continue;
        }
        accepted_root = true;
        let root_name = match RootName::parse(name) {
            Ok(r) => r,
            Err(e) => {
                o.refusals.push(format!("{}: {e}", i.path));
                continue;
            }
        };
        let mut tmp = tempfile::NamedTempFile::new().map_err(|source| OfflineError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
        tmp.write_all(&contents.members[&i.path])
            .map_err(|source| OfflineError::Io {
                path: tmp.path().to_path_buf(),
                source,
            })?;
        match crate::trust::import(state, &root_name, tmp.path()) {
            Ok(installed) => {
                o.status = Status::Installed;
                o.note = Some(format!(
                    "trust root \"{root_name}\" installed at {}",
                    installed_path(&installed, state, &root_name)
                ));
                progress(&format!(
                    "installed trust root \"{root_name}\" ({})",
                    i.sha256
                ));
            }
            Err(e) => o.refusals.push(format!("{}: {e}", i.path)),
        }
    }
    if let Some(want) = &opts.accept_trust_root {
        if !accepted_root {
            return Err(OfflineError::Usage(format!(
                "--accept-trust-root {want}: the bundle carries no trust root with that digest; nothing was imported"
            )));
        }
    }
    // Items, verified one by one, each in the verification sandbox (see
    // [`crate::sandbox`]): the child parses the untrusted bytes and returns
    // only which layers passed and the refusals.
    let mut per_subject: BTreeMap<String, Vec<(usize, Artifact, String)>> = BTreeMap::new();
    for (n, i) in items.iter().enumerate() {
        if !intact[n] || i.kind == item_kind::TRUST_ROOT {
            continue;
        }
        let bytes = &contents.members[&i.path];
        let verdict = crate::sandbox::run(|| {
            let images = check_images(contents);
            match check_item(i, bytes, &images, state, policy) {
                Ok(Checked::Index) => Ok(SandboxVerdict::Index),
                Ok(Checked::Artifact { kept, refusals, .. }) => {
                    Ok(SandboxVerdict::Artifact { kept, refusals })
                }
                Err(why) => Err(why),
            }
        })
        .map_err(|e| format!("verification sandbox: {e}"))
        .and_then(|(v, _)| v);
        match verdict {
            Ok(SandboxVerdict::Index) => {
                outcomes[n].status = Status::Checked;
                outcomes[n].note =
                    Some("image index; ties the platform manifest to the image".into());
            }
            Ok(SandboxVerdict::Artifact { kept, refusals }) => {
                outcomes[n].refused_layers = refusals.len();
                outcomes[n].refusals = refusals;
                // The child accepted these bytes as an artifact; keep the
                // layers it verified.
                let Ok(mut artifact) = serde_json::from_slice::<Artifact>(bytes) else {
                    outcomes[n]
                        .refusals
                        .push(format!("{}: not an artifact", i.path));
                    continue;
                };
                artifact.layers = artifact
                    .layers
                    .into_iter()
                    .enumerate()
                    .filter(|(k, _)| kept.contains(k))
                    .map(|(_, l)| l)
                    .collect();
                if artifact.layers.is_empty() {
                    continue;
                }
                outcomes[n].layers = artifact.layers.len();
                let subject = i.subject.clone().unwrap_or_default();
                let repository = i
                    .image
                    .as_deref()
                    .and_then(|r| ImageRef::parse(r).ok())
                    .map(|r| r.repository_name().to_string())
                    .unwrap_or_default();
                per_subject
                    .entry(subject)
                    .or_default()
                    .push((n, artifact, repository));
            }
            Err(why) => outcomes[n].refusals.push(format!("{}: {why}", i.path)),
        }
    }
    for (subject, arts) in per_subject {
        let existing = match state.read(&subject) {
            Ok(e) => e,
            Err(e) => {
                for (n, _, _) in &arts {
                    outcomes[*n].layers = 0;
                    outcomes[*n].refusals.push(format!(
                        "{}: the cached entry for {subject} is unreadable ({e}); nothing was changed (remove that file, then import again)",
                        items[*n].path
                    ));
                }
                continue;
            }
        };
        let mut entry = existing.clone().unwrap_or_else(|| Entry {
            format: ENTRY_FORMAT,
            subject: subject.clone(),
            repository: arts[0].2.clone(),
            fetched_at: String::new(),
            artifacts: Vec::new(),
        });
        let mut changed = Vec::new();
        for (n, art, _) in &arts {
            if merge(&mut entry, art) {
                changed.push(*n);
            }
        }
        if changed.is_empty() {
            for (n, _, _) in &arts {
                outcomes[*n].status = Status::Unchanged;
            }
            continue;
        }
        entry.fetched_at = jiff::Timestamp::now().to_string();
        match state.write(&entry) {
            Ok(p) => {
                progress(&format!("{subject}: cached in {}", p.display()));
                for (n, _, _) in &arts {
                    outcomes[*n].status = if changed.contains(n) {
                        Status::Stored
                    } else {
                        Status::Unchanged
                    };
                }
            }
            Err(e) => {
                for (n, _, _) in &arts {
                    outcomes[*n].layers = 0;
                    outcomes[*n].refusals.push(format!(
                        "{}: not stored: {e}; the previous entry for {subject} is intact",
                        items[*n].path
                    ));
                }
            }
        }
    }
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let refused = outcomes
        .iter()
        .filter(|o| o.status == Status::Refused || o.refused_layers > 0)
        .count();
    Ok(ImportReport {
        source: contents.source.clone(),
        stored: count(Status::Stored),
        unchanged: count(Status::Unchanged),
        refused,
        skipped: count(Status::Skipped),
        items: outcomes,
    })
}

fn installed_path(_i: &crate::trust::Installed, state: &StateDir, name: &RootName) -> String {
    crate::trust::root_path(state, name).display().to_string()
}

/// Add what `art` has that `entry` lacks: a new artifact, or new layers of
/// an artifact already there. Returns whether anything was added.
fn merge(entry: &mut Entry, art: &Artifact) -> bool {
    if let Some(have) = entry
        .artifacts
        .iter_mut()
        .find(|a| a.kind == art.kind && a.manifest_digest == art.manifest_digest)
    {
        let mut added = false;
        for l in &art.layers {
            if !have.layers.iter().any(|h| h.digest == l.digest) {
                have.layers.push(l.clone());
                added = true;
            }
        }
        added
    } else {
        entry.artifacts.push(art.clone());
        true
    }
}

enum Checked {
    Index,
    Artifact {
        /// Indexes of the layers that verified.
        kept: Vec<usize>,
        refusals: Vec<String>,
    },
}

/// What the sandboxed check of one item returns to the parent.
#[derive(Serialize, Deserialize)]
enum SandboxVerdict {
    Index,
    Artifact {
        kept: Vec<usize>,
        refusals: Vec<String>,
    },
}

fn check_item(
    item: &ItemRecord,
    bytes: &[u8],
    images: &BTreeMap<String, Result<ImageCheck, String>>,
    state: &StateDir,
    policy: &Policy,
) -> Result<Checked, String> {
    let image_name = item.image.as_deref().ok_or("no image named")?;
    let subject = item.subject.as_deref().ok_or("no subject digest")?;
    let img = match images.get(image_name) {
        None => {
            return Err(format!(
                "image {image_name} is not among the bundle's images"
            ))
        }
        Some(Err(e)) => return Err(format!("image {image_name}: {e}")),
        Some(Ok(i)) => i,
    };
    if item.kind == item_kind::IMAGE_INDEX {
        if sha(bytes) != subject || img.digests[0] != subject {
            return Err(format!(
                "index does not hash to the image digest {}",
                img.digests[0]
            ));
        }
        return Ok(Checked::Index);
    }
    if ![
        kind::COSIGN_SIGNATURE,
        kind::COSIGN_ATTESTATION,
        kind::SIGSTORE_BUNDLE,
    ]
    .contains(&item.kind.as_str())
    {
        return Err(format!("unknown item kind {:?}", item.kind));
    }
    if !img.digests.iter().any(|d| d == subject) {
        return Err(match &img.platform_problem {
            Some(p) => format!("subject {subject} is not established for {image_name}: {p}"),
            None => format!("subject {subject} is not a digest of {image_name}"),
        });
    }
    let artifact: Artifact =
        serde_json::from_slice(bytes).map_err(|e| format!("not a {} artifact: {e}", item.kind))?;
    if artifact.kind != item.kind {
        return Err(format!(
            "the manifest says {} but the item is a {}",
            item.kind, artifact.kind
        ));
    }
    // The cache's own checks (layer blobs against their digests, limits).
    let probe = Entry {
        format: ENTRY_FORMAT,
        subject: subject.to_string(),
        repository: img.image.repository_name().to_string(),
        fetched_at: String::new(),
        artifacts: vec![artifact.clone()],
    };
    cache::check(&probe).map_err(|e| format!("not a valid cache artifact: {e}"))?;
    let rule = match policy.select(&img.image) {
        Selection::Rule(r) if r.action == Action::Verify => r,
        Selection::Rule(r) => {
            return Err(format!(
                "rule \"{}\" (action {}) does not check signatures of {image_name}: nothing to verify this item against",
                r.name,
                r.action.as_str()
            ))
        }
        Selection::Default(_) => {
            return Err(format!(
                "no rule of {} matches {image_name}: nothing to verify this item against (add a rule with its signers)",
                policy.path.display()
            ))
        }
    };
    let signers = crate::verify::RuleSigners::load(&rule.signers)
        .map_err(|e| format!("rule \"{}\": {e}", rule.name))?;
    let (att_signers, req) =
        crate::verify::rule::provenance_terms(&rule.signers, rule.provenance.as_ref())
            .map_err(|e| format!("rule \"{}\": {e}", rule.name))?;
    let root = crate::verify::rule::LazyTrustRoot::new(crate::gate::trust_root_path(
        state,
        rule.trust_root.as_deref(),
    ));
    let mut trust = || root.get();
    let digests: Vec<&str> = img.digests.iter().map(String::as_str).collect();
    let mut kept = Vec::new();
    let mut refusals = Vec::new();
    for (k, layer) in artifact.layers.iter().enumerate() {
        let one = Entry {
            artifacts: vec![Artifact {
                layers: vec![layer.clone()],
                ..artifact.clone()
            }],
            ..probe.clone()
        };
        let blob = layer.blob();
        let as_signature = artifact.kind == kind::COSIGN_SIGNATURE
            || (artifact.kind == kind::SIGSTORE_BUNDLE
                && crate::verify::is_signature_bundle(&blob));
        let verdict = if as_signature {
            match crate::verify::verify_entries_with(
                std::slice::from_ref(&one),
                &digests,
                &signers,
                &mut trust,
            ) {
                Ok(_) => Ok(()),
                Err(crate::verify::Rejection::NothingCached) => {
                    Err(format!("not a signature (media type {})", layer.media_type))
                }
                Err(crate::verify::Rejection::NoValidSignature { reason, .. }) => {
                    Err(reason.to_string())
                }
            }
        } else {
            match crate::verify::rule::check_provenance(
                std::slice::from_ref(&one),
                &digests,
                &att_signers,
                &req,
                &root,
                jiff::Timestamp::now(),
            ) {
                Ok(_) => Ok(()),
                Err(crate::attestation::ProvenanceRejection::NothingCached) => Err(format!(
                    "not an attestation (media type {})",
                    layer.media_type
                )),
                Err(crate::attestation::ProvenanceRejection::NoneAcceptable { reason, .. }) => {
                    Err(reason.to_string())
                }
            }
        };
        match verdict {
            Ok(()) => kept.push(k),
            Err(why) => refusals.push(format!(
                "{} layer {}: {} (rule \"{}\")",
                item.path,
                crate::digest::short(&layer.digest),
                crate::bundle::one_line(&why),
                rule.name
            )),
        }
    }
    Ok(Checked::Artifact { kept, refusals })
}

/// Assemble import contents from containerd's content store: for each image
/// (as `ctr images ls` names it), its index, and the cosign signature and
/// attestation images (`REPO:sha256-<hex>.sig`, `.att`) and referrers-tag
/// indexes (`REPO:sha256-<hex>`) that `ctr images import` of an OCI layout
/// (or a pull) put there. Reads the content store only; no network.
pub fn from_containerd(
    address: &str,
    namespace: &str,
    images: &[String],
    timeout: std::time::Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Contents, OfflineError> {
    let mut members = BTreeMap::new();
    let mut manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: jiff::Timestamp::now().to_string(),
        images: Vec::new(),
        items: Vec::new(),
    };
    for name in images {
        let target = containerd::lookup_image(address, namespace, name, timeout)?;
        let image =
            ImageRef::parse(name).map_err(|e| OfflineError::Usage(format!("{name}: {e}")))?;
        let reference = image.normalized().to_string();
        // containerd names the imported images after the name given, so the
        // signature images sit next to it under the same repository spelling.
        let repo = name
            .rsplit_once('@')
            .map(|(r, _)| r)
            .unwrap_or(name)
            .to_string();
        let repo = match repo.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r.to_string(),
            _ => repo,
        };
        manifest.images.push(ImageRecord {
            reference: reference.clone(),
            digest: target.target_digest.clone(),
            media_type: target.target_media_type.clone(),
            platform_digest: target.platform_digest.clone(),
        });
        let mut push = |kind: &str, subject: &str, bytes: Vec<u8>| {
            let path = member_name(manifest.items.len());
            manifest.items.push(ItemRecord {
                path: path.clone(),
                kind: kind.into(),
                subject: Some(subject.into()),
                image: Some(reference.clone()),
                name: None,
                size: bytes.len() as u64,
                sha256: sha(&bytes),
            });
            members.insert(path, bytes);
        };
        if target.platform_digest.is_some() {
            let index = containerd::read_content(
                address,
                namespace,
                std::slice::from_ref(&target.target_digest),
                timeout,
            )?
            .remove(0);
            push(item_kind::IMAGE_INDEX, &target.target_digest, index);
        }
        let mut found = 0;
        for d in target.digests() {
            let hex =
                crate::digest::sha256_hex_of(d).map_err(|e| OfflineError::Usage(e.to_string()))?;
            for (suffix, k) in [
                (".sig", kind::COSIGN_SIGNATURE),
                (".att", kind::COSIGN_ATTESTATION),
            ] {
                let tagged = format!("{repo}:sha256-{hex}{suffix}");
                let Some((mdigest, mtype, _)) =
                    containerd::image_record(address, namespace, &tagged, timeout)?
                else {
                    continue;
                };
                if !MANIFEST_TYPES.contains(&mtype.as_str()) {
                    progress(&format!(
                        "{tagged}: media type {mtype} is not a manifest; ignored"
                    ));
                    continue;
                }
                let layers = content_layers(address, namespace, &mdigest, timeout)?;
                let art = Artifact {
                    kind: k.into(),
                    source: format!("containerd:{namespace}/{tagged}"),
                    manifest_digest: mdigest,
                    layers,
                };
                progress(&format!("{tagged}: {} layer(s)", art.layers.len()));
                push(
                    k,
                    d,
                    serde_json::to_vec(&art).map_err(|e| OfflineError::Usage(e.to_string()))?,
                );
                found += 1;
            }
            let tagged = format!("{repo}:sha256-{hex}");
            if let Some((idigest, itype, _)) =
                containerd::image_record(address, namespace, &tagged, timeout)?
            {
                if INDEX_TYPES.contains(&itype.as_str()) {
                    let raw = containerd::read_content(address, namespace, &[idigest], timeout)?
                        .remove(0);
                    for m in referrer_bundles(&raw) {
                        let layers = content_layers(address, namespace, &m, timeout)?;
                        let art = Artifact {
                            kind: kind::SIGSTORE_BUNDLE.into(),
                            source: format!("containerd:{namespace}/{repo}@{m}"),
                            manifest_digest: m,
                            layers,
                        };
                        push(
                            kind::SIGSTORE_BUNDLE,
                            d,
                            serde_json::to_vec(&art)
                                .map_err(|e| OfflineError::Usage(e.to_string()))?,
                        );
                        found += 1;
                    }
                }
            }
        }
        progress(&format!(
            "{reference}: {found} artifact(s) in containerd's content store"
        ));
        if found == 0 {
            return Err(OfflineError::Usage(format!(
                "containerd (namespace {namespace}) holds no signature images for {name} ({repo}:sha256-<hex>.sig/.att); import the OCI layout that carries them with `ctr images import --no-unpack --base-name {repo} FILE`"
            )));
        }
    }
    Ok(Contents {
        source: format!("containerd:{namespace}"),
        manifest,
        members,
    })
}

/// Manifest digests of the Sigstore bundles a referrers index lists.
fn referrer_bundles(index: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Index {
        manifests: Vec<Desc>,
    }
    #[derive(Deserialize)]
    struct Desc {
        digest: String,
        #[serde(rename = "artifactType")]
        artifact_type: Option<String>,
    }
    serde_json::from_slice::<Index>(index)
        .map(|i| {
            i.manifests
                .into_iter()
                .filter(|m| {
                    m.artifact_type
                        .as_deref()
                        .is_some_and(|t| crate::formats::referrers::BUNDLE_MEDIA_TYPES.contains(&t))
                })
                .take(crate::formats::referrers::MAX_REFERRERS)
                .map(|m| m.digest)
                .collect()
        })
        .unwrap_or_default()
}

/// The layers of a manifest in the content store, as cache layers.
fn content_layers(
    address: &str,
    namespace: &str,
    manifest_digest: &str,
    timeout: std::time::Duration,
) -> Result<Vec<Layer>, OfflineError> {
    #[derive(Deserialize)]
    struct M {
        layers: Vec<D>,
    }
    #[derive(Deserialize)]
    struct D {
        #[serde(rename = "mediaType")]
        media_type: String,
        digest: String,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let raw =
        containerd::read_content(address, namespace, &[manifest_digest.to_string()], timeout)?
            .remove(0);
    let m: M = serde_json::from_slice(&raw).map_err(|e| {
        OfflineError::Usage(format!("manifest {manifest_digest} in containerd: {e}"))
    })?;
    // Only the newest cache::MAX_LAYERS layers are examined (a `.sig` gains one per signing).
    let skipped = cache::newest_layers(&m.layers).1;
    let mut m = m;
    m.layers.drain(..skipped);
    let digests: Vec<String> = m.layers.iter().map(|l| l.digest.clone()).collect();
    let blobs = containerd::read_content(address, namespace, &digests, timeout)?;
    Ok(m.layers
        .into_iter()
        .zip(blobs)
        .map(|(d, b)| Layer::new(&d.media_type, d.annotations, &b))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn contents_with(items: Vec<(ItemRecord, Vec<u8>)>, images: Vec<ImageRecord>) -> Contents {
        let mut members = BTreeMap::new();
        let mut recs = Vec::new();
        for (r, b) in items {
            members.insert(r.path.clone(), b);
            recs.push(r);
        }
        Contents {
            source: "test".into(),
            manifest: Manifest {
                format: FORMAT.into(),
                version: VERSION,
                created_at: "2026-11-25T00:00:00Z".into(),
                images,
                items: recs,
            },
            members,
        }
    }

    fn policy(dir: &Path) -> Policy {
        let key = dir.join("k.pub");
        let kp = sigstore_verify::crypto::KeyPair::generate_ecdsa_p256().unwrap();
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .encode(kp.public_key_der().unwrap().as_bytes())
        };
        std::fs::write(
            &key,
            format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n"),
        )
        .unwrap();
        Policy::parse(
            &format!(
                "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"demo\"\nimages = [\"127.0.0.1:5000/demo/*\"]\n[[rule.signer]]\nkey = \"{}\"\n",
                key.display()
            ),
            &dir.join("policy.toml"),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_of_the_file_format() {
        let dir = tempfile::tempdir().unwrap();
        let c = contents_with(
            vec![(
                ItemRecord {
                    path: member_name(0),
                    kind: item_kind::IMAGE_INDEX.into(),
                    subject: Some(d(1)),
                    image: Some("127.0.0.1:5000/demo/a:1".into()),
                    name: None,
                    size: 2,
                    sha256: sha(b"{}"),
                },
                b"{}".to_vec(),
            )],
            vec![],
        );
        let out = dir.path().join("b.tar");
        let report = write(&c, &out).unwrap();
        assert_eq!(report.items.len(), 1);
        let back = read(&out).unwrap();
        assert_eq!(back.manifest, c.manifest);
        assert_eq!(back.members, c.members);
    }

    #[test]
    fn unknown_members_versions_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tar");
        std::fs::write(&p, b"not a tar at all, just bytes").unwrap();
        assert!(matches!(read(&p), Err(OfflineError::BadBundle { .. })));
        // a member outside the layout
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("../etc/passwd").ok();
        h.set_size(1);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        std::fs::write(&p, b.into_inner().unwrap()).unwrap();
        assert!(read(&p).is_err());
        // a future version
        let mut b = tar::Builder::new(Vec::new());
        let m = format!("{{\"format\":\"{FORMAT}\",\"version\":2}}");
        let mut h = tar::Header::new_ustar();
        h.set_path(MANIFEST_PATH).unwrap();
        h.set_size(m.len() as u64);
        h.set_cksum();
        b.append(&h, m.as_bytes()).unwrap();
        std::fs::write(&p, b.into_inner().unwrap()).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("version"), "{e}");
        assert!(valid_member_path("items/0001.json"));
        assert!(!valid_member_path("items/../x.json"));
        assert!(!valid_member_path("items/0001.json/"));
    }

    #[test]
    fn altered_items_and_unverifiable_ones_are_refused_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let pol = policy(dir.path());
        let subject = d(7);
        // an existing entry must survive whatever the bundle holds
        let old = Entry {
            format: ENTRY_FORMAT,
            subject: subject.clone(),
            repository: "127.0.0.1:5000/demo/a".into(),
            fetched_at: "2026-01-01T00:00:00Z".into(),
            artifacts: vec![Artifact {
                kind: kind::COSIGN_SIGNATURE.into(),
                source: "s".into(),
                manifest_digest: d(9),
                layers: vec![Layer::new("x", BTreeMap::new(), b"old")],
            }],
        };
        state.write(&old).unwrap();
        let art = Artifact {
            kind: kind::COSIGN_SIGNATURE.into(),
            source: "s".into(),
            manifest_digest: d(8),
            layers: vec![Layer::new(
                crate::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                BTreeMap::new(),
                b"{}",
            )],
        };
        let bytes = serde_json::to_vec(&art).unwrap();
        let rec = |n: usize, image: &str, sha256: String| ItemRecord {
            path: member_name(n),
            kind: kind::COSIGN_SIGNATURE.into(),
            subject: Some(subject.clone()),
            image: Some(image.into()),
            name: None,
            size: bytes.len() as u64,
            sha256,
        };
        let images = vec![
            ImageRecord {
                reference: "127.0.0.1:5000/demo/a:1".into(),
                digest: subject.clone(),
                media_type: MANIFEST_TYPES[0].into(),
                platform_digest: None,
            },
            ImageRecord {
                reference: "127.0.0.1:5000/other/b:1".into(),
                digest: subject.clone(),
                media_type: MANIFEST_TYPES[0].into(),
                platform_digest: None,
            },
        ];
        let c = contents_with(
            vec![
                // altered after export
                (
                    rec(0, "127.0.0.1:5000/demo/a:1", sha(b"other")),
                    bytes.clone(),
                ),
                // intact, but no valid signature
                (
                    rec(1, "127.0.0.1:5000/demo/a:1", sha(&bytes)),
                    bytes.clone(),
                ),
                // intact, but no rule verifies this image
                (
                    rec(2, "127.0.0.1:5000/other/b:1", sha(&bytes)),
                    bytes.clone(),
                ),
            ],
            images,
        );
        let r = import(&c, &state, &pol, &ImportOptions::default(), &mut |_| {}).unwrap();
        assert_eq!(r.refused, 3, "{r:?}");
        assert!(r.items[0].refusals[0].contains("altered"), "{r:?}");
        assert!(r.items[1].refusals[0].contains("rule \"demo\""), "{r:?}");
        assert!(r.items[2].refusals[0].contains("no rule"), "{r:?}");
        assert_eq!(state.read(&subject).unwrap().unwrap(), old);
    }

    #[test]
    fn platform_digests_need_the_index_that_lists_them() {
        let index = format!(
            "{{\"mediaType\":\"{}\",\"manifests\":[{{\"digest\":\"{}\"}}]}}",
            INDEX_TYPES[0],
            d(2)
        );
        let idx_digest = sha(index.as_bytes());
        let img = |p: String| ImageRecord {
            reference: "127.0.0.1:5000/demo/a:1".into(),
            digest: idx_digest.clone(),
            media_type: INDEX_TYPES[0].into(),
            platform_digest: Some(p),
        };
        let idx_item = ItemRecord {
            path: member_name(0),
            kind: item_kind::IMAGE_INDEX.into(),
            subject: Some(idx_digest.clone()),
            image: Some("127.0.0.1:5000/demo/a:1".into()),
            name: None,
            size: index.len() as u64,
            sha256: idx_digest.clone(),
        };
        let c = contents_with(
            vec![(idx_item.clone(), index.clone().into_bytes())],
            vec![img(d(2))],
        );
        let checks = check_images(&c);
        let ok = checks["127.0.0.1:5000/demo/a:1"].as_ref().unwrap();
        assert_eq!(ok.digests, vec![idx_digest.clone(), d(2)]);
        let c = contents_with(vec![(idx_item, index.into_bytes())], vec![img(d(3))]);
        let checks = check_images(&c);
        let bad = checks["127.0.0.1:5000/demo/a:1"].as_ref().unwrap();
        assert_eq!(bad.digests, vec![idx_digest]);
        assert!(bad
            .platform_problem
            .as_ref()
            .unwrap()
            .contains("does not list"));
    }

    #[test]
    fn merge_is_a_union_and_idempotent() {
        let mut e = Entry {
            format: ENTRY_FORMAT,
            subject: d(1),
            repository: "r".into(),
            fetched_at: String::new(),
            artifacts: vec![],
        };
        let a = Artifact {
            kind: kind::COSIGN_SIGNATURE.into(),
            source: "s".into(),
            manifest_digest: d(2),
            layers: vec![Layer::new("m", BTreeMap::new(), b"1")],
        };
        assert!(merge(&mut e, &a));
        assert!(!merge(&mut e, &a));
        let mut b = a.clone();
        b.layers = vec![Layer::new("m", BTreeMap::new(), b"2")];
        assert!(merge(&mut e, &b));
        assert_eq!(e.artifacts.len(), 1);
        assert_eq!(e.artifacts[0].layers.len(), 2);
    }
}
