//! Where pulled policies are installed: `policy/` under the state directory.
//!
//! This module owns that layout and the atomic swap. Each release is a
//! directory `policy/releases/<serial>-<hex12>/` holding `policy.toml`, its
//! `files/` and `release.json` (what was installed, from where, when). It is
//! written under a temporary name, every file and directory fsynced, then
//! renamed into place; `policy/current` is a symlink to the release in force,
//! replaced by `rename(2)` of a new symlink, then the directory is fsynced.
//! A crash leaves the old release in force or the new one, never a mix: the
//! record of what is installed is the `release.json` *inside* the release
//! `current` points to, so it cannot disagree with it. The gate reads
//! `policy/current/policy.toml`; [`crate::policy::Policy::load`] resolves
//! the link once, so the policy and the files it names come from one
//! release even while a swap happens. Releases are immutable once in place;
//! the newest [`DEFAULT_KEEP`] (and always the current one) are kept.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cache::StateDir;

/// The folder under the state directory.
pub const POLICY_DIR: &str = "policy";
/// The symlink naming the release in force.
pub const CURRENT: &str = "current";
/// The folder of releases.
pub const RELEASES: &str = "releases";
/// The record inside each release.
pub const RELEASE_RECORD: &str = "release.json";
/// Where a node's policy source file is unless `--source` says otherwise.
pub const DEFAULT_SOURCE: &str = "/etc/portcullis/policy-source.toml";
/// Releases kept unless the source file says otherwise.
pub const DEFAULT_KEEP: usize = 5;

/// Errors installing or reading the installed policy.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system step failed.
    #[error("policy store {path}: {what}: {source}; check that the state directory is writable")]
    Io {
        /// Where.
        path: PathBuf,
        /// Which step.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// Another `policy pull` holds the lock.
    #[error("another `portcullis policy pull` is installing into {0}; wait for it and retry")]
    Busy(PathBuf),
    /// The record of the release in force is unreadable.
    #[error(
        "installed policy record {path} is unreadable: {why}; run `portcullis policy pull` again"
    )]
    Record {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// What was installed (`release.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Release {
    /// The artifact's serial.
    pub serial: u64,
    /// The artifact's manifest digest (what the signature covers).
    pub digest: String,
    /// `sha256:<hex>` of its `policy.toml`.
    pub policy_digest: String,
    /// Where it came from (a reference, or `file:<path>`).
    pub source: String,
    /// Who signed it, as verification named the signer.
    pub signer: String,
    /// When it was published (RFC 3339).
    pub created: String,
    /// When it expires (RFC 3339).
    pub expires: String,
    /// When this node installed it (RFC 3339).
    pub installed_at: String,
}

impl Release {
    /// The release directory's name: `<serial>-<first 12 hex of digest>`.
    pub fn dir_name(&self) -> String {
        let hex = crate::digest::sha256_hex_of(&self.digest).unwrap_or("unknown");
        format!("{:020}-{}", self.serial, &hex[..hex.len().min(12)])
    }
}

/// The pulled release a policy file belongs to: `release.json` beside the
/// file the path resolves to, when there is one. `None` for a policy placed
/// by hand.
pub fn release_of(policy_path: &Path) -> Option<Release> {
    let real = std::fs::canonicalize(policy_path).ok()?;
    let record = real.parent()?.join(RELEASE_RECORD);
    let bytes = crate::base::fsio::read_bounded(&record, 64 * 1024).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// The policy store of a state directory.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    root: PathBuf,
}

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { path, what, source }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "fsync the directory"))
}

impl PolicyStore {
    /// The store under `state`.
    pub fn new(state: &StateDir) -> Self {
        Self {
            root: state.root().join(POLICY_DIR),
        }
    }

    /// `policy/` itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path the gate should read: `policy/current/policy.toml`.
    pub fn policy_path(&self) -> PathBuf {
        self.root
            .join(CURRENT)
            .join(crate::formats::policy_artifact::POLICY_FILE)
    }

    /// The release in force, if any (read through `current`).
    pub fn installed(&self) -> Result<Option<Release>, StoreError> {
        let record = self.root.join(CURRENT).join(RELEASE_RECORD);
        match crate::base::fsio::read_bounded(&record, 64 * 1024) {
            Ok(Some(bytes)) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Record {
                        path: record,
                        why: e.to_string(),
                    })
            }
            Ok(None) => Err(StoreError::Record {
                path: record,
                why: "too large".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Record {
                path: record,
                why: e.to_string(),
            }),
        }
    }

    /// Take the store's lock (held until the value is dropped); refuses at
    /// once when another pull holds it.
    pub fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, StoreError> {
        std::fs::create_dir_all(&self.root).map_err(io(&self.root, "create"))?;
        let path = self.root.join(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path, "open the lock"))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| StoreError::Busy(self.root.clone()))
    }

    /// Install `files` (relative paths, already checked) as the release
    /// described by `release`, then make it current. Returns its directory.
    pub fn install(
        &self,
        release: &Release,
        files: &[crate::formats::policy_artifact::File],
        keep: usize,
    ) -> Result<PathBuf, StoreError> {
        let releases = self.root.join(RELEASES);
        std::fs::create_dir_all(&releases).map_err(io(&releases, "create"))?;
        let name = release.dir_name();
        let dest = releases.join(&name);
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&releases)
            .map_err(io(&releases, "create a temporary directory"))?;
        let mut record = serde_json::to_vec_pretty(release).unwrap_or_default();
        record.push(b'\n');
        let all = files
            .iter()
            .map(|f| (f.path.as_str(), f.bytes.as_slice()))
            .chain(std::iter::once((RELEASE_RECORD, record.as_slice())));
        let mut dirs = vec![tmp.path().to_path_buf()];
        for (rel, bytes) in all {
            let path = tmp.path().join(rel);
            if let Some(parent) = path.parent() {
                if !dirs.iter().any(|d| d == parent) {
                    std::fs::create_dir_all(parent).map_err(io(parent, "create"))?;
                    dirs.push(parent.to_path_buf());
                }
            }
            let mut f = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o644)
                .open(&path)
                .map_err(io(&path, "create"))?;
            f.write_all(bytes).map_err(io(&path, "write"))?;
            f.sync_all().map_err(io(&path, "fsync"))?;
        }
        for d in dirs.iter().rev() {
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io(d, "chmod"))?;
            sync_dir(d)?;
        }
        if dest.exists() {
            // The same serial and digest were installed before: releases
            // are complete once renamed into place, and never changed.
            drop(tmp);
        } else {
            let tmp_path = tmp.keep();
            if let Err(e) = std::fs::rename(&tmp_path, &dest) {
                let _ = std::fs::remove_dir_all(&tmp_path);
                return Err(io(&dest, "rename into place")(e));
            }
            sync_dir(&releases)?;
        }
        self.point_current(&name)?;
        self.prune(keep);
        Ok(dest)
    }

    /// Make `current` name `releases/<name>` by renaming a new symlink over it.
    fn point_current(&self, name: &str) -> Result<(), StoreError> {
        let target = Path::new(RELEASES).join(name);
        let link = self.root.join(format!(".current-{}", std::process::id()));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).map_err(io(&link, "create the symlink"))?;
        let current = self.root.join(CURRENT);
        if let Err(e) = std::fs::rename(&link, &current) {
            let _ = std::fs::remove_file(&link);
            return Err(io(&current, "swap the symlink")(e));
        }
        sync_dir(&self.root)
    }

    /// The release `current` points to (its directory name).
    pub fn current_name(&self) -> Option<String> {
        let t = std::fs::read_link(self.root.join(CURRENT)).ok()?;
        t.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// Every release directory name, oldest first (names sort by serial).
    pub fn releases(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join(RELEASES))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// Remove all but the newest `keep` releases (never the current one)
    /// and any temporary directory left by a crash. Best effort.
    fn prune(&self, keep: usize) {
        let current = self.current_name();
        let names = self.releases();
        let excess = names.len().saturating_sub(keep.max(1));
        for n in names.iter().take(excess) {
            if Some(n) != current.as_ref() {
                let _ = std::fs::remove_dir_all(self.root.join(RELEASES).join(n));
            }
        }
        for e in std::fs::read_dir(self.root.join(RELEASES))
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        // A symlink a crash left before its rename (the lock is held).
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(".current-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::policy_artifact::File;

    fn release(serial: u64, d: u8) -> Release {
        Release {
            serial,
            digest: crate::base::testing::digest(d),
            policy_digest: crate::base::testing::digest(9),
            source: "r.io/p:1".into(),
            signer: "key:k".into(),
            created: "2026-01-01T00:00:00Z".into(),
            expires: "2030-01-01T00:00:00Z".into(),
            installed_at: "2026-01-01T00:00:01Z".into(),
        }
    }

    fn files(text: &str) -> Vec<File> {
        vec![
            File {
                path: "policy.toml".into(),
                bytes: text.as_bytes().to_vec(),
            },
            File {
                path: "files/k.pub".into(),
                bytes: b"key".to_vec(),
            },
        ]
    }

    #[test]
    fn installs_swaps_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let store = PolicyStore::new(&StateDir::new(dir.path()));
        assert_eq!(store.installed().unwrap(), None);
        let _lock = store.lock().unwrap();
        assert!(matches!(store.lock(), Err(StoreError::Busy(_))));
        for s in 1..=7u64 {
            store
                .install(&release(s, s as u8), &files(&format!("# {s}\n")), 3)
                .unwrap();
            let got = store.installed().unwrap().unwrap();
            assert_eq!(got.serial, s);
            assert_eq!(
                std::fs::read_to_string(store.policy_path()).unwrap(),
                format!("# {s}\n")
            );
            assert_eq!(
                std::fs::read(store.root().join("current/files/k.pub")).unwrap(),
                b"key"
            );
        }
        let names = store.releases();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names
            .last()
            .unwrap()
            .starts_with("00000000000000000007-0707"));
        // Reinstalling the same release is harmless.
        store.install(&release(7, 7), &files("# 7\n"), 3).unwrap();
        assert_eq!(store.releases().len(), 3);
        // No temporary names are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(store.root())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".current-") || n.starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_crash_before_either_rename_leaves_the_old_release_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let store = PolicyStore::new(&StateDir::new(dir.path()));
        store.install(&release(1, 1), &files("# 1\n"), 3).unwrap();
        // What a crash leaves: a half-written release under its temporary
        // name, and a new symlink not yet renamed over `current`.
        let tmp = store.root().join("releases/.tmp-crashed");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("policy.toml"), "# half").unwrap();
        std::os::unix::fs::symlink("releases/.tmp-crashed", store.root().join(".current-1"))
            .unwrap();
        assert_eq!(store.installed().unwrap().unwrap().serial, 1);
        assert_eq!(
            std::fs::read_to_string(store.policy_path()).unwrap(),
            "# 1\n"
        );
        assert_eq!(
            store.releases().len(),
            1,
            "temporary names are not releases"
        );
        // The next install cleans both up.
        store.install(&release(2, 2), &files("# 2\n"), 3).unwrap();
        assert!(!tmp.exists());
        assert!(std::fs::symlink_metadata(store.root().join(".current-1")).is_err());
        assert_eq!(store.installed().unwrap().unwrap().serial, 2);
    }

    #[test]
    fn a_policy_loaded_through_current_reads_keys_from_its_own_release() {
        let dir = tempfile::tempdir().unwrap();
        let store = PolicyStore::new(&StateDir::new(dir.path()));
        let text = "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"a\"\nimages = [\"r.io/**\"]\n[[rule.signer]]\nkey = \"files/k.pub\"\n";
        store.install(&release(1, 1), &files(text), 3).unwrap();
        let p = crate::policy::Policy::load(&store.policy_path()).unwrap();
        store.install(&release(2, 2), &files(text), 3).unwrap();
        let crate::policy::Signer::Key { path, .. } = &p.rules()[0].signers[0] else {
            panic!("key signer")
        };
        assert!(
            path.starts_with(dir.path().canonicalize().unwrap().join("policy/releases")),
            "{}",
            path.display()
        );
        assert!(path.to_string_lossy().contains("00000000000000000001-"));
        assert_eq!(
            p.path,
            store.policy_path(),
            "the path shown stays the one asked for"
        );
    }
}
