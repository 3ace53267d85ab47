//! The node's Sigstore trust roots (`trusted_root.json`), in the state directory.
//!
//! This module owns the `trust/` part of the state directory layout and the
//! three ways a root gets there:
//!
//! - `trust/trusted_root.json` ([`crate::bundle::CACHED_TRUST_ROOT`]) is the
//!   default root, used when a policy rule names none;
//! - `trust/<name>/trusted_root.json` is a named root: `public-good`,
//!   `staging`, or any operator name of lowercase letters, digits and `-`;
//! - `trust/tuf/<name>/` (`default` for the default root) is the TUF client's
//!   metadata cache for that root. It is what makes rollback protection last
//!   across runs: the client seeds its version floors from it and refuses
//!   timestamp, snapshot or targets metadata older than what it has trusted.
//!
//! [`update`] refreshes a root through TUF from Sigstore's public-good or
//! staging repository (their TUF roots are embedded in `sigstore-trust-root`)
//! or from a private mirror whose TUF `root.json` the operator pins. Every TUF
//! check (signature thresholds, root rotation, rollback, expiry, target length
//! and hash) is the sigstore-rust family's (`sigstore-trust-root` over
//! `sigstore-tuf`); nothing of the kind is written here. [`import`] installs a
//! root from a file, for nodes without network. Either way the new root must
//! load as the gate would load it ([`crate::bundle::TrustRoot::from_json`])
//! before it replaces anything, and it replaces the old file with one atomic
//! `rename`: a refused or failed update leaves the cached root as it was.
//!
//! The shim reads these files only ([`load`]); it never calls [`update`], and
//! nothing here is reached at container start.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sigstore_trust_root::{TrustedRoot, TufConfig};

use crate::bundle::{hex, one_line, TrustRoot, MAX_TRUST_ROOT_BYTES};
use crate::cache::StateDir;
pub use crate::state::trust_names::{
    root_path, tuf_cache_dir, NameError, RootName, DEFAULT, MAX_NAME_LEN, ROOT_FILE,
};

/// The name of Sigstore's public-good instance's root.
pub const PUBLIC_GOOD: &str = "public-good";
/// The name of Sigstore's staging instance's root.
pub const STAGING: &str = "staging";
/// How long one `update` may take, network included.
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(180);

/// Errors reading, importing or updating a trust root. Every message is one
/// line and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A root name that is not `[a-z0-9-]+` or is reserved.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Nothing is cached under this name.
    #[error("no trust root {name:?} cached at {}; run `portcullis trust update{}` (or `portcullis trust import{} FILE` offline)", path.display(), name_flag(name), name_flag(name))]
    NotCached {
        /// The root's name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The cached root exists but cannot be used.
    #[error("cached trust root {name:?} at {} is not usable: {why}; replace it with `portcullis trust update{}` or `portcullis trust import{} FILE`", path.display(), name_flag(name), name_flag(name))]
    Corrupt {
        /// The root's name.
        name: String,
        /// Its file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An I/O error on a named file.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `create the directory`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The candidate root (a file to import, or what TUF delivered) cannot
    /// be used; the cached root was not touched.
    #[error("refusing trust root from {from}: {why}; {kept}")]
    Refused {
        /// Where the candidate came from.
        from: String,
        /// What is wrong with it.
        why: String,
        /// What became of the cached root (`PATH was left unchanged`).
        kept: String,
    },
    /// The well-known names only take their own repository.
    #[error("trust root {name:?} is only updated from Sigstore's {name} TUF repository; drop --staging/--mirror, or pick another --name")]
    SourceMismatch {
        /// The root's name.
        name: String,
    },
    /// An operator-named root has no repository of its own.
    #[error("trust root {name:?} has no well-known TUF repository; pass --mirror URL --root FILE (or --staging)")]
    NoSource {
        /// The root's name.
        name: String,
    },
    /// A mirror URL that is neither `https://` nor plain HTTP on loopback.
    #[error("TUF mirror {url:?} is not usable: {why}")]
    Mirror {
        /// The URL given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The pinned TUF `root.json` of a mirror cannot be read.
    #[error("cannot read the mirror's pinned TUF root {}: {source}", path.display())]
    PinnedRoot {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TUF client refused the repository or could not reach it.
    #[error("TUF update from {url} failed: {why}; {kept}")]
    Tuf {
        /// The repository.
        url: String,
        /// The client's reason (rollback, expiry, signatures, network…).
        why: String,
        /// What became of the cached root (`PATH was left unchanged`).
        kept: String,
    },
    /// The update did not finish in time.
    #[error("TUF update from {url} did not finish within {secs}s; {kept}")]
    Timeout {
        /// The repository.
        url: String,
        /// The limit.
        secs: u64,
        /// What became of the cached root (`PATH was left unchanged`).
        kept: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(String),
}

impl TrustError {
    /// Whether the error is a refusal of the root itself (its content), not
    /// a failure to get an answer: the CLI exits 1 for these, 3 otherwise.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            TrustError::Refused { .. } | TrustError::NotCached { .. } | TrustError::Corrupt { .. }
        )
    }
}

/// The end of a refusal's message: the cached root at `path` was kept, or
/// there was none and nothing was written.
fn kept(path: &Path) -> String {
    if path.exists() {
        format!("{} was left unchanged", path.display())
    } else {
        format!("nothing was written to {}", path.display())
    }
}

fn name_flag(name: &str) -> String {
    if name == DEFAULT {
        String::new()
    } else {
        format!(" --name {name}")
    }
}

/// Load a cached root for verification. Reads one file; no network.
pub fn load(state: &StateDir, name: &RootName) -> Result<TrustRoot, TrustError> {
    let path = root_path(state, name);
    let bytes = read_root(&path, name)?;
    TrustRoot::from_json(&bytes, &path).map_err(|e| TrustError::Corrupt {
        name: name.to_string(),
        path: path.clone(),
        why: e.to_string(),
    })
}

/// Where [`update`] gets a root from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Sigstore's public-good TUF repository, bootstrapped from the TUF root
    /// embedded in `sigstore-trust-root`.
    PublicGood,
    /// Sigstore's staging TUF repository, likewise.
    Staging,
    /// A private TUF repository and the `root.json` the operator pins for it.
    Mirror {
        /// The repository's base URL (metadata at `URL/`, targets at `URL/targets/`).
        url: String,
        /// The pinned TUF `root.json`.
        root: PathBuf,
    },
}

impl Source {
    /// The repository used for a root when none is named: its own for
    /// `public-good` and `staging`, public-good for the default root; an
    /// operator-named root has none.
    pub fn for_name(name: &RootName) -> Result<Self, TrustError> {
        match name.as_str() {
            DEFAULT | PUBLIC_GOOD => Ok(Source::PublicGood),
            STAGING => Ok(Source::Staging),
            other => Err(TrustError::NoSource {
                name: other.to_string(),
            }),
        }
    }

    /// The repository's URL.
    pub fn url(&self) -> &str {
        match self {
            Source::PublicGood => sigstore_trust_root::SigstoreInstance::PublicGood.tuf_url(),
            Source::Staging => sigstore_trust_root::SigstoreInstance::Staging.tuf_url(),
            Source::Mirror { url, .. } => url,
        }
    }
}

/// A root written by [`update`] or [`import`].
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// The root's name.
    pub name: RootName,
    /// The file written.
    pub path: PathBuf,
    /// Where it came from: a TUF repository URL, or the imported file.
    pub source: String,
    /// The TUF metadata cache used (updates only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuf_cache: Option<PathBuf>,
    /// Whether the content differs from what was cached before.
    pub changed: bool,
    /// `sha256:` of the file written.
    pub sha256: String,
    /// `sha256:` of the file it replaced, if any.
    pub previous_sha256: Option<String>,
    /// How many certificate authorities, transparency logs, CT logs and
    /// timestamp authorities it lists.
    pub counts: Counts,
}

/// How many of each kind of trust anchor a root lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Certificate authorities (Fulcio).
    pub certificate_authorities: usize,
    /// Transparency logs (Rekor).
    pub tlogs: usize,
    /// Certificate Transparency logs.
    pub ctlogs: usize,
    /// Timestamp authorities (RFC 3161).
    pub timestamp_authorities: usize,
}

impl Counts {
    fn of(root: &TrustedRoot) -> Self {
        Self {
            certificate_authorities: root.certificate_authorities.len(),
            tlogs: root.tlogs.len(),
            ctlogs: root.ctlogs.len(),
            timestamp_authorities: root.timestamp_authorities.len(),
        }
    }
}

/// Install a root from a file (nodes without network). The file must load as
/// the gate would load it; otherwise nothing is written.
pub fn import(state: &StateDir, name: &RootName, file: &Path) -> Result<Installed, TrustError> {
    let dest = root_path(state, name);
    let refused = |why: String| TrustError::Refused {
        from: file.display().to_string(),
        why,
        kept: kept(&dest),
    };
    let bytes = match read_bounded(file) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(refused(format!(
                "it is over the {MAX_TRUST_ROOT_BYTES}-byte limit"
            )))
        }
        Err(source) => {
            return Err(TrustError::Io {
                op: "read",
                path: file.to_path_buf(),
                source,
            })
        }
    };
    let root = check(&bytes, file).map_err(refused)?;
    install(
        name,
        &dest,
        &bytes,
        file.display().to_string(),
        None,
        Counts::of(&root),
    )
}

/// Refresh a root through TUF from `source`, with rollback protection kept in
/// [`tuf_cache_dir`]. Blocks (a current-thread runtime) for at most
/// [`UPDATE_TIMEOUT`]. `progress` gets one line per step.
pub fn update(
    state: &StateDir,
    name: &RootName,
    source: &Source,
    progress: &mut dyn FnMut(&str),
) -> Result<Installed, TrustError> {
    let dest = root_path(state, name);
    let mismatch = match name.as_str() {
        PUBLIC_GOOD => *source != Source::PublicGood,
        STAGING => *source != Source::Staging,
        _ => false,
    };
    if mismatch {
        return Err(TrustError::SourceMismatch {
            name: name.to_string(),
        });
    }
    let url = source.url().to_string();
    let config = match source {
        Source::PublicGood => TufConfig::production(),
        Source::Staging => TufConfig::staging(),
        Source::Mirror { url, root } => {
            check_mirror_url(url)?;
            let pinned = fs::read(root).map_err(|source| TrustError::PinnedRoot {
                path: root.clone(),
                source,
            })?;
            TufConfig::custom(
                url.as_str(),
                sigstore_trust_root::TufBootstrap::trusted(pinned),
            )
        }
    };
    let cache = tuf_cache_dir(state, name);
    fs::create_dir_all(&cache).map_err(|source| TrustError::Io {
        op: "create the directory",
        path: cache.clone(),
        source,
    })?;
    let config = config.with_cache_dir(cache.clone());
    if !cache.join("timestamp.json").exists() {
        progress(&format!(
            "no TUF metadata cached in {} yet: rollback protection starts with this update",
            cache.display()
        ));
    }
    progress(&format!(
        "refreshing TUF metadata from {url} (cache {})",
        cache.display()
    ));
    let tuf_failed = |why: String| TrustError::Tuf {
        url: url.clone(),
        why: one_line(&why),
        kept: kept(&dest),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TrustError::Runtime(e.to_string()))?;
    let verified = rt
        .block_on(async {
            tokio::time::timeout(UPDATE_TIMEOUT, TrustedRoot::from_tuf(config)).await
        })
        .map_err(|_| TrustError::Timeout {
            url: url.clone(),
            secs: UPDATE_TIMEOUT.as_secs(),
            kept: kept(&dest),
        })?
        .map_err(|e| match e {
            sigstore_trust_root::Error::Tuf(why) => tuf_failed(why),
            other => tuf_failed(other.to_string()),
        })?;
    progress(&format!(
        "verified {} through the TUF chain",
        sigstore_trust_root::TRUSTED_ROOT_TARGET
    ));
    let bytes = target_bytes(&cache, &verified).map_err(|why| TrustError::Refused {
        from: url.clone(),
        why,
        kept: kept(&dest),
    })?;
    let root = check(&bytes, Path::new(&url)).map_err(|why| TrustError::Refused {
        from: url.clone(),
        why,
        kept: kept(&dest),
    })?;
    let installed = install(name, &dest, &bytes, url, Some(cache), Counts::of(&root))?;
    progress(&format!(
        "wrote {} ({})",
        installed.path.display(),
        if installed.changed {
            "changed"
        } else {
            "unchanged"
        }
    ));
    Ok(installed)
}

/// The bytes to write for a root TUF verified: the repository's own target
/// file, as the client left it in its cache after checking its length and
/// hash, when it parses to exactly the root the client returned; otherwise
/// the returned root, serialized. Either way the content is the verified one.
fn target_bytes(cache: &Path, verified: &TrustedRoot) -> Result<Vec<u8>, String> {
    let want = serde_json::to_value(verified).map_err(|e| e.to_string())?;
    let cached = cache
        .join("targets")
        .join(sigstore_trust_root::TRUSTED_ROOT_TARGET);
    if let Ok(Some(bytes)) = read_bounded(&cached) {
        let same = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| TrustedRoot::from_json(t).ok())
            .and_then(|r| serde_json::to_value(&r).ok())
            .is_some_and(|v| v == want);
        if same {
            return Ok(bytes);
        }
    }
    let mut bytes = serde_json::to_vec_pretty(verified).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Plain HTTP is accepted for loopback test mirrors only.
fn check_mirror_url(url: &str) -> Result<(), TrustError> {
    let bad = |why| TrustError::Mirror {
        url: url.to_string(),
        why,
    };
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(bad("it is not an https:// URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(bad(
            "use https:// (plain http:// is accepted for loopback test mirrors only)",
        ))
    }
}

/// Check a candidate root as the gate would load it, and parse it for its
/// details.
fn check(bytes: &[u8], from: &Path) -> Result<TrustedRoot, String> {
    TrustRoot::from_json(bytes, from).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    TrustedRoot::from_json(text).map_err(|e| one_line(&e.to_string()))
}

/// Replace `dest` with `bytes` atomically: a temporary file in the same
/// directory, fsync, rename, fsync of the directory.
fn install(
    name: &RootName,
    dest: &Path,
    bytes: &[u8],
    source: String,
    tuf_cache: Option<PathBuf>,
    counts: Counts,
) -> Result<Installed, TrustError> {
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| TrustError::Io {
            op,
            path: p,
            source,
        }
    };
    let dir = dest.parent().expect("a root path has a parent");
    fs::create_dir_all(dir).map_err(io("create the directory", dir))?;
    let previous_sha256 = match read_bounded(dest) {
        Ok(Some(old)) => Some(crate::digest::sha256_prefixed(&old)),
        _ => None,
    };
    crate::base::fsio::write_atomic(dest, bytes, crate::base::fsio::Durability::Durable)
        .map_err(io("write", dest))?;
    let sha256 = crate::digest::sha256_prefixed(bytes);
    Ok(Installed {
        name: name.clone(),
        path: dest.to_path_buf(),
        source,
        tuf_cache,
        changed: previous_sha256.as_deref() != Some(sha256.as_str()),
        sha256,
        previous_sha256,
        counts,
    })
}

/// Whether a trust anchor is usable now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its validity period has started and not ended (or has no end).
    Active,
    /// Its validity period has ended: still used for material signed while it was valid.
    Expired,
    /// Its validity period has not started yet.
    Pending,
}

impl Status {
    fn of(range: Option<&sigstore_trust_root::TimeRange>, now: jiff::Timestamp) -> Self {
        match range {
            Some(r) if now < r.start => Status::Pending,
            Some(r) if r.end.is_some_and(|end| now > end) => Status::Expired,
            _ => Status::Active,
        }
    }

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Pending => "pending",
        }
    }
}

/// A certificate authority or timestamp authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authority {
    /// Its subject, `O=…, CN=…`.
    pub subject: String,
    /// Its URI.
    pub uri: Option<String>,
    /// Certificates in its chain.
    pub certificates: usize,
    /// Start of its validity period.
    pub valid_from: Option<jiff::Timestamp>,
    /// End of its validity period; none while it is open.
    pub valid_until: Option<jiff::Timestamp>,
    /// Its status now.
    pub status: Status,
}

/// A transparency log or CT log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Log {
    /// Its base URL.
    pub base_url: String,
    /// Its log ID, hex (SHA-256 of its key).
    pub log_id: String,
    /// Its key's algorithm (`PublicKeyDetails`).
    pub key_details: String,
    /// Start of its key's validity period.
    pub valid_from: Option<jiff::Timestamp>,
    /// End of its key's validity period; none while it is open.
    pub valid_until: Option<jiff::Timestamp>,
    /// Its status now.
    pub status: Status,
}

/// What a cached root lists, and how old it is.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The root's name.
    pub name: RootName,
    /// Its file.
    pub path: PathBuf,
    /// Its media type.
    pub media_type: String,
    /// `sha256:` of the file.
    pub sha256: String,
    /// When the file was last written (update or import).
    pub written_at: Option<jiff::Timestamp>,
    /// Seconds since then.
    pub age_seconds: u64,
    /// Certificate authorities (Fulcio).
    pub certificate_authorities: Vec<Authority>,
    /// Transparency logs (Rekor).
    pub tlogs: Vec<Log>,
    /// Certificate Transparency logs.
    pub ctlogs: Vec<Log>,
    /// Timestamp authorities (RFC 3161).
    pub timestamp_authorities: Vec<Authority>,
}

/// List what a cached root trusts, with each anchor's validity.
pub fn show(state: &StateDir, name: &RootName) -> Result<Summary, TrustError> {
    let path = root_path(state, name);
    let bytes = read_root(&path, name)?;
    let root = check(&bytes, &path).map_err(|why| TrustError::Corrupt {
        name: name.to_string(),
        path: path.clone(),
        why,
    })?;
    let modified = modified(&path)?;
    let now = jiff::Timestamp::now();
    let authority = |subject: &sigstore_trust_root::trusted_root::CertificateSubject,
                     uri: Option<&str>,
                     certificates: usize,
                     valid_for: Option<&sigstore_trust_root::TimeRange>| {
        let parts: Vec<String> = [
            subject.organization.as_ref().map(|o| format!("O={o}")),
            subject.common_name.as_ref().map(|c| format!("CN={c}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        Authority {
            subject: parts.join(", "),
            uri: uri.map(str::to_string),
            certificates,
            valid_from: valid_for.map(|r| r.start),
            valid_until: valid_for.and_then(|r| r.end),
            status: Status::of(valid_for, now),
        }
    };
    let log =
        |base_url: &str, key_id: &[u8], key: &sigstore_trust_root::trusted_root::PublicKey| {
            let valid_for = key.valid_for.as_ref();
            Log {
                base_url: base_url.to_string(),
                log_id: hex(key_id),
                key_details: key.key_details.to_string(),
                valid_from: valid_for.map(|r| r.start),
                valid_until: valid_for.and_then(|r| r.end),
                status: Status::of(valid_for, now),
            }
        };
    Ok(Summary {
        name: name.clone(),
        media_type: root.media_type.clone(),
        sha256: crate::digest::sha256_prefixed(&bytes),
        written_at: jiff::Timestamp::try_from(modified).ok(),
        age_seconds: age_since(modified).as_secs(),
        certificate_authorities: root
            .certificate_authorities
            .iter()
            .map(|c| {
                authority(
                    &c.subject,
                    Some(&c.uri),
                    c.cert_chain.certificates.len(),
                    c.valid_for.as_ref(),
                )
            })
            .collect(),
        tlogs: root
            .tlogs
            .iter()
            .map(|t| log(&t.base_url, t.log_id.key_id.as_bytes(), &t.public_key))
            .collect(),
        ctlogs: root
            .ctlogs
            .iter()
            .map(|t| log(&t.base_url, t.log_id.key_id.as_bytes(), &t.public_key))
            .collect(),
        timestamp_authorities: root
            .timestamp_authorities
            .iter()
            .map(|t| {
                authority(
                    &t.subject,
                    t.uri.as_deref(),
                    t.cert_chain.certificates.len(),
                    t.valid_for.as_ref(),
                )
            })
            .collect(),
        path,
    })
}

/// How long ago a cached root was last written (by [`update`] or
/// [`import`]), for freshness checks.
pub fn age(state: &StateDir, name: &RootName) -> Result<Duration, TrustError> {
    let path = root_path(state, name);
    match fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(TrustError::NotCached {
            name: name.to_string(),
            path,
        }),
        Err(source) => Err(TrustError::Io {
            op: "read the metadata of",
            path,
            source,
        }),
        Ok(_) => Ok(age_since(modified(&path)?)),
    }
}

fn modified(path: &Path) -> Result<SystemTime, TrustError> {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|source| TrustError::Io {
            op: "read the modification time of",
            path: path.to_path_buf(),
            source,
        })
}

fn age_since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// Read a cached root, its absence being [`TrustError::NotCached`].
fn read_root(path: &Path, name: &RootName) -> Result<Vec<u8>, TrustError> {
    match read_bounded(path) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(TrustError::Corrupt {
            name: name.to_string(),
            path: path.to_path_buf(),
            why: format!("it is over the {MAX_TRUST_ROOT_BYTES}-byte limit"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(TrustError::NotCached {
            name: name.to_string(),
            path: path.to_path_buf(),
        }),
        Err(source) => Err(TrustError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Read at most [`MAX_TRUST_ROOT_BYTES`]; `None` when the file is larger.
fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    crate::bundle::read_bounded(path, MAX_TRUST_ROOT_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Sigstore trust roots in `tests/data/trust-roots`.
    fn shared_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trust-roots")
    }

    fn shared(instance: &str) -> PathBuf {
        shared_dir().join(instance).join(ROOT_FILE)
    }

    fn name(n: &str) -> RootName {
        RootName::parse(n).unwrap()
    }

    #[test]
    fn names() {
        for ok in ["default", "public-good", "staging", "corp-1", "a", "0x"] {
            assert_eq!(RootName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "Public",
            "a_b",
            "a/b",
            "..",
            ".",
            "-x",
            "tuf",
            "a b",
            "é",
            &"a".repeat(MAX_NAME_LEN + 1),
        ] {
            let err = RootName::parse(bad).unwrap_err();
            assert!(matches!(err, NameError::InvalidName { .. }), "{bad:?}");
            assert!(err.to_string().contains("lowercase letters"), "{err}");
        }
        assert!(RootName::default().is_default());
        let s = StateDir::new("/s");
        assert_eq!(
            root_path(&s, &RootName::default()),
            Path::new("/s").join(crate::bundle::CACHED_TRUST_ROOT)
        );
        assert_eq!(
            root_path(&s, &name("staging")),
            Path::new("/s/trust/staging/trusted_root.json")
        );
        assert_eq!(
            tuf_cache_dir(&s, &RootName::default()),
            Path::new("/s/trust/tuf/default")
        );
    }

    #[test]
    fn import_and_show_shared_roots() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        // (instance, CAs, tlogs, ctlogs, TSAs)
        for (instance, cas, tlogs, ctlogs, tsas) in
            [("production", 2, 2, 2, 1), ("staging", 2, 5, 5, 2)]
        {
            let n = name(if instance == "production" {
                PUBLIC_GOOD
            } else {
                STAGING
            });
            let i = import(&s, &n, &shared(instance)).unwrap();
            assert!(i.changed && i.previous_sha256.is_none());
            assert_eq!(
                i.path,
                dir.path().join("trust").join(n.as_str()).join(ROOT_FILE)
            );
            assert_eq!(
                i.counts,
                Counts {
                    certificate_authorities: cas,
                    tlogs,
                    ctlogs,
                    timestamp_authorities: tsas
                }
            );
            let sum = show(&s, &n).unwrap();
            assert_eq!(sum.certificate_authorities.len(), cas);
            assert_eq!(sum.tlogs.len(), tlogs);
            assert_eq!(sum.ctlogs.len(), ctlogs);
            assert_eq!(sum.timestamp_authorities.len(), tsas);
            assert!(sum.age_seconds < 60);
            // the file is the imported one, byte for byte
            assert_eq!(
                fs::read(&sum.path).unwrap(),
                fs::read(shared(instance)).unwrap()
            );
            assert!(age(&s, &n).unwrap() < Duration::from_secs(60));
            // it loads as the gate loads it
            load(&s, &n).unwrap();
            // re-importing the same file changes nothing
            let again = import(&s, &n, &shared(instance)).unwrap();
            assert!(!again.changed);
            assert_eq!(again.previous_sha256.as_deref(), Some(i.sha256.as_str()));
        }
        let prod = show(&s, &name(PUBLIC_GOOD)).unwrap();
        assert_eq!(prod.tlogs[0].base_url, "https://rekor.sigstore.dev");
        assert_eq!(
            prod.tlogs[0].log_id,
            "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
        );
        assert_eq!(prod.tlogs[0].status, Status::Active);
        let ca = &prod.certificate_authorities[0];
        assert_eq!(ca.subject, "O=sigstore.dev, CN=sigstore");
        assert_eq!(ca.uri.as_deref(), Some("https://fulcio.sigstore.dev"));
        assert_eq!(ca.status, Status::Expired);
        assert!(ca.valid_until.is_some());
        assert_eq!(prod.certificate_authorities[1].status, Status::Active);
        // the default root is bundle's cached root
        import(&s, &RootName::default(), &shared("production")).unwrap();
        TrustRoot::load_cached(dir.path()).unwrap();
    }

    #[test]
    fn invalid_imports_are_refused_and_leave_the_old_root() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let n = RootName::default();
        import(&s, &n, &shared("production")).unwrap();
        let good = fs::read(root_path(&s, &n)).unwrap();

        let mut wrong_media: serde_json::Value =
            serde_json::from_slice(&fs::read(shared("production")).unwrap()).unwrap();
        wrong_media["mediaType"] = "application/vnd.dev.sigstore.trustedroot.v9+json".into();
        let mut bad_key: serde_json::Value =
            serde_json::from_slice(&fs::read(shared("production")).unwrap()).unwrap();
        bad_key["tlogs"][0]["publicKey"]["rawBytes"] = "!!notbase64".into();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("garbage", b"\x00\xffnot json".to_vec()),
            ("empty", Vec::new()),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("json", b"{\"hello\": 1}".to_vec()),
            ("media", serde_json::to_vec(&wrong_media).unwrap()),
            ("key", serde_json::to_vec(&bad_key).unwrap()),
            ("huge", vec![b' '; MAX_TRUST_ROOT_BYTES as usize + 1]),
        ];
        for (what, bytes) in cases {
            let f = dir.path().join(format!("{what}.json"));
            fs::write(&f, &bytes).unwrap();
            let err = import(&s, &n, &f).unwrap_err();
            assert!(matches!(err, TrustError::Refused { .. }), "{what}: {err}");
            assert!(err.is_refusal());
            let msg = err.to_string();
            assert!(
                msg.contains("left unchanged") && !msg.contains('\n'),
                "{msg}"
            );
            assert_eq!(fs::read(root_path(&s, &n)).unwrap(), good, "{what}");
        }
        // a missing file is an I/O error, not a refusal
        let err = import(&s, &n, &dir.path().join("absent.json")).unwrap_err();
        assert!(matches!(err, TrustError::Io { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        // no temporary files remain
        let names: Vec<_> = fs::read_dir(dir.path().join("trust"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![ROOT_FILE.to_string()]);
    }

    #[test]
    fn missing_roots_say_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let err = show(&s, &name("corp")).unwrap_err();
        assert!(err.is_refusal());
        assert!(
            err.to_string()
                .contains("portcullis trust update --name corp"),
            "{err}"
        );
        let err = age(&s, &RootName::default()).unwrap_err();
        assert!(
            err.to_string().contains("`portcullis trust update`"),
            "{err}"
        );
        assert!(matches!(
            load(&s, &name("staging")),
            Err(TrustError::NotCached { .. })
        ));
        // a cached file that is not a root says so, and how to replace it
        let p = root_path(&s, &name("staging"));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"{}").unwrap();
        for err in [
            show(&s, &name("staging")).unwrap_err(),
            load(&s, &name("staging")).unwrap_err(),
        ] {
            assert!(matches!(err, TrustError::Corrupt { .. }), "{err}");
            assert!(err.is_refusal());
            assert!(
                err.to_string().contains("trust update --name staging"),
                "{err}"
            );
        }
    }

    #[test]
    fn sources_and_mirror_urls() {
        assert_eq!(
            Source::for_name(&RootName::default()).unwrap(),
            Source::PublicGood
        );
        assert_eq!(Source::for_name(&name(STAGING)).unwrap(), Source::Staging);
        assert!(matches!(
            Source::for_name(&name("corp")),
            Err(TrustError::NoSource { .. })
        ));
        for ok in [
            "https://tuf.example.com",
            "http://127.0.0.1:8080",
            "http://127.3.4.5/x",
            "http://localhost:1/",
            "http://[::1]:8000/repo",
        ] {
            check_mirror_url(ok).unwrap();
        }
        for bad in [
            "http://10.0.0.1",
            "http://example.com",
            "http://127.0.0.1.example.com/",
            "ftp://x",
            "tuf.example.com",
        ] {
            assert!(check_mirror_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refused_updates_touch_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let n = name(STAGING);
        import(&s, &n, &shared("staging")).unwrap();
        let before = fs::read(root_path(&s, &n)).unwrap();
        let mut quiet = |_: &str| {};
        // a well-known name from another repository
        let err = update(&s, &n, &Source::PublicGood, &mut quiet).unwrap_err();
        assert!(matches!(err, TrustError::SourceMismatch { .. }), "{err}");
        // plain http off loopback
        let corp = name("corp");
        let root = dir.path().join("root.json");
        fs::write(&root, b"{}").unwrap();
        let mirror = |url: &str| Source::Mirror {
            url: url.into(),
            root: root.clone(),
        };
        let err = update(&s, &corp, &mirror("http://192.0.2.1/"), &mut quiet).unwrap_err();
        assert!(matches!(err, TrustError::Mirror { .. }), "{err}");
        // an unusable pinned root
        let err = update(&s, &corp, &mirror("http://127.0.0.1:9/"), &mut quiet).unwrap_err();
        assert!(matches!(err, TrustError::Tuf { .. }), "{err}");
        // a pinned root that cannot be read
        let gone = Source::Mirror {
            url: "http://127.0.0.1:9/".into(),
            root: dir.path().join("absent.json"),
        };
        let err = update(&s, &corp, &gone, &mut quiet).unwrap_err();
        assert!(matches!(err, TrustError::PinnedRoot { .. }), "{err}");
        // a real TUF root, but nothing listening on the mirror's port
        fs::copy(shared_dir().join("production/tuf-root.json"), &root).unwrap();
        let err = update(&s, &corp, &mirror("http://127.0.0.1:9/"), &mut quiet).unwrap_err();
        assert!(matches!(err, TrustError::Tuf { .. }), "{err}");
        assert!(!err.to_string().contains('\n'));
        assert!(!root_path(&s, &corp).exists());
        assert_eq!(fs::read(root_path(&s, &n)).unwrap(), before);
    }
}
