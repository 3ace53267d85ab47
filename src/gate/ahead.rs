//! Deciding ahead of the start: the verdict a start of an image will reach,
//! reached when its signatures are fetched.
//!
//! This module owns the image description a decision ahead uses. `portcullis
//! fetch` holds every input of a verdict (the policy, the trust root, the
//! cached signatures and attestations of the digests it resolved); it calls
//! [`decide_ahead`], which runs the one decision ([`super::decide()`]: the
//! same rule selection, verdict-cache key, sandboxed verification and
//! store) on the image as the registry serves it. A pass is stored in the
//! verdict cache under the key the start computes, since that key hashes only
//! what both know: the policy, the rule, the signers, the trust root, the
//! digests and their cache entries, never the container. A start of that
//! digest is then a verdict-cache hit unless one of them changed since; it
//! still checks its own container (rootfs lineage, the index choice) and
//! decides alone when anything differs. Nothing here journals: the start does.

use std::time::Instant;

use crate::cache::StateDir;
use crate::containerd::ImageTarget;
use crate::policy::{Policy, PolicyError};

use super::{decide, Decision, Subject};

/// The image as a fetch resolved it: its name, the digest the registry
/// served, and this platform's manifest when that digest is an index (what
/// containerd records and selects for a pull of it on this node).
pub fn target(name: &str, digest: &str, platform_digest: Option<&str>) -> ImageTarget {
    ImageTarget {
        name: name.to_string(),
        target_digest: digest.to_string(),
        target_media_type: String::new(),
        platform_digest: platform_digest.map(str::to_string),
        platform_ambiguity: None,
        snapshot_key: None,
        snapshotter: None,
        chain_id: None,
        snapshot_parent: None,
    }
}

/// Decide for `target` now and store a pass where the start will look for
/// it. The caller must be single-threaded (the verification is sandboxed,
/// [`crate::sandbox::require`]); a failure only means the start decides alone.
pub fn decide_ahead(
    policy: &Result<Policy, PolicyError>,
    target: ImageTarget,
    state: &StateDir,
) -> Decision {
    let subject = Subject {
        namespace: "-".into(),
        container_id: None,
    };
    decide(policy, Ok(target), state, &subject, Instant::now())
}

/// One line for the operator: what deciding ahead did.
pub fn summary(d: &Decision) -> String {
    match d.verdict_cache {
        Some("miss") | Some("hit") => format!(
            "decided ahead: a start of this digest will find its pass in the verdict cache (rule \"{}\", {})",
            d.rule,
            crate::bundle::one_line(&d.reason)
        ),
        _ if d.outcome == super::Outcome::Pass => format!(
            "decided ahead: nothing to verify ({})",
            crate::bundle::one_line(&d.reason)
        ),
        _ => format!(
            "not decided ahead (the start will decide): {}",
            crate::bundle::one_line(&d.reason)
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::Engine;

    use super::*;
    use crate::base::testing::digest as d;
    use crate::cache::{kind, Artifact, Entry, Layer, ENTRY_FORMAT};
    use crate::gate::{Kind, Verdict};

    /// A state directory with a key-signed cache entry for `d(1)`, and a
    /// policy requiring that key for `127.0.0.1:5000/demo/*`.
    fn signed(dir: &Path) -> (StateDir, Result<Policy, PolicyError>) {
        let state = StateDir::new(dir.join("state"));
        let (kp, key) = crate::base::testing::write_public_key(dir);
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/demo/a"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
            d(1)
        );
        let sig = kp.sign(payload.as_bytes()).unwrap();
        let ann = std::collections::BTreeMap::from([(
            crate::cosign::SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(sig.as_bytes()),
        )]);
        state
            .write(&Entry {
                format: ENTRY_FORMAT,
                subject: d(1),
                repository: "127.0.0.1:5000/demo/a".into(),
                fetched_at: "t".into(),
                artifacts: vec![Artifact {
                    kind: kind::COSIGN_SIGNATURE.into(),
                    source: "s".into(),
                    manifest_digest: d(2),
                    layers: vec![Layer::new(
                        crate::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                        ann,
                        payload.as_bytes(),
                    )],
                }],
            })
            .unwrap();
        let policy = Policy::parse(
            &format!(
                "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"demo\"\nimages = [\"127.0.0.1:5000/demo/*\"]\n[[rule.signer]]\nkey = \"{}\"\n",
                key.display()
            ),
            Path::new("/etc/portcullis/policy.toml"),
        );
        (state, policy)
    }

    /// What the start sees: containerd's image record (its own spelling of
    /// the name, the media type) and the container's snapshot.
    fn at_start(name: &str) -> ImageTarget {
        ImageTarget {
            name: name.into(),
            target_digest: d(1),
            target_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            platform_digest: None,
            platform_ambiguity: None,
            snapshot_key: Some("c1".into()),
            snapshotter: Some("overlayfs".into()),
            chain_id: Some(d(7)),
            snapshot_parent: Some(d(7)),
        }
    }

    fn verdict_files(state: &StateDir) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(state.root().join("verdicts"))
            .map(|r| r.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    /// The key written at fetch is the key the start computes: the start
    /// reads the one entry deciding ahead wrote, and writes none of its own.
    #[test]
    fn the_key_written_at_fetch_is_the_key_the_start_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (state, policy) = signed(dir.path());
        let ahead = decide_ahead(
            &policy,
            target("127.0.0.1:5000/demo/a:1", &d(1), None),
            &state,
        );
        assert_eq!(
            (ahead.kind, ahead.verdict_cache),
            (Kind::Verified, Some("miss")),
            "{}",
            ahead.reason
        );
        assert!(summary(&ahead).starts_with("decided ahead: a start"));
        let written = verdict_files(&state);
        assert_eq!(written.len(), 1);
        let subject = Subject {
            namespace: "default".into(),
            container_id: Some("c1".into()),
        };
        // containerd's name for the image: the tag fetched, or its digest
        for name in [
            "127.0.0.1:5000/demo/a:1".to_string(),
            format!("127.0.0.1:5000/demo/a@{}", d(1)),
        ] {
            let start = decide(
                &policy,
                Ok(at_start(&name)),
                &state,
                &subject,
                Instant::now(),
            );
            assert_eq!(
                (start.verdict, start.verdict_cache, start.reason.as_str()),
                (Verdict::Allow, Some("hit"), ahead.reason.as_str()),
                "{name}"
            );
        }
        assert_eq!(verdict_files(&state), written);
    }

    /// A change the start sees (another digest, a changed cache entry) is a
    /// new key: the start verifies itself, it never reuses the pass.
    #[test]
    fn a_changed_input_is_not_a_hit() {
        let dir = tempfile::tempdir().unwrap();
        let (state, policy) = signed(dir.path());
        decide_ahead(
            &policy,
            target("127.0.0.1:5000/demo/a:1", &d(1), None),
            &state,
        );
        let subject = Subject {
            namespace: "default".into(),
            container_id: Some("c1".into()),
        };
        // The same image as an index whose platform manifest the fetch did not see.
        let mut t = at_start("127.0.0.1:5000/demo/a:1");
        t.platform_digest = Some(d(3));
        let start = decide(&policy, Ok(t), &state, &subject, Instant::now());
        assert_eq!(start.verdict_cache, Some("miss"), "{}", start.reason);
        // The signature cache entry rewritten since.
        let entry = state.entry_path(&d(1)).unwrap();
        let text = std::fs::read_to_string(&entry).unwrap();
        std::fs::write(&entry, format!("{text}\n")).unwrap();
        let start = decide(
            &policy,
            Ok(at_start("127.0.0.1:5000/demo/a:1")),
            &state,
            &subject,
            Instant::now(),
        );
        assert_eq!(start.verdict_cache, Some("miss"), "{}", start.reason);
    }

    #[test]
    fn an_unusable_policy_decides_nothing_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let policy = Policy::load(&dir.path().join("missing.toml"));
        let ahead = decide_ahead(
            &policy,
            target("127.0.0.1:5000/demo/a:1", &d(1), None),
            &state,
        );
        assert_eq!(ahead.verdict, Verdict::Deny);
        assert!(
            summary(&ahead).starts_with("not decided ahead"),
            "{}",
            summary(&ahead)
        );
        assert!(verdict_files(&state).is_empty());
    }
}
