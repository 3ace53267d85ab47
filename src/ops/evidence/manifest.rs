//! The pack's files: writing a file under the pack, listing them, and
//! `MANIFEST.sha256` (the `sha256sum -c` format), written and checked.

use std::collections::BTreeSet;
use std::path::Path;

use super::error::{rerr, werr, EvidenceError};
use super::model::MANIFEST;

// ------------------------------------------------------------------ files

pub(super) fn rel_hex(digest: &str) -> Option<&str> {
    crate::digest::sha256_hex_of(digest).ok()
}

pub(super) fn write_file(dir: &Path, rel: &str, bytes: &[u8]) -> Result<(), EvidenceError> {
    let path = dir.join(rel);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(werr(p))?;
    }
    std::fs::write(&path, bytes).map_err(werr(&path))
}

/// Every regular file under `dir`, relative, sorted (the manifest excluded).
pub fn pack_files(dir: &Path) -> Result<Vec<String>, EvidenceError> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) -> Result<(), EvidenceError> {
        for e in std::fs::read_dir(d).map_err(rerr(d))? {
            let e = e.map_err(rerr(d))?;
            let p = e.path();
            let ft = e.file_type().map_err(rerr(&p))?;
            if ft.is_dir() {
                walk(base, &p, out)?;
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                if rel != MANIFEST {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Write `MANIFEST.sha256` for every file of the pack.
pub fn write_manifest(dir: &Path) -> Result<usize, EvidenceError> {
    let files = pack_files(dir)?;
    let mut text = String::new();
    for f in &files {
        let p = dir.join(f);
        let bytes = std::fs::read(&p).map_err(rerr(&p))?;
        text.push_str(&format!("{}  {f}\n", crate::digest::sha256_hex(&bytes)));
    }
    write_file(dir, MANIFEST, text.as_bytes())?;
    Ok(files.len())
}

/// Check the manifest: every listed file present with its digest, no file unlisted.
pub fn check_manifest(dir: &Path) -> Result<(usize, Vec<String>), EvidenceError> {
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(|e| EvidenceError::NotAPack {
        path: dir.to_path_buf(),
        why: format!("{MANIFEST}: {e}"),
    })?;
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let Some((hex, name)) = line.split_once("  ") else {
            problems.push(format!("{MANIFEST} line {}: not `<sha256>  <path>`", n + 1));
            continue;
        };
        if name.split('/').any(|c| c == ".." || c.is_empty()) || name.starts_with('/') {
            problems.push(format!(
                "{MANIFEST} line {}: path {name:?} leaves the pack",
                n + 1
            ));
            continue;
        }
        listed.insert(name.to_string());
        match std::fs::read(dir.join(name)) {
            Ok(b) if crate::digest::sha256_hex(&b) == hex => {}
            Ok(_) => problems.push(format!(
                "{name}: SHA-256 differs from the manifest (the file was changed)"
            )),
            Err(e) => problems.push(format!("{name}: listed in the manifest but {e}")),
        }
    }
    for f in pack_files(dir)? {
        if !listed.contains(&f) {
            problems.push(format!("{f}: in the pack but not in the manifest"));
        }
    }
    Ok((listed.len(), problems))
}
