//! Deciding ahead for every image on the node, after what a verdict depends
//! on changed.
//!
//! This module owns the second half of `portcullis reverify`. A start is a
//! verdict-cache hit only while the policy, the trust root and the cached
//! signatures stay as they were when its image was decided; a policy pull or
//! a trust-root rotation therefore makes the next start of every image on
//! the node decide (and verify, in the sandbox) at container start. The
//! packaged `portcullis-reverify.path` runs reverify when those change, so
//! here it also decides ahead, under the policy and trust root in force now,
//! for every image record containerd holds: the start's own decision
//! ([`crate::gate::decide`], the verdict cache read and a pass stored under
//! the key the start computes), on the image as containerd resolves it for
//! this node. A start of an image decided here then finds its pass. An image
//! that would fail is reported with the reason its start would give, before
//! anyone starts it. Nothing here journals or stops anything: no container
//! started.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::containerd;
use crate::gate::{self, Decision, Outcome, Subject, Verdict};
use crate::policy::{Policy, PolicyError};
use crate::state::cache::StateDir;
use crate::verify::rejection::Class;

/// What the next start of one image will find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AheadStatus {
    /// Its pass was already in the verdict cache.
    Held,
    /// Verified now; its pass is stored for its next start.
    Verified,
    /// Its rule (or the policy default) requires nothing to verify.
    Exempt,
    /// Its next start would be refused (enforce mode).
    WouldRefuse,
    /// Its requirements fail, but the mode (warn or audit) would let it start.
    WouldFail,
    /// containerd could not describe it (its start would fail the same way).
    Unresolved,
}

impl AheadStatus {
    /// The output spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AheadStatus::Held => "held",
            AheadStatus::Verified => "verified",
            AheadStatus::Exempt => "exempt",
            AheadStatus::WouldRefuse => "would refuse at its next start",
            AheadStatus::WouldFail => "fails (allowed by the mode) at its next start",
            AheadStatus::Unresolved => "unresolved",
        }
    }

    /// Will the next start find everything it needs decided?
    pub fn ready(self) -> bool {
        matches!(
            self,
            AheadStatus::Held | AheadStatus::Verified | AheadStatus::Exempt
        )
    }
}

/// One image record, decided ahead.
#[derive(Debug, Clone, Serialize)]
pub struct AheadImage {
    /// containerd namespace.
    pub namespace: String,
    /// The image name as containerd records it.
    pub image: String,
    /// What its next start will find.
    pub status: AheadStatus,
    /// The image's target digest, when containerd resolved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// This platform's manifest, when the target is an index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_digest: Option<String>,
    /// The rule that decided.
    pub rule: String,
    /// The rejection class, when it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Class>,
    /// The decision's reason (the start's own words).
    pub reason: String,
    /// Time spent deciding it, in microseconds.
    pub duration_us: u64,
}

impl AheadImage {
    /// The output line for an image that is not ready: status, image, why.
    pub fn line(&self) -> String {
        let image = match &self.digest {
            Some(d) => format!("{}@{d}", self.image),
            None => self.image.clone(),
        };
        format!(
            "image {}: {image} (namespace {}, rule {}): {}",
            self.status.as_str(),
            self.namespace,
            self.rule,
            crate::bundle::one_line(&self.reason)
        )
    }
}

/// Every image record of the namespaces, decided ahead.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AheadReport {
    /// One per image record (bare `sha256:` image IDs left out).
    pub images: Vec<AheadImage>,
    /// Namespaces whose images could not be listed, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Wall time of the whole pass, in milliseconds.
    pub elapsed_ms: u64,
}

impl AheadReport {
    /// How many images have each of the ready statuses, and how many are not ready.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let n = |s| self.images.iter().filter(|i| i.status == s).count();
        let ready = self.images.iter().filter(|i| i.status.ready()).count();
        (
            n(AheadStatus::Held),
            n(AheadStatus::Verified),
            n(AheadStatus::Exempt),
            self.images.len() - ready,
        )
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let (held, verified, exempt, not_ready) = self.counts();
        format!(
            "{} image(s) decided ahead: {held} already held, {verified} verified now (their next start finds its pass), {exempt} with nothing to verify, {not_ready} whose next start would not pass; {} ms",
            self.images.len(),
            self.elapsed_ms
        )
    }
}

/// Decide ahead for every image record of `namespaces`, under `policy` (the
/// caller loads it as a start does, [`Policy::load_for_start`], so its
/// compiled form is stored too, and the report names the policy these
/// decisions used). The caller must be single-threaded: verification runs
/// in the sandbox ([`crate::sandbox::require`]).
pub fn decide_all(
    address: &str,
    namespaces: &[String],
    policy: &Result<Policy, PolicyError>,
    state: &StateDir,
    timeout: Duration,
) -> AheadReport {
    let started = Instant::now();
    let mut report = AheadReport::default();
    for ns in namespaces {
        let names = match containerd::image_names(address, ns, timeout) {
            Ok(n) => n,
            Err(e) => {
                report.errors.push(format!("namespace {ns}: {e}"));
                continue;
            }
        };
        // CRI keeps a record named by the bare image ID beside each named
        // one; no container is created from a name that is only a digest.
        for name in names.iter().filter(|n| !n.starts_with("sha256:")) {
            let t = Instant::now();
            let lookup = containerd::lookup_image(address, ns, name, timeout);
            let subject = Subject {
                namespace: ns.clone(),
                container_id: None,
            };
            let d = gate::decide(policy, lookup, state, &subject, t);
            report.images.push(image_of(ns, name, &d, t.elapsed()));
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

fn image_of(namespace: &str, name: &str, d: &Decision, took: Duration) -> AheadImage {
    AheadImage {
        namespace: namespace.to_string(),
        image: name.to_string(),
        status: status_of(d),
        digest: d.image_digest.clone(),
        platform_digest: d.platform_digest.clone(),
        rule: d.rule.clone(),
        rejection: d.rejection,
        reason: d.reason.clone(),
        duration_us: took.as_micros() as u64,
    }
}

/// What a decision ahead means for the image's next start.
fn status_of(d: &Decision) -> AheadStatus {
    match (d.outcome, d.verdict_cache, d.verdict, d.rejection) {
        (Outcome::Pass, Some("hit"), _, _) => AheadStatus::Held,
        (Outcome::Pass, Some(_), _, _) => AheadStatus::Verified,
        (Outcome::Pass, None, _, _) => AheadStatus::Exempt,
        (Outcome::Fail, _, _, Some(Class::Lookup)) => AheadStatus::Unresolved,
        (Outcome::Fail, _, Verdict::Deny, _) => AheadStatus::WouldRefuse,
        (Outcome::Fail, _, _, _) => AheadStatus::WouldFail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::digest as d;
    use crate::containerd::{ImageTarget, LookupError};
    use crate::policy::PolicyError;

    fn decide(policy: &str, lookup: Result<ImageTarget, LookupError>) -> Decision {
        let dir = tempfile::tempdir().unwrap();
        let p: Result<Policy, PolicyError> =
            Policy::parse(policy, std::path::Path::new("/etc/portcullis/policy.toml"));
        gate::decide(
            &p,
            lookup,
            &StateDir::new(dir.path()),
            &Subject {
                namespace: "prod".into(),
                container_id: None,
            },
            Instant::now(),
        )
    }

    fn target(name: &str) -> ImageTarget {
        gate::ahead::target(name, &d(1), None)
    }

    #[test]
    fn each_outcome_names_what_the_next_start_finds() {
        let allow = "mode = \"enforce\"\ndefault = \"allow\"\n";
        let deny = "mode = \"enforce\"\ndefault = \"deny\"\n";
        let audit = "mode = \"audit\"\ndefault = \"deny\"\n";
        let key = "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"demo\"\nimages = [\"127.0.0.1:5000/demo/*\"]\n[[rule.signer]]\nkey = \"/nonexistent/release.pub\"\n";
        let img = "127.0.0.1:5000/demo/a:1";
        assert_eq!(
            status_of(&decide(allow, Ok(target(img)))),
            AheadStatus::Exempt
        );
        let refused = decide(deny, Ok(target(img)));
        assert_eq!(status_of(&refused), AheadStatus::WouldRefuse);
        assert_eq!(
            status_of(&decide(audit, Ok(target(img)))),
            AheadStatus::WouldFail
        );
        // A rule whose key cannot be read refuses, and says which key.
        let unreadable = decide(key, Ok(target(img)));
        assert_eq!(status_of(&unreadable), AheadStatus::WouldRefuse);
        assert!(
            unreadable.reason.contains("/nonexistent/release.pub"),
            "{}",
            unreadable.reason
        );
        let lost = decide(
            key,
            Err(LookupError::Incomplete("image x has no target".into())),
        );
        assert_eq!(status_of(&lost), AheadStatus::Unresolved);
        let line = image_of("prod", img, &refused, Duration::from_micros(5)).line();
        assert!(
            line.starts_with(&format!(
                "image would refuse at its next start: {img}@{} (namespace prod, rule default): ",
                d(1)
            )),
            "{line}"
        );
    }

    #[test]
    fn the_summary_counts_each_status_once() {
        let mk = |status| AheadImage {
            namespace: "n".into(),
            image: "i".into(),
            status,
            digest: None,
            platform_digest: None,
            rule: "r".into(),
            rejection: None,
            reason: String::new(),
            duration_us: 0,
        };
        let r = AheadReport {
            images: vec![
                mk(AheadStatus::Held),
                mk(AheadStatus::Held),
                mk(AheadStatus::Verified),
                mk(AheadStatus::Exempt),
                mk(AheadStatus::WouldRefuse),
                mk(AheadStatus::Unresolved),
            ],
            errors: vec![],
            elapsed_ms: 7,
        };
        assert_eq!(r.counts(), (2, 1, 1, 2));
        assert_eq!(
            r.summary(),
            "6 image(s) decided ahead: 2 already held, 1 verified now (their next start finds its pass), 1 with nothing to verify, 2 whose next start would not pass; 7 ms"
        );
    }
}
