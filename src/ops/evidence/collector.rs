//! One fleet pack from a collector's journal directory (`portcullis
//! evidence --directory DIR --fleet`): the records `systemd-journal-upload`
//! forwarded to `systemd-journal-remote`, each copy of one record counted
//! once (audit's rule, [`crate::audit::record_key`]), grouped per node by
//! `_MACHINE_ID` (named by `_HOSTNAME`). Each node gets its own pack under
//! `nodes/`, built from its records alone by the same code as a node's own
//! pack, so one node's heartbeats never cover another's gap; the fleet's
//! `evidence.json` has the node table (verdicts, denials, copies dropped,
//! last heartbeat, heartbeat stopped) and every node's containers that ran
//! on after their verdict stopped holding.
//!
//! What the collector cannot see it says: a node's signature documents and
//! archived policies are in its state directory, so a node's images are
//! re-verified only when that directory (or an exported copy) is named with
//! `--node-state NODE=DIR` (this machine's own `--state-dir` for its own
//! records); otherwise each is listed as not re-verifiable here, never
//! passed. containerd's container records are read only for this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use crate::audit::{once_by, record_key};
use crate::cache::StateDir;
use crate::journal::message_id;

use super::collect::{build, in_scope, prepare_out, secs, GenerateOptions, PeriodRecords};
use super::coverage::list_containers;
use super::error::{werr, EvidenceError};
use super::fleet::fleet_of;
use super::manifest::{write_file, write_manifest};
use super::model::{
    CollectedNode, CollectorSource, Fleet, FleetNode, Pack, Period, DUPLICATES_JSON, EVIDENCE_JSON,
    REPORT_HTML,
};
use super::records::{journalctl, parse_journal, JEntry};

/// The de-duplication rule, as the pack states it.
pub const DEDUP_RULE: &str = "one record per original journal entry: __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP and every field but the collector's __CURSOR/__SEQNUM (so _MACHINE_ID, _BOOT_ID and the record's own fields)";

/// How far before the period a node's newest heartbeat is looked for (a
/// node pack takes the newest at any age; a collector holds every node's).
pub const HEARTBEAT_LOOKBACK_HOURS: i64 = 7 * 24;

/// What `portcullis evidence --directory DIR --fleet` needs.
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    /// The period.
    pub period: Period,
    /// Output directory (created; must be empty if it exists).
    pub out: PathBuf,
    /// The collector's journal directory.
    pub directory: String,
    /// The policy file (scope with `this_policy_only`; its text is used when
    /// it matches a recorded digest).
    pub policy: PathBuf,
    /// This machine's containerd socket (read for this machine's records only).
    pub address: String,
    /// This machine's state directory (for this machine's records).
    pub state: StateDir,
    /// `NODE=DIR`: a node's state directory (or an exported copy), NODE
    /// being its `_HOSTNAME` or `_MACHINE_ID`.
    pub node_states: Vec<(String, PathBuf)>,
    /// The heartbeat timer's interval; a heartbeat covers twice this.
    pub heartbeat_interval: Duration,
    /// Only records of gates using `policy` and task starts observed on `address`.
    pub this_policy_only: bool,
}

/// Parse `NODE=DIR`.
pub fn parse_node_state(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((n, d)) if !n.is_empty() && !d.is_empty() => Ok((n.to_string(), PathBuf::from(d))),
        _ => Err(format!(
            "\"{s}\" is not NODE=DIR; write the node's host name or machine ID, '=', and its state directory"
        )),
    }
}

/// This machine's `/etc/machine-id`.
fn local_machine_id() -> Option<String> {
    std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The node a record belongs to: its `_MACHINE_ID`, else its `_HOSTNAME`.
pub fn node_key(e: &JEntry) -> String {
    e.get("_MACHINE_ID")
        .or_else(|| e.get("_HOSTNAME").map(|h| format!("hostname:{h}")))
        .unwrap_or_else(|| "unknown".into())
}

/// One node's records, as grouped.
#[derive(Debug, Default)]
pub(super) struct NodeRecords {
    /// Its `_HOSTNAME`s, each with its newest record's time.
    pub(super) hostnames: BTreeMap<String, Timestamp>,
    /// Records read, copies included.
    pub(super) read: usize,
    /// Copies dropped.
    pub(super) dropped: usize,
    /// The newest heartbeat before the period.
    pub(super) hb_before: Option<(serde_json::Value, JEntry)>,
    /// The newest observer record before the period.
    pub(super) obs_before: Option<(serde_json::Value, JEntry)>,
    /// The period's records, by time.
    pub(super) entries: Vec<(serde_json::Value, JEntry)>,
}

impl NodeRecords {
    /// Count a record kept, and its host name.
    fn note(&mut self, e: &JEntry) {
        self.read += 1;
        if let Some(h) = e.get("_HOSTNAME") {
            let t = self.hostnames.entry(h).or_insert(e.time);
            *t = (*t).max(e.time);
        }
    }

    /// The newest `_HOSTNAME`, then the others.
    pub(super) fn names(&self) -> (String, Vec<String>) {
        let mut by_time: Vec<(&Timestamp, &String)> =
            self.hostnames.iter().map(|(h, t)| (t, h)).collect();
        by_time.sort();
        let newest = by_time
            .last()
            .map(|(_, h)| h.to_string())
            .unwrap_or_else(|| "unknown-node".into());
        let others = by_time
            .iter()
            .map(|(_, h)| h.to_string())
            .filter(|h| *h != newest)
            .collect();
        (newest, others)
    }
}

/// Records from the collector: `args` plus the period-independent filters,
/// as (raw, entry) pairs in scope.
fn read(
    o: &CollectorOptions,
    scope: &GenerateOptions,
    args: &[String],
) -> Result<Vec<(serde_json::Value, JEntry)>, EvidenceError> {
    let mut a = args.to_vec();
    a.push("_UID=0".into());
    Ok(parse_journal(&journalctl(&a, Some(&o.directory))?)
        .into_iter()
        .filter(|(_, e)| in_scope(scope, e))
        .collect())
}

/// Group a collector's records per node ([`node_key`]), each record once
/// (audit's rule, [`record_key`]): `before` are records before the period
/// (of which each node's newest heartbeat and observer record count),
/// `inside` the period's. Returns the nodes and the copies dropped.
pub(super) fn group(
    before: Vec<(serde_json::Value, JEntry)>,
    inside: Vec<(serde_json::Value, JEntry)>,
) -> (BTreeMap<String, NodeRecords>, Vec<serde_json::Value>) {
    // One rule for copies: audit's. The records before the period first,
    // each list in journal order: the first copy is kept.
    let key = |v: &serde_json::Value| v.as_object().and_then(record_key);
    let tagged: Vec<(bool, serde_json::Value, JEntry)> = before
        .into_iter()
        .map(|(v, e)| (true, v, e))
        .chain(inside.into_iter().map(|(v, e)| (false, v, e)))
        .collect();
    let (kept, dropped) = once_by(tagged, |(_, v, _)| key(v));
    // Of the records before the period, only each node's newest heartbeat
    // and observer record count.
    let mut newest: BTreeMap<(String, String), (serde_json::Value, JEntry)> = BTreeMap::new();
    let mut nodes: BTreeMap<String, NodeRecords> = BTreeMap::new();
    let mut used = std::collections::BTreeSet::new();
    for (is_before, v, e) in kept {
        if is_before {
            let k = (node_key(&e), e.s("MESSAGE_ID"));
            if newest.get(&k).is_none_or(|(_, n)| n.time < e.time) {
                newest.insert(k, (v, e));
            }
            continue;
        }
        used.extend(key(&v));
        let n = nodes.entry(node_key(&e)).or_default();
        n.note(&e);
        n.entries.push((v, e));
    }
    for (_, (v, e)) in newest {
        used.extend(key(&v));
        let n = nodes.entry(node_key(&e)).or_default();
        n.note(&e);
        if e.s("MESSAGE_ID") == message_id::HEARTBEAT {
            n.hb_before = Some((v, e));
        } else {
            n.obs_before = Some((v, e));
        }
    }
    // Copies of a record the pack holds are counted and kept apart; copies
    // of a record before the period that does not count go with it.
    let dropped: Vec<(bool, serde_json::Value, JEntry)> = dropped
        .into_iter()
        .filter(|(_, v, _)| key(v).is_some_and(|k| used.contains(&k)))
        .collect();
    for (_, _, e) in &dropped {
        let n = nodes.entry(node_key(e)).or_default();
        n.read += 1;
        n.dropped += 1;
    }
    for n in nodes.values_mut() {
        n.entries.sort_by_key(|(_, e)| e.time);
    }
    (nodes, dropped.into_iter().map(|(_, v, _)| v).collect())
}

/// Build the fleet pack in `o.out`.
pub fn generate_fleet(o: &CollectorOptions) -> Result<Fleet, EvidenceError> {
    let period = o.period;
    if period.from >= period.to {
        return Err(EvidenceError::Usage(
            "the period's start is not before its end".into(),
        ));
    }
    prepare_out(&o.out)?;
    let grace = o.heartbeat_interval * 2;
    let scope = GenerateOptions {
        period,
        out: o.out.clone(),
        state: o.state.clone(),
        policy: o.policy.clone(),
        address: o.address.clone(),
        journal_directory: Some(o.directory.clone()),
        heartbeat_interval: o.heartbeat_interval,
        node: String::new(),
        this_policy_only: o.this_policy_only,
    };
    let until = Timestamp::from_second(period.to.as_second() + 1).unwrap_or(period.to);
    let inside = read(
        o,
        &scope,
        &[
            format!("--since={}", secs(period.from)),
            format!("--until={}", secs(until)),
            format!("SYSLOG_IDENTIFIER={}", crate::journal::IDENTIFIER),
            format!("SYSLOG_IDENTIFIER={}", crate::journal::SYNC_IDENTIFIER),
            format!("SYSLOG_IDENTIFIER={}", crate::journal::REVERIFY_IDENTIFIER),
        ],
    )?
    .into_iter()
    .filter(|(_, e)| period.contains(e.time))
    .collect::<Vec<_>>();
    // What held when the period began: each node's newest heartbeat (up
    // to HEARTBEAT_LOOKBACK_HOURS before it) and its last observer record.
    let lookback = period
        .from
        .checked_sub(jiff::SignedDuration::from_hours(HEARTBEAT_LOOKBACK_HOURS))
        .unwrap_or(period.from);
    let mut before = read(
        o,
        &scope,
        &[
            format!("--since={}", secs(lookback)),
            format!("--until={}", secs(period.from)),
            format!("MESSAGE_ID={}", message_id::HEARTBEAT),
        ],
    )?;
    before.extend(read(
        o,
        &scope,
        &[
            format!("--until={}", secs(period.from)),
            format!("MESSAGE_ID={}", message_id::OBSERVER),
        ],
    )?);
    // journalctl's --since bisects each file by time; a collector's file
    // need not be in time order, so the bounds are applied here again.
    before.retain(|(_, e)| {
        e.time < period.from && (e.s("MESSAGE_ID") != message_id::HEARTBEAT || e.time >= lookback)
    });
    let (nodes, duplicates) = group(before, inside);
    let total_read: usize = nodes.values().map(|n| n.read).sum();
    let dropped_total = duplicates.len();

    let integrity = super::collect::journal_integrity(Some(&o.directory));
    let local = local_machine_id();
    let mut local_containers: Option<Result<Vec<super::coverage::ContainerInfo>, String>> = None;
    let builder = super::collect::hostname();
    let mut fleet_nodes = Vec::new();
    let mut packs: Vec<Pack> = Vec::new();
    let mut heartbeat_stopped = Vec::new();
    for (n, (machine, recs)) in nodes.into_iter().enumerate() {
        let (name, others) = recs.names();
        let is_local = local.as_deref() == Some(machine.as_str());
        let named = o
            .node_states
            .iter()
            .find(|(k, _)| *k == name || *k == machine)
            .map(|(_, d)| d.clone());
        let (state, documents_from) = match (named, is_local) {
            (Some(d), _) => (StateDir::new(&d), format!("--node-state {}", d.display())),
            (None, true) => (
                o.state.clone(),
                format!("{} (this machine)", o.state.root().display()),
            ),
            (None, false) => (
                StateDir::new(Path::new("/dev/null/no-state-directory")),
                format!(
                    "none: name the node's state directory with --node-state {name}=DIR; its images are not re-verifiable here"
                ),
            ),
        };
        let listed = if is_local {
            local_containers
                .get_or_insert_with(|| {
                    list_containers(&o.address, crate::containerd::lookup_timeout())
                })
                .clone()
        } else {
            Err(format!(
                "this pack was built on {builder} from a collector's journal: {name}'s containerd cannot be asked from here; run `portcullis evidence` on {name} for its container records"
            ))
        };
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = format!("nodes/{:02}-{}", n + 1, safe.trim_start_matches('.'));
        let node_out = o.out.join(&dir);
        std::fs::create_dir_all(&node_out).map_err(werr(&node_out))?;
        let gopts = GenerateOptions {
            out: node_out,
            state,
            address: if is_local {
                o.address.clone()
            } else {
                format!("(containerd of {name}: not reachable from the collector)")
            },
            node: name.clone(),
            ..scope.clone()
        };
        let last_hb = recs
            .hb_before
            .iter()
            .chain(recs.entries.iter())
            .filter(|(_, e)| e.s("MESSAGE_ID") == message_id::HEARTBEAT)
            .map(|(_, e)| e.time)
            .max();
        let grace_us = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
        let stopped = last_hb.is_none_or(|t| {
            period
                .to
                .as_microsecond()
                .saturating_sub(t.as_microsecond())
                > grace_us
        });
        if stopped {
            heartbeat_stopped.push(name.clone());
        }
        let (read_n, dropped_n) = (recs.read, recs.dropped);
        let pack = build(
            &gopts,
            &PeriodRecords {
                hb_before: recs.hb_before,
                obs_before: recs.obs_before,
                entries: recs.entries,
            },
            listed,
            Some(integrity.clone()),
        )?;
        fleet_nodes.push(FleetNode {
            node: name,
            dir,
            period,
            summary: pack.summary.clone(),
            steps: pack.steps.clone(),
            collected: Some(CollectedNode {
                machine_id: machine,
                other_hostnames: others,
                records_read: read_n,
                duplicates_dropped: dropped_n,
                last_heartbeat: last_hb,
                heartbeat_stopped: stopped,
                documents_from,
            }),
        });
        packs.push(pack);
    }
    if fleet_nodes.is_empty() {
        return Err(EvidenceError::Usage(format!(
            "{} holds no Portcullis record for the period; check the directory and --since/--from",
            o.directory
        )));
    }
    let fleet = fleet_of(
        fleet_nodes,
        &packs.iter().collect::<Vec<_>>(),
        Some(CollectorSource {
            directory: o.directory.clone(),
            period,
            records_read: total_read,
            duplicates_dropped: dropped_total,
            dedup_rule: DEDUP_RULE.into(),
        }),
        heartbeat_stopped,
    );
    write_file(
        &o.out,
        DUPLICATES_JSON,
        &serde_json::to_vec_pretty(&duplicates).unwrap_or_default(),
    )?;
    write_file(
        &o.out,
        EVIDENCE_JSON,
        &serde_json::to_vec_pretty(&fleet).unwrap_or_default(),
    )?;
    write_file(
        &o.out,
        REPORT_HTML,
        super::html::render_fleet(&fleet).as_bytes(),
    )?;
    write_manifest(&o.out)?;
    Ok(fleet)
}
