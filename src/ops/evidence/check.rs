//! The offline check, `portcullis evidence verify`: the manifest, each
//! node pack's re-derivation and re-verification from the pack alone.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::coverage::ContainerInfo;
use super::derive::derive;
use super::error::EvidenceError;
use super::fleet::{fleet_revoked, fleet_steps};
use super::judge::{judge, summarize};
use super::manifest::check_manifest;
use super::model::{
    Fleet, ImageEvidence, Pack, CONTAINERS_JSON, DUPLICATES_JSON, EVIDENCE_JSON, FLEET_FORMAT,
    FORMAT, RECORDS_JSON,
};
use super::records::{jentry, JEntry};
use super::reverify::reverify_full;

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

pub(super) fn load_json(dir: &Path) -> Result<serde_json::Value, EvidenceError> {
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
            check_fleet(dir, &fleet, &mut problems);
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
                if !now.unavailable() {
                    *n += 1;
                }
                if !now.passed() && !now.unavailable() {
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
    let mut steps = judge(pack);
    // A pack made before the revoked-stopped step existed states six steps.
    if !pack.steps.iter().any(|s| s.id == "revoked-stopped") {
        steps.retain(|s| s.id != "revoked-stopped");
    }
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
    if d.revoked != pack.revoked {
        differ.push("revoked");
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

/// The fleet's own statements against its node packs: each node's summary
/// and steps, the fleet's steps, its list of revoked containers, and (packs
/// built from a collector) each node's heartbeat and the copies dropped.
fn check_fleet(dir: &Path, fleet: &Fleet, problems: &mut Vec<String>) {
    let mut packs: Vec<Pack> = Vec::new();
    for n in &fleet.nodes {
        let sub = dir.join(&n.dir);
        let Ok(p) = load_json(&sub).and_then(|v| {
            serde_json::from_value::<Pack>(v).map_err(|e| EvidenceError::NotAPack {
                path: sub.clone(),
                why: e.to_string(),
            })
        }) else {
            continue; // reported by the node's own check
        };
        if p.summary != n.summary || p.steps != n.steps || p.node != n.node {
            problems.push(format!(
                "{}: the fleet's node entry differs from the node's evidence.json",
                n.dir
            ));
        }
        if let Some(k) = &n.collected {
            let grace_us = i64::try_from(p.heartbeat_interval_seconds.saturating_mul(2))
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000);
            let last = p
                .heartbeats
                .iter()
                .map(|h| h.time)
                .filter(|t| *t <= p.period.to)
                .max();
            let stopped = last.is_none_or(|t| {
                p.period
                    .to
                    .as_microsecond()
                    .saturating_sub(t.as_microsecond())
                    > grace_us
            });
            if last != k.last_heartbeat
                || stopped != k.heartbeat_stopped
                || stopped != fleet.heartbeat_stopped.contains(&n.node)
            {
                problems.push(format!(
                    "{}: the node's last heartbeat or heartbeat-stopped flag differs from its heartbeats",
                    n.dir
                ));
            }
        }
        packs.push(p);
    }
    if fleet_steps(&fleet.nodes) != fleet.steps {
        problems.push("the fleet's steps differ from its nodes' steps".into());
    }
    if packs.len() == fleet.nodes.len()
        && fleet_revoked(&packs.iter().collect::<Vec<_>>()) != fleet.revoked
    {
        problems.push(
            "the fleet's list of containers that ran on after their verdict stopped holding differs from its nodes' lists".into(),
        );
    }
    if let Some(c) = &fleet.collector {
        check_duplicates(dir, fleet, c, problems);
    }
}

/// Every copy the collector pack dropped is a copy of a record one of its
/// node packs holds, and the counts add up.
fn check_duplicates(
    dir: &Path,
    fleet: &Fleet,
    c: &super::model::CollectorSource,
    problems: &mut Vec<String>,
) {
    let read = |p: &Path| -> Option<Vec<serde_json::Value>> {
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    };
    let Some(dups) = read(&dir.join(DUPLICATES_JSON)) else {
        return problems.push(format!("{}: missing or not a JSON array", DUPLICATES_JSON));
    };
    let mut keys = std::collections::BTreeSet::new();
    let mut read_total = 0;
    for n in &fleet.nodes {
        let recs = read(&dir.join(&n.dir).join(RECORDS_JSON)).unwrap_or_default();
        read_total += recs.len();
        keys.extend(
            recs.iter()
                .filter_map(|v| v.as_object().and_then(crate::audit::record_key)),
        );
    }
    let orphans = dups
        .iter()
        .filter(|v| {
            v.as_object()
                .and_then(crate::audit::record_key)
                .is_none_or(|k| !keys.contains(&k))
        })
        .count();
    let per_node: usize = fleet
        .nodes
        .iter()
        .filter_map(|n| n.collected.as_ref())
        .map(|k| k.duplicates_dropped)
        .sum();
    if orphans > 0 {
        problems.push(format!(
            "{}: {orphans} dropped record(s) are copies of no record in the node packs",
            DUPLICATES_JSON
        ));
    }
    if dups.len() != c.duplicates_dropped
        || per_node != c.duplicates_dropped
        || read_total + dups.len() != c.records_read
    {
        problems.push(format!(
            "the collector's counts (read {}, dropped {}) differ from the records in the pack ({} kept, {} dropped)",
            c.records_read,
            c.duplicates_dropped,
            read_total,
            dups.len()
        ));
    }
}
