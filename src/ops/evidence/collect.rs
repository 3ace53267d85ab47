//! Collection: `portcullis evidence` builds a node's pack from journald,
//! containerd and the state directory, copying every document a verdict
//! relied on, then re-verifies, judges and writes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;

use crate::cache::{Entry, StateDir};
use crate::journal::message_id;
use crate::policy::{Policy, Signer};

use super::coverage::list_containers;
use super::derive::{derive, Derived};
use super::error::{rerr, werr, EvidenceError};
use super::judge::{judge, summarize};
use super::manifest::{rel_hex, write_file, write_manifest};
use super::model::{
    trusted, Document, ImageEvidence, JournalIntegrity, KeyFile, Observation, Pack, Period,
    PolicyVersion, Summary, TrustRootFile, VerdictRecord, CONTAINERS_JSON, EVIDENCE_JSON, FORMAT,
    RECORDS_JSON, REPORT_HTML,
};
use super::records::{journalctl, parse_journal, verdict_kind, JEntry};
use super::reverify::reverify_full;

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

pub(super) fn prepare_out(out: &Path) -> Result<(), EvidenceError> {
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

pub(super) fn secs(t: Timestamp) -> String {
    format!("@{}", t.as_second())
}

/// Build a node's pack in `o.out`. Returns the pack (also written as evidence.json).
///
/// The steps, in order: read the period's records (`read_records`), list
/// containerd's containers, [`derive`](mod@super::derive) what follows from both, copy the policy
/// versions, the key and CA files, the trust roots and the cached documents
/// the records name into the pack, describe the observation, re-verify each
/// image from the pack, judge, and write the pack's files and manifest.
pub fn generate(o: &GenerateOptions) -> Result<Pack, EvidenceError> {
    let period = o.period;
    if period.from >= period.to {
        return Err(EvidenceError::Usage(
            "the period's start is not before its end".into(),
        ));
    }
    prepare_out(&o.out)?;
    let records = read_records(o)?;
    let listed = list_containers(&o.address, crate::containerd::lookup_timeout());
    build(o, &records, listed, None)
}

/// Build a pack in `o.out` (created) from the records read, containerd's
/// container records (or why they could not be read) and, when already
/// run, journald's integrity check.
pub(super) fn build(
    o: &GenerateOptions,
    records: &PeriodRecords,
    listed: Result<Vec<super::coverage::ContainerInfo>, String>,
    integrity: Option<JournalIntegrity>,
) -> Result<Pack, EvidenceError> {
    let period = o.period;
    let jd = o.journal_directory.as_deref();
    let (containers, containerd_error) = match listed {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let grace = o.heartbeat_interval * 2;
    let derived = derive(period, &records.all(), &containers, grace);

    let (policies, parsed_policies) = collect_policies(o, records)?;
    let keys = collect_keys(o, &parsed_policies)?;
    let trust_roots = collect_trust_roots(o, &derived.verdicts, records, &parsed_policies)?;
    let images = collect_documents(o, &derived.images)?;
    if containerd_error.is_none() {
        write_file(
            &o.out,
            CONTAINERS_JSON,
            &serde_json::to_vec_pretty(&containers).unwrap_or_default(),
        )?;
    }
    let observation = observation(o, &derived, containers.len(), containerd_error);
    // A fleet pack checks the collector's journal once for all its nodes.
    let journal_integrity = integrity.unwrap_or_else(|| journal_integrity(jd));

    let mut pack = Pack {
        format: FORMAT.into(),
        node: o.node.clone(),
        generated_at: Timestamp::now(),
        portcullis_version: env!("CARGO_PKG_VERSION").into(),
        period,
        summary: Summary::default(),
        steps: Vec::new(),
        policies,
        trust_roots,
        keys,
        heartbeat_interval_seconds: o.heartbeat_interval.as_secs(),
        heartbeats: derived.heartbeats.clone(),
        images,
        denials: derived.denials.clone(),
        unverified_allows: derived.unverified_allows.clone(),
        exemptions: derived.exemptions.clone(),
        inactive_periods: derived.inactive_periods.clone(),
        gaps: derived.gaps.clone(),
        revoked: derived.revoked.clone(),
        observation,
        journal_integrity,
    };
    reverify_images(&o.out, &mut pack)?;
    pack.steps = judge(&pack);
    pack.summary = summarize(&pack);
    write_pack(&o.out, records, &pack)?;
    Ok(pack)
}

/// The journal records a pack is made from: the period's own, and the last
/// heartbeat and observer record before it (they say what held when the
/// period began).
pub(super) struct PeriodRecords {
    /// The last heartbeat before the period.
    pub(super) hb_before: Option<(serde_json::Value, JEntry)>,
    /// The last observer record before the period.
    pub(super) obs_before: Option<(serde_json::Value, JEntry)>,
    /// The period's records, in scope.
    pub(super) entries: Vec<(serde_json::Value, JEntry)>,
}

impl PeriodRecords {
    /// Every record, the ones before the period first.
    fn all_raw(&self) -> impl Iterator<Item = &(serde_json::Value, JEntry)> {
        self.hb_before
            .iter()
            .chain(self.obs_before.iter())
            .chain(self.entries.iter())
    }

    /// Every record's entry, the ones before the period first.
    fn all(&self) -> Vec<&JEntry> {
        self.all_raw().map(|(_, e)| e).collect()
    }

    /// The heartbeat before the period, then the period's records.
    fn with_heartbeat_before(&self) -> impl Iterator<Item = &JEntry> {
        self.hb_before
            .iter()
            .chain(self.entries.iter())
            .map(|(_, e)| e)
    }
}

/// Strip containerd's `unix://` scheme from an address.
fn bare(a: &str) -> String {
    a.strip_prefix("unix://").unwrap_or(a).to_string()
}

/// Whether a record belongs to this pack: every record, or with
/// `this_policy_only` those of gates using `o.policy` and task starts
/// observed on `o.address`.
pub(super) fn in_scope(o: &GenerateOptions, e: &JEntry) -> bool {
    if !o.this_policy_only {
        return true;
    }
    match e.get("PORTCULLIS_POLICY_PATH") {
        Some(p) => p == o.policy.display().to_string(),
        None => e
            .get("PORTCULLIS_CONTAINERD_ADDRESS")
            .is_some_and(|a| bare(&a) == bare(&o.address)),
    }
}

/// Read the period's records from journald, and the last heartbeat and
/// observer record before it.
fn read_records(o: &GenerateOptions) -> Result<PeriodRecords, EvidenceError> {
    let period = o.period;
    let jd = o.journal_directory.as_deref();
    let until = Timestamp::from_second(period.to.as_second() + 1).unwrap_or(period.to);
    let raw = journalctl(
        &[
            format!("--since={}", secs(period.from)),
            format!("--until={}", secs(until)),
            format!("SYSLOG_IDENTIFIER={}", crate::journal::IDENTIFIER),
            format!("SYSLOG_IDENTIFIER={}", crate::journal::SYNC_IDENTIFIER),
            format!("SYSLOG_IDENTIFIER={}", crate::journal::REVERIFY_IDENTIFIER),
            "_UID=0".into(),
        ],
        jd,
    )?;
    let entries: Vec<(serde_json::Value, JEntry)> = parse_journal(&raw)
        .into_iter()
        .filter(|(_, e)| period.contains(e.time) && in_scope(o, e))
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
                .find(|(_, e)| e.time < period.from && in_scope(o, e)))
        };
    let hb_before = last_before(
        message_id::HEARTBEAT,
        format!("PORTCULLIS_POLICY_PATH={}", o.policy.display()),
    )?;
    let obs_before = last_before(
        message_id::OBSERVER,
        format!("PORTCULLIS_CONTAINERD_ADDRESS={}", o.address),
    )?;
    Ok(PeriodRecords {
        hb_before,
        obs_before,
        entries,
    })
}

/// The policy versions the verdicts and heartbeats name, each copied into the
/// pack from the archive (or the current policy file when it matches), and
/// the ones that parse.
fn collect_policies(
    o: &GenerateOptions,
    records: &PeriodRecords,
) -> Result<(Vec<PolicyVersion>, Vec<Policy>), EvidenceError> {
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
    for e in records.with_heartbeat_before() {
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
    Ok((policies.into_values().collect(), parsed_policies))
}

/// The key and CA files the policy versions name, copied into the pack as
/// they are now.
fn collect_keys(
    o: &GenerateOptions,
    parsed_policies: &[Policy],
) -> Result<Vec<KeyFile>, EvidenceError> {
    let mut keys: BTreeMap<String, KeyFile> = BTreeMap::new();
    for p in parsed_policies {
        for r in p.rules() {
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
    Ok(keys.into_values().collect())
}

/// The trust roots the verdicts and heartbeats name, copied into the pack
/// from the archive (or a current trust-root file when it matches).
fn collect_trust_roots(
    o: &GenerateOptions,
    verdicts: &[VerdictRecord],
    records: &PeriodRecords,
    parsed_policies: &[Policy],
) -> Result<Vec<TrustRootFile>, EvidenceError> {
    let mut root_digests: BTreeSet<String> = verdicts
        .iter()
        .filter_map(|v| v.trust_root_digest.clone())
        .collect();
    for e in records.with_heartbeat_before() {
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
    for p in parsed_policies {
        for r in p.rules() {
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
    Ok(trust_roots)
}

/// The images with, for every verified one, the signature-cache documents of
/// its digest and platform digests copied into the pack.
fn collect_documents(
    o: &GenerateOptions,
    derived_images: &[ImageEvidence],
) -> Result<Vec<ImageEvidence>, EvidenceError> {
    let mut images = derived_images.to_vec();
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
    Ok(images)
}

/// How task starts were observed in the period, with the limits of that
/// observation stated.
fn observation(
    o: &GenerateOptions,
    derived: &Derived,
    containers_examined: usize,
    containerd_error: Option<String>,
) -> Observation {
    Observation {
        observed: derived.observed.clone(),
        unobserved: derived.unobserved.clone(),
        task_starts: derived.task_starts,
        containerd_address: o.address.clone(),
        containers_examined: containerd_error.is_none().then_some(containers_examined),
        containerd_error,
        limits: vec![
            "Task starts are seen only while `portcullis sync` is subscribed to containerd's events; times outside are listed as unobserved.".into(),
            "A `portcullis sync` that ends without a stop record (killed) is taken to observe until its next start record or the end of the period.".into(),
            "containerd's container records show containers that still exist; `ctr run --rm` and similar remove theirs, so only the task-start records show them.".into(),
            "Only this containerd is examined; a container runtime that bypasses containerd is not visible here.".into(),
            "Key and CA files are copied as they are when the pack is made; the journal records each signer's key fingerprint for comparison.".into(),
            "Records are placed by the time journald received them; a verdict spooled while journald was away carries `spooled` and its decision time in `decided_at`, and counts in the period of its replay.".into(),
        ],
    }
}

/// Re-verify every image from the pack alone, writing each provenance
/// statement that verified into the pack.
fn reverify_images(out: &Path, pack: &mut Pack) -> Result<(), EvidenceError> {
    let re: Vec<_> = pack
        .images
        .iter()
        .map(|i| reverify_full(out, pack, i))
        .collect();
    for (i, r) in pack.images.iter_mut().zip(re) {
        if let Some((r, statement)) = r {
            if let Some(st) = statement {
                let bytes = serde_json::to_vec_pretty(&st).unwrap_or_default();
                let rel = format!(
                    "provenance/sha256-{}.json",
                    crate::digest::sha256_hex(&bytes)
                );
                write_file(out, &rel, &bytes)?;
                i.provenance_statement = Some(rel);
            }
            i.reverification = Some(r);
        }
    }
    Ok(())
}

/// Write the records, `evidence.json`, the report and the manifest.
fn write_pack(out: &Path, records: &PeriodRecords, pack: &Pack) -> Result<(), EvidenceError> {
    let raw: Vec<&serde_json::Value> = records.all_raw().map(|(v, _)| v).collect();
    write_file(
        out,
        RECORDS_JSON,
        &serde_json::to_vec_pretty(&raw).unwrap_or_default(),
    )?;
    write_file(
        out,
        EVIDENCE_JSON,
        &serde_json::to_vec_pretty(pack).unwrap_or_default(),
    )?;
    write_file(out, REPORT_HTML, super::html::render(pack).as_bytes())?;
    write_manifest(out)?;
    Ok(())
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
