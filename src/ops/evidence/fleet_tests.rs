//! Tests of the collector's fleet pack (grouping per node, copies counted
//! once, per-node heartbeats) and of the list of revoked containers.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use crate::journal::message_id;

use super::collector::{group, node_key};
use super::*;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn period(a: i64, b: i64) -> Period {
    Period {
        from: t(a),
        to: t(b),
    }
}

/// A record as `journalctl -o json` prints it from a collector: `cursor`
/// is the collector's own (differs between copies).
fn rec(
    machine: &str,
    host: &str,
    at: i64,
    cursor: u32,
    fields: &[(&str, &str)],
) -> (serde_json::Value, JEntry) {
    let mut v = json!({
        "__CURSOR": format!("s=c;i={cursor}"),
        "__SEQNUM": cursor.to_string(),
        "__REALTIME_TIMESTAMP": (t(at).as_microsecond()).to_string(),
        "__MONOTONIC_TIMESTAMP": (at + 1000).to_string(),
        "_MACHINE_ID": machine,
        "_BOOT_ID": "b1",
        "_HOSTNAME": host,
        "_UID": "0",
    });
    for (k, val) in fields {
        v[*k] = json!(val);
    }
    let e = jentry(&v).unwrap();
    (v, e)
}

fn heartbeat(machine: &str, host: &str, at: i64, cursor: u32) -> (serde_json::Value, JEntry) {
    rec(
        machine,
        host,
        at,
        cursor,
        &[
            ("MESSAGE_ID", message_id::HEARTBEAT),
            ("PORTCULLIS_MODE", "enforce"),
            ("PORTCULLIS_ENFORCING", "true"),
        ],
    )
}

fn deny(machine: &str, host: &str, at: i64, cursor: u32, c: &str) -> (serde_json::Value, JEntry) {
    rec(
        machine,
        host,
        at,
        cursor,
        &[
            ("MESSAGE_ID", message_id::DENIED),
            ("PORTCULLIS_VERDICT", "deny"),
            ("PORTCULLIS_MODE", "enforce"),
            ("PORTCULLIS_CONTAINER_ID", c),
            ("PORTCULLIS_NAMESPACE", "ns"),
            ("PORTCULLIS_IMAGE_DIGEST", "sha256:aa"),
        ],
    )
}

#[test]
fn a_record_uploaded_twice_counts_once_and_nodes_group_by_machine_id() {
    let d1 = deny("m-a", "alpha", 10, 1, "c1");
    let mut resent = d1.clone();
    // the same entry, resent after an upload restart: only the collector's
    // cursor and seqnum differ
    resent.0["__CURSOR"] = json!("s=c;i=99");
    resent.0["__SEQNUM"] = json!("99");
    let inside = vec![
        d1,
        deny("m-a", "alpha", 20, 2, "c2"),
        // node B: the same container id and time on another machine is another record
        deny("m-b", "beta", 10, 3, "c1"),
        // node A renamed: still node A (its machine ID)
        deny("m-a", "alpha-renamed", 30, 4, "c3"),
        resent,
    ];
    let hb = heartbeat("m-a", "alpha", -5, 0);
    let mut hb_copy = hb.clone();
    hb_copy.0["__CURSOR"] = json!("s=c;i=98");
    let older = heartbeat("m-a", "alpha", -50, 97);
    let mut older_copy = older.clone();
    older_copy.0["__CURSOR"] = json!("s=c;i=96");
    let (nodes, dropped) = group(vec![older, older_copy, hb, hb_copy], inside);
    // the resent verdict and the newest heartbeat before the period count
    // once each; the older heartbeat (and its copy) does not count at all
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    assert_eq!(nodes.len(), 2);
    let a = &nodes["m-a"];
    assert_eq!((a.read, a.dropped, a.entries.len()), (6, 2, 3));
    assert_eq!(a.hb_before.as_ref().unwrap().1.time, t(-5));
    assert!(a.hb_before.is_some());
    assert_eq!(
        a.names(),
        ("alpha-renamed".to_string(), vec!["alpha".to_string()])
    );
    let b = &nodes["m-b"];
    assert_eq!((b.read, b.dropped, b.entries.len()), (1, 0, 1));
    assert!(b.hb_before.is_none());
    // derived per node, the denial counts once
    let refs: Vec<&JEntry> = a.entries.iter().map(|(_, e)| e).collect();
    let d = derive(period(0, 100), &refs, &[], Duration::from_secs(60));
    assert_eq!(d.denials.len(), 3);
    // without a machine ID, the host name groups
    let (_, e) = rec("", "gamma", 1, 7, &[]);
    assert_eq!(node_key(&e), "hostname:gamma");
}

#[test]
fn one_nodes_heartbeats_never_cover_another_nodes_gap() {
    // A beats every 50 s over 0..200; B beat once at 0 and stopped.
    let mut inside = vec![heartbeat("m-b", "beta", 0, 1)];
    for (i, at) in [0, 50, 100, 150].into_iter().enumerate() {
        inside.push(heartbeat("m-a", "alpha", at, 10 + i as u32));
    }
    let (nodes, _) = group(Vec::new(), inside);
    let grace = Duration::from_secs(60);
    let derive_node = |m: &str| {
        let refs: Vec<&JEntry> = nodes[m].entries.iter().map(|(_, e)| e).collect();
        derive(period(0, 200), &refs, &[], grace)
    };
    let a = derive_node("m-a");
    let b = derive_node("m-b");
    assert_eq!(a.heartbeats.len(), 4);
    assert!(a.inactive_periods.is_empty(), "{:?}", a.inactive_periods);
    assert_eq!(b.heartbeats.len(), 1);
    assert_eq!(
        b.inactive_periods
            .iter()
            .map(|i| (i.from, i.to))
            .collect::<Vec<_>>(),
        [(t(60), t(200))],
        "B's gap stays B's although A beat throughout"
    );
}

fn revoked(at: i64, c: &str, finding: &str) -> JEntry {
    rec(
        "m",
        "h",
        at,
        at as u32,
        &[
            ("MESSAGE_ID", message_id::REVOKED),
            ("PORTCULLIS_NAMESPACE", "ns"),
            ("PORTCULLIS_CONTAINER_ID", c),
            ("PORTCULLIS_IMAGE_REF", "r.io/app:1"),
            ("PORTCULLIS_IMAGE_DIGEST", "sha256:bb"),
            ("PORTCULLIS_RULE", "app"),
            ("PORTCULLIS_REASON", "not signed by an allowed signer"),
            ("PORTCULLIS_REJECTION", "signers"),
            ("PORTCULLIS_REVERIFY", finding),
            ("PORTCULLIS_VERDICT", "deny"),
        ],
    )
    .1
}

fn stop(at: i64, c: &str, ok: bool) -> JEntry {
    let mut f = vec![
        ("MESSAGE_ID", message_id::REVOKED_STOPPED),
        ("PORTCULLIS_NAMESPACE", "ns"),
        ("PORTCULLIS_CONTAINER_ID", c),
        ("PORTCULLIS_IMAGE_DIGEST", "sha256:bb"),
    ];
    if ok {
        f.extend([
            ("PORTCULLIS_REVERIFY", "stopped"),
            ("PORTCULLIS_STOP_SIGNAL", "SIGKILL"),
        ]);
    } else {
        f.extend([
            ("PORTCULLIS_REVERIFY", "stop-failed"),
            ("PORTCULLIS_STOP_ERROR", "tasks.Kill failed"),
        ]);
    }
    rec("m", "h", at, at as u32 + 500, &f).1
}

#[test]
fn revoked_containers_list_when_each_stopped_holding_and_how_it_ended() {
    let records = [
        revoked(-10, "old", "would-refuse"), // before the period: not listed
        revoked(10, "kept", "would-refuse"),
        revoked(70, "kept", "would-refuse"), // the hourly timer again
        revoked(20, "ended", "would-refuse"),
        stop(22, "ended", true),
        revoked(30, "stuck", "would-refuse"),
        stop(31, "stuck", false),
        revoked(40, "warned", "no-longer-holds"),
    ];
    let refs: Vec<&JEntry> = records.iter().collect();
    let got = revoked_containers(period(0, 100), &refs);
    let by = |c: &str| got.iter().find(|r| r.container_id == c).unwrap().clone();
    assert_eq!(got.len(), 4, "{got:?}");
    let kept = by("kept");
    assert_eq!(
        (
            kept.state.as_str(),
            kept.records,
            kept.since,
            kept.ran_until
        ),
        ("running", 2, t(10), t(100))
    );
    assert!(
        kept.detail.contains("no stop is on record"),
        "{}",
        kept.detail
    );
    let ended = by("ended");
    assert_eq!(
        (
            ended.state.as_str(),
            ended.stopped_at,
            ended.ran_until,
            ended.stop.as_deref()
        ),
        ("stopped", Some(t(22)), t(22), Some("SIGKILL"))
    );
    assert_eq!(ended.rejection.as_deref(), Some("signers"));
    assert_eq!(ended.image_ref.as_deref(), Some("r.io/app:1"));
    let stuck = by("stuck");
    assert_eq!(
        (stuck.state.as_str(), stuck.ran_until),
        ("stop-failed", t(100))
    );
    assert_eq!(by("warned").finding, "no-longer-holds");
    // sorted by when the verdict stopped holding
    assert_eq!(
        got.iter()
            .map(|r| r.container_id.as_str())
            .collect::<Vec<_>>(),
        ["kept", "ended", "stuck", "warned"]
    );
    // derive carries the list; REVOKED records are no verdicts
    let d = derive(period(0, 100), &refs, &[], Duration::from_secs(60));
    assert_eq!(d.revoked, got);
    assert!(d.verdicts.is_empty() && d.denials.is_empty());
}

#[test]
fn the_judge_flags_a_revoked_container_that_ran_on() {
    let records = [
        revoked(10, "a", "would-refuse"),
        stop(12, "a", true),
        revoked(20, "b", "would-refuse"),
    ];
    let refs: Vec<&JEntry> = records.iter().collect();
    let list = revoked_containers(period(0, 100), &refs);
    let beat = heartbeat("m", "h", 1, 1).1;
    let mut heartbeats = vec![heartbeat_record(&beat).unwrap()];
    let step = |list: Vec<RevokedContainer>, heartbeats: &Vec<HeartbeatRecord>| {
        let p = Pack {
            format: FORMAT.into(),
            node: "n".into(),
            generated_at: t(0),
            portcullis_version: "0".into(),
            period: period(0, 100),
            summary: Summary::default(),
            steps: Vec::new(),
            policies: Vec::new(),
            trust_roots: Vec::new(),
            keys: Vec::new(),
            heartbeat_interval_seconds: 300,
            heartbeats: heartbeats.clone(),
            images: Vec::new(),
            denials: Vec::new(),
            unverified_allows: Vec::new(),
            exemptions: Vec::new(),
            inactive_periods: Vec::new(),
            gaps: Vec::new(),
            observation: Observation {
                observed: Vec::new(),
                unobserved: Vec::new(),
                task_starts: 0,
                containerd_address: String::new(),
                containers_examined: Some(0),
                containerd_error: None,
                limits: Vec::new(),
            },
            revoked: list,
            journal_integrity: JournalIntegrity {
                sealing: "not-enabled".into(),
                command: String::new(),
                exit_code: Some(0),
                output: String::new(),
            },
        };
        let s = judge(&p)
            .into_iter()
            .find(|s| s.id == "revoked-stopped")
            .unwrap();
        let mut p2 = p.clone();
        p2.steps = judge(&p);
        (s, summarize(&p2))
    };
    let (s, sum) = step(list.clone(), &heartbeats);
    assert_eq!(s.status, "fail");
    assert!(
        s.detail.contains("1 of 2") && s.detail.contains("ns/b"),
        "{}",
        s.detail
    );
    assert_eq!((sum.revoked, sum.revoked_running), (2, 1));
    let stopped: Vec<RevokedContainer> =
        list.into_iter().filter(|c| c.state == "stopped").collect();
    assert_eq!(step(stopped, &heartbeats).0.status, "pass");
    assert_eq!(step(Vec::new(), &heartbeats).0.status, "pass");
    // without a heartbeat nothing shows a gate ran: no record proves nothing
    heartbeats.clear();
    let (s, _) = step(Vec::new(), &heartbeats);
    assert_eq!(s.status, "fail");
    assert!(s.detail.contains("no heartbeat"), "{}", s.detail);
}

#[test]
fn an_image_without_documents_is_not_reverifiable_here_never_passed() {
    let dir = tempfile::tempdir().unwrap();
    let rec = VerdictRecord {
        kind: "verified".into(),
        verdict: "allow".into(),
        mode: "enforce".into(),
        ..Default::default()
    };
    let img = ImageEvidence {
        digest: "sha256:cc".into(),
        refs: vec![],
        starts: 1,
        all_verified: true,
        records: vec![rec],
        documents: vec![],
        reverification: None,
        provenance_statement: None,
    };
    let p: Pack = serde_json::from_value(json!({
        "format": FORMAT, "node": "n", "generated_at": t(0), "portcullis_version": "0",
        "period": period(0, 1), "summary": Summary::default(), "steps": [], "policies": [],
        "trust_roots": [], "keys": [], "heartbeat_interval_seconds": 1, "heartbeats": [],
        "images": [], "denials": [], "unverified_allows": [], "exemptions": [],
        "inactive_periods": [], "gaps": [],
        "observation": {"observed": [], "unobserved": [], "task_starts": 0,
            "containerd_address": "", "limits": []},
        "journal_integrity": {"sealing": "unknown", "command": "", "output": ""}
    }))
    .unwrap();
    assert!(p.revoked.is_empty(), "packs without the list still read");
    let r = reverify(dir.path(), &p, &img).unwrap();
    assert!(r.unavailable() && !r.passed());
    assert!(r.signature.detail.contains("not re-verifiable here"));
}

#[test]
fn the_reports_list_revoked_containers_with_their_node_escaped() {
    let records = [
        revoked(10, "<web>", "would-refuse"),
        stop(12, "<web>", true),
        revoked(20, "db", "would-refuse"),
    ];
    let refs: Vec<&JEntry> = records.iter().collect();
    let list = revoked_containers(period(0, 100), &refs);
    let mut p: Pack = serde_json::from_value(json!({
        "format": FORMAT, "node": "n", "generated_at": t(0), "portcullis_version": "0",
        "period": period(0, 100), "summary": Summary::default(), "steps": [], "policies": [],
        "trust_roots": [], "keys": [], "heartbeat_interval_seconds": 1, "heartbeats": [],
        "images": [], "denials": [], "unverified_allows": [], "exemptions": [],
        "inactive_periods": [], "gaps": [],
        "observation": {"observed": [], "unobserved": [], "task_starts": 0,
            "containerd_address": "", "limits": []},
        "journal_integrity": {"sealing": "unknown", "command": "", "output": ""}
    }))
    .unwrap();
    p.revoked = list.clone();
    let html = super::html::render(&p);
    assert!(html.contains("id=\"revoked\""));
    assert!(html.contains("ns/&lt;web&gt;") && !html.contains("<web>"));
    assert!(html.contains("<b>stopped</b> (SIGKILL)") && html.contains("<b>running</b>"));
    let fleet = Fleet {
        format: FLEET_FORMAT.into(),
        generated_at: t(0),
        portcullis_version: "0".into(),
        result: "fail".into(),
        steps: Vec::new(),
        nodes: Vec::new(),
        collector: None,
        revoked: fleet_revoked(&[&p]),
        heartbeat_stopped: Vec::new(),
    };
    assert_eq!(fleet.revoked.len(), 2);
    assert_eq!(fleet.revoked[0].node, "n");
    let html = super::html::render_fleet(&fleet);
    assert!(html.contains("<th>node</th>") && html.contains("<td>n</td>"));
}
