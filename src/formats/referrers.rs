//! What a Sigstore bundle looks like among an image's OCI referrers.

/// Most referrers examined per digest.
pub const MAX_REFERRERS: usize = 64;

/// Media types of Sigstore bundles (both spellings, v0.1 to v0.3).
pub const BUNDLE_MEDIA_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
];
