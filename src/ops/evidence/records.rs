//! Journal records: reading the node's records back from journald
//! (`journalctl -o json`) and turning each into a [`JEntry`], a
//! [`VerdictRecord`] or a [`HeartbeatRecord`].

use std::collections::BTreeMap;
use std::process::Command;

use jiff::Timestamp;

use crate::journal::message_id;

use super::error::EvidenceError;
use super::model::{HeartbeatRecord, VerdictRecord};

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
    pub(super) fn get(&self, k: &str) -> Option<String> {
        self.fields.get(k).filter(|v| !v.is_empty()).cloned()
    }
    pub(super) fn s(&self, k: &str) -> String {
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

pub(super) fn journalctl(
    args: &[String],
    directory: Option<&str>,
) -> Result<Vec<u8>, EvidenceError> {
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
        return Err(EvidenceError::Journal(crate::base::text::last_line(
            &out.stderr,
        )));
    }
    Ok(out.stdout)
}

pub(super) fn verdict_kind(id: &str) -> Option<&'static str> {
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
