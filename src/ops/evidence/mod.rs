//! Audit evidence: one pack that answers an SSDF / SLSA auditor for a period
//! (`portcullis evidence`), its offline check (`evidence verify`) and the
//! fleet view (`evidence merge`).
//!
//! This module owns the pack: what goes in, where, and how it is checked.
//! It reads the node's own records back from journald (verdicts, heartbeats
//! from [`crate::heartbeat`], task starts and observer records from
//! [`crate::sync`]), containerd's current container records, and the state
//! directory (signature cache, archived policies and trust roots). It copies
//! every document a verdict relied on into the pack and re-verifies it *from
//! the pack alone* with the same code the gate uses ([`crate::verify`],
//! [`crate::attestation`]), as of the recorded decision time, against the
//! trust root whose digest the verdict recorded. Every file is listed with
//! its SHA-256 in `MANIFEST.sha256` (the `sha256sum -c` format).
//!
//! What it cannot see it says: policy versions or trust roots whose text was
//! never archived, periods without heartbeats or without an event observer,
//! containerd unreachable, journald Forward Secure Sealing not enabled.
//! The report ([`html`]) is one self-contained HTML file.

pub mod html;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cache::{Entry, StateDir};
use crate::journal::message_id;
use crate::policy::{Policy, Signer};

/// `format` of a node pack's evidence.json.
pub const FORMAT: &str = "portcullis-evidence/1";
/// `format` of a fleet pack's evidence.json.
pub const FLEET_FORMAT: &str = "portcullis-evidence-fleet/1";
/// The manifest: `<sha256>  <path>` per file, as `sha256sum` writes it.
pub const MANIFEST: &str = "MANIFEST.sha256";
/// The machine-readable evidence.
pub const EVIDENCE_JSON: &str = "evidence.json";
/// The human-readable report.
pub const REPORT_HTML: &str = "report.html";
/// The journal records the pack was built from (journalctl's JSON, one array).
pub const RECORDS_JSON: &str = "journal/records.json";
/// containerd's container records when the pack was made.
pub const CONTAINERS_JSON: &str = "containerd/containers.json";

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

fn werr(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn rerr(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// A closed time interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Start.
    pub from: Timestamp,
    /// End.
    pub to: Timestamp,
}

/// Parse a time: RFC 3339 (`2026-11-25T10:00:00Z`), `@<unix seconds>`, or `now`.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let t = s.trim();
    if t == "now" {
        return Ok(Timestamp::now());
    }
    if let Some(secs) = t.strip_prefix('@') {
        return secs
            .parse::<i64>()
            .ok()
            .and_then(|n| Timestamp::from_second(n).ok())
            .ok_or_else(|| format!("\"{s}\" is not @<unix seconds>"));
    }
    t.parse::<Timestamp>().map_err(|_| {
        format!(
            "\"{s}\" is not a time; write RFC 3339 (2026-11-25T10:00:00Z), @<unix seconds> or now"
        )
    })
}

impl Period {
    /// The period ending now and lasting `since`.
    pub fn since(since: Duration) -> Result<Period, String> {
        let to = Timestamp::now();
        let d = jiff::SignedDuration::try_from(since).map_err(|e| e.to_string())?;
        let from = to.checked_sub(d).map_err(|e| e.to_string())?;
        Ok(Period { from, to })
    }

    /// Does it contain `t`?
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t <= self.to
    }
}

// ------------------------------------------------------------------ model

/// One verdict record, as the journal holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictRecord {
    /// When journald received it.
    pub time: Timestamp,
    /// verified, exempt, denied, warned or audited (from its MESSAGE_ID).
    pub kind: String,
    /// allow, deny or warn.
    pub verdict: String,
    /// enforce, warn or audit.
    pub mode: String,
    /// The rule that applied.
    pub rule: String,
    /// Why.
    pub reason: String,
    /// The class of a failure (`PORTCULLIS_REJECTION`), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
    /// containerd namespace.
    pub namespace: String,
    /// The container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// The image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    /// The image's target digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// This platform's manifest digest, when the target is an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_digest: Option<String>,
    /// The signer that vouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The digest signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_digest: Option<String>,
    /// Keyless certificate subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_subject: Option<String>,
    /// Keyless certificate issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_issuer: Option<String>,
    /// Rekor log ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_log_id: Option<String>,
    /// Rekor log index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_log_index: Option<String>,
    /// Provenance builder ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance_builder: Option<String>,
    /// Provenance source repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance_source: Option<String>,
    /// `sha256:` of the verified in-toto statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance_digest: Option<String>,
    /// Who signed the provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance_signer: Option<String>,
    /// The provenance predicate type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance_predicate_type: Option<String>,
    /// `sha256:` of the policy in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    /// `sha256:` of the trust root the rule used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_root_digest: Option<String>,
    /// `hit` or `miss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_cache: Option<String>,
    /// Whether it was replayed from the spool (then `time` is the replay).
    #[serde(default)]
    pub spooled: bool,
    /// When the gate decided (`PORTCULLIS_DECIDED_AT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
}

/// One heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRecord {
    /// When.
    pub time: Timestamp,
    /// The global mode.
    pub mode: String,
    /// `name=mode` per rule.
    pub rule_modes: String,
    /// Every rule enforcing (or the policy unusable: every start refused).
    pub enforcing: bool,
    /// The policy file.
    pub policy_path: String,
    /// Its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    /// Why the policy is unusable, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_error: Option<String>,
    /// `path=digest;…` of the trust roots.
    pub trust_roots: String,
}

/// A policy version the journal mentions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// `sha256:` of the file.
    pub digest: String,
    /// First record naming it in the period (or the heartbeat before).
    pub first_seen: Timestamp,
    /// Last record naming it.
    pub last_seen: Timestamp,
    /// Paths recorded with it.
    pub paths: Vec<String>,
    /// Records naming it.
    pub records: usize,
    /// Its text in the pack, if archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why the text is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// What it trusted, one line per rule (from its text): mode, action,
    /// signers (keys and keyless identities), provenance signers, trust root.
    #[serde(default)]
    pub trusted: Vec<String>,
}

/// One line per rule: what a policy trusted.
pub fn trusted(p: &Policy) -> Vec<String> {
    let signer = |s: &Signer| match s {
        Signer::Key { path, .. } => format!("key {}", path.display()),
        Signer::Keyless(k) => format!(
            "keyless subject {} issuer {}{}",
            k.subject,
            k.issuer,
            k.ca.as_ref()
                .map(|c| format!(" (CA {})", c.display()))
                .unwrap_or_default()
        ),
    };
    let list = |ss: &[Signer]| ss.iter().map(signer).collect::<Vec<_>>().join(", ");
    let mut out = vec![format!(
        "mode {}, default {}",
        p.mode.as_str(),
        match p.default {
            crate::policy::DefaultAction::Allow => "allow",
            crate::policy::DefaultAction::Deny => "deny",
        }
    )];
    for r in &p.rules {
        let mut line = format!(
            "rule {} ({}, mode {})",
            r.name,
            r.action.as_str(),
            r.mode.unwrap_or(p.mode).as_str()
        );
        if !r.signers.is_empty() {
            line.push_str(&format!(": signers {}", list(&r.signers)));
        }
        if let Some(pp) = &r.provenance {
            line.push_str(&format!(
                "; provenance builders {}",
                pp.builder_ids.join(", ")
            ));
            if !pp.signers.is_empty() {
                line.push_str(&format!(" signed by {}", list(&pp.signers)));
            }
        }
        if let Some(t) = &r.trust_root {
            line.push_str(&format!("; trust root {t}"));
        }
        out.push(line);
    }
    out
}

/// A trust root the journal mentions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRootFile {
    /// `sha256:` of the file.
    pub digest: String,
    /// The file in the pack, if found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why it is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// A key or CA file named by a policy version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// The path the policy names.
    pub original: String,
    /// The copy in the pack (as the file is at generation time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `sha256:` of the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why it is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// A signature-cache entry copied into the pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// The digest it holds signatures and attestations for.
    pub subject: String,
    /// The file in the pack.
    pub file: String,
    /// `sha256:` of it.
    pub sha256: String,
    /// Signatures, attestations and bundles in it.
    pub artifacts: BTreeMap<String, usize>,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// pass, fail, or not-required.
    pub status: String,
    /// What was found.
    pub detail: String,
}

impl CheckResult {
    fn pass(d: impl Into<String>) -> Self {
        CheckResult {
            status: "pass".into(),
            detail: d.into(),
        }
    }
    fn fail(d: impl Into<String>) -> Self {
        CheckResult {
            status: "fail".into(),
            detail: d.into(),
        }
    }
    fn not_required(d: impl Into<String>) -> Self {
        CheckResult {
            status: "not-required".into(),
            detail: d.into(),
        }
    }
    /// Did it pass?
    pub fn passed(&self) -> bool {
        self.status == "pass"
    }
}

/// The re-verification of an image's documents from the pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reverification {
    /// As of this time (the recorded decision).
    pub as_of: Timestamp,
    /// The policy version whose rule was applied.
    pub policy_digest: String,
    /// The rule.
    pub rule: String,
    /// The trust root used, if the verdict recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_root_digest: Option<String>,
    /// The signature.
    pub signature: CheckResult,
    /// The provenance.
    pub provenance: CheckResult,
}

impl Reverification {
    /// Both parts passed (or provenance was not required).
    pub fn passed(&self) -> bool {
        self.signature.passed() && self.provenance.status != "fail"
    }
}

/// An image digest started in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEvidence {
    /// The target digest.
    pub digest: String,
    /// The references it was started as.
    pub refs: Vec<String>,
    /// Starts allowed (verified, exempt, warn or audit).
    pub starts: usize,
    /// Whether every start verified a signature.
    pub all_verified: bool,
    /// Every verdict record of the digest in the period.
    pub records: Vec<VerdictRecord>,
    /// Cache documents copied into the pack.
    pub documents: Vec<Document>,
    /// Re-verification of the documents, for digests verified at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverification: Option<Reverification>,
    /// The verified in-toto provenance statement, decoded for reading (the
    /// signed bytes are in the documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance_statement: Option<String>,
}

/// A time enforcement was not shown to be active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Start.
    pub from: Timestamp,
    /// End.
    pub to: Timestamp,
    /// Why.
    pub reason: String,
}

/// A container that ran without going through the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// containerd namespace.
    pub namespace: String,
    /// The container.
    pub container_id: String,
    /// Its image, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Its runtime, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// When it was seen.
    pub time: Timestamp,
    /// `task-start-record` or `containerd-container-record`.
    pub found_by: String,
    /// What exactly was seen.
    pub detail: String,
}

/// How container starts were observed, and the limits of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Times an event observer (`portcullis sync`) was subscribed.
    pub observed: Vec<Interval>,
    /// Times none was.
    pub unobserved: Vec<Interval>,
    /// Task-start records read.
    pub task_starts: usize,
    /// containerd's address.
    pub containerd_address: String,
    /// containerd's container records examined (`None`: unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers_examined: Option<usize>,
    /// Why containerd could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containerd_error: Option<String>,
    /// What this detection cannot see.
    pub limits: Vec<String>,
}

/// journald's own integrity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalIntegrity {
    /// `enabled`, `not-enabled` or `unknown`.
    pub sealing: String,
    /// The command run.
    pub command: String,
    /// Its exit code (`None`: it could not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Its output (at most 40 lines).
    pub output: String,
}

/// One step of the audit procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Stable ID.
    pub id: String,
    /// The auditor's question.
    pub title: String,
    /// pass or fail.
    pub status: String,
    /// Why.
    pub detail: String,
    /// Anchors of the evidence sections (`images`, `gaps`, …).
    pub evidence: Vec<String>,
}

/// Counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// pass when every step passes.
    pub result: String,
    /// Steps passed.
    pub steps_passed: usize,
    /// Steps failed.
    pub steps_failed: usize,
    /// Distinct image digests started.
    pub images_started: usize,
    /// Verdict records in the period.
    pub verdict_records: usize,
    /// Denials.
    pub denials: usize,
    /// Denials by rejection class (`PORTCULLIS_REJECTION`; `unclassified`
    /// for records written before the class was recorded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rejections: BTreeMap<String, usize>,
    /// Starts allowed in warn or audit mode although verification failed.
    pub unverified_allows: usize,
    /// Exemptions.
    pub exemptions: usize,
    /// Containers that bypassed the gate.
    pub gaps: usize,
    /// Periods enforcement was not shown active.
    pub inactive_periods: usize,
    /// Documents re-verified (and how many passed).
    pub reverified: usize,
    /// Re-verifications that passed.
    pub reverified_ok: usize,
}

/// A node's evidence pack (`evidence.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pack {
    /// [`FORMAT`].
    pub format: String,
    /// The node.
    pub node: String,
    /// When the pack was made.
    pub generated_at: Timestamp,
    /// The Portcullis version that made it.
    pub portcullis_version: String,
    /// The period.
    pub period: Period,
    /// Counts and the overall result.
    pub summary: Summary,
    /// The audit procedure, step by step.
    pub steps: Vec<Step>,
    /// Policy versions in force.
    pub policies: Vec<PolicyVersion>,
    /// Trust roots trusted.
    pub trust_roots: Vec<TrustRootFile>,
    /// Keys and CA files the policies name.
    pub keys: Vec<KeyFile>,
    /// The heartbeat timer's interval; a heartbeat covers twice this.
    pub heartbeat_interval_seconds: u64,
    /// Heartbeats (with the last one before the period, if any).
    pub heartbeats: Vec<HeartbeatRecord>,
    /// Images started.
    pub images: Vec<ImageEvidence>,
    /// Refused starts.
    pub denials: Vec<VerdictRecord>,
    /// Starts allowed in warn or audit mode although verification failed.
    pub unverified_allows: Vec<VerdictRecord>,
    /// Starts allowed by an exemption or default allow.
    pub exemptions: Vec<VerdictRecord>,
    /// Times enforcement was not shown active.
    pub inactive_periods: Vec<Interval>,
    /// Containers that bypassed the gate.
    pub gaps: Vec<Gap>,
    /// How starts were observed.
    pub observation: Observation,
    /// journald's integrity check.
    pub journal_integrity: JournalIntegrity,
}

// ------------------------------------------------------------------ journal

/// A journal entry: its time and every field.
#[derive(Debug, Clone)]
pub struct JEntry {
    /// `__REALTIME_TIMESTAMP`.
    pub time: Timestamp,
    /// Fields (non-UTF-8 values lossily decoded).
    pub fields: BTreeMap<String, String>,
}

impl JEntry {
    fn get(&self, k: &str) -> Option<String> {
        self.fields.get(k).filter(|v| !v.is_empty()).cloned()
    }
    fn s(&self, k: &str) -> String {
        self.get(k).unwrap_or_default()
    }
}

/// Parse `journalctl -o json` output into raw values and entries.
pub fn parse_journal(stdout: &[u8]) -> Vec<(serde_json::Value, JEntry)> {
    stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| jentry(&v).map(|e| (v, e)))
        .collect()
}

/// One entry of journalctl's JSON (`None` without a realtime timestamp).
pub fn jentry(v: &serde_json::Value) -> Option<JEntry> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => Some(
            String::from_utf8_lossy(
                &a.iter()
                    .filter_map(|b| b.as_u64().map(|x| x as u8))
                    .collect::<Vec<_>>(),
            )
            .into_owned(),
        ),
        _ => None,
    };
    let obj = v.as_object()?;
    let time = obj
        .get("__REALTIME_TIMESTAMP")
        .and_then(text)
        .and_then(|us| us.parse::<i64>().ok())
        .and_then(|us| Timestamp::from_microsecond(us).ok())?;
    let fields = obj
        .iter()
        .filter(|(k, _)| !k.starts_with("__"))
        .filter_map(|(k, val)| text(val).map(|t| (k.clone(), t)))
        .collect();
    Some(JEntry { time, fields })
}

fn journalctl(args: &[String], directory: Option<&str>) -> Result<Vec<u8>, EvidenceError> {
    let mut cmd = Command::new("journalctl");
    cmd.args(["-o", "json", "--no-pager", "-q"]);
    if let Some(d) = directory {
        cmd.arg(format!("--directory={d}"));
    }
    cmd.args(args);
    let out = cmd.output().map_err(|e| {
        EvidenceError::Journal(format!(
            "cannot run journalctl: {e}; install systemd's journalctl"
        ))
    })?;
    if !out.status.success() {
        return Err(EvidenceError::Journal(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(out.stdout)
}

fn verdict_kind(id: &str) -> Option<&'static str> {
    Some(match id {
        message_id::VERIFIED => "verified",
        message_id::EXEMPT => "exempt",
        message_id::DENIED => "denied",
        message_id::WARNED => "warned",
        message_id::AUDITED => "audited",
        _ => return None,
    })
}

/// A verdict record from a journal entry (`None` for other records).
pub fn verdict_record(e: &JEntry) -> Option<VerdictRecord> {
    let kind = verdict_kind(&e.s("MESSAGE_ID"))?;
    let f = |k: &str| e.get(&format!("PORTCULLIS_{k}"));
    Some(VerdictRecord {
        time: e.time,
        kind: kind.into(),
        verdict: f("VERDICT")?,
        mode: f("MODE").unwrap_or_default(),
        rule: f("RULE").unwrap_or_default(),
        reason: f("REASON").unwrap_or_default(),
        rejection: f("REJECTION").filter(|c| !c.is_empty()),
        namespace: f("NAMESPACE").unwrap_or_default(),
        container_id: f("CONTAINER_ID"),
        image_ref: f("IMAGE_REF"),
        image_digest: f("IMAGE_DIGEST"),
        platform_digest: f("PLATFORM_DIGEST"),
        signer: f("SIGNER"),
        signed_digest: f("SIGNED_DIGEST"),
        signer_subject: f("SIGNER_SUBJECT"),
        signer_issuer: f("SIGNER_ISSUER"),
        rekor_log_id: f("REKOR_LOG_ID"),
        rekor_log_index: f("REKOR_LOG_INDEX"),
        provenance_builder: f("PROVENANCE_BUILDER"),
        provenance_source: f("PROVENANCE_SOURCE"),
        provenance_digest: f("PROVENANCE_DIGEST"),
        provenance_signer: f("PROVENANCE_SIGNER"),
        provenance_predicate_type: f("PROVENANCE_PREDICATE_TYPE"),
        policy_digest: f("POLICY_DIGEST"),
        trust_root_digest: f("TRUST_ROOT_DIGEST"),
        verdict_cache: f("VERDICT_CACHE"),
        spooled: f("SPOOLED").is_some(),
        decided_at: f("DECIDED_AT"),
    })
}

/// A heartbeat from a journal entry.
pub fn heartbeat_record(e: &JEntry) -> Option<HeartbeatRecord> {
    if e.s("MESSAGE_ID") != message_id::HEARTBEAT {
        return None;
    }
    let policy_error = e.get("PORTCULLIS_POLICY_ERROR");
    Some(HeartbeatRecord {
        time: e.time,
        mode: e.s("PORTCULLIS_MODE"),
        rule_modes: e.s("PORTCULLIS_RULE_MODES"),
        // An unusable policy refuses every start: enforcement, fail-closed.
        enforcing: policy_error.is_some() || e.s("PORTCULLIS_ENFORCING") == "true",
        policy_path: e.s("PORTCULLIS_POLICY_PATH"),
        policy_digest: e.get("PORTCULLIS_POLICY_DIGEST"),
        policy_error,
        trust_roots: e.s("PORTCULLIS_TRUST_ROOTS"),
    })
}

// ------------------------------------------------------------------ analysis

/// Times in `period` not covered by an enforcing heartbeat: a heartbeat
/// covers `[t, t + grace)` (cut at the next heartbeat).
pub fn inactive_periods(period: Period, hbs: &[HeartbeatRecord], grace: Duration) -> Vec<Interval> {
    let grace = jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::ZERO);
    let mut hbs: Vec<&HeartbeatRecord> = hbs.iter().collect();
    hbs.sort_by_key(|h| h.time);
    let mut out: Vec<Interval> = Vec::new();
    let mut push = |from: Timestamp, to: Timestamp, reason: String| {
        if from >= to {
            return;
        }
        if let Some(last) = out.last_mut() {
            if last.to == from && last.reason == reason {
                last.to = to;
                return;
            }
        }
        out.push(Interval { from, to, reason });
    };
    let mut cursor = period.from;
    for (i, h) in hbs.iter().enumerate() {
        let mut end = h.time.checked_add(grace).unwrap_or(h.time);
        if let Some(next) = hbs.get(i + 1) {
            end = end.min(next.time);
        }
        let (start, end) = (h.time.max(period.from), end.min(period.to));
        if end <= cursor {
            continue;
        }
        if start > cursor {
            push(
                cursor,
                start,
                "no heartbeat: the gate's configuration is not on record".into(),
            );
        }
        let start = start.max(cursor);
        if !h.enforcing {
            push(
                start,
                end,
                format!(
                    "mode {} with rules {}: failing starts are allowed",
                    h.mode,
                    if h.rule_modes.is_empty() {
                        "(none)"
                    } else {
                        &h.rule_modes
                    }
                ),
            );
        }
        cursor = end;
    }
    push(
        cursor,
        period.to,
        "no heartbeat: the gate's configuration is not on record".into(),
    );
    out
}

/// Observed intervals from observer records (`start`/`stop`, sorted by time;
/// `before` is the last one before the period). A `start` without a `stop`
/// is taken to observe until the next `start` or the end of the period.
pub fn observed_intervals(
    period: Period,
    before: Option<&JEntry>,
    records: &[&JEntry],
) -> (Vec<Interval>, Vec<Interval>) {
    let mut observed = Vec::new();
    let mut open: Option<Timestamp> = before
        .filter(|e| e.s("PORTCULLIS_OBSERVER") == "start")
        .map(|_| period.from);
    for r in records {
        match r.s("PORTCULLIS_OBSERVER").as_str() {
            "start" => {
                if let Some(o) = open.take() {
                    observed.push((o, r.time));
                }
                open = Some(r.time);
            }
            "stop" => {
                if let Some(o) = open.take() {
                    observed.push((o, r.time));
                }
            }
            _ => {}
        }
    }
    if let Some(o) = open {
        observed.push((o, period.to));
    }
    let observed: Vec<Interval> = observed
        .into_iter()
        .filter(|(a, b)| a < b)
        .map(|(from, to)| Interval {
            from,
            to,
            reason: "portcullis sync subscribed to containerd's task events".into(),
        })
        .collect();
    let mut unobserved = Vec::new();
    let mut cursor = period.from;
    for o in &observed {
        if o.from > cursor {
            unobserved.push(Interval {
                from: cursor,
                to: o.from,
                reason: "no event observer: task starts in this time are not on record".into(),
            });
        }
        cursor = cursor.max(o.to);
    }
    if cursor < period.to {
        unobserved.push(Interval {
            from: cursor,
            to: period.to,
            reason: "no event observer: task starts in this time are not on record".into(),
        });
    }
    (observed, unobserved)
}

/// A container record containerd holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// Namespace.
    pub namespace: String,
    /// ID.
    pub id: String,
    /// Image.
    pub image: String,
    /// Runtime.
    pub runtime: String,
    /// Creation time.
    pub created_at: Option<Timestamp>,
}

/// Every container record in every namespace of containerd at `address`.
pub fn list_containers(address: &str, timeout: Duration) -> Result<Vec<ContainerInfo>, String> {
    use containerd_client::services::v1::containers_client::ContainersClient;
    use containerd_client::services::v1::namespaces_client::NamespacesClient;
    use containerd_client::services::v1::{ListContainersRequest, ListNamespacesRequest};
    use containerd_client::tonic::Request;
    use containerd_client::with_namespace;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    let path = address
        .strip_prefix("unix://")
        .unwrap_or(address)
        .to_string();
    rt.block_on(async move {
        tokio::time::timeout(timeout, async move {
            let channel = containerd_client::connect(&path)
                .await
                .map_err(|e| format!("unreachable: {}", crate::containerd::source_chain(&e)))?;
            let namespaces = NamespacesClient::new(channel.clone())
                .list(ListNamespacesRequest {
                    filter: String::new(),
                })
                .await
                .map_err(|s| format!("namespaces.List: {}", s.message()))?
                .into_inner()
                .namespaces;
            let mut out = Vec::new();
            for ns in namespaces {
                let cs = ContainersClient::new(channel.clone())
                    .list(with_namespace!(
                        ListContainersRequest { filters: vec![] },
                        ns.name.as_str()
                    ))
                    .await
                    .map_err(|s| format!("containers.List ({}): {}", ns.name, s.message()))?
                    .into_inner()
                    .containers;
                for c in cs {
                    out.push(ContainerInfo {
                        namespace: ns.name.clone(),
                        id: c.id,
                        image: c.image,
                        runtime: c.runtime.map(|r| r.name).unwrap_or_default(),
                        created_at: c
                            .created_at
                            .and_then(|t| Timestamp::new(t.seconds, t.nanos).ok()),
                    });
                }
            }
            Ok(out)
        })
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
    })
}

/// Containers that ran (or were set up to run) without the gate: task-start
/// records under another runtime, task starts under ours with no verdict,
/// and containerd records of another runtime created in the period.
pub fn find_gaps(
    period: Period,
    tasks: &[&JEntry],
    verdicts: &[VerdictRecord],
    containers: &[ContainerInfo],
) -> Vec<Gap> {
    let judged: BTreeSet<(&str, &str)> = verdicts
        .iter()
        .filter_map(|v| v.container_id.as_deref().map(|c| (v.namespace.as_str(), c)))
        .collect();
    let mut gaps = Vec::new();
    let mut seen = BTreeSet::new();
    for t in tasks {
        let ns = t.s("PORTCULLIS_NAMESPACE");
        let id = t.s("PORTCULLIS_CONTAINER_ID");
        let runtime = t.s("PORTCULLIS_RUNTIME");
        let gated = runtime == crate::base::names::RUNTIME_TYPE;
        // A verdict for the container, from either gate (the shim wrapper or
        // the runc gate under node-wide enforcement), covers its start; the
        // record's runtime name proves nothing (Tasks.Create.runtime_path).
        if judged.contains(&(ns.as_str(), id.as_str())) {
            continue;
        }
        let detail = if gated {
            "task started under the Portcullis runtime but no verdict record for this container is in the period".to_string()
        } else {
            format!(
                "containerd started the task under runtime {runtime}, not {}; nothing verified it (image and runtime from the {})",
                crate::base::names::RUNTIME_TYPE,
                t.s("PORTCULLIS_SOURCE")
            )
        };
        seen.insert((ns.clone(), id.clone()));
        gaps.push(Gap {
            namespace: ns,
            container_id: id,
            image: match (
                t.get("PORTCULLIS_IMAGE_REF"),
                t.get("PORTCULLIS_IMAGE_DIGEST"),
            ) {
                (Some(r), Some(d)) => Some(format!("{r}@{d}")),
                (r, _) => r,
            },
            runtime: Some(runtime).filter(|r| !r.is_empty()),
            time: t.time,
            found_by: "task-start-record".into(),
            detail,
        });
    }
    for c in containers {
        if c.runtime == crate::base::names::RUNTIME_TYPE
            || judged.contains(&(c.namespace.as_str(), c.id.as_str()))
        {
            continue;
        }
        let Some(created) = c.created_at.filter(|t| period.contains(*t)) else {
            continue;
        };
        if !seen.insert((c.namespace.clone(), c.id.clone())) {
            continue;
        }
        gaps.push(Gap {
            namespace: c.namespace.clone(),
            container_id: c.id.clone(),
            image: Some(c.image.clone()).filter(|s| !s.is_empty()),
            runtime: Some(c.runtime.clone()),
            time: created,
            found_by: "containerd-container-record".into(),
            detail: format!(
                "containerd holds this container, created in the period with runtime {}: its tasks do not go through the gate",
                c.runtime
            ),
        });
    }
    gaps.sort_by_key(|g| g.time);
    gaps
}

/// Everything a pack states that follows from its journal records and
/// containerd's container records alone: computed once when the pack is
/// made and again by `evidence verify`, which compares the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// Verdict records in the period.
    pub verdicts: Vec<VerdictRecord>,
    /// Heartbeats in the period, with the last one before it.
    pub heartbeats: Vec<HeartbeatRecord>,
    /// Images started (documents and re-verification not filled in).
    pub images: Vec<ImageEvidence>,
    /// Refused starts.
    pub denials: Vec<VerdictRecord>,
    /// Warn and audit-mode allows.
    pub unverified_allows: Vec<VerdictRecord>,
    /// Exemptions.
    pub exemptions: Vec<VerdictRecord>,
    /// Times enforcement was not shown active.
    pub inactive_periods: Vec<Interval>,
    /// Observed times.
    pub observed: Vec<Interval>,
    /// Unobserved times.
    pub unobserved: Vec<Interval>,
    /// Task-start records in the period.
    pub task_starts: usize,
    /// Containers that bypassed the gate.
    pub gaps: Vec<Gap>,
}

/// Derive the record-based sections from journal entries (those in the
/// period, plus the last heartbeat and observer record before it) and
/// containerd's container records. `grace`: how long a heartbeat covers.
pub fn derive(
    period: Period,
    records: &[&JEntry],
    containers: &[ContainerInfo],
    grace: Duration,
) -> Derived {
    let id = |e: &JEntry| e.s("MESSAGE_ID");
    let inside: Vec<&JEntry> = records
        .iter()
        .copied()
        .filter(|e| period.contains(e.time))
        .collect();
    let last_before = |mid: &str| {
        records
            .iter()
            .copied()
            .filter(|e| e.time < period.from && id(e) == mid)
            .max_by_key(|e| e.time)
    };
    let verdicts: Vec<VerdictRecord> = inside.iter().filter_map(|e| verdict_record(e)).collect();
    let mut heartbeats: Vec<HeartbeatRecord> = last_before(message_id::HEARTBEAT)
        .into_iter()
        .chain(inside.iter().copied())
        .filter_map(heartbeat_record)
        .collect();
    heartbeats.sort_by_key(|h| h.time);
    let tasks: Vec<&JEntry> = inside
        .iter()
        .copied()
        .filter(|e| id(e) == message_id::TASK_STARTED)
        .collect();
    let mut observers: Vec<&JEntry> = inside
        .iter()
        .copied()
        .filter(|e| id(e) == message_id::OBSERVER)
        .collect();
    observers.sort_by_key(|e| e.time);
    let (observed, unobserved) =
        observed_intervals(period, last_before(message_id::OBSERVER), &observers);
    let mut by_digest: BTreeMap<String, Vec<VerdictRecord>> = BTreeMap::new();
    for v in &verdicts {
        if let Some(d) = &v.image_digest {
            by_digest.entry(d.clone()).or_default().push(v.clone());
        }
    }
    let mut images = Vec::new();
    for (digest, records) in by_digest {
        let allowed = records.iter().filter(|r| r.verdict != "deny").count();
        if allowed == 0 {
            continue;
        }
        let all_verified = records
            .iter()
            .filter(|r| r.verdict != "deny")
            .all(|r| r.kind == "verified");
        let mut refs: Vec<String> = records.iter().filter_map(|r| r.image_ref.clone()).collect();
        refs.sort();
        refs.dedup();
        images.push(ImageEvidence {
            digest,
            refs,
            starts: allowed,
            all_verified,
            records,
            documents: Vec::new(),
            reverification: None,
            provenance_statement: None,
        });
    }
    let pick = |f: &dyn Fn(&VerdictRecord) -> bool| -> Vec<VerdictRecord> {
        verdicts.iter().filter(|v| f(v)).cloned().collect()
    };
    Derived {
        denials: pick(&|v| v.verdict == "deny"),
        unverified_allows: pick(&|v| v.kind == "warned" || v.kind == "audited"),
        exemptions: pick(&|v| v.kind == "exempt"),
        inactive_periods: inactive_periods(period, &heartbeats, grace),
        gaps: find_gaps(period, &tasks, &verdicts, containers),
        task_starts: tasks.len(),
        observed,
        unobserved,
        images,
        heartbeats,
        verdicts,
    }
}

// ------------------------------------------------------------------ files

fn rel_hex(digest: &str) -> Option<&str> {
    crate::digest::sha256_hex_of(digest).ok()
}

fn write_file(dir: &Path, rel: &str, bytes: &[u8]) -> Result<(), EvidenceError> {
    let path = dir.join(rel);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(werr(p))?;
    }
    std::fs::write(&path, bytes).map_err(werr(&path))
}

/// Every regular file under `dir`, relative, sorted (the manifest excluded).
pub fn pack_files(dir: &Path) -> Result<Vec<String>, EvidenceError> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) -> Result<(), EvidenceError> {
        for e in std::fs::read_dir(d).map_err(rerr(d))? {
            let e = e.map_err(rerr(d))?;
            let p = e.path();
            let ft = e.file_type().map_err(rerr(&p))?;
            if ft.is_dir() {
                walk(base, &p, out)?;
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                if rel != MANIFEST {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Write `MANIFEST.sha256` for every file of the pack.
pub fn write_manifest(dir: &Path) -> Result<usize, EvidenceError> {
    let files = pack_files(dir)?;
    let mut text = String::new();
    for f in &files {
        let p = dir.join(f);
        let bytes = std::fs::read(&p).map_err(rerr(&p))?;
        text.push_str(&format!("{}  {f}\n", crate::digest::sha256_hex(&bytes)));
    }
    write_file(dir, MANIFEST, text.as_bytes())?;
    Ok(files.len())
}

/// Check the manifest: every listed file present with its digest, no file unlisted.
pub fn check_manifest(dir: &Path) -> Result<(usize, Vec<String>), EvidenceError> {
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(|e| EvidenceError::NotAPack {
        path: dir.to_path_buf(),
        why: format!("{MANIFEST}: {e}"),
    })?;
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let Some((hex, name)) = line.split_once("  ") else {
            problems.push(format!("{MANIFEST} line {}: not `<sha256>  <path>`", n + 1));
            continue;
        };
        if name.split('/').any(|c| c == ".." || c.is_empty()) || name.starts_with('/') {
            problems.push(format!(
                "{MANIFEST} line {}: path {name:?} leaves the pack",
                n + 1
            ));
            continue;
        }
        listed.insert(name.to_string());
        match std::fs::read(dir.join(name)) {
            Ok(b) if crate::digest::sha256_hex(&b) == hex => {}
            Ok(_) => problems.push(format!(
                "{name}: SHA-256 differs from the manifest (the file was changed)"
            )),
            Err(e) => problems.push(format!("{name}: listed in the manifest but {e}")),
        }
    }
    for f in pack_files(dir)? {
        if !listed.contains(&f) {
            problems.push(format!("{f}: in the pack but not in the manifest"));
        }
    }
    Ok((listed.len(), problems))
}

// ------------------------------------------------------------------ re-verification

/// Re-verify an image's documents from the pack alone: the rule of the
/// recorded policy version (its key and CA paths mapped to the pack's
/// copies), the trust root of the recorded digest, the cache documents, as
/// of the recorded decision time.
pub fn reverify(dir: &Path, pack: &Pack, image: &ImageEvidence) -> Option<Reverification> {
    reverify_full(dir, pack, image).map(|(r, _)| r)
}

/// [`reverify`], with the verified in-toto statement when provenance passed.
pub fn reverify_full(
    dir: &Path,
    pack: &Pack,
    image: &ImageEvidence,
) -> Option<(Reverification, Option<serde_json::Value>)> {
    let rec = image.records.iter().rev().find(|r| r.kind == "verified")?;
    let policy_digest = rec.policy_digest.clone().unwrap_or_default();
    let mut out = Reverification {
        as_of: rec.time,
        policy_digest: policy_digest.clone(),
        rule: rec.rule.clone(),
        trust_root_digest: rec.trust_root_digest.clone(),
        signature: CheckResult::fail("not checked"),
        provenance: CheckResult::fail("not checked"),
    };
    let fail_both = |mut o: Reverification, why: String| {
        o.signature = CheckResult::fail(why.clone());
        o.provenance = CheckResult::fail(why);
        Some((o, None))
    };
    let mut statement = None;
    let Some(pfile) = pack
        .policies
        .iter()
        .find(|p| p.digest == policy_digest)
        .and_then(|p| p.file.clone())
    else {
        return fail_both(out, format!("the text of policy {policy_digest} is not in the pack; cannot know the rule's signers"));
    };
    let text = match std::fs::read_to_string(dir.join(&pfile)) {
        Ok(t) => t,
        Err(e) => return fail_both(out, format!("{pfile}: {e}")),
    };
    if crate::digest::sha256_prefixed(text.as_bytes()) != policy_digest {
        return fail_both(
            out,
            format!("{pfile} does not have the digest {policy_digest}"),
        );
    }
    let path = pack
        .policies
        .iter()
        .find(|p| p.digest == policy_digest)
        .and_then(|p| p.paths.first().cloned())
        .unwrap_or_else(|| "/etc/portcullis/policy.toml".into());
    let policy = match Policy::parse(&text, Path::new(&path)) {
        Ok(p) => p,
        Err(e) => return fail_both(out, format!("policy {policy_digest}: {e}")),
    };
    let Some(mut rule) = policy.rules.iter().find(|r| r.name == rec.rule).cloned() else {
        return fail_both(
            out,
            format!("policy {policy_digest} has no rule \"{}\"", rec.rule),
        );
    };
    let map = |p: &Path| -> Result<PathBuf, String> {
        let shown = p.display().to_string();
        pack.keys
            .iter()
            .find(|k| k.original == shown)
            .and_then(|k| k.file.as_ref())
            .map(|f| dir.join(f))
            .ok_or_else(|| {
                format!(
                    "{shown} (named by rule \"{}\") is not in the pack",
                    rec.rule
                )
            })
    };
    let remap = |signers: &mut Vec<Signer>| -> Result<(), String> {
        for s in signers.iter_mut() {
            match s {
                Signer::Key { path, .. } => *path = map(path)?,
                Signer::Keyless(k) => {
                    if let Some(ca) = &k.ca {
                        k.ca = Some(map(ca)?);
                    }
                }
            }
        }
        Ok(())
    };
    if let Err(e) = remap(&mut rule.signers) {
        return fail_both(out, e);
    }
    if let Some(pp) = rule.provenance.as_mut() {
        if let Err(e) = remap(&mut pp.signers) {
            return fail_both(out, e);
        }
    }
    let root_file = rec.trust_root_digest.as_ref().and_then(|d| {
        pack.trust_roots
            .iter()
            .find(|t| &t.digest == d)
            .and_then(|t| t.file.as_ref())
            .map(|f| dir.join(f))
    });
    let root = crate::verify::rule::LazyTrustRoot::pack(root_file.ok_or_else(|| {
        format!(
            "the trust root {} is not in the pack",
            rec.trust_root_digest
                .as_deref()
                .unwrap_or("(none recorded)")
        )
    }));
    let mut digests: Vec<&str> = vec![image.digest.as_str()];
    if let Some(p) = rec.platform_digest.as_deref() {
        digests.push(p);
    }
    let mut entries: Vec<Entry> = Vec::new();
    for d in &image.documents {
        let p = dir.join(&d.file);
        match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|e| e.to_string()))
        {
            Ok(e) if e.subject == d.subject && digests.contains(&e.subject.as_str()) => {
                entries.push(e)
            }
            Ok(e) => {
                return fail_both(
                    out,
                    format!("{}: holds {} instead of {}", d.file, e.subject, d.subject),
                )
            }
            Err(e) => return fail_both(out, format!("{}: {e}", d.file)),
        }
    }
    let signers = match crate::verify::RuleSigners::load(&rule.signers) {
        Ok(s) => s,
        Err(e) => return fail_both(out, format!("rule \"{}\": {e}", rule.name)),
    };
    out.signature = match crate::verify::rule::check_signatures(&entries, &digests, &signers, &root)
    {
        Ok(v) => {
            if rec.signed_digest.as_deref().is_some_and(|s| s != v.digest) {
                CheckResult::fail(format!(
                    "a signature verifies over {}, but the verdict recorded {}",
                    v.digest,
                    rec.signed_digest.as_deref().unwrap_or("")
                ))
            } else {
                CheckResult::pass(format!("signature by {} over {}", v.signer, v.digest))
            }
        }
        Err(crate::verify::Rejection::NothingCached) => {
            CheckResult::fail("no signature document in the pack".to_string())
        }
        Err(crate::verify::Rejection::NoValidSignature { reason, examined }) => {
            CheckResult::fail(format!("{reason} ({examined} signature(s) examined)"))
        }
    };
    out.provenance = match &rule.provenance {
        None => CheckResult::not_required(format!("rule \"{}\" requires no provenance", rule.name)),
        Some(pp) => {
            let att_signers = if pp.signers.is_empty() {
                Ok(signers.clone())
            } else {
                crate::verify::RuleSigners::load(&pp.signers)
            };
            match (crate::attestation::requirement(pp), att_signers) {
                (Err(e), _) => CheckResult::fail(e),
                (_, Err(e)) => CheckResult::fail(e.to_string()),
                (Ok(req), Ok(att)) => match crate::verify::rule::check_provenance(
                    &entries, &digests, &att, &req, &root, rec.time,
                ) {
                    Ok(v)
                        if rec
                            .provenance_digest
                            .as_deref()
                            .is_some_and(|d| d != v.statement_digest) =>
                    {
                        CheckResult::fail(format!(
                            "a provenance verifies ({}) but the verdict recorded {}",
                            v.statement_digest,
                            rec.provenance_digest.as_deref().unwrap_or("")
                        ))
                    }
                    Ok(v) => CheckResult::pass({
                        statement = Some(v.statement.clone());
                        format!(
                            "{} by {} from {}, signed by {}, statement {}",
                            v.provenance.predicate_type,
                            v.provenance.builder_id,
                            v.provenance
                                .source_uri
                                .as_deref()
                                .unwrap_or("an unnamed source"),
                            v.signer,
                            v.statement_digest
                        )
                    }),
                    Err(crate::attestation::ProvenanceRejection::NothingCached) => {
                        CheckResult::fail("no provenance attestation in the pack".to_string())
                    }
                    Err(crate::attestation::ProvenanceRejection::NoneAcceptable {
                        reason,
                        examined,
                    }) => {
                        CheckResult::fail(format!("{reason} ({examined} attestation(s) examined)"))
                    }
                },
            }
        }
    };
    Some((out, statement))
}

// ------------------------------------------------------------------ steps

fn step(id: &str, title: &str, ok: bool, detail: String, evidence: &[&str]) -> Step {
    Step {
        id: id.into(),
        title: title.into(),
        status: if ok { "pass" } else { "fail" }.into(),
        detail,
        evidence: evidence.iter().map(|s| s.to_string()).collect(),
    }
}

/// The audit procedure's steps, judged from the pack's contents.
pub fn judge(p: &Pack) -> Vec<Step> {
    let mut steps = Vec::new();
    // 1. signatures present
    let unsigned: Vec<&ImageEvidence> = p.images.iter().filter(|i| !i.all_verified).collect();
    let nodocs: Vec<&ImageEvidence> = p
        .images
        .iter()
        .filter(|i| i.all_verified && i.documents.is_empty())
        .collect();
    steps.push(step(
        "signatures-present",
        "Every image started carries a signature verified at start, and the signature is in the pack",
        !p.images.is_empty() && unsigned.is_empty() && nodocs.is_empty(),
        if p.images.is_empty() {
            "no image was started in the period: nothing to sample".into()
        } else if unsigned.is_empty() && nodocs.is_empty() {
            format!("{} image digest(s) started, each with a verified signature whose document is in the pack", p.images.len())
        } else {
            format!(
                "{} of {} image digest(s) started without a verified signature (exemption, warn or audit mode){}",
                unsigned.len(),
                p.images.len(),
                if nodocs.is_empty() { String::new() } else { format!("; {} verified digest(s) have no document left in the node's cache", nodocs.len()) }
            )
        },
        &["images", "unverified-allows", "exemptions"],
    ));
    // 2. provenance present and schema-valid
    let verified: Vec<&ImageEvidence> = p.images.iter().filter(|i| i.all_verified).collect();
    let without_prov: Vec<&&ImageEvidence> = verified
        .iter()
        .filter(|i| {
            !i.records
                .iter()
                .filter(|r| r.kind == "verified")
                .all(|r| r.provenance_digest.is_some())
        })
        .collect();
    steps.push(step(
        "provenance-present",
        "Every image started carries SLSA provenance that conforms to the schema",
        !p.images.is_empty() && unsigned.is_empty() && without_prov.is_empty(),
        if p.images.is_empty() {
            "no image was started in the period".into()
        } else if unsigned.is_empty() && without_prov.is_empty() {
            format!("{} image digest(s) started, each with SLSA provenance parsed and checked against the rule at start", verified.len())
        } else {
            format!(
                "{} image digest(s) started without verified provenance ({} without any verification, {} under rules that require none)",
                unsigned.len() + without_prov.len(),
                unsigned.len(),
                without_prov.len()
            )
        },
        &["images"],
    ));
    // 3. re-verification
    let re: Vec<&Reverification> = p
        .images
        .iter()
        .filter_map(|i| i.reverification.as_ref())
        .collect();
    let bad = re.iter().filter(|r| !r.passed()).count();
    steps.push(step(
        "signatures-reverified",
        "Signatures and provenance signatures verify again, offline, against the recorded trust root",
        !re.is_empty() && bad == 0,
        if re.is_empty() {
            "no verified start in the period: nothing to re-verify".into()
        } else {
            format!("{} of {} image digest(s) re-verified from the pack's documents", re.len() - bad, re.len())
        },
        &["images", "trust-roots", "policies"],
    ));
    // 4. enforcement configured before execution
    let nonenforce = p
        .images
        .iter()
        .flat_map(|i| &i.records)
        .filter(|r| r.mode != "enforce")
        .count()
        + p.denials.iter().filter(|r| r.mode != "enforce").count();
    steps.push(step(
        "enforcement-configured",
        "Deployment enforces verification before execution throughout the period",
        p.inactive_periods.is_empty() && nonenforce == 0,
        if p.inactive_periods.is_empty() && nonenforce == 0 {
            format!("{} heartbeat(s) state mode enforce for every rule over the whole period; every verdict was in enforce mode", p.heartbeats.len())
        } else {
            format!(
                "{} period(s) without shown enforcement; {} verdict(s) in warn or audit mode",
                p.inactive_periods.len(),
                nonenforce
            )
        },
        &["enforcement", "heartbeats", "policies"],
    ));
    // 5. logs show verification occurred
    let integrity_bad =
        p.journal_integrity.sealing == "enabled" && p.journal_integrity.exit_code != Some(0);
    let containerd_blind = p.observation.containers_examined.is_none();
    let ok5 = p.gaps.is_empty()
        && p.observation.unobserved.is_empty()
        && !integrity_bad
        && !containerd_blind;
    let mut why = Vec::new();
    if !p.gaps.is_empty() {
        why.push(format!(
            "{} container(s) ran without a verdict",
            p.gaps.len()
        ));
    }
    if !p.observation.unobserved.is_empty() {
        why.push(format!(
            "{} period(s) in which task starts were not observed",
            p.observation.unobserved.len()
        ));
    }
    if containerd_blind {
        why.push("containerd's container records could not be read".into());
    }
    if integrity_bad {
        why.push("journalctl --verify reports a problem with the sealed journal".into());
    }
    steps.push(step(
        "verification-logged",
        "The logs show verification occurred for every container started",
        ok5,
        if ok5 {
            format!(
                "{} task start(s) observed and {} container record(s) examined: each start has a verdict record",
                p.observation.task_starts,
                p.observation.containers_examined.unwrap_or(0)
            )
        } else {
            why.join("; ")
        },
        &["gaps", "observation", "journal-integrity"],
    ));
    // 6. nothing unsigned ran
    let blind = !p.observation.unobserved.is_empty() || containerd_blind;
    let ok6 = unsigned.is_empty() && p.gaps.is_empty() && !blind;
    let mut why6 = Vec::new();
    if !unsigned.is_empty() || !p.gaps.is_empty() {
        why6.push(format!(
            "{} start(s) allowed without verification ({} exemption(s), {} warn/audit allow(s)); {} container(s) bypassed the gate",
            p.exemptions.len() + p.unverified_allows.len(),
            p.exemptions.len(),
            p.unverified_allows.len(),
            p.gaps.len()
        ));
    }
    if blind {
        why6.push(
            "cannot be shown for the whole period: task starts were not observed throughout, or containerd's records could not be read"
                .into(),
        );
    }
    steps.push(step(
        "no-unsigned-deployed",
        "No unsigned or unverified artifact was deployed",
        ok6,
        if ok6 {
            "every start was verified; no container bypassed the gate".into()
        } else {
            why6.join("; ")
        },
        &[
            "exemptions",
            "unverified-allows",
            "gaps",
            "observation",
            "denials",
        ],
    ));
    steps
}

/// Count denials by rejection class.
pub fn rejection_tally(denials: &[VerdictRecord]) -> BTreeMap<String, usize> {
    let mut tally = BTreeMap::new();
    for d in denials {
        let class = d.rejection.as_deref().unwrap_or("unclassified");
        *tally.entry(class.to_string()).or_insert(0) += 1;
    }
    tally
}

fn summarize(p: &Pack) -> Summary {
    let passed = p.steps.iter().filter(|s| s.status == "pass").count();
    let re: Vec<&Reverification> = p
        .images
        .iter()
        .filter_map(|i| i.reverification.as_ref())
        .collect();
    Summary {
        result: if passed == p.steps.len() {
            "pass"
        } else {
            "fail"
        }
        .into(),
        steps_passed: passed,
        steps_failed: p.steps.len() - passed,
        images_started: p.images.len(),
        verdict_records: p.images.iter().map(|i| i.records.len()).sum::<usize>()
            + p.denials
                .iter()
                .filter(|d| {
                    !p.images
                        .iter()
                        .any(|i| Some(&i.digest) == d.image_digest.as_ref())
                })
                .count(),
        denials: p.denials.len(),
        rejections: rejection_tally(&p.denials),
        unverified_allows: p.unverified_allows.len(),
        exemptions: p.exemptions.len(),
        gaps: p.gaps.len(),
        inactive_periods: p.inactive_periods.len(),
        reverified: re.len(),
        reverified_ok: re.iter().filter(|r| r.passed()).count(),
    }
}

// ------------------------------------------------------------------ generate

/// What `portcullis evidence` needs.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// The period.
    pub period: Period,
    /// Output directory (created; must be empty if it exists).
    pub out: PathBuf,
    /// State directory.
    pub state: StateDir,
    /// The node's policy file (its current text is used when it matches a recorded digest).
    pub policy: PathBuf,
    /// containerd's socket.
    pub address: String,
    /// Read this journal directory instead of the system journal.
    pub journal_directory: Option<String>,
    /// The heartbeat timer's interval; a heartbeat covers twice this.
    pub heartbeat_interval: Duration,
    /// The node's name.
    pub node: String,
    /// Only records of gates using `policy` and task starts observed on
    /// `address` (a node running several gates, as test machines do).
    pub this_policy_only: bool,
}

/// The node's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-node".into())
}

fn prepare_out(out: &Path) -> Result<(), EvidenceError> {
    if out.exists() {
        let empty = std::fs::read_dir(out).map_err(rerr(out))?.next().is_none();
        if !empty {
            return Err(EvidenceError::Usage(format!(
                "{} exists and is not empty; name a new directory for the pack",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(werr(out))
}

fn secs(t: Timestamp) -> String {
    format!("@{}", t.as_second())
}

/// Build a node's pack in `o.out`. Returns the pack (also written as evidence.json).
pub fn generate(o: &GenerateOptions) -> Result<Pack, EvidenceError> {
    let period = o.period;
    if period.from >= period.to {
        return Err(EvidenceError::Usage(
            "the period's start is not before its end".into(),
        ));
    }
    prepare_out(&o.out)?;
    let jd = o.journal_directory.as_deref();
    let until = Timestamp::from_second(period.to.as_second() + 1).unwrap_or(period.to);
    let raw = journalctl(
        &[
            format!("--since={}", secs(period.from)),
            format!("--until={}", secs(until)),
            format!("SYSLOG_IDENTIFIER={}", crate::journal::IDENTIFIER),
            format!("SYSLOG_IDENTIFIER={}", crate::journal::SYNC_IDENTIFIER),
            "_UID=0".into(),
        ],
        jd,
    )?;
    let policy_path = o.policy.display().to_string();
    let bare = |a: &str| a.strip_prefix("unix://").unwrap_or(a).to_string();
    let address = bare(&o.address);
    let in_scope = |e: &JEntry| -> bool {
        if !o.this_policy_only {
            return true;
        }
        match e.get("PORTCULLIS_POLICY_PATH") {
            Some(p) => p == policy_path,
            None => e
                .get("PORTCULLIS_CONTAINERD_ADDRESS")
                .is_some_and(|a| bare(&a) == address),
        }
    };
    let entries: Vec<(serde_json::Value, JEntry)> = parse_journal(&raw)
        .into_iter()
        .filter(|(_, e)| period.contains(e.time) && in_scope(e))
        .collect();
    let last_before =
        |id: &str, scope: String| -> Result<Option<(serde_json::Value, JEntry)>, EvidenceError> {
            let mut args = vec![
                format!("--until={}", secs(period.from)),
                "--reverse".into(),
                "--lines=1".into(),
                format!("MESSAGE_ID={id}"),
                "_UID=0".into(),
            ];
            if o.this_policy_only {
                args.push(scope);
            }
            let raw = journalctl(&args, jd)?;
            Ok(parse_journal(&raw)
                .into_iter()
                .find(|(_, e)| e.time < period.from && in_scope(e)))
        };
    let hb_before = last_before(
        message_id::HEARTBEAT,
        format!("PORTCULLIS_POLICY_PATH={policy_path}"),
    )?;
    let obs_before = last_before(
        message_id::OBSERVER,
        format!("PORTCULLIS_CONTAINERD_ADDRESS={}", o.address),
    )?;

    let listed = list_containers(&o.address, crate::containerd::DEFAULT_TIMEOUT);
    let (containers, containerd_error) = match listed {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let all: Vec<&JEntry> = hb_before
        .iter()
        .chain(obs_before.iter())
        .chain(entries.iter())
        .map(|(_, e)| e)
        .collect();
    let grace = o.heartbeat_interval * 2;
    let derived = derive(period, &all, &containers, grace);
    let verdicts = &derived.verdicts;

    // policies
    let mut policies: BTreeMap<String, PolicyVersion> = BTreeMap::new();
    let mut note_policy = |digest: &Option<String>, path: &str, t: Timestamp| {
        let Some(d) = digest else { return };
        let v = policies.entry(d.clone()).or_insert_with(|| PolicyVersion {
            digest: d.clone(),
            first_seen: t,
            last_seen: t,
            paths: Vec::new(),
            records: 0,
            file: None,
            missing: None,
            trusted: Vec::new(),
        });
        v.first_seen = v.first_seen.min(t);
        v.last_seen = v.last_seen.max(t);
        v.records += 1;
        if !path.is_empty() && !v.paths.iter().any(|p| p == path) {
            v.paths.push(path.to_string());
        }
    };
    for (_, e) in hb_before.iter().chain(entries.iter()) {
        if verdict_kind(&e.s("MESSAGE_ID")).is_some() || e.s("MESSAGE_ID") == message_id::HEARTBEAT
        {
            note_policy(
                &e.get("PORTCULLIS_POLICY_DIGEST"),
                &e.s("PORTCULLIS_POLICY_PATH"),
                e.time,
            );
        }
    }
    let current_policy = std::fs::read(&o.policy).ok();
    let mut parsed_policies: Vec<Policy> = Vec::new();
    for v in policies.values_mut() {
        let Some(hex) = rel_hex(&v.digest).map(str::to_string) else {
            v.missing = Some("the recorded digest is malformed".into());
            continue;
        };
        let archived = crate::state::archive::archived(
            &o.state,
            crate::state::archive::POLICY_ARCHIVE,
            &v.digest,
            "toml",
        )
        .and_then(|p| std::fs::read(p).ok())
        .filter(|b| crate::digest::sha256_prefixed(b) == v.digest);
        let bytes = archived.or_else(|| {
            current_policy
                .clone()
                .filter(|b| crate::digest::sha256_prefixed(b) == v.digest)
        });
        match bytes {
            Some(b) => {
                let rel = format!("policies/sha256-{hex}.toml");
                write_file(&o.out, &rel, &b)?;
                v.file = Some(rel);
                let path = v.paths.first().cloned().unwrap_or_else(|| o.policy.display().to_string());
                if let Ok(p) = Policy::parse(&String::from_utf8_lossy(&b), Path::new(&path)) {
                    v.trusted = trusted(&p);
                    parsed_policies.push(p);
                }
            }
            None => {
                v.missing = Some(format!(
                    "no copy in {}/{} and {} has other content; run portcullis-heartbeat.timer so every version is archived",
                    o.state.root().display(),
                    crate::state::archive::POLICY_ARCHIVE,
                    o.policy.display()
                ))
            }
        }
    }

    // keys and CA files named by the policy versions
    let mut keys: BTreeMap<String, KeyFile> = BTreeMap::new();
    for p in &parsed_policies {
        for r in &p.rules {
            let all = r
                .signers
                .iter()
                .chain(r.provenance.iter().flat_map(|pp| pp.signers.iter()));
            for s in all {
                let path = match s {
                    Signer::Key { path, .. } => Some(path.clone()),
                    Signer::Keyless(k) => k.ca.clone(),
                };
                let Some(path) = path else { continue };
                let shown = path.display().to_string();
                if keys.contains_key(&shown) {
                    continue;
                }
                let kf = match std::fs::read(&path) {
                    Ok(b) => {
                        let hex = crate::digest::sha256_hex(&b);
                        let rel = format!("keys/sha256-{hex}.pem");
                        write_file(&o.out, &rel, &b)?;
                        KeyFile {
                            original: shown.clone(),
                            file: Some(rel),
                            sha256: Some(format!("sha256:{hex}")),
                            missing: None,
                        }
                    }
                    Err(e) => KeyFile {
                        original: shown.clone(),
                        file: None,
                        sha256: None,
                        missing: Some(format!("cannot read it now: {e}")),
                    },
                };
                keys.insert(shown, kf);
            }
        }
    }

    // trust roots
    let mut root_digests: BTreeSet<String> = verdicts
        .iter()
        .filter_map(|v| v.trust_root_digest.clone())
        .collect();
    for (_, e) in hb_before.iter().chain(entries.iter()) {
        if e.s("MESSAGE_ID") == message_id::HEARTBEAT {
            for d in e
                .s("PORTCULLIS_TRUST_ROOT_DIGEST")
                .split(',')
                .filter(|d| !d.is_empty())
            {
                root_digests.insert(d.to_string());
            }
        }
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    for p in &parsed_policies {
        for r in &p.rules {
            let path = crate::gate::trust_root_path(&o.state, r.trust_root.as_deref());
            if !candidates.contains(&path) {
                candidates.push(path);
            }
        }
    }
    let mut trust_roots = Vec::new();
    for d in root_digests {
        let Some(hex) = rel_hex(&d).map(str::to_string) else {
            continue;
        };
        let bytes = crate::state::archive::archived(
            &o.state,
            crate::state::archive::TRUST_ARCHIVE,
            &d,
            "json",
        )
        .and_then(|p| std::fs::read(p).ok())
        .filter(|b| crate::digest::sha256_prefixed(b) == d)
        .or_else(|| {
            candidates
                .iter()
                .filter_map(|c| std::fs::read(c).ok())
                .find(|b| crate::digest::sha256_prefixed(b) == d)
        });
        trust_roots.push(match bytes {
            Some(b) => {
                let rel = format!("trust/sha256-{hex}.json");
                write_file(&o.out, &rel, &b)?;
                TrustRootFile {
                    digest: d,
                    file: Some(rel),
                    missing: None,
                }
            }
            None => TrustRootFile {
                digest: d,
                file: None,
                missing: Some(
                    "not archived and no current trust-root file has this content".into(),
                ),
            },
        });
    }

    // images: the cache documents of every verified digest
    let mut images = derived.images.clone();
    for img in images.iter_mut() {
        if !img.records.iter().any(|r| r.kind == "verified") {
            continue;
        }
        let mut subjects: Vec<String> = vec![img.digest.clone()];
        for r in &img.records {
            if let Some(p) = &r.platform_digest {
                if !subjects.contains(p) {
                    subjects.push(p.clone());
                }
            }
        }
        for s in subjects {
            let Ok(path) = o.state.entry_path(&s) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Some(hex) = rel_hex(&s) else { continue };
            let rel = format!("documents/sha256-{hex}.json");
            write_file(&o.out, &rel, &bytes)?;
            let mut artifacts = BTreeMap::new();
            if let Ok(e) = serde_json::from_slice::<Entry>(&bytes) {
                for a in &e.artifacts {
                    *artifacts.entry(a.kind.clone()).or_insert(0) += a.layers.len();
                }
            }
            img.documents.push(Document {
                subject: s,
                file: rel,
                sha256: crate::digest::sha256_prefixed(&bytes),
                artifacts,
            });
        }
    }
    if containerd_error.is_none() {
        write_file(
            &o.out,
            CONTAINERS_JSON,
            &serde_json::to_vec_pretty(&containers).unwrap_or_default(),
        )?;
    }
    let observation = Observation {
        observed: derived.observed.clone(),
        unobserved: derived.unobserved.clone(),
        task_starts: derived.task_starts,
        containerd_address: o.address.clone(),
        containers_examined: containerd_error.is_none().then_some(containers.len()),
        containerd_error,
        limits: vec![
            "Task starts are seen only while `portcullis sync` is subscribed to containerd's events; times outside are listed as unobserved.".into(),
            "A `portcullis sync` that ends without a stop record (killed) is taken to observe until its next start record or the end of the period.".into(),
            "containerd's container records show containers that still exist; `ctr run --rm` and similar remove theirs, so only the task-start records show them.".into(),
            "Only this containerd is examined; a container runtime that bypasses containerd is not visible here.".into(),
            "Key and CA files are copied as they are when the pack is made; the journal records each signer's key fingerprint for comparison.".into(),
            "Records are placed by the time journald received them; a verdict spooled while journald was away carries `spooled` and its decision time in `decided_at`, and counts in the period of its replay.".into(),
        ],
    };
    let journal_integrity = journal_integrity(jd);

    let mut pack = Pack {
        format: FORMAT.into(),
        node: o.node.clone(),
        generated_at: Timestamp::now(),
        portcullis_version: env!("CARGO_PKG_VERSION").into(),
        period,
        summary: Summary::default(),
        steps: Vec::new(),
        policies: policies.into_values().collect(),
        trust_roots,
        keys: keys.into_values().collect(),
        heartbeat_interval_seconds: o.heartbeat_interval.as_secs(),
        heartbeats: derived.heartbeats.clone(),
        images,
        denials: derived.denials.clone(),
        unverified_allows: derived.unverified_allows.clone(),
        exemptions: derived.exemptions.clone(),
        inactive_periods: derived.inactive_periods.clone(),
        gaps: derived.gaps.clone(),
        observation,
        journal_integrity,
    };
    let re: Vec<_> = pack
        .images
        .iter()
        .map(|i| reverify_full(&o.out, &pack, i))
        .collect();
    for (i, r) in pack.images.iter_mut().zip(re) {
        if let Some((r, statement)) = r {
            if let Some(st) = statement {
                let bytes = serde_json::to_vec_pretty(&st).unwrap_or_default();
                let rel = format!(
                    "provenance/sha256-{}.json",
                    crate::digest::sha256_hex(&bytes)
                );
                write_file(&o.out, &rel, &bytes)?;
                i.provenance_statement = Some(rel);
            }
            i.reverification = Some(r);
        }
    }
    pack.steps = judge(&pack);
    pack.summary = summarize(&pack);

    let records: Vec<&serde_json::Value> = hb_before
        .iter()
        .chain(obs_before.iter())
        .chain(entries.iter())
        .map(|(v, _)| v)
        .collect();
    write_file(
        &o.out,
        RECORDS_JSON,
        &serde_json::to_vec_pretty(&records).unwrap_or_default(),
    )?;
    write_file(
        &o.out,
        EVIDENCE_JSON,
        &serde_json::to_vec_pretty(&pack).unwrap_or_default(),
    )?;
    write_file(&o.out, REPORT_HTML, html::render(&pack).as_bytes())?;
    write_manifest(&o.out)?;
    Ok(pack)
}

/// Run `journalctl --verify` and say whether Forward Secure Sealing is on.
pub fn journal_integrity(directory: Option<&str>) -> JournalIntegrity {
    let mut args: Vec<String> = vec!["--verify".into()];
    if let Some(d) = directory {
        args.push(format!("--directory={d}"));
    }
    let command = format!("journalctl {}", args.join(" "));
    let header = Command::new("journalctl")
        .arg("--header")
        .args(directory.map(|d| format!("--directory={d}")))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let out = Command::new("journalctl").args(&args).output();
    let (exit_code, output) = match out {
        Ok(o) => {
            let mut text = String::from_utf8_lossy(&o.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stdout));
            (o.status.code(), text)
        }
        Err(e) => (None, format!("cannot run journalctl: {e}")),
    };
    let sealing = match &header {
        None => "unknown",
        Some(h)
            if h.lines()
                .any(|l| l.contains("Compatible flags") && l.contains("SEALED")) =>
        {
            "enabled"
        }
        Some(h) if h.contains("Compatible flags") => "not-enabled",
        Some(_) => "unknown",
    };
    JournalIntegrity {
        sealing: sealing.into(),
        command,
        exit_code,
        output: output.lines().take(40).collect::<Vec<_>>().join("\n"),
    }
}

// ------------------------------------------------------------------ verify

/// The result of `portcullis evidence verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// No problem found.
    pub ok: bool,
    /// The pack's format.
    pub format: String,
    /// Files checked against the manifest.
    pub files_checked: usize,
    /// Images whose documents were re-verified.
    pub images_reverified: usize,
    /// Nodes (fleet packs).
    pub nodes: usize,
    /// Every problem.
    pub problems: Vec<String>,
}

fn load_json(dir: &Path) -> Result<serde_json::Value, EvidenceError> {
    let p = dir.join(EVIDENCE_JSON);
    let bytes = std::fs::read(&p).map_err(|e| EvidenceError::NotAPack {
        path: dir.to_path_buf(),
        why: format!("{EVIDENCE_JSON}: {e}"),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| EvidenceError::NotAPack {
        path: dir.to_path_buf(),
        why: format!("{EVIDENCE_JSON}: {e}"),
    })
}

/// Check a pack offline: the manifest, then every signature and attestation
/// re-verified from the pack alone, compared with what the pack states.
pub fn verify(dir: &Path) -> Result<VerifyReport, EvidenceError> {
    let (files_checked, mut problems) = check_manifest(dir)?;
    let v = load_json(dir)?;
    let format = v
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or("")
        .to_string();
    let mut report = VerifyReport {
        ok: false,
        format: format.clone(),
        files_checked,
        images_reverified: 0,
        nodes: 0,
        problems: Vec::new(),
    };
    match format.as_str() {
        FORMAT => {
            let pack: Pack = serde_json::from_value(v).map_err(|e| EvidenceError::NotAPack {
                path: dir.to_path_buf(),
                why: format!("{EVIDENCE_JSON}: {e}"),
            })?;
            report.nodes = 1;
            verify_node(dir, &pack, &mut problems, &mut report.images_reverified);
        }
        FLEET_FORMAT => {
            let fleet: Fleet = serde_json::from_value(v).map_err(|e| EvidenceError::NotAPack {
                path: dir.to_path_buf(),
                why: format!("{EVIDENCE_JSON}: {e}"),
            })?;
            for n in &fleet.nodes {
                report.nodes += 1;
                let sub = dir.join(&n.dir);
                match verify(&sub) {
                    Ok(r) => {
                        report.images_reverified += r.images_reverified;
                        problems.extend(r.problems.into_iter().map(|p| format!("{}: {p}", n.dir)));
                    }
                    Err(e) => problems.push(format!("{}: {e}", n.dir)),
                }
            }
        }
        other => {
            return Err(EvidenceError::NotAPack {
                path: dir.to_path_buf(),
                why: format!("unknown format {other:?}"),
            })
        }
    }
    report.ok = problems.is_empty();
    report.problems = problems;
    Ok(report)
}

fn verify_node(dir: &Path, pack: &Pack, problems: &mut Vec<String>, n: &mut usize) {
    rederive(dir, pack, problems);
    for d in pack.images.iter().flat_map(|i| &i.documents) {
        match std::fs::read(dir.join(&d.file)) {
            Ok(b) if crate::digest::sha256_prefixed(&b) == d.sha256 => {}
            Ok(_) => problems.push(format!(
                "{}: differs from the digest evidence.json records",
                d.file
            )),
            Err(e) => problems.push(format!("{}: {e}", d.file)),
        }
    }
    for i in &pack.images {
        let full = reverify_full(dir, pack, i);
        let stated = i.provenance_statement.as_ref().map(|f| {
            std::fs::read(dir.join(f))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        });
        let derived = full.as_ref().and_then(|(_, st)| st.clone());
        match (stated, &derived) {
            (None, None) => {}
            (Some(Some(a)), Some(b)) if &a == b => {}
            _ => problems.push(format!(
                "image {}: the provenance statement in the pack is not the one its attestation verifies",
                i.digest
            )),
        }
        let again = full.map(|(r, _)| r);
        match (&i.reverification, &again) {
            (Some(was), Some(now)) => {
                *n += 1;
                if !now.passed() {
                    problems.push(format!(
                        "image {}: re-verification fails: signature: {}; provenance: {}",
                        i.digest, now.signature.detail, now.provenance.detail
                    ));
                } else if was.passed() != now.passed()
                    || was.signature.status != now.signature.status
                    || was.provenance.status != now.provenance.status
                {
                    problems.push(format!("image {}: the pack states a re-verification result that differs from a re-run", i.digest));
                }
            }
            (None, None) => {}
            _ => problems.push(format!(
                "image {}: the pack's re-verification record does not match its verdict records",
                i.digest
            )),
        }
    }
    let steps = judge(pack);
    if steps != pack.steps {
        problems.push(
            "the audit steps stated in evidence.json differ from those its contents support".into(),
        );
    }
    let mut recounted = pack.clone();
    recounted.steps = steps;
    if summarize(&recounted) != pack.summary {
        problems.push("the summary stated in evidence.json differs from its contents".into());
    }
}

/// Re-derive the record-based sections from `journal/records.json` and
/// `containerd/containers.json` and compare them with `evidence.json`.
fn rederive(dir: &Path, pack: &Pack, problems: &mut Vec<String>) {
    let read = |rel: &str| -> Result<serde_json::Value, String> {
        let b = std::fs::read(dir.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        serde_json::from_slice(&b).map_err(|e| format!("{rel}: {e}"))
    };
    let records = match read(RECORDS_JSON) {
        Ok(serde_json::Value::Array(a)) => a,
        Ok(_) => return problems.push(format!("{RECORDS_JSON}: not an array")),
        Err(e) => return problems.push(e),
    };
    let entries: Vec<JEntry> = records.iter().filter_map(jentry).collect();
    let containers: Vec<ContainerInfo> = if pack.observation.containers_examined.is_some() {
        match read(CONTAINERS_JSON)
            .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => return problems.push(e),
        }
    } else {
        Vec::new()
    };
    let refs: Vec<&JEntry> = entries.iter().collect();
    let d = derive(
        pack.period,
        &refs,
        &containers,
        Duration::from_secs(pack.heartbeat_interval_seconds.saturating_mul(2)),
    );
    let mut differ = Vec::new();
    if d.heartbeats != pack.heartbeats {
        differ.push("heartbeats");
    }
    if d.denials != pack.denials {
        differ.push("denials");
    }
    if d.unverified_allows != pack.unverified_allows {
        differ.push("unverified_allows");
    }
    if d.exemptions != pack.exemptions {
        differ.push("exemptions");
    }
    if d.inactive_periods != pack.inactive_periods {
        differ.push("inactive_periods");
    }
    if d.gaps != pack.gaps {
        differ.push("gaps");
    }
    if d.observed != pack.observation.observed
        || d.unobserved != pack.observation.unobserved
        || d.task_starts != pack.observation.task_starts
        || pack
            .observation
            .containers_examined
            .is_some_and(|n| n != containers.len())
    {
        differ.push("observation");
    }
    let skeleton = |i: &ImageEvidence| {
        (
            i.digest.clone(),
            i.refs.clone(),
            i.starts,
            i.all_verified,
            i.records.clone(),
        )
    };
    if d.images.iter().map(skeleton).collect::<Vec<_>>()
        != pack.images.iter().map(skeleton).collect::<Vec<_>>()
    {
        differ.push("images");
    }
    if !differ.is_empty() {
        problems.push(format!(
            "evidence.json's {} differ from what {RECORDS_JSON} and {CONTAINERS_JSON} show",
            differ.join(", ")
        ));
    }
}

// ------------------------------------------------------------------ merge

/// A node in a fleet pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetNode {
    /// The node.
    pub node: String,
    /// Its pack, relative to the fleet pack.
    pub dir: String,
    /// Its period.
    pub period: Period,
    /// Its summary.
    pub summary: Summary,
    /// Its steps.
    pub steps: Vec<Step>,
}

/// A fleet pack (`evidence.json` of `evidence merge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fleet {
    /// [`FLEET_FORMAT`].
    pub format: String,
    /// When.
    pub generated_at: Timestamp,
    /// The Portcullis version that merged.
    pub portcullis_version: String,
    /// pass when every node passes every step.
    pub result: String,
    /// Per step: how many nodes pass it.
    pub steps: Vec<FleetStep>,
    /// The nodes.
    pub nodes: Vec<FleetNode>,
}

/// One step across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStep {
    /// Step ID.
    pub id: String,
    /// Title.
    pub title: String,
    /// pass when every node passes.
    pub status: String,
    /// Nodes that fail it.
    pub failing_nodes: Vec<String>,
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), EvidenceError> {
    std::fs::create_dir_all(to).map_err(werr(to))?;
    for e in std::fs::read_dir(from).map_err(rerr(from))? {
        let e = e.map_err(rerr(from))?;
        let p = e.path();
        let t = to.join(e.file_name());
        if e.file_type().map_err(rerr(&p))?.is_dir() {
            copy_tree(&p, &t)?;
        } else {
            std::fs::copy(&p, &t).map_err(werr(&t))?;
        }
    }
    Ok(())
}

/// Combine node packs into a fleet pack at `out`; each input is verified first.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Fleet, EvidenceError> {
    if dirs.is_empty() {
        return Err(EvidenceError::Usage(
            "name at least one evidence pack to merge".into(),
        ));
    }
    let mut packs = Vec::new();
    for d in dirs {
        let r = verify(d)?;
        if !r.ok {
            return Err(EvidenceError::Usage(format!(
                "{} does not verify ({}); merge only intact packs",
                d.display(),
                r.problems.first().cloned().unwrap_or_default()
            )));
        }
        if r.format != FORMAT {
            return Err(EvidenceError::Usage(format!(
                "{} is a fleet pack; merge node packs",
                d.display()
            )));
        }
        let pack: Pack =
            serde_json::from_value(load_json(d)?).map_err(|e| EvidenceError::NotAPack {
                path: d.clone(),
                why: e.to_string(),
            })?;
        packs.push((d, pack));
    }
    prepare_out(out)?;
    let mut nodes = Vec::new();
    for (n, (d, p)) in packs.iter().enumerate() {
        let safe: String = p
            .node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let rel = format!("nodes/{:02}-{}", n + 1, safe.trim_start_matches('.'));
        copy_tree(d, &out.join(&rel))?;
        nodes.push(FleetNode {
            node: p.node.clone(),
            dir: rel,
            period: p.period,
            summary: p.summary.clone(),
            steps: p.steps.clone(),
        });
    }
    let mut steps: Vec<FleetStep> = Vec::new();
    for n in &nodes {
        for s in &n.steps {
            let fs = match steps.iter_mut().find(|f| f.id == s.id) {
                Some(f) => f,
                None => {
                    steps.push(FleetStep {
                        id: s.id.clone(),
                        title: s.title.clone(),
                        status: "pass".into(),
                        failing_nodes: Vec::new(),
                    });
                    steps.last_mut().expect("just pushed")
                }
            };
            if s.status != "pass" {
                fs.status = "fail".into();
                fs.failing_nodes.push(format!("{} ({})", n.node, n.dir));
            }
        }
    }
    let fleet = Fleet {
        format: FLEET_FORMAT.into(),
        generated_at: Timestamp::now(),
        portcullis_version: env!("CARGO_PKG_VERSION").into(),
        result: if steps.iter().all(|s| s.status == "pass") {
            "pass"
        } else {
            "fail"
        }
        .into(),
        steps,
        nodes,
    };
    write_file(
        out,
        EVIDENCE_JSON,
        &serde_json::to_vec_pretty(&fleet).unwrap_or_default(),
    )?;
    write_file(out, REPORT_HTML, html::render_fleet(&fleet).as_bytes())?;
    write_manifest(out)?;
    Ok(fleet)
}

#[cfg(test)]
mod tests;
