//! Derivation: everything a pack states that follows from its journal records
//! and containerd's container records alone ([`Derived`]), computed when the
//! pack is made and again by `evidence verify`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::journal::message_id;

use super::coverage::{find_gaps, inactive_periods, observed_intervals, ContainerInfo};
use super::model::{
    Gap, HeartbeatRecord, ImageEvidence, Interval, Period, RevokedContainer, VerdictRecord,
};
use super::records::{heartbeat_record, verdict_record, JEntry};
use super::revoked::revoked_containers;

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
    /// Containers that ran on after their verdict stopped holding.
    pub revoked: Vec<RevokedContainer>,
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
        revoked: revoked_containers(period, &inside),
        observed,
        unobserved,
        images,
        heartbeats,
        verdicts,
    }
}
