//! The content-addressed archive of the policy files and trust roots the
//! gate used (`policies/`, `trust-roots/` under the state directory), so an
//! evidence pack can name the exact bytes a verdict was made under.

use std::path::{Path, PathBuf};

use crate::state::cache::StateDir;

/// Directory (under the state directory) of archived policy versions.
pub const POLICY_ARCHIVE: &str = "policies";
/// Directory (under the state directory) of archived trust roots.
pub const TRUST_ARCHIVE: &str = "trust-roots";

/// Where the archived copy of `digest` (`sha256:<hex>`) lives.
pub fn archived(state: &StateDir, dir: &str, digest: &str, ext: &str) -> Option<PathBuf> {
    let hex = crate::digest::sha256_hex_of(digest).ok()?;
    Some(state.root().join(dir).join(format!("sha256-{hex}.{ext}")))
}

/// Write `bytes` as `dir/sha256-<hex>.<ext>` unless present; `Some(path)` when written.
pub fn store(dir: &Path, bytes: &[u8], ext: &str) -> std::io::Result<Option<PathBuf>> {
    let path = dir.join(format!("sha256-{}.{ext}", crate::digest::sha256_hex(bytes)));
    if path.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(Some(path)),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e.error),
    }
}
