//! Reading verdicts back from the journal (`portcullis audit`).
//!
//! This module owns the query side: it runs `journalctl -o json` filtered on
//! `SYSLOG_IDENTIFIER=portcullis` and the trusted field `_UID=0` (and the
//! verdict or container asked for),
//! and turns each entry into an [`AuditEntry`]. journald stays the store; we
//! add nothing beside it.
//!
//! It also owns the fleet view over a collector's journal directory (records
//! forwarded by `systemd-journal-upload` to `systemd-journal-remote`): each
//! record's node is its `_HOSTNAME`, [`heartbeats`] reads the gates'
//! heartbeat records, and [`fleet`] counts verdicts and denials per node and
//! names the nodes whose newest heartbeat is older than the staleness bound.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use serde::Serialize;

/// Errors querying the journal.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// journalctl could not be run.
    #[error("cannot run journalctl: {0}; install systemd's journalctl")]
    Spawn(std::io::Error),
    /// journalctl failed.
    #[error("journalctl failed: {0}")]
    Failed(String),
}

/// A filter over verdict records.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `journalctl --since` syntax (`-1h`, `2026-11-25 10:00`, `today`).
    pub since: Option<String>,
    /// `journalctl --until` syntax.
    pub until: Option<String>,
    /// allow, deny or warn.
    pub verdict: Option<String>,
    /// A container ID.
    pub container: Option<String>,
    /// Read this journal directory instead of the system journal.
    pub directory: Option<String>,
    /// Only records from this node (`_HOSTNAME`).
    pub node: Option<String>,
}

/// One verdict as read back.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// When journald received it (RFC 3339, UTC).
    pub time: String,
    /// The node that wrote it (`_HOSTNAME`, kept by journal upload and remote).
    pub node: String,
    /// Every `PORTCULLIS_*` field, keyed without the prefix, lowercase.
    #[serde(flatten)]
    pub fields: BTreeMap<String, String>,
    /// `MESSAGE`.
    pub message: String,
    /// The original entry's identity ([`record_key`]), for [`once`].
    #[serde(skip)]
    pub key: Option<String>,
}

impl AuditEntry {
    /// A field by its short name (`verdict`, `container_id`, …).
    pub fn get(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
}

/// Run the query.
pub fn query(q: &Query) -> Result<Vec<AuditEntry>, AuditError> {
    let mut cmd = journalctl(q);
    if let Some(v) = &q.verdict {
        cmd.arg(format!("PORTCULLIS_VERDICT={v}"));
    }
    if let Some(c) = &q.container {
        cmd.arg(format!("PORTCULLIS_CONTAINER_ID={c}"));
    }
    Ok(once(parse_lines(&run(cmd)?)))
}

/// Drop repeated copies of one record: `systemd-journal-upload` resends what
/// it sent after its last saved cursor when it restarts, and the collector
/// keeps both copies. Two entries are one when [`record_key`] says so;
/// entries without a key (no journald timestamp) are kept as they are.
pub fn once(entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
    once_by(entries, |e| e.key.clone()).0
}

/// Keep the first of the items with one key (and every item without one);
/// the others are returned apart. The one de-duplication of records a
/// collector holds twice, for `audit` and `evidence`.
pub fn once_by<T>(items: Vec<T>, key: impl Fn(&T) -> Option<String>) -> (Vec<T>, Vec<T>) {
    let mut seen = std::collections::BTreeSet::new();
    items
        .into_iter()
        .partition(|i| key(i).is_none_or(|k| seen.insert(k)))
}

/// The identity of the original journal entry behind a record read back
/// (`journalctl -o json`): its `__REALTIME_TIMESTAMP` and
/// `__MONOTONIC_TIMESTAMP` with every field that is not a `__` address
/// field. The sender's fields (`_MACHINE_ID`, `_BOOT_ID`, `_PID`, the
/// record's own `PORTCULLIS_DECIDED_AT`, `MESSAGE_ID`, `MESSAGE` …) and both
/// timestamps travel unchanged through `systemd-journal-upload` and
/// `systemd-journal-remote`; the collector's own `__CURSOR` and `__SEQNUM`
/// differ between two copies and are left out. `None` without a realtime
/// timestamp.
pub fn record_key(obj: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let realtime = obj.get("__REALTIME_TIMESTAMP").and_then(text)?;
    let monotonic = obj
        .get("__MONOTONIC_TIMESTAMP")
        .and_then(text)
        .unwrap_or_default();
    let fields: BTreeMap<&str, &serde_json::Value> = obj
        .iter()
        .filter(|(k, _)| !k.starts_with("__"))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    Some(format!(
        "{realtime} {monotonic} {}",
        serde_json::to_string(&fields).unwrap_or_default()
    ))
}

/// The heartbeat records matching `q`'s directory, node and period
/// (its verdict and container filters do not apply).
pub fn heartbeats(q: &Query) -> Result<Vec<Heartbeat>, AuditError> {
    // The newest heartbeat may predate the period asked for: no --since.
    let mut cmd = journalctl(&Query {
        since: None,
        ..q.clone()
    });
    cmd.arg(format!(
        "MESSAGE_ID={}",
        crate::journal::message_id::HEARTBEAT
    ));
    Ok(parse_heartbeats(&run(cmd)?))
}

fn run(mut cmd: Command) -> Result<Vec<u8>, AuditError> {
    let out = cmd.output().map_err(AuditError::Spawn)?;
    if !out.status.success() {
        return Err(AuditError::Failed(crate::base::text::last_line(
            &out.stderr,
        )));
    }
    Ok(out.stdout)
}

fn journalctl(q: &Query) -> Command {
    let mut cmd = Command::new("journalctl");
    cmd.args(["-o", "json", "--no-pager", "-q"]);
    if let Some(d) = &q.directory {
        cmd.arg(format!("--directory={d}"));
    }
    if let Some(s) = &q.since {
        cmd.arg(format!("--since={s}"));
    }
    if let Some(u) = &q.until {
        cmd.arg(format!("--until={u}"));
    }
    cmd.arg(format!("SYSLOG_IDENTIFIER={}", crate::journal::IDENTIFIER));
    // journald sets _UID itself: only records written by root (the shim runs
    // as containerd's child) count, so another local user cannot forge one.
    cmd.arg("_UID=0");
    if let Some(n) = &q.node {
        cmd.arg(format!("_HOSTNAME={n}"));
    }
    cmd
}

/// The verdict table, one line per entry, with the node column.
pub fn write_table(out: &mut dyn Write, entries: &[AuditEntry]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<20}  {:<16}  {:<7}  {:<8}  {:<14}  {:<12}  {:<40}  REASON",
        "TIME", "NODE", "VERDICT", "MODE", "RULE", "CONTAINER", "IMAGE"
    )?;
    for e in entries {
        let time = e.time.get(..19).unwrap_or(&e.time);
        writeln!(
            out,
            "{:<20}  {:<16}  {:<7}  {:<8}  {:<14}  {:<12}  {:<40}  {}",
            time,
            e.node,
            e.get("verdict"),
            e.get("mode"),
            e.get("rule"),
            e.get("container_id"),
            e.get("image_ref"),
            e.get("reason")
        )?;
    }
    writeln!(out, "{} verdict(s)", entries.len())
}

/// The per-node lines: verdicts, denials, newest heartbeat, and the nodes
/// whose heartbeat stopped (`stale_after` as the operator wrote it).
pub fn write_nodes(
    out: &mut dyn Write,
    nodes: &[NodeSummary],
    stale_after: &str,
) -> std::io::Result<()> {
    for n in nodes {
        writeln!(
            out,
            "node {}: {} verdict(s), {} denial(s), last heartbeat {}{}",
            if n.node.is_empty() { "-" } else { &n.node },
            n.verdicts,
            n.denials,
            n.last_heartbeat.as_deref().unwrap_or("none"),
            if n.heartbeat_stopped {
                format!(" (HEARTBEAT STOPPED: none within {stale_after})")
            } else {
                String::new()
            }
        )?;
    }
    let stopped: Vec<&str> = nodes
        .iter()
        .filter(|n| n.heartbeat_stopped)
        .map(|n| n.node.as_str())
        .collect();
    writeln!(
        out,
        "{} node(s), heartbeat stopped on {}: {}",
        nodes.len(),
        stopped.len(),
        if stopped.is_empty() {
            "none".to_string()
        } else {
            stopped.join(", ")
        }
    )
}

/// One heartbeat as read back.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Heartbeat {
    /// The node that wrote it (`_HOSTNAME`).
    pub node: String,
    /// When it was written, in microseconds since the epoch.
    pub at_us: i64,
    /// `PORTCULLIS_MODE`.
    pub mode: String,
}

/// Parse `journalctl -o json` output into heartbeats; other lines are skipped.
pub fn parse_heartbeats(stdout: &[u8]) -> Vec<Heartbeat> {
    json_lines(stdout)
        .filter_map(|v| {
            let obj = v.as_object()?;
            if obj.get("MESSAGE_ID").and_then(text).as_deref()
                != Some(crate::journal::message_id::HEARTBEAT)
            {
                return None;
            }
            Some(Heartbeat {
                node: obj.get("_HOSTNAME").and_then(text).unwrap_or_default(),
                at_us: realtime_us(obj)?,
                mode: obj
                    .get("PORTCULLIS_MODE")
                    .and_then(text)
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// What one node shows in the fleet view.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeSummary {
    /// `_HOSTNAME`.
    pub node: String,
    /// Verdict records.
    pub verdicts: usize,
    /// Of which denials.
    pub denials: usize,
    /// The newest heartbeat (RFC 3339), if any.
    pub last_heartbeat: Option<String>,
    /// True when there is no heartbeat, or the newest is older than the bound.
    pub heartbeat_stopped: bool,
}

/// Per-node counts over `entries`, and each node's newest heartbeat judged
/// against `now_us - stale_after_us`. Nodes seen only by their heartbeat are
/// listed too. Sorted by node name.
pub fn fleet(
    entries: &[AuditEntry],
    beats: &[Heartbeat],
    now_us: i64,
    stale_after_us: i64,
) -> Vec<NodeSummary> {
    let mut nodes: BTreeMap<&str, (usize, usize, Option<i64>)> = BTreeMap::new();
    for e in entries {
        let n = nodes.entry(e.node.as_str()).or_default();
        n.0 += 1;
        if e.get("verdict") == "deny" {
            n.1 += 1;
        }
    }
    for b in beats {
        let n = nodes.entry(b.node.as_str()).or_default();
        n.2 = Some(n.2.map_or(b.at_us, |t| t.max(b.at_us)));
    }
    nodes
        .into_iter()
        .map(|(node, (verdicts, denials, last))| NodeSummary {
            node: node.to_string(),
            verdicts,
            denials,
            last_heartbeat: last.and_then(rfc3339),
            heartbeat_stopped: last.is_none_or(|t| now_us.saturating_sub(t) > stale_after_us),
        })
        .collect()
}

fn rfc3339(us: i64) -> Option<String> {
    jiff::Timestamp::from_microsecond(us)
        .ok()
        .map(|t| t.to_string())
}

fn realtime_us(obj: &serde_json::Map<String, serde_json::Value>) -> Option<i64> {
    obj.get("__REALTIME_TIMESTAMP")
        .and_then(text)
        .and_then(|us| us.parse::<i64>().ok())
}

fn json_lines(stdout: &[u8]) -> impl Iterator<Item = serde_json::Value> + '_ {
    stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
}

/// Parse `journalctl -o json` output; lines that are not verdict records are skipped.
pub fn parse_lines(stdout: &[u8]) -> Vec<AuditEntry> {
    json_lines(stdout).filter_map(|v| entry(&v)).collect()
}

fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        // journald encodes non-UTF-8 values as byte arrays
        serde_json::Value::Array(a) => Some(
            String::from_utf8_lossy(
                &a.iter()
                    .filter_map(|b| b.as_u64().map(|x| x as u8))
                    .collect::<Vec<_>>(),
            )
            .into_owned(),
        ),
        _ => None,
    }
}

fn entry(v: &serde_json::Value) -> Option<AuditEntry> {
    let obj = v.as_object()?;
    let mut fields = BTreeMap::new();
    for (k, val) in obj {
        if let Some(short) = k.strip_prefix("PORTCULLIS_") {
            if let Some(t) = text(val) {
                fields.insert(short.to_ascii_lowercase(), t);
            }
        }
    }
    fields.get("verdict")?;
    let time = realtime_us(obj).and_then(rfc3339).unwrap_or_default();
    Some(AuditEntry {
        time,
        node: obj.get("_HOSTNAME").and_then(text).unwrap_or_default(),
        fields,
        message: obj.get("MESSAGE").and_then(text).unwrap_or_default(),
        key: record_key(obj),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_journalctl_json() {
        let out = br#"{"__REALTIME_TIMESTAMP":"1764100000000000","MESSAGE":"deny x","PORTCULLIS_VERDICT":"deny","PORTCULLIS_CONTAINER_ID":"c1","PORTCULLIS_REASON":[104,105]}
not json
{"MESSAGE":"unrelated"}
"#;
        let e = parse_lines(out);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].get("verdict"), "deny");
        assert_eq!(e[0].get("container_id"), "c1");
        assert_eq!(e[0].get("reason"), "hi");
        assert_eq!(e[0].time, "2025-11-25T19:46:40Z");
        assert_eq!(e[0].node, "");
    }

    #[test]
    fn a_record_uploaded_twice_counts_once_per_node() {
        // Copies differ only in the collector's own __CURSOR / __SEQNUM.
        let out = br#"{"__CURSOR":"s=1;i=1","__SEQNUM":"1","__REALTIME_TIMESTAMP":"10","__MONOTONIC_TIMESTAMP":"5","_MACHINE_ID":"m1","_BOOT_ID":"b1","_HOSTNAME":"a","PORTCULLIS_VERDICT":"deny","PORTCULLIS_CONTAINER_ID":"c","PORTCULLIS_DECIDED_AT":"t1","MESSAGE":"m"}
{"__CURSOR":"s=1;i=9","__SEQNUM":"9","__REALTIME_TIMESTAMP":"10","__MONOTONIC_TIMESTAMP":"5","_MACHINE_ID":"m1","_BOOT_ID":"b1","_HOSTNAME":"a","PORTCULLIS_VERDICT":"deny","PORTCULLIS_CONTAINER_ID":"c","PORTCULLIS_DECIDED_AT":"t1","MESSAGE":"m"}
{"__REALTIME_TIMESTAMP":"10","__MONOTONIC_TIMESTAMP":"5","_MACHINE_ID":"m2","_BOOT_ID":"b1","_HOSTNAME":"b","PORTCULLIS_VERDICT":"deny","PORTCULLIS_CONTAINER_ID":"c","PORTCULLIS_DECIDED_AT":"t1","MESSAGE":"m"}
{"__REALTIME_TIMESTAMP":"10","__MONOTONIC_TIMESTAMP":"6","_MACHINE_ID":"m1","_BOOT_ID":"b1","_HOSTNAME":"a","PORTCULLIS_VERDICT":"deny","PORTCULLIS_CONTAINER_ID":"c","PORTCULLIS_DECIDED_AT":"t1","MESSAGE":"m"}
{"__REALTIME_TIMESTAMP":"10","__MONOTONIC_TIMESTAMP":"5","_MACHINE_ID":"m1","_BOOT_ID":"b2","_HOSTNAME":"a","PORTCULLIS_VERDICT":"deny","PORTCULLIS_CONTAINER_ID":"c","PORTCULLIS_DECIDED_AT":"t1","MESSAGE":"m"}
{"_HOSTNAME":"a","PORTCULLIS_VERDICT":"deny","MESSAGE":"old"}
{"_HOSTNAME":"a","PORTCULLIS_VERDICT":"deny","MESSAGE":"old"}
"#;
        // the second line is the first resent; another machine, another
        // monotonic time, another boot are other entries; entries without
        // a timestamp cannot be identified and are kept
        assert_eq!(once(parse_lines(out)).len(), 6);
        let (kept, dropped) = once_by(parse_lines(out), |e| e.key.clone());
        assert_eq!((kept.len(), dropped.len()), (6, 1));
        assert_eq!(dropped[0].key, kept[0].key);
    }

    #[test]
    fn fleet_counts_denials_per_node_and_names_stopped_heartbeats() {
        let out = br#"{"__REALTIME_TIMESTAMP":"1000","_HOSTNAME":"a","PORTCULLIS_VERDICT":"allow"}
{"__REALTIME_TIMESTAMP":"2000","_HOSTNAME":"a","PORTCULLIS_VERDICT":"deny"}
{"__REALTIME_TIMESTAMP":"3000","_HOSTNAME":"b","PORTCULLIS_VERDICT":"deny"}
"#;
        let e = parse_lines(out);
        assert_eq!(e[1].node, "a");
        let hb = format!(
            r#"{{"__REALTIME_TIMESTAMP":"9000","_HOSTNAME":"a","MESSAGE_ID":"{id}","PORTCULLIS_MODE":"enforce"}}
{{"__REALTIME_TIMESTAMP":"1000","_HOSTNAME":"b","MESSAGE_ID":"{id}"}}
{{"__REALTIME_TIMESTAMP":"9500","_HOSTNAME":"c","MESSAGE_ID":"{id}"}}
{{"__REALTIME_TIMESTAMP":"9900","_HOSTNAME":"b","MESSAGE_ID":"other"}}
"#,
            id = crate::journal::message_id::HEARTBEAT
        );
        let beats = parse_heartbeats(hb.as_bytes());
        assert_eq!(beats.len(), 3);
        assert_eq!(beats[0].mode, "enforce");
        let f = fleet(&e, &beats, 10_000, 5_000);
        let by = |n: &str| f.iter().find(|s| s.node == n).unwrap().clone();
        assert_eq!(f.len(), 3);
        assert_eq!((by("a").verdicts, by("a").denials), (2, 1));
        assert!(!by("a").heartbeat_stopped);
        assert_eq!((by("b").verdicts, by("b").denials), (1, 1));
        assert!(by("b").heartbeat_stopped, "newest heartbeat 9000 us old");
        assert_eq!((by("c").verdicts, by("c").heartbeat_stopped), (0, false));
        let none = fleet(&e, &[], 10_000, 5_000);
        assert!(none
            .iter()
            .all(|s| s.heartbeat_stopped && s.last_heartbeat.is_none()));
    }
}
