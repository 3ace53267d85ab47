//! Coverage: when the gate was not enforcing (heartbeats), when task starts
//! were observed (`portcullis sync` records), containerd's container records,
//! and the containers that started without a gate verdict (gaps).

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::model::{Gap, HeartbeatRecord, Interval, Period, VerdictRecord};
use super::records::JEntry;

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
    use crate::containerd::{method, wire};
    use containerd_client::services::v1::{
        ListContainersRequest, ListContainersResponse, ListNamespacesRequest,
        ListNamespacesResponse,
    };
    let listed = wire::run(address, timeout, |conn| async move {
        let calls = async {
            let request = ListNamespacesRequest {
                filter: String::new(),
            };
            let namespaces = conn
                .unary::<_, ListNamespacesResponse>(method::NAMESPACES_LIST, "", &request)
                .await
                .map_err(|e| format!("namespaces.List: {e}"))?
                .namespaces;
            let mut out = Vec::new();
            for ns in namespaces {
                let request = ListContainersRequest { filters: vec![] };
                let cs = conn
                    .unary::<_, ListContainersResponse>(method::CONTAINERS_LIST, &ns.name, &request)
                    .await
                    .map_err(|e| format!("containers.List ({}): {e}", ns.name))?
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
        };
        // A failed call is the listing's answer; only the connection's
        // failures are the driver's.
        Ok::<Result<Vec<ContainerInfo>, String>, wire::DriveError>(calls.await)
    });
    match listed {
        Ok(r) => r,
        Err(wire::DriveError::Unreachable { why, .. }) => Err(format!("unreachable: {why}")),
        Err(wire::DriveError::Timeout { .. }) => {
            Err(format!("no answer within {}s", timeout.as_secs()))
        }
    }
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
