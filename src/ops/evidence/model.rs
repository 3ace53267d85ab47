//! The pack's data model: the period, the records it keeps (verdicts,
//! heartbeats, policy versions, trust roots, keys, documents), the
//! per-image evidence and its re-verification, coverage intervals and gaps,
//! the audit steps and their summary, and [`Pack`] itself, as written to
//! `evidence.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::policy::{Policy, Signer};

// ------------------------------------------------------------------ layout

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
/// The copies a fleet pack built from a collector dropped (journalctl's
/// JSON, one array).
pub const DUPLICATES_JSON: &str = "collector/duplicates.json";
/// containerd's container records when the pack was made.
pub const CONTAINERS_JSON: &str = "containerd/containers.json";

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
    for r in p.rules() {
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
    /// pass, fail, not-required, or unavailable (no document in the pack:
    /// not re-verifiable here).
    pub status: String,
    /// What was found.
    pub detail: String,
}

impl CheckResult {
    pub(super) fn pass(d: impl Into<String>) -> Self {
        CheckResult {
            status: "pass".into(),
            detail: d.into(),
        }
    }
    pub(super) fn fail(d: impl Into<String>) -> Self {
        CheckResult {
            status: "fail".into(),
            detail: d.into(),
        }
    }
    pub(super) fn not_required(d: impl Into<String>) -> Self {
        CheckResult {
            status: "not-required".into(),
            detail: d.into(),
        }
    }
    pub(super) fn unavailable(d: impl Into<String>) -> Self {
        CheckResult {
            status: "unavailable".into(),
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
    /// Neither part failed and at least one passed (a rule requires a
    /// signature, provenance, or both; a part not required is no pass).
    pub fn passed(&self) -> bool {
        self.signature.status != "fail"
            && self.provenance.status != "fail"
            && (self.signature.passed() || self.provenance.passed())
    }

    /// Not re-verifiable here: the pack holds no document for the digest
    /// (never a pass).
    pub fn unavailable(&self) -> bool {
        self.signature.status == "unavailable" && self.provenance.status == "unavailable"
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
    /// Containers that ran on after their verdict stopped holding.
    #[serde(default)]
    pub revoked: usize,
    /// Of which still running (or not shown stopped) at the period's end.
    #[serde(default)]
    pub revoked_running: usize,
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
    /// Containers that ran on after their verdict stopped holding
    /// (`portcullis reverify` records).
    #[serde(default)]
    pub revoked: Vec<RevokedContainer>,
    /// journald's integrity check.
    pub journal_integrity: JournalIntegrity,
}

/// A container that ran on after its verdict stopped holding: what
/// `portcullis reverify` recorded for it (its REVOKED records and, under
/// `revoked = "stop"`, the stop record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedContainer {
    /// containerd namespace.
    pub namespace: String,
    /// The container.
    pub container_id: String,
    /// The image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    /// The digest its start was allowed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// When `reverify` first found its verdict no longer holds (the
    /// record's decision time) in the period.
    pub since: Timestamp,
    /// The rule decided under.
    pub rule: String,
    /// Why it no longer holds.
    pub reason: String,
    /// The class of the failure, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
    /// `would-refuse` or `no-longer-holds` (warn or audit mode), as first found.
    pub finding: String,
    /// REVOKED records for it in the period.
    pub records: usize,
    /// `stopped`, `stop-failed` or `running`.
    pub state: String,
    /// When it was stopped (or the stop failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    /// The signal that ended it, or why the stop failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Until when it ran as far as the records show: the stop, or the
    /// period's end.
    pub ran_until: Timestamp,
    /// What the records show, in words.
    pub detail: String,
}

// ------------------------------------------------------------------ fleet

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
    /// What a pack built from a collector's journal states per node
    /// (absent in packs made by `evidence merge`).
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub collected: Option<CollectedNode>,
}

/// A node as a collector's journal shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectedNode {
    /// `_MACHINE_ID` of its records (what groups them).
    pub machine_id: String,
    /// Other `_HOSTNAME`s its records carry (renamed nodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_hostnames: Vec<String>,
    /// Records read for it, copies included.
    pub records_read: usize,
    /// Copies of one record the collector holds more than once, dropped.
    pub duplicates_dropped: usize,
    /// Its newest heartbeat up to the period's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Timestamp>,
    /// No heartbeat within twice the heartbeat interval before the period's end.
    pub heartbeat_stopped: bool,
    /// The state directory its documents were copied from, or why none.
    pub documents_from: String,
}

/// One container of a fleet that ran on after its verdict stopped holding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRevoked {
    /// The node.
    pub node: String,
    /// The container, as the node's pack lists it.
    #[serde(flatten)]
    pub container: RevokedContainer,
}

/// Where a fleet pack built from a collector's journal read its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorSource {
    /// The collector's journal directory.
    pub directory: String,
    /// The period.
    pub period: Period,
    /// Records read, copies included.
    pub records_read: usize,
    /// Copies dropped (one record held more than once).
    pub duplicates_dropped: usize,
    /// The de-duplication rule, in words.
    pub dedup_rule: String,
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
    /// Built from a collector's journal: where and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<CollectorSource>,
    /// Every node's containers that ran on after their verdict stopped holding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<FleetRevoked>,
    /// Nodes whose heartbeat stopped (collector packs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heartbeat_stopped: Vec<String>,
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
