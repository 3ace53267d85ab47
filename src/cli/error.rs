//! [`CliError`], the one error of the command line, and the exit codes
//! scripts can rely on.

use std::path::PathBuf;

/// Exit code: the answer is no.
pub const EXIT_NO: u8 = 1;
/// Exit code: the command line is wrong (clap's own usage errors exit 2 too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: something failed before an answer could be given.
pub const EXIT_ERROR: u8 = 3;

/// Errors the CLI reports: [`CliError::No`] exits 1, [`CliError::Usage`] 2,
/// every other 3 ([`CliError::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A negative answer with nothing else to report (refused, not
    /// verified, nothing cached); the message says why and what to do.
    #[error("{0}")]
    No(String),
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
    /// An argument's value is wrong or one is missing; the message says which.
    #[error("{0}")]
    Usage(String),
    /// What the command needs could not be had (policy, containerd,
    /// registry); the message says what and why.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The exit code scripts see.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::No(_) => EXIT_NO,
            CliError::Usage(_) => EXIT_USAGE,
            _ => EXIT_ERROR,
        }
    }
}
