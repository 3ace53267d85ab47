//! [`EvidenceError`], the one error of building, checking or merging a
//! pack, and the helpers that attach a file's path to an I/O error.

use std::path::{Path, PathBuf};

/// Errors building, checking or merging a pack.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The request cannot be met as asked.
    #[error("{0}")]
    Usage(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// journalctl could not be run or failed.
    #[error("cannot read the journal: {0}")]
    Journal(String),
    /// The directory holds no pack this version understands.
    #[error("{path} is not an evidence pack: {why}")]
    NotAPack {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

pub(super) fn werr(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Write {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn rerr(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Read {
        path: path.to_path_buf(),
        source,
    }
}
