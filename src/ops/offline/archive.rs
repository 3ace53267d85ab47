//! The bundle file: a POSIX tar archive written from a bundle's contents and
//! read back bounded ([`MAX_BUNDLE_BYTES`], [`MAX_MEMBER_BYTES`],
//! [`MAX_ITEMS`]), accepting only the member paths of the format.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::error::OfflineError;
use super::export::ExportReport;
use super::manifest::{
    sha, Contents, Manifest, FORMAT, MANIFEST_PATH, MAX_BUNDLE_BYTES, MAX_ITEMS, MAX_MEMBER_BYTES,
    VERSION,
};

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

pub(super) fn valid_member_path(name: &str) -> bool {
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
