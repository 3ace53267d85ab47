//! The decision: policy × containerd's answer × cache → one verdict.
//!
//! This module owns the order of the checks and the fail-closed rule. It
//! takes what the earlier steps produced (a loaded policy or the error that
//! prevented it, containerd's description of the image or the error that
//! prevented it) and returns a [`Decision`]: the verdict, the rule and mode
//! that produced it, the reason, and the signer that vouched. Errors never
//! escape as errors: each becomes a failing outcome with a reason that names
//! what failed, and the mode decides whether it refuses the start. With no
//! readable policy there is no mode to consult, so the start is refused.

use std::time::Instant;

use serde::Serialize;

use crate::attestation;
use crate::cache::StateDir;
use crate::containerd::{ImageTarget, LookupError};
use crate::policy::{Action, DefaultAction, Mode, Policy, PolicyError, Selection, DEFAULT_SHIM};
use crate::reference::ImageRef;
pub use crate::state::trust_names::trust_root_path;
pub use crate::verify::facts::ProvenanceSummary;
use crate::verify::rejection::Class;
use crate::verify::{self, Rejection};

/// A failing check: its class (`PORTCULLIS_REJECTION`) and its one-line reason.
type Failure = (Class, String);

/// What happens to the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The start proceeds.
    Allow,
    /// The start is refused.
    Deny,
    /// The start proceeds although the requirements failed (warn mode).
    Warn,
}

impl Verdict {
    /// The journal spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Warn => "warn",
        }
    }
}

/// What the checks concluded, before the mode was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Requirements met (verified, exempted, or default allow).
    Pass,
    /// Requirements not met, or an error prevented checking them.
    Fail,
}

/// How the verdict was reached; each kind has its own journal `MESSAGE_ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A signature verified.
    Verified,
    /// An exemption rule or a default-allow let it through unverified.
    Exempt,
    /// Refused.
    Denied,
    /// Failed in warn mode, allowed with a warning.
    Warned,
    /// Failed in audit mode, allowed and recorded.
    Audited,
}

/// One verdict with everything the journal and the operator need.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// allow, deny or warn.
    pub verdict: Verdict,
    /// pass or fail.
    pub outcome: Outcome,
    /// How it was reached.
    pub kind: Kind,
    /// The mode that applied.
    pub mode: Mode,
    /// The rule that applied (`default` when none matched, `-` when unknown).
    pub rule: String,
    /// Why, in one line.
    pub reason: String,
    /// The class of a failure (`PORTCULLIS_REJECTION`), `None` on a pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Class>,
    /// The signer that vouched, if any.
    pub signer: Option<String>,
    /// The digest signed (index or platform manifest).
    pub signed_digest: Option<String>,
    /// The verified provenance, when the rule required it.
    pub provenance: Option<ProvenanceSummary>,
    /// Certificate identity and transparency-log facts of a Sigstore-verified signature.
    pub sigstore: Option<verify::SigstoreFacts>,
    /// `hit` when a cached pass was reused, `miss` when verified now, `bypass`
    /// when verified now without the cache (`portcullis reverify`).
    pub verdict_cache: Option<&'static str>,
    /// `sha256:` of the policy file, if it was read.
    pub policy_digest: Option<String>,
    /// `sha256:` of the trust-root file the rule's verification used, if readable.
    pub trust_root_digest: Option<String>,
    /// The policy file.
    pub policy_path: String,
    /// The containerd namespace.
    pub namespace: String,
    /// The container, when deciding for a start.
    pub container_id: Option<String>,
    /// The normalized image reference, if known.
    pub image_ref: Option<String>,
    /// The image's target digest, if known.
    pub image_digest: Option<String>,
    /// This platform's manifest digest when the target is an index.
    pub platform_digest: Option<String>,
    /// The inner shim to hand over to.
    pub shim: String,
    /// Time spent deciding, in microseconds.
    pub duration_us: u64,
    /// Where that time went (for the benchmark; not journaled).
    #[serde(skip)]
    pub phases: Phases,
}

/// Where a decision's time went, in microseconds, and where verification ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Hashing the verdict-cache key's inputs (cache entries, trust root, signers).
    pub key_us: u64,
    /// Looking the key up in the verdict cache.
    pub cache_read_us: u64,
    /// Verifying (in the sandbox child, fork to reap), on a miss.
    pub verify_us: u64,
    /// Where verification ran, when it ran.
    pub isolation: Option<crate::sandbox::Isolation>,
    /// Where the sandbox's time went, when a child verified.
    pub sandbox: Option<crate::sandbox::Timeline>,
}

impl Decision {
    /// Does the start proceed?
    pub fn allows(&self) -> bool {
        self.verdict != Verdict::Deny
    }

    /// What a refusal names: the image and its digest (`ref@digest`), or
    /// the container when the image is not known.
    pub fn subject(&self) -> String {
        match (&self.image_ref, &self.image_digest) {
            (Some(r), Some(d)) => format!("{r}@{d}"),
            (Some(r), None) => r.clone(),
            _ => format!(
                "container {}/{}",
                self.namespace,
                self.container_id.as_deref().unwrap_or("?")
            ),
        }
    }

    /// The one line printed to containerd (and so to the client) on denial.
    pub fn denial_line(&self) -> String {
        format!(
            "portcullis: denied {}: {}",
            self.subject(),
            crate::bundle::one_line(&self.reason)
        )
    }
}

/// What the shim (or `check`) is deciding about.
#[derive(Debug, Clone)]
pub struct Subject {
    /// containerd namespace.
    pub namespace: String,
    /// The container being started, if any.
    pub container_id: Option<String>,
}

/// Whether a decision may reuse (and store) a cached pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheUse {
    /// The start path: reuse a pass whose inputs are unchanged.
    Use,
    /// `portcullis reverify`: verify again, read and write nothing cached.
    Bypass,
}

/// Decide. `started` is when the work began (for `duration_us`).
pub fn decide(
    policy: &Result<Policy, PolicyError>,
    lookup: Result<ImageTarget, LookupError>,
    state: &StateDir,
    subject: &Subject,
    started: Instant,
) -> Decision {
    decide_with(policy, lookup, state, subject, started, CacheUse::Use)
}

/// Decide again for a running container (`portcullis reverify`): the same
/// checks as [`decide`], the verdict cache neither read nor written, so every
/// signature and attestation is verified now against the policy, signers and
/// trust root in force.
pub fn redecide(
    policy: &Result<Policy, PolicyError>,
    lookup: Result<ImageTarget, LookupError>,
    state: &StateDir,
    subject: &Subject,
    started: Instant,
) -> Decision {
    decide_with(policy, lookup, state, subject, started, CacheUse::Bypass)
}

fn decide_with(
    policy: &Result<Policy, PolicyError>,
    lookup: Result<ImageTarget, LookupError>,
    state: &StateDir,
    subject: &Subject,
    started: Instant,
    cache: CacheUse,
) -> Decision {
    let mut d = Decision {
        verdict: Verdict::Deny,
        outcome: Outcome::Fail,
        kind: Kind::Denied,
        mode: Mode::Enforce,
        rule: "-".into(),
        reason: String::new(),
        rejection: None,
        signer: None,
        signed_digest: None,
        provenance: None,
        sigstore: None,
        verdict_cache: None,
        policy_digest: None,
        trust_root_digest: None,
        policy_path: String::new(),
        namespace: subject.namespace.clone(),
        container_id: subject.container_id.clone(),
        image_ref: None,
        image_digest: None,
        platform_digest: None,
        shim: DEFAULT_SHIM.into(),
        duration_us: 0,
        phases: Phases::default(),
    };
    let known = match &lookup {
        Ok(t) => Some((&t.name, &t.target_digest)),
        // The lookup failed after the image was known: a refusal names it.
        Err(LookupError::Image { name, digest, .. }) => Some((name, digest)),
        Err(_) => None,
    };
    if let Some((name, digest)) = known {
        d.image_ref = Some(
            ImageRef::parse(name)
                .map(|r| r.normalized().to_string())
                .unwrap_or_else(|_| name.clone()),
        );
        d.image_digest = Some(digest.clone());
    }
    if let Ok(t) = &lookup {
        d.platform_digest = t.platform_digest.clone();
    }
    let outcome = evaluate(policy, &lookup, state, &mut d, cache);
    let (verdict, kind) = match (&outcome, d.mode) {
        (Ok(k), _) => (Verdict::Allow, *k),
        (Err(_), Mode::Enforce) => (Verdict::Deny, Kind::Denied),
        (Err(_), Mode::Warn) => (Verdict::Warn, Kind::Warned),
        (Err(_), Mode::Audit) => (Verdict::Allow, Kind::Audited),
    };
    d.outcome = if outcome.is_ok() {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    d.reason = match outcome {
        Ok(_) => std::mem::take(&mut d.reason),
        Err((class, reason)) => {
            d.rejection = Some(class);
            reason
        }
    };
    d.verdict = verdict;
    d.kind = kind;
    d.duration_us = started.elapsed().as_micros() as u64;
    d
}

/// Run the checks; `Ok(kind)` when requirements are met, `Err(reason)` when
/// not. Fills in the decision's rule, mode, signer and policy fields as they
/// become known, and the reason of a pass.
fn evaluate(
    policy: &Result<Policy, PolicyError>,
    lookup: &Result<ImageTarget, LookupError>,
    state: &StateDir,
    d: &mut Decision,
    cache: CacheUse,
) -> Result<Kind, Failure> {
    let policy = match policy {
        Ok(p) => p,
        Err(e) => {
            let (PolicyError::Read { path, .. }
            | PolicyError::TooLarge { path, .. }
            | PolicyError::Invalid { path, .. }) = e;
            d.policy_path = path.display().to_string();
            return Err((
                Class::Policy,
                format!("policy unusable, refusing every start: {e}"),
            ));
        }
    };
    d.policy_path = policy.path.display().to_string();
    d.policy_digest = Some(policy.digest.clone());
    d.mode = policy.mode;
    d.shim = policy.shim.clone();
    let target = match lookup {
        Ok(t) => t,
        Err(e) => return Err((Class::Lookup, format!("cannot identify the image: {e}"))),
    };
    let image = ImageRef::parse(&target.name).map_err(|e| {
        (
            Class::Reference,
            format!("cannot match the image against the policy: {e}"),
        )
    })?;
    check_lineage(target).map_err(|e| (Class::Lineage, e))?;
    let selection = policy.select(&image);
    d.mode = policy.mode_for(&selection);
    match selection {
        Selection::Default(DefaultAction::Allow) => {
            d.rule = "default".into();
            d.reason = "no rule matches; the policy default is allow".into();
            Ok(Kind::Exempt)
        }
        Selection::Default(DefaultAction::Deny) => {
            d.rule = "default".into();
            Err((Class::NoRule, format!(
                "no rule matches {image}; the policy default is deny (add a [[rule]] whose images match it)"
            )))
        }
        Selection::Rule(rule) => {
            d.rule = rule.name.clone();
            match rule.action {
                Action::Allow => {
                    d.reason = format!("exempted by rule \"{}\" (action allow)", rule.name);
                    Ok(Kind::Exempt)
                }
                Action::Deny => Err((
                    Class::DeniedByRule,
                    format!("refused by rule \"{}\" (action deny)", rule.name),
                )),
                // The signers' key files and CA bundles are read once for
                // the decision: the key's fingerprint, the terms and the
                // verification child all see the same bytes.
                Action::Verify => crate::base::fsio::read_once_within(
                    verify::rule::signer_files(&rule.signers, rule.provenance.as_ref()),
                    || verify_rule(policy, rule, target, &image, state, d, cache),
                )
                .and_then(|k| {
                    bind_index_choice(target, d)
                        .map(|()| k)
                        .map_err(|e| (Class::Platform, e))
                })
                .map_err(|(class, e)| match &target.platform_ambiguity {
                    Some(why) if !e.contains(why.as_str()) => {
                        (Class::Platform, format!("{why} ({e})"))
                    }
                    _ => (class, e),
                }),
            }
        }
    }
}

/// The container's rootfs must be an unpacked copy of the image being
/// verified: its active snapshot's parent is the image's chain ID. A
/// container on another snapshot (`ctr run --rootfs`, a snapshot prepared
/// from another image) would run content no signature covers.
fn check_lineage(target: &ImageTarget) -> Result<(), String> {
    match (&target.snapshot_key, &target.snapshot_parent, &target.chain_id) {
        (None, _, _) => Ok(()),
        (Some(_), Some(parent), Some(chain)) if parent == chain => Ok(()),
        (Some(key), parent, chain) => Err(format!(
            "the container's rootfs snapshot {key} does not descend from the verified image (its parent is {}, the image's layer chain is {})",
            parent.as_deref().filter(|p| !p.is_empty()).unwrap_or("none"),
            chain.as_deref().unwrap_or("unknown")
        )),
    }
}

/// An index with several candidate manifests for this node passes only on a
/// signature over the index digest (see [`crate::containerd::platform`]).
fn bind_index_choice(target: &ImageTarget, d: &Decision) -> Result<(), String> {
    match &target.platform_ambiguity {
        Some(why) if d.signed_digest.as_deref() != Some(target.target_digest.as_str()) => {
            Err(format!(
                "{why} (the signature found is over {})",
                d.signed_digest.as_deref().unwrap_or("nothing")
            ))
        }
        _ => Ok(()),
    }
}

fn verify_rule(
    policy: &Policy,
    rule: &crate::policy::Rule,
    target: &ImageTarget,
    image: &ImageRef,
    state: &StateDir,
    d: &mut Decision,
    cache: CacheUse,
) -> Result<Kind, Failure> {
    let root_path = trust_root_path(state, rule.trust_root.as_deref());
    let t_key = Instant::now();
    // Every input of the verification, hashed: any change is a new key.
    // The trust root is read once, here: the key hashes the bytes the
    // verification then parses, so a verdict (and its record's
    // `trust_root_digest`) binds the root that verified it even when
    // `trust update` replaces the file in between; its age (staleness, the
    // verdict's `valid_until`) is that read's modification time.
    let digests = target.digests();
    let root_read =
        crate::base::fsio::read_bounded_dated(&root_path, verify::sigstore::MAX_TRUST_ROOT_BYTES);
    let root_digest = bytes_digest(&root_read);
    d.trust_root_digest = root_digest.clone();
    let mut parts: Vec<Vec<u8>> = vec![
        policy.digest.clone().into_bytes(),
        rule.name.clone().into_bytes(),
        verify::rule::fingerprint(&rule.signers, rule.provenance.as_ref()),
        root_digest.map(String::into_bytes).unwrap_or_default(),
    ];
    // The cache entries likewise: read once, hashed here, and parsed and
    // verified from these bytes in the child.
    let entries = verify::EntryReads::read(state, &digests);
    for (dg, entry_digest) in digests.iter().zip(entries.digests()) {
        parts.push(dg.as_bytes().to_vec());
        parts.push(entry_digest.map(String::into_bytes).unwrap_or_default());
    }
    let key = crate::verdict_cache::Key::new(parts.iter().map(Vec::as_slice));
    let now = jiff::Timestamp::now();
    let t_read = Instant::now();
    d.phases.key_us = (t_read - t_key).as_micros() as u64;
    let cached = match cache {
        CacheUse::Use => crate::verdict_cache::lookup(state, &key, now),
        CacheUse::Bypass => None,
    };
    d.phases.cache_read_us = t_read.elapsed().as_micros() as u64;
    if let Some(hit) = cached {
        d.reason = hit.reason;
        d.signer = hit.signer;
        d.signed_digest = hit.signed_digest;
        d.sigstore = hit.sigstore;
        d.provenance = hit.provenance;
        d.verdict_cache = Some("hit");
        return Ok(Kind::Verified);
    }
    // Not needed for a hit: the key names the signers by their files' bytes.
    let terms = verify::rule::Terms::load(&rule.signers, rule.provenance.as_ref())
        .map_err(|e| (Class::Signers, format!("rule \"{}\": {e}", rule.name)))?;
    // The node's trust root is configuration, like the policy: installed
    // through TUF, a verified policy artifact or the operator. When the
    // terms will read it, it is read here, before the fork, so the child
    // inherits it parsed.
    let root = verify::rule::LazyTrustRoot::node(
        root_path,
        root_read,
        policy.trust_root_max_age,
        policy.trust_root_stale == crate::policy::Stale::Refuse,
    );
    if terms.needs_trust_root() {
        let _ = root.get();
    }
    // The cached artifacts came from registries: parse and verify them in
    // the sandbox, and take back only its small result.
    let t_verify = Instant::now();
    let sandboxed = crate::sandbox::run_timed(|| {
        let mut scratch = d.clone();
        let mut valid_until = None;
        let result = verify_rule_uncached(
            rule,
            target,
            image,
            entries,
            &mut scratch,
            &terms,
            &root,
            &mut valid_until,
        );
        Verified {
            result,
            reason: scratch.reason,
            signer: scratch.signer,
            signed_digest: scratch.signed_digest,
            sigstore: scratch.sigstore,
            provenance: scratch.provenance,
            valid_until,
        }
    });
    d.phases.verify_us = t_verify.elapsed().as_micros() as u64;
    let v = match sandboxed {
        Ok((v, isolation, timeline)) => {
            d.phases.isolation = Some(isolation);
            d.phases.sandbox = timeline;
            v
        }
        Err(e) => return Err((Class::Sandbox, format!("{e} (rule \"{}\")", rule.name))),
    };
    let kind = v.result?;
    d.reason = v.reason;
    d.signer = v.signer;
    d.signed_digest = v.signed_digest;
    d.sigstore = v.sigstore;
    d.provenance = v.provenance;
    let mut valid_until = v.valid_until;
    d.verdict_cache = Some(match cache {
        CacheUse::Use => "miss",
        CacheUse::Bypass => "bypass",
    });
    if let Some(max) = policy.trust_root_max_age {
        // The age of the root that verified, as read with its bytes.
        if let Some(m) = root.modified() {
            // No bound when the sum does not fit (a compiled entry's
            // duration is not the parser's, which caps it).
            let stale_at = m
                .checked_add(max)
                .and_then(|t| jiff::Timestamp::try_from(t).ok());
            valid_until = match (valid_until, stale_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let hit = crate::verdict_cache::Hit {
        reason: d.reason.clone(),
        signer: d.signer.clone(),
        signed_digest: d.signed_digest.clone(),
        sigstore: d.sigstore.clone(),
        provenance: d.provenance.clone(),
    };
    if cache == CacheUse::Use {
        crate::verdict_cache::store(state, &key, &hit, now, valid_until);
    }
    Ok(kind)
}

/// What the verification child sends back: the outcome and the facts a
/// pass records, nothing else.
#[derive(Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Verified {
    result: Result<Kind, Failure>,
    reason: String,
    signer: Option<String>,
    signed_digest: Option<String>,
    sigstore: Option<verify::SigstoreFacts>,
    provenance: Option<ProvenanceSummary>,
    valid_until: Option<jiff::Timestamp>,
}

/// `sha256:<hex>` of the bytes a bounded read returned, or nothing when it
/// found no file, met one over its bound, or failed (the trust root's
/// loader then refuses with the read's reason, when the rule needs it).
fn bytes_digest(read: &std::io::Result<Option<crate::base::fsio::Dated>>) -> Option<String> {
    match read {
        Ok(Some(read)) => Some(crate::digest::sha256_prefixed(&read.bytes)),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn verify_rule_uncached(
    rule: &crate::policy::Rule,
    target: &ImageTarget,
    image: &ImageRef,
    entries: verify::EntryReads,
    d: &mut Decision,
    terms: &verify::rule::Terms,
    root: &verify::rule::LazyTrustRoot,
    valid_until: &mut Option<jiff::Timestamp>,
) -> Result<Kind, Failure> {
    let digests = target.digests();
    let fetch_hint = format!(
        "run `portcullis fetch {}`",
        image.pinned(&target.target_digest)
    );
    let entries = entries
        .parse()
        .map_err(|e| (Class::Cache, format!("signature cache unusable: {e}")))?;
    match verify::rule::check_signatures(&entries, &digests, terms, root) {
        // Provenance alone: its signature binds the digest (below).
        Ok(None) => {}
        Ok(Some(v)) => {
            d.reason = format!("signature by {} over {}", v.signer, v.digest);
            if let Some(f) = &v.sigstore {
                if let (Some(id), Some(ix)) = (&f.log_id, f.log_index) {
                    d.reason.push_str(&format!(" (Rekor log {} index {ix})", &id[..id.len().min(12)]));
                }
                if let Some(n) = f.ignored_timestamps {
                    d.reason.push_str(&format!("; {n} RFC 3161 timestamp(s) from a timestamp authority not in the trust root ignored"));
                }
            }
            if let Some(n) = root.stale_note() {
                d.reason.push_str(&format!("; warning: {n}"));
            }
            d.signer = Some(v.signer);
            d.signed_digest = Some(v.digest);
            d.sigstore = v.sigstore;
        }
        Err(Rejection::NothingCached) => {
            return Err((Class::NothingCached, format!(
                "no signatures cached for {} on this node; {fetch_hint} (rule \"{}\" requires a signature)",
                digests.join(" or "),
                rule.name
            )))
        }
        Err(Rejection::NoValidSignature { examined, reason }) => {
            return Err((reason.class(), format!(
                "{reason} ({examined} cached signature(s) examined, rule \"{}\")",
                rule.name
            )))
        }
    }
    match verify::rule::check_provenance(&entries, &digests, terms, root, jiff::Timestamp::now()) {
        Ok(None) => Ok(Kind::Verified),
        Ok(Some(v)) => {
            let p = &v.provenance;
            if let (Some(max), Some(built)) = (rule.provenance.as_ref().and_then(|pp| pp.max_age), p.built_on()) {
                *valid_until = jiff::SignedDuration::try_from(max)
                    .ok()
                    .and_then(|m| built.checked_add(m).ok());
            }
            let what = format!(
                "provenance by {} from {} ({})",
                p.builder_id,
                p.source_uri.as_deref().unwrap_or("an unnamed source"),
                p.predicate_type
            );
            if terms.signature().is_none() {
                // Provenance alone: its signer vouched for the digest it names.
                d.reason = format!("{what}, signed by {} over {} (rule requires provenance alone)", v.signer, v.subject);
                if let Some(n) = root.stale_note() {
                    d.reason.push_str(&format!("; warning: {n}"));
                }
                d.signer = Some(v.signer.clone());
                d.signed_digest = Some(v.subject.clone());
            } else {
                d.reason.push_str(&format!("; {what}"));
            }
            d.provenance = Some(ProvenanceSummary {
                builder: p.builder_id.clone(),
                source: p.source_uri.clone(),
                source_ref: p.source_ref.clone(),
                build_type: p.build_type.clone(),
                predicate_type: p.predicate_type.clone(),
                statement_digest: v.statement_digest,
                signer: v.signer,
            });
            Ok(Kind::Verified)
        }
        Err(attestation::ProvenanceRejection::NothingCached) => Err((Class::ProvenanceMissing, format!(
            "no provenance attestation cached for {} on this node; {fetch_hint} (rule \"{}\" requires SLSA provenance)",
            digests.join(" or "),
            rule.name
        ))),
        Err(attestation::ProvenanceRejection::NoneAcceptable { examined, reason }) => Err((reason.class(), format!(
            "{reason} ({examined} cached attestation(s) examined, rule \"{}\")",
            rule.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::base::testing::digest as d;
    use crate::cache::{kind, Artifact, Entry, Layer, ENTRY_FORMAT};

    #[test]
    fn verdict_cache_keys_never_open_fifos_or_read_huge_files() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let path = |n| {
            let p = state.entry_path(&d(n)).unwrap();
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            p
        };
        assert!(std::process::Command::new("mkfifo")
            .arg(path(1))
            .status()
            .unwrap()
            .success());
        let f = std::fs::File::create(path(2)).unwrap();
        f.set_len(crate::cache::MAX_ENTRY_BYTES + 1).unwrap();
        std::fs::write(path(3), b"{}").unwrap();
        // Returns at once (opening the FIFO would block until a writer came).
        let reads = verify::EntryReads::read(&state, &[&d(1), &d(2), &d(3), &d(4)]);
        assert_eq!(
            reads.digests().collect::<Vec<_>>(),
            [
                Some(verify::UNREADABLE.to_string()),
                Some(verify::UNREADABLE.to_string()),
                Some(crate::digest::sha256_prefixed(b"{}")),
                None
            ]
        );
        // The verification refuses with the first read's reason.
        let e = reads.parse().unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn the_cache_entries_verified_are_the_bytes_the_key_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let first = signature_entry("first", Default::default(), b"{}");
        let path = state.write(&first).unwrap();
        let first_bytes = std::fs::read(&path).unwrap();
        let reads = verify::EntryReads::read(&state, &[&d(1), &d(4)]);
        // `fetch` replaces the entry after the key was computed, and then
        // something else takes its place.
        state
            .write(&signature_entry("second", Default::default(), b"{}"))
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not JSON").unwrap();
        assert_eq!(
            reads.digests().collect::<Vec<_>>(),
            [Some(crate::digest::sha256_prefixed(&first_bytes)), None]
        );
        assert_eq!(reads.parse().unwrap(), vec![first]);
    }

    fn target(name: &str) -> ImageTarget {
        ImageTarget {
            name: name.into(),
            target_digest: d(1),
            target_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            platform_digest: None,
            platform_ambiguity: None,
            snapshot_key: None,
            snapshotter: None,
            chain_id: None,
            snapshot_parent: None,
        }
    }

    fn subject() -> Subject {
        Subject {
            namespace: "default".into(),
            container_id: Some("c1".into()),
        }
    }

    /// A cache entry for `d(1)` holding one cosign signature layer.
    fn signature_entry(
        repository: &str,
        annotations: std::collections::BTreeMap<String, String>,
        payload: &[u8],
    ) -> Entry {
        Entry {
            format: ENTRY_FORMAT,
            subject: d(1),
            repository: repository.into(),
            fetched_at: "t".into(),
            artifacts: vec![Artifact {
                kind: kind::COSIGN_SIGNATURE.into(),
                source: "s".into(),
                manifest_digest: d(2),
                layers: vec![Layer::new(
                    crate::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                    annotations,
                    payload,
                )],
            }],
        }
    }

    fn policy(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new("/etc/portcullis/policy.toml"))
    }

    fn run(p: &Result<Policy, PolicyError>, t: Result<ImageTarget, LookupError>) -> Decision {
        let dir = tempfile::tempdir().unwrap();
        decide(p, t, &StateDir::new(dir.path()), &subject(), Instant::now())
    }

    const VERIFY: &str = "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"demo\"\nimages = [\"127.0.0.1:5000/demo/*\"]\n[[rule.signer]]\nkey = \"/nonexistent/release.pub\"\n";

    #[test]
    fn an_ambiguous_index_passes_only_on_an_index_signature() {
        let mut t = target("127.0.0.1:5000/demo/a:1");
        t.target_digest = d(9);
        t.platform_digest = Some(d(2));
        t.platform_ambiguity = Some("image index lists 2 manifests".into());
        let mut dec = run(&policy(VERIFY), Ok(t.clone()));
        dec.signed_digest = Some(d(2));
        let why = bind_index_choice(&t, &dec).unwrap_err();
        assert!(
            why.contains("lists 2 manifests") && why.contains(&d(2)),
            "{why}"
        );
        dec.signed_digest = Some(d(9));
        assert!(bind_index_choice(&t, &dec).is_ok());
        t.platform_ambiguity = None;
        dec.signed_digest = Some(d(2));
        assert!(bind_index_choice(&t, &dec).is_ok());
        // Verification that fails on an ambiguous index says why first.
        t.platform_ambiguity = Some("image index lists 2 manifests".into());
        let dec = run(&policy(VERIFY), Ok(t));
        assert_eq!(dec.verdict, Verdict::Deny);
        assert!(
            dec.reason.starts_with("image index lists 2 manifests"),
            "{}",
            dec.reason
        );
        assert_eq!(dec.rejection, Some(Class::Platform));
    }

    #[test]
    fn invalid_policy_refuses_whatever_the_image() {
        let p = policy("mode = \"audit\"\nbogus = 1\n");
        let dec = run(&p, Ok(target("127.0.0.1:5000/demo/a:1")));
        assert_eq!(dec.verdict, Verdict::Deny);
        assert!(dec.reason.contains("policy unusable"), "{}", dec.reason);
        assert!(dec.reason.contains("bogus"), "{}", dec.reason);
        assert_eq!(dec.rejection, Some(Class::Policy));
        assert!(dec
            .denial_line()
            .starts_with("portcullis: denied 127.0.0.1:5000/demo/a:1@sha256:0101"));
    }

    #[test]
    fn unreachable_containerd_refuses_in_enforce_and_warns_in_warn() {
        let err = || {
            Err(LookupError::Connection(
                crate::containerd::wire::DriveError::Unreachable {
                    address: "/run/x.sock".into(),
                    why: "connection refused".into(),
                },
            ))
        };
        let dec = run(&policy(VERIFY), err());
        assert_eq!(dec.verdict, Verdict::Deny);
        assert!(dec.reason.contains("unreachable"));
        assert_eq!(dec.rejection, Some(Class::Lookup));
        assert_eq!(
            dec.denial_line(),
            format!("portcullis: denied container default/c1: {}", dec.reason)
        );
        let dec = run(&policy(&VERIFY.replace("\"enforce\"", "\"warn\"")), err());
        assert_eq!(dec.verdict, Verdict::Warn);
        assert_eq!(dec.kind, Kind::Warned);
        let dec = run(&policy(&VERIFY.replace("\"enforce\"", "\"audit\"")), err());
        assert_eq!(
            (dec.verdict, dec.kind, dec.outcome),
            (Verdict::Allow, Kind::Audited, Outcome::Fail)
        );
    }

    #[test]
    fn default_deny_names_the_fix() {
        let dec = run(&policy(VERIFY), Ok(target("docker.io/library/nginx:1")));
        assert_eq!(dec.verdict, Verdict::Deny);
        assert_eq!(dec.rule, "default");
        assert!(dec
            .reason
            .contains("no rule matches docker.io/library/nginx:1"));
        assert_eq!(dec.rejection, Some(Class::NoRule));
    }

    #[test]
    fn unreadable_key_fails_closed() {
        let dec = run(&policy(VERIFY), Ok(target("127.0.0.1:5000/demo/a:1")));
        assert_eq!(dec.verdict, Verdict::Deny);
        assert_eq!(dec.rule, "demo");
        assert!(
            dec.reason.contains("cannot read signer key"),
            "{}",
            dec.reason
        );
        assert_eq!(dec.rejection, Some(Class::Signers));
    }

    #[test]
    fn nothing_cached_says_which_command_caches_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_kp, key) = crate::base::testing::write_public_key(dir.path());
        let p = policy(&VERIFY.replace("/nonexistent/release.pub", key.to_str().unwrap()));
        let dec = run(&p, Ok(target("127.0.0.1:5000/demo/a:1")));
        assert_eq!(dec.verdict, Verdict::Deny);
        assert!(
            dec.reason.contains(&format!(
                "run `portcullis fetch 127.0.0.1:5000/demo/a@{}`",
                d(1)
            )),
            "{}",
            dec.reason
        );
        assert_eq!(dec.rejection, Some(Class::NothingCached));
    }

    #[test]
    fn exemptions_and_deny_rules() {
        let p = policy("mode=\"enforce\"\ndefault=\"deny\"\n[[rule]]\nname=\"dbg\"\nimages=[\"x.io/dbg\"]\naction=\"allow\"\n[[rule]]\nname=\"bad\"\nimages=[\"x.io/**\"]\naction=\"deny\"\nmode=\"enforce\"\n");
        let dec = run(&p, Ok(target("x.io/dbg:1")));
        assert_eq!(
            (dec.verdict, dec.kind, dec.rule.as_str()),
            (Verdict::Allow, Kind::Exempt, "dbg")
        );
        let dec = run(&p, Ok(target("x.io/a/b:1")));
        assert_eq!((dec.verdict, dec.rule.as_str()), (Verdict::Deny, "bad"));
        assert_eq!(dec.rejection, Some(Class::DeniedByRule));
        assert!(dec.policy_digest.is_some());
    }

    #[test]
    fn a_rootfs_not_from_the_image_is_refused() {
        let mut t = target("x.io/dbg:1");
        t.snapshot_key = Some("c1".into());
        t.snapshot_parent = Some(d(7));
        t.chain_id = Some(d(8));
        let p = policy("mode=\"enforce\"\ndefault=\"allow\"\n");
        let dec = run(&p, Ok(t.clone()));
        assert_eq!(dec.verdict, Verdict::Deny);
        assert!(
            dec.reason
                .contains("does not descend from the verified image"),
            "{}",
            dec.reason
        );
        assert_eq!(dec.rejection, Some(Class::Lineage));
        t.snapshot_parent = Some(d(8));
        let dec = run(&p, Ok(t));
        assert_eq!(dec.verdict, Verdict::Allow);
        assert_eq!(dec.rejection, None);
    }

    /// The staleness knob: a keyless rule whose trust root was last written
    /// two days ago, under `trust_root_max_age = "1d"`.
    #[test]
    fn stale_trust_root_refuses_or_warns_as_the_policy_says() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let root = dir.path().join("root.json");
        std::fs::copy(
            crate::verify::sigstore_tests::shared()
                .join("trust-roots/production/trusted_root.json"),
            &root,
        )
        .unwrap();
        let two_days_ago =
            std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&root)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        let (_, ann) = crate::verify::sigstore_tests::legacy_from("happy-path-v0.1");
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"x.io/app"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
            d(1)
        );
        state
            .write(&signature_entry("x.io/app", ann, payload.as_bytes()))
            .unwrap();
        let text = |stale: &str| {
            format!(
                "mode = \"enforce\"\ndefault = \"deny\"\ntrust_root_max_age = \"1d\"\ntrust_root_stale = \"{stale}\"\n[[rule]]\nname = \"k\"\nimages = [\"x.io/**\"]\ntrust_root = \"{}\"\n[[rule.signer]]\nissuer = \"https://token.actions.githubusercontent.com\"\nsubject_regex = \".*\"\n",
                root.display()
            )
        };
        let refuse = decide(
            &policy(&text("refuse")),
            Ok(target("x.io/app:1")),
            &state,
            &subject(),
            Instant::now(),
        );
        assert_eq!(refuse.verdict, Verdict::Deny);
        assert_eq!(refuse.rejection, Some(Class::NoTrustRoot));
        assert!(
            refuse.reason.contains("older than trust_root_max_age"),
            "{}",
            refuse.reason
        );
        // warn: the root is used; this signature then fails for its own
        // reason (it was not made over this payload), not for staleness.
        let warn = decide(
            &policy(&text("warn")),
            Ok(target("x.io/app:1")),
            &state,
            &subject(),
            Instant::now(),
        );
        assert_eq!(warn.verdict, Verdict::Deny);
        assert!(
            !warn.reason.contains("older than trust_root_max_age"),
            "{}",
            warn.reason
        );
        assert!(warn.reason.contains("keyless signature"), "{}", warn.reason);
    }

    /// A state whose cache holds a signature of `d(1)` (as
    /// 127.0.0.1:5000/demo/a) by a fresh key, and the policy VERIFY with that
    /// key as the demo rule's signer.
    fn key_signed(dir: &Path) -> (StateDir, Result<Policy, PolicyError>) {
        use base64::Engine;
        let state = StateDir::new(dir.join("state"));
        let kp = sigstore_verify::crypto::KeyPair::generate_ecdsa_p256().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(kp.public_key_der().unwrap().as_bytes());
        let key = dir.join("k.pub");
        std::fs::write(
            &key,
            format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n"),
        )
        .unwrap();
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
            .write(&signature_entry(
                "127.0.0.1:5000/demo/a",
                ann,
                payload.as_bytes(),
            ))
            .unwrap();
        let p = policy(&VERIFY.replace("/nonexistent/release.pub", key.to_str().unwrap()));
        (state, p)
    }

    /// `redecide` (portcullis reverify) verifies again: it neither reads a
    /// cached pass nor stores one.
    #[test]
    fn redecide_bypasses_the_verdict_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (state, p) = key_signed(dir.path());
        let t = || Ok(target("127.0.0.1:5000/demo/a:1"));
        let first = decide(&p, t(), &state, &subject(), Instant::now());
        assert_eq!(
            (first.kind, first.verdict_cache),
            (Kind::Verified, Some("miss")),
            "{}",
            first.reason
        );
        // Doctor the stored pass: a decision that reads it says so.
        let verdicts = state.root().join("verdicts");
        let stored: Vec<_> = std::fs::read_dir(&verdicts)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(stored.len(), 1);
        let text = std::fs::read_to_string(&stored[0]).unwrap();
        std::fs::write(
            &stored[0],
            text.replace(&first.reason, "read from the verdict cache"),
        )
        .unwrap();
        let hit = decide(&p, t(), &state, &subject(), Instant::now());
        assert_eq!(hit.verdict_cache, Some("hit"));
        assert_eq!(hit.reason, "read from the verdict cache");
        let again = redecide(&p, t(), &state, &subject(), Instant::now());
        assert_eq!(
            (again.kind, again.verdict_cache, again.reason.as_str()),
            (Kind::Verified, Some("bypass"), first.reason.as_str())
        );
        // And stores nothing.
        std::fs::remove_file(&stored[0]).unwrap();
        let again = redecide(&p, t(), &state, &subject(), Instant::now());
        assert_eq!(again.kind, Kind::Verified);
        assert_eq!(std::fs::read_dir(&verdicts).unwrap().count(), 0);
    }

    /// A trust-root age bound too large to add to a time (a compiled
    /// entry's, which the parser's cap does not reach) means no bound, not a
    /// panic at container start.
    #[test]
    fn a_huge_trust_root_max_age_is_no_bound() {
        let dir = tempfile::tempdir().unwrap();
        let (state, p) = key_signed(dir.path());
        let root = trust_root_path(&state, None);
        std::fs::create_dir_all(root.parent().unwrap()).unwrap();
        std::fs::write(&root, b"{}").unwrap();
        let mut p = p.unwrap();
        p.trust_root_max_age = Some(std::time::Duration::MAX);
        let d = decide(
            &Ok(p),
            Ok(target("127.0.0.1:5000/demo/a:1")),
            &state,
            &subject(),
            Instant::now(),
        );
        assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
        assert!(crate::policy::parse_duration("10000000000000000000s")
            .unwrap_err()
            .contains("at most \"36500d\""));
        assert!(crate::policy::parse_duration("36500d").is_ok());
    }

    /// A cache entry that cannot be read is not an absent one: an index
    /// signed on its index digest passes while its platform manifest has no
    /// entry; when that entry becomes unreadable (here a hard link), the
    /// pass stored before is not reused, and the start refuses as a fresh
    /// decision does.
    #[test]
    fn an_unreadable_entry_does_not_reuse_a_pass_stored_while_it_was_absent() {
        let dir = tempfile::tempdir().unwrap();
        let (state, p) = key_signed(dir.path());
        let t = || {
            let mut t = target("127.0.0.1:5000/demo/a:1");
            t.target_media_type = "application/vnd.oci.image.index.v1+json".into();
            t.platform_digest = Some(d(2));
            Ok(t)
        };
        let first = decide(&p, t(), &state, &subject(), Instant::now());
        assert_eq!(
            (first.verdict, first.verdict_cache),
            (Verdict::Allow, Some("miss")),
            "{}",
            first.reason
        );
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, b"{}").unwrap();
        std::fs::hard_link(&elsewhere, state.entry_path(&d(2)).unwrap()).unwrap();
        let start = decide(&p, t(), &state, &subject(), Instant::now());
        assert_eq!(start.verdict, Verdict::Deny, "{}", start.reason);
        assert_ne!(start.verdict_cache, Some("hit"));
        assert!(start.reason.contains("hard link"), "{}", start.reason);
    }

    /// A keyless image signature as `portcullis fetch` caches it (a
    /// Sigstore bundle from the stand-in: `tests/fixtures/keyless-image`),
    /// decided against an identity expression and an extension: allowed,
    /// with the identity and the log entry recorded; refused for another
    /// subject and for another repository extension, naming what differs.
    #[test]
    fn a_keyless_image_signature_is_decided_end_to_end() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keyless-image");
        let entry: Entry =
            serde_json::from_slice(&std::fs::read(fixture.join("entry.json")).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.write(&entry).unwrap();
        let root = fixture.join("trusted_root.json");
        let text = |subject: &str, repository: &str| {
            format!(
                "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"ci\"\nimages = [\"127.0.0.1:5099/bench/keyless\"]\ntrust_root = \"{}\"\n[[rule.signer]]\nissuer = \"https://token.actions.githubusercontent.com\"\nsubject_regex = \"{subject}\"\n[rule.signer.extensions]\ngithub_workflow_repository = \"{repository}\"\n",
                root.display()
            )
        };
        let mut t = target("127.0.0.1:5099/bench/keyless:1");
        t.target_digest = entry.subject.clone();
        let ours = "https://github.com/acme/app/[.]github/workflows/release[.]yml@refs/tags/v.+";
        let dec = redecide(
            &policy(&text(ours, "acme/app")),
            Ok(t.clone()),
            &state,
            &subject(),
            Instant::now(),
        );
        assert_eq!(dec.verdict, Verdict::Allow, "{}", dec.reason);
        assert_eq!(dec.kind, Kind::Verified);
        assert_eq!(dec.signed_digest.as_deref(), Some(entry.subject.as_str()));
        let facts = dec.sigstore.as_ref().expect("sigstore facts");
        assert_eq!(
            facts.subject.as_deref(),
            Some("https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0")
        );
        assert_eq!(
            facts.issuer.as_deref(),
            Some("https://token.actions.githubusercontent.com")
        );
        assert!(facts.log_index.is_some(), "{facts:?}");
        assert!(dec.reason.contains("Rekor log"), "{}", dec.reason);

        let other = "https://github.com/acme/other/.+";
        for (p, what) in [
            (text(other, "acme/app"), "acme/app/.github"),
            (text(ours, "acme/other"), "acme/other"),
        ] {
            let dec = redecide(
                &policy(&p),
                Ok(t.clone()),
                &state,
                &subject(),
                Instant::now(),
            );
            assert_eq!(dec.verdict, Verdict::Deny, "{}", dec.reason);
            assert!(dec.reason.contains(what), "{}", dec.reason);
        }
    }

    #[test]
    fn no_image_container_is_refused() {
        let dec = run(&policy(VERIFY), Err(LookupError::NoImage("c1".into())));
        assert_eq!(dec.verdict, Verdict::Deny);
        assert!(dec.reason.contains("bare rootfs"));
    }

    /// A lookup that failed after the image was known (its config blob
    /// removed from the content store, say): the refusal names the image
    /// and its digest, not only the container.
    #[test]
    fn a_lookup_failing_after_the_image_names_it() {
        let cause = LookupError::Api {
            call: "content.Read",
            status: "NotFound: content digest not found".into(),
        };
        let dec = run(
            &policy(VERIFY),
            Err(LookupError::Image {
                name: "127.0.0.1:5000/demo/a:1".into(),
                digest: d(1),
                source: Box::new(cause),
            }),
        );
        assert_eq!(dec.verdict, Verdict::Deny);
        let line = dec.denial_line();
        assert!(
            line.starts_with(&format!(
                "portcullis: denied 127.0.0.1:5000/demo/a:1@{}: ",
                d(1)
            )),
            "{line}"
        );
        assert!(line.contains("content.Read failed: NotFound"), "{line}");
    }
}
