//! The chain IDs of image manifests this node has resolved.
//!
//! This module owns `chains/<hex>` in the state directory: for a manifest
//! digest `sha256:<hex>`, the chain ID of its layers (what the rootfs of a
//! container of that image has as its snapshot parent). A chain ID is a pure
//! function of the manifest digest (the manifest and its config are
//! content-addressed), so an entry never goes stale; the start path reads it
//! instead of two content-store round trips. An entry that is not exactly one
//! `sha256:` digest, is a symlink or is too large is ignored (the chain ID is
//! read from containerd again and the entry rewritten), never trusted; writes
//! are atomic and their failure only costs the round trips next time.

use std::path::PathBuf;

use super::cache::StateDir;

/// Largest entry read, in bytes (`sha256:` and 64 hex digits, with room).
const MAX_BYTES: u64 = 128;

fn path(state: &StateDir, manifest: &str) -> Option<PathBuf> {
    let hex = crate::digest::sha256_hex_of(manifest).ok()?;
    Some(state.root().join("chains").join(hex))
}

/// The chain ID recorded for `manifest`, if a well-formed one is.
pub fn get(state: &StateDir, manifest: &str) -> Option<String> {
    let p = path(state, manifest)?;
    let opts = crate::base::fsio::ReadOptions::bounded(MAX_BYTES).no_symlink();
    let bytes = crate::base::fsio::read(&p, opts).ok()?;
    let chain = std::str::from_utf8(&bytes).ok()?;
    crate::digest::sha256_hex_of(chain).ok()?;
    Some(chain.to_string())
}

/// Record `chain` as the chain ID of `manifest` (best effort).
pub fn put(state: &StateDir, manifest: &str, chain: &str) {
    let Some(p) = path(state, manifest) else {
        return;
    };
    if crate::digest::sha256_hex_of(chain).is_err() {
        return;
    }
    let Some(dir) = p.parent() else { return };
    let _ = std::fs::create_dir_all(dir).and_then(|()| {
        crate::base::fsio::write_atomic(
            &p,
            chain.as_bytes(),
            crate::base::fsio::Durability::BestEffort,
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::digest as d;

    #[test]
    fn round_trip_and_bad_entries_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        assert_eq!(get(&s, &d(1)), None);
        put(&s, &d(1), &d(2));
        assert_eq!(get(&s, &d(1)), Some(d(2)));
        // not a digest: neither written nor read
        put(&s, "sha256:short", &d(2));
        put(&s, &d(3), "garbage");
        assert_eq!(get(&s, &d(3)), None);
        assert_eq!(get(&s, "../../etc/passwd"), None);
        let p = path(&s, &d(1)).unwrap();
        for bad in [
            &b"garbage"[..],
            b"",
            &[0u8; 71][..],
            format!("{}\n", d(2)).as_bytes(),
        ] {
            std::fs::write(&p, bad).unwrap();
            assert_eq!(get(&s, &d(1)), None);
        }
        std::fs::remove_file(&p).unwrap();
        std::fs::write(dir.path().join("elsewhere"), d(2)).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &p).unwrap();
        assert_eq!(get(&s, &d(1)), None);
    }
}
