//! [`CliError`], the one error of the command line, and the exit codes
//! scripts can rely on.

use std::path::PathBuf;

/// Exit code: the answer is no.
pub const EXIT_NO: u8 = 1;
/// Exit code: something failed before an answer could be given.
pub const EXIT_ERROR: u8 = 3;

/// Errors the CLI reports (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A fetch failed.
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    /// Reading the journal failed.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The spool could not be replayed.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A trust root could not be updated or read.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// Output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// `portcullis sync` stopped.
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    /// An evidence pack could not be made, checked or merged.
    #[error(transparent)]
    Evidence(#[from] crate::evidence::EvidenceError),
    /// A bundle could not be exported or imported.
    #[error(transparent)]
    Offline(#[from] crate::offline::OfflineError),
    /// A precondition of the command failed; the message says which.
    #[error("{0}")]
    Usage(String),
}
