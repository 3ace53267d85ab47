//! Import, `portcullis bundle import`: every item checked on the way in
//! against its image's digests and its rule's signers, what passes merged
//! into the cache (a union), a bundled trust root installed only when
//! accepted by digest; and the per-item report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cache::{Artifact, Entry, StateDir, ENTRY_FORMAT};
use crate::containerd::INDEX_TYPES;
use crate::policy::Policy;
use crate::reference::ImageRef;
use crate::trust::RootName;

use super::archive::read;
use super::check::{check_item, Checked, ImageCheck, SandboxVerdict};
use super::error::OfflineError;
use super::manifest::{item_kind, sha, Contents};

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

pub(super) fn check_images(contents: &Contents) -> BTreeMap<String, Result<ImageCheck, String>> {
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
pub(super) fn merge(entry: &mut Entry, art: &Artifact) -> bool {
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
