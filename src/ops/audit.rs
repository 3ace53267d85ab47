//! Reading verdicts back from the journal (`portcullis audit`).
//!
//! This module owns the query side: it runs `journalctl -o json` filtered on
//! `SYSLOG_IDENTIFIER=portcullis` and the trusted field `_UID=0` (and the
//! verdict or container asked for),
//! and turns each entry into an [`AuditEntry`]. journald stays the store; we
//! add nothing beside it.

use std::collections::BTreeMap;
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
}

/// One verdict as read back.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// When journald received it (RFC 3339, UTC).
    pub time: String,
    /// Every `PORTCULLIS_*` field, keyed without the prefix, lowercase.
    #[serde(flatten)]
    pub fields: BTreeMap<String, String>,
    /// `MESSAGE`.
    pub message: String,
}

impl AuditEntry {
    /// A field by its short name (`verdict`, `container_id`, …).
    pub fn get(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
}

/// Run the query.
pub fn query(q: &Query) -> Result<Vec<AuditEntry>, AuditError> {
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
    if let Some(v) = &q.verdict {
        cmd.arg(format!("PORTCULLIS_VERDICT={v}"));
    }
    if let Some(c) = &q.container {
        cmd.arg(format!("PORTCULLIS_CONTAINER_ID={c}"));
    }
    let out = cmd.output().map_err(AuditError::Spawn)?;
    if !out.status.success() {
        return Err(AuditError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(parse_lines(&out.stdout))
}

/// Parse `journalctl -o json` output; lines that are not verdict records are skipped.
pub fn parse_lines(stdout: &[u8]) -> Vec<AuditEntry> {
    stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| entry(&v))
        .collect()
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
    let time = obj
        .get("__REALTIME_TIMESTAMP")
        .and_then(text)
        .and_then(|us| us.parse::<i64>().ok())
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map(|t| t.to_string())
        .unwrap_or_default();
    Some(AuditEntry {
        time,
        fields,
        message: obj.get("MESSAGE").and_then(text).unwrap_or_default(),
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
    }
}
