//! [`OfflineError`], the one error of bundle export and import (item
//! refusals are not errors: they are reported per item).

use std::path::PathBuf;

use crate::{cache, containerd};

/// Errors of bundle export and import (item refusals are not errors: they
/// are reported per item).
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// An I/O error on a named file (reading a bundle or a trust root,
    /// writing a bundle or its temporary file).
    #[error("cannot read or write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bundle file as a whole is unusable.
    #[error("bundle {path} refused: {why}")]
    BadBundle {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Nothing cached to export.
    #[error("nothing cached for {image} ({digests}); run `portcullis fetch {pinned}` first")]
    NothingCached {
        /// The image.
        image: String,
        /// The digests looked up.
        digests: String,
        /// What to fetch.
        pinned: String,
    },
    /// The cache could not be read.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// A trust root could not be read or installed.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// containerd could not answer.
    #[error(transparent)]
    Containerd(#[from] containerd::LookupError),
    /// The operator's request cannot be met; the message says why and what to do.
    #[error("{0}")]
    Usage(String),
}
