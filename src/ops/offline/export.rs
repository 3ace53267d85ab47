//! Export, `portcullis bundle export`: the cache documents (and trust roots)
//! of the images asked for, assembled into a bundle's contents.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::cache::StateDir;
use crate::containerd::ImageTarget;
use crate::policy::{Action, Policy, Selection};
use crate::reference::ImageRef;
use crate::trust::RootName;

use super::error::OfflineError;
use super::manifest::{
    item_kind, member_name, sha, Contents, ImageRecord, ItemRecord, Manifest, FORMAT, VERSION,
};

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
