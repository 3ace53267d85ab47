//! Image references as the policy sees them.
//!
//! This module owns normalization: `busybox` becomes
//! `docker.io/library/busybox:latest`, `index.docker.io` becomes `docker.io`,
//! so that policy globs match one spelling of every name. Parsing is
//! delegated to `oci-spec`'s distribution reference.

use std::fmt;

use oci_spec::distribution::Reference;

/// Errors parsing a reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The text is not an image reference.
    #[error("`{input}` is not a valid image reference: {reason}")]
    Invalid {
        /// The text.
        input: String,
        /// Why.
        reason: String,
    },
}

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
    normalized: String,
    repository_name: String,
}

impl ImageRef {
    /// Parse and normalize an image name as containerd records it.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let inner: Reference = input.parse().map_err(|e| ReferenceError::Invalid {
            input: input.to_string(),
            reason: format!("{e}"),
        })?;
        let repository_name = format!("{}/{}", inner.registry(), inner.repository());
        let mut normalized = repository_name.clone();
        if let Some(tag) = inner.tag() {
            normalized.push(':');
            normalized.push_str(tag);
        }
        if let Some(d) = inner.digest() {
            normalized.push('@');
            normalized.push_str(d);
        }
        Ok(Self {
            inner,
            normalized,
            repository_name,
        })
    }

    /// `registry/repository[:tag][@digest]`, the form policy globs match.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// `registry/repository`, without tag or digest.
    pub fn repository_name(&self) -> &str {
        &self.repository_name
    }

    /// The registry host (and port).
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path within the registry.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest pinned in the reference, if any.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// `registry/repository@digest`: the name `portcullis fetch` takes to
    /// cache signatures for exactly this digest.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", self.repository_name)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_docker_hub_short_names() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.normalized(), "docker.io/library/busybox:latest");
        assert_eq!(r.repository_name(), "docker.io/library/busybox");
        let r = ImageRef::parse("index.docker.io/acme/app:1").unwrap();
        assert_eq!(r.normalized(), "docker.io/acme/app:1");
    }

    #[test]
    fn keeps_registry_ports_and_digests() {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let r = ImageRef::parse(&format!("127.0.0.1:5000/demo/app:v1@{d}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "demo/app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(d));
        assert_eq!(r.normalized(), format!("127.0.0.1:5000/demo/app:v1@{d}"));
        assert_eq!(r.pinned(d), format!("127.0.0.1:5000/demo/app@{d}"));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in ["", "a:b:c:d", "x@sha256:zz", ":::", "a//b"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
