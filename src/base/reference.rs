//! Image references as the policy sees them.
//!
//! This module owns normalization: `busybox` becomes
//! `docker.io/library/busybox:latest`, `index.docker.io` becomes `docker.io`,
//! so that policy globs match one spelling of every name. It parses the
//! distribution reference grammar (`[domain/]path[:tag][@digest]`) by hand
//! rather than through `oci-spec`'s reference type, whose first use compiles
//! a large regular expression: measured at 250 million instructions, 99% of
//! a container start's decision. A test checks this parser against
//! `oci-spec`'s on valid and invalid names.

use std::fmt;

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
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
    normalized: String,
    repository_name: String,
}

const NAME_TOTAL_MAX: usize = 255;

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__" or one or more "-"
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]`, host being dot-separated labels (as oci-spec, no IPv6 literals).
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

/// `algorithm:encoded`; sha256/sha384/sha512 must be lowercase hex of their length.
fn valid_digest(d: &str) -> bool {
    let Some((alg, enc)) = d.split_once(':') else {
        return false;
    };
    let hex_len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    enc.len() == hex_len && enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ImageRef {
    /// Parse and normalize an image name as containerd records it.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason: &str| ReferenceError::Invalid {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(err("empty"));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => {
                if !valid_digest(d) {
                    return Err(err("invalid digest"));
                }
                (n, Some(d.to_string()))
            }
            None => (input, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let t = &name_tag[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(err("invalid tag"));
                }
                (&name_tag[..last_slash + i], Some(t.to_string()))
            }
            None => (name_tag, None),
        };
        if name.is_empty() || name.len() > NAME_TOTAL_MAX {
            return Err(err("invalid repository name length"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_domain(first) {
                    return Err(err("invalid registry host"));
                }
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        if !path.split('/').all(valid_path_component) {
            return Err(err(
                "invalid repository path (lowercase letters, digits and separators only)",
            ));
        }
        let mut registry = domain;
        if registry == "index.docker.io" {
            registry = "docker.io".into();
        }
        let repository = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t,
        };
        let repository_name = format!("{registry}/{repository}");
        // The limit applies to the normalized name too, so that normalizing
        // is idempotent (`docker.io/library/` can push a name over it).
        if repository_name.len() > NAME_TOTAL_MAX {
            return Err(err("repository name over 255 characters once normalized"));
        }
        let mut normalized = repository_name.clone();
        if let Some(t) = &tag {
            normalized.push(':');
            normalized.push_str(t);
        }
        if let Some(d) = &digest {
            normalized.push('@');
            normalized.push_str(d);
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
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
        &self.registry
    }

    /// The repository path within the registry.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest pinned in the reference, if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
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

    /// Our parser against oci-spec's (the regex-based reference
    /// implementation of the same grammar) on valid and invalid names.
    #[test]
    fn agrees_with_oci_spec() {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let cases = [
            "busybox".to_string(),
            "busybox:1.36".into(),
            "library/busybox".into(),
            "docker.io/busybox".into(),
            "index.docker.io/library/busybox:1".into(),
            "acme/app".into(),
            "ghcr.io/acme/app:v1.2.3".into(),
            "127.0.0.1:5000/demo/app:v1".into(),
            "localhost/app".into(),
            "localhost:5000/a/b/c:tag".into(),
            "[::1]:5000/app:1".into(),
            "registry.example.com/a_b/c__d/e-f/g---h:x_y.z-1".into(),
            format!("ghcr.io/acme/app@{d}"),
            format!("ghcr.io/acme/app:v1@{d}"),
            format!("busybox@{d}"),
            "test.com:tag".into(),
            "test.com:5000".into(),
            "foo_bar.com:8080".into(),
            "UPPER/case".into(),
            "app:".into(),
            "app:-bad".into(),
            "a//b".into(),
            "a/b/".into(),
            "/a".into(),
            "a_/b".into(),
            "a..b/c".into(),
            "ghcr.io/acme/app@sha256:abc".into(),
            "ghcr.io/acme/app@md5:0123456789abcdef0123456789abcdef".into(),
            "ghcr.io:notaport/app".into(),
            "a:b:c".into(),
            "-host.io/app".into(),
        ];
        for c in &cases {
            let theirs: Result<oci_spec::distribution::Reference, _> = c.parse();
            let ours = ImageRef::parse(c);
            match (&theirs, &ours) {
                (Ok(t), Ok(o)) => {
                    assert_eq!(t.registry(), o.registry(), "{c}");
                    assert_eq!(t.repository(), o.repository(), "{c}");
                    assert_eq!(t.tag(), o.tag(), "{c}");
                    assert_eq!(t.digest(), o.digest(), "{c}");
                }
                (Err(_), Err(_)) => {}
                // Deliberately stricter: the distribution grammar forbids
                // uppercase repository paths, which oci-spec lets through.
                (Ok(_), Err(_)) if c == "UPPER/case" => {}
                _ => panic!("{c}: oci-spec {theirs:?} vs ours {ours:?}"),
            }
        }
    }

    /// Found by the `reference` fuzz target: a 238-character short name is
    /// valid, but `docker.io/library/` pushed its normalized form over the
    /// limit, so re-parsing the normalized name failed.
    #[test]
    fn normalizing_is_idempotent_at_the_length_limit() {
        // `docker.io/library/` adds 18 characters: a short name of at most
        // 237 stays within 255 once normalized; 238 and more are refused.
        for (n, parses) in [
            (200usize, true),
            (236, true),
            (237, true),
            (238, false),
            (255, false),
        ] {
            let name = "a".repeat(n);
            match ImageRef::parse(&name) {
                Ok(r) => {
                    assert!(parses, "{n} characters: parsed as {}", r.normalized());
                    let again = ImageRef::parse(r.normalized()).expect("normalized names re-parse");
                    assert_eq!(again.normalized(), r.normalized());
                }
                Err(e) => {
                    assert!(!parses, "{n} characters: {e}");
                    assert!(e.to_string().contains("once normalized"), "{n}: {e}");
                }
            }
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in ["", "a:b:c:d", "x@sha256:zz", ":::", "a//b"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
