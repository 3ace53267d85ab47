//! Revoked containers: the containers that ran on after their verdict
//! stopped holding, derived from `portcullis reverify`'s records in the
//! period ([`message_id::REVOKED`] and [`message_id::REVOKED_STOPPED`]).
//!
//! A container is listed once per (namespace, container, digest): from its
//! first REVOKED record in the period (when its verdict was first found no
//! longer holding, at the record's decision time), with the number of such
//! records, and the first stop record after it. Without a stop record it
//! is `running`: the records show it running on until the period's end
//! (task exits are not recorded, so a container that exited by itself
//! shows as running too; the detail says so).

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::journal::message_id;

use super::model::{Period, RevokedContainer};
use super::records::JEntry;

/// The record's decision time (`PORTCULLIS_DECIDED_AT`), else its journal time.
fn when(e: &JEntry) -> Timestamp {
    e.get("PORTCULLIS_DECIDED_AT")
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or(e.time)
}

/// The revoked containers of the period's records (`inside`: those in the
/// period), sorted by when their verdict stopped holding.
pub fn revoked_containers(period: Period, inside: &[&JEntry]) -> Vec<RevokedContainer> {
    let mut records: Vec<&JEntry> = inside
        .iter()
        .copied()
        .filter(|e| period.contains(e.time))
        .collect();
    records.sort_by_key(|e| (when(e), e.time));
    let key = |e: &JEntry| {
        (
            e.s("PORTCULLIS_NAMESPACE"),
            e.s("PORTCULLIS_CONTAINER_ID"),
            e.s("PORTCULLIS_IMAGE_DIGEST"),
        )
    };
    // The entry a container's first record in the period opens; `finding` is
    // reverify's, or "would-refuse" for a stop without a REVOKED record.
    let first = |e: &JEntry, finding: String| RevokedContainer {
        namespace: e.s("PORTCULLIS_NAMESPACE"),
        container_id: e.s("PORTCULLIS_CONTAINER_ID"),
        image_ref: e.get("PORTCULLIS_IMAGE_REF"),
        image_digest: e.get("PORTCULLIS_IMAGE_DIGEST"),
        since: when(e),
        rule: e.s("PORTCULLIS_RULE"),
        reason: e.s("PORTCULLIS_REASON"),
        rejection: e.get("PORTCULLIS_REJECTION"),
        finding,
        records: 0,
        state: "running".into(),
        stopped_at: None,
        stop: None,
        ran_until: period.to,
        detail: String::new(),
    };
    let mut found: BTreeMap<(String, String, String), RevokedContainer> = BTreeMap::new();
    for e in &records {
        let id = e.s("MESSAGE_ID");
        if id == message_id::REVOKED {
            let c = found
                .entry(key(e))
                .or_insert_with(|| first(e, e.s("PORTCULLIS_REVERIFY")));
            c.records += 1;
        } else if id == message_id::REVOKED_STOPPED {
            // A stop ends the container found earlier; a stop without a
            // REVOKED record before it in the period is listed on its own.
            let c = found
                .entry(key(e))
                .or_insert_with(|| first(e, "would-refuse".into()));
            if c.state == "stopped" {
                continue;
            }
            let t = when(e);
            match e.s("PORTCULLIS_REVERIFY").as_str() {
                "stopped" => {
                    c.state = "stopped".into();
                    c.stopped_at = Some(t);
                    c.stop = e.get("PORTCULLIS_STOP_SIGNAL");
                    c.ran_until = t;
                }
                _ => {
                    c.state = "stop-failed".into();
                    c.stopped_at = Some(t);
                    c.stop = Some(e.s("PORTCULLIS_STOP_ERROR"));
                }
            }
        }
    }
    let mut out: Vec<RevokedContainer> = found.into_values().collect();
    for c in out.iter_mut() {
        c.detail = match c.state.as_str() {
            "stopped" => format!(
                "verdict no longer held from {}; stopped by {} at {}",
                c.since,
                c.stop.as_deref().unwrap_or("a signal"),
                c.ran_until
            ),
            "stop-failed" => format!(
                "verdict no longer held from {}; stopping it failed at {} ({}); no later stop is on record: it ran on until the period's end",
                c.since,
                c.stopped_at.map(|t| t.to_string()).unwrap_or_default(),
                c.stop.as_deref().unwrap_or("")
            ),
            _ => format!(
                "verdict no longer held from {} ({} reverify record(s)); no stop is on record: it ran on until the period's end, or until it exited by itself (task exits are not recorded)",
                c.since, c.records
            ),
        };
    }
    out.sort_by(|a, b| (a.since, &a.container_id).cmp(&(b.since, &b.container_id)));
    out
}
