//! Where trust roots are kept in the state directory, and the names that
//! select them: `default` ([`CACHED_TRUST_ROOT`]), `public-good`, `staging`
//! or an operator's name under `trust/<name>/`.

use std::path::PathBuf;

use serde::Serialize;

use crate::state::cache::StateDir;

/// Where the node's default trust root is cached, relative to the state
/// directory.
pub const CACHED_TRUST_ROOT: &str = "trust/trusted_root.json";
/// The name that stands for the default root ([`CACHED_TRUST_ROOT`]).
pub const DEFAULT: &str = "default";
/// The file name of every root.
pub const ROOT_FILE: &str = "trusted_root.json";
/// The longest root name accepted.
pub const MAX_NAME_LEN: usize = 63;

/// A trust root name that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// A root name that is not `[a-z0-9-]+` or is reserved.
    #[error("trust root name {name:?} is invalid: {why}; use 1-{MAX_NAME_LEN} lowercase letters, digits and '-'")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// A trust root's name: `default` (the root rules use when they name none),
/// `public-good`, `staging`, or an operator name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RootName(String);

impl RootName {
    /// Validate a name: 1 to [`MAX_NAME_LEN`] of `[a-z0-9-]`, starting with a
    /// letter or digit; `tuf` is reserved (the TUF cache directory).
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let invalid = |why| NameError::InvalidName {
            name: name.to_string(),
            why,
        };
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(invalid("wrong length"));
        }
        if !name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        {
            return Err(invalid("it has a character other than [a-z0-9-]"));
        }
        if name.starts_with('-') {
            return Err(invalid("it starts with '-'"));
        }
        if name == "tuf" {
            return Err(invalid("\"tuf\" is reserved for the TUF metadata cache"));
        }
        Ok(Self(name.to_string()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the default root.
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT
    }
}

impl Default for RootName {
    fn default() -> Self {
        Self(DEFAULT.to_string())
    }
}

impl std::fmt::Display for RootName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RootName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Where a root is cached: [`CACHED_TRUST_ROOT`] for the
/// default, `trust/<name>/trusted_root.json` otherwise.
pub fn root_path(state: &StateDir, name: &RootName) -> PathBuf {
    if name.is_default() {
        state.root().join(CACHED_TRUST_ROOT)
    } else {
        state
            .root()
            .join("trust")
            .join(name.as_str())
            .join(ROOT_FILE)
    }
}

/// The TUF metadata cache of a root: `trust/tuf/<name>/`.
pub fn tuf_cache_dir(state: &StateDir, name: &RootName) -> PathBuf {
    state.root().join("trust").join("tuf").join(name.as_str())
}

/// Where a rule's trust root lives: the node's default, a named root under
/// `trust/<name>/`, or a file the policy names.
pub fn trust_root_path(state: &StateDir, named: Option<&str>) -> std::path::PathBuf {
    match named {
        None => root_path(state, &RootName::default()),
        Some(n) if n.starts_with('/') => std::path::PathBuf::from(n),
        Some(n) => match RootName::parse(n) {
            Ok(name) => root_path(state, &name),
            // Validated by the policy parser; a name it let through but the
            // trust module refuses cannot name a file we would trust.
            Err(_) => state
                .root()
                .join("trust")
                .join("invalid-name")
                .join("trusted_root.json"),
        },
    }
}
