use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::cache::Entry;
use crate::journal::message_id;

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

fn hb(at: i64, enforcing: bool) -> HeartbeatRecord {
    HeartbeatRecord {
        time: t(at),
        mode: if enforcing { "enforce" } else { "audit" }.into(),
        rule_modes: String::new(),
        enforcing,
        policy_path: "/etc/portcullis/policy.toml".into(),
        policy_digest: Some(format!("sha256:{}", "a".repeat(64))),
        policy_error: None,
        trust_roots: String::new(),
    }
}

fn entry(at: i64, fields: &[(&str, &str)]) -> JEntry {
    JEntry {
        time: t(at),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn heartbeats_cover_twice_the_interval_and_non_enforcing_ones_do_not_count() {
    let grace = Duration::from_secs(100);
    // covered 0..100, hole 100..150, audit 150..250, covered 250..350, hole 350..400
    let got = inactive_periods(
        period(0, 400),
        &[hb(-10, true), hb(150, false), hb(250, true)],
        grace,
    );
    let spans: Vec<(Timestamp, Timestamp, bool)> = got
        .iter()
        .map(|i| (i.from, i.to, i.reason.starts_with("no heartbeat")))
        .collect();
    assert_eq!(
        spans,
        [
            (t(90), t(150), true),
            (t(150), t(250), false),
            (t(350), t(400), true)
        ]
    );
    assert!(got[1].reason.contains("mode audit"), "{}", got[1].reason);
    assert_eq!(
        inactive_periods(period(0, 400), &[], grace).len(),
        1,
        "no heartbeat at all: the whole period"
    );
    assert!(inactive_periods(period(0, 50), &[hb(-1, true)], grace).is_empty());
}

#[test]
fn observation_follows_start_and_stop_records() {
    let before = entry(-5, &[("PORTCULLIS_OBSERVER", "start")]);
    let stop = entry(100, &[("PORTCULLIS_OBSERVER", "stop")]);
    let start = entry(200, &[("PORTCULLIS_OBSERVER", "start")]);
    let (obs, unobs) = observed_intervals(period(0, 300), Some(&before), &[&stop, &start]);
    assert_eq!(
        obs.iter().map(|i| (i.from, i.to)).collect::<Vec<_>>(),
        [(t(0), t(100)), (t(200), t(300))]
    );
    assert_eq!(
        unobs.iter().map(|i| (i.from, i.to)).collect::<Vec<_>>(),
        [(t(100), t(200))]
    );
    let (obs, unobs) = observed_intervals(period(0, 300), None, &[]);
    assert!(obs.is_empty());
    assert_eq!(unobs.len(), 1);
}

#[test]
fn gaps_come_from_task_records_and_container_records_once_each() {
    let runc = entry(
        10,
        &[
            ("PORTCULLIS_NAMESPACE", "ns"),
            ("PORTCULLIS_CONTAINER_ID", "plain"),
            ("PORTCULLIS_RUNTIME", "io.containerd.runc.v2"),
            ("PORTCULLIS_IMAGE_REF", "r.io/a:1"),
            ("PORTCULLIS_SOURCE", "create-event"),
        ],
    );
    let gated = entry(
        11,
        &[
            ("PORTCULLIS_NAMESPACE", "ns"),
            ("PORTCULLIS_CONTAINER_ID", "judged"),
            ("PORTCULLIS_RUNTIME", crate::doctor::RUNTIME_TYPE),
        ],
    );
    let unjudged = entry(
        12,
        &[
            ("PORTCULLIS_NAMESPACE", "ns"),
            ("PORTCULLIS_CONTAINER_ID", "lost"),
            ("PORTCULLIS_RUNTIME", crate::doctor::RUNTIME_TYPE),
        ],
    );
    let verdicts = vec![VerdictRecord {
        namespace: "ns".into(),
        container_id: Some("judged".into()),
        ..Default::default()
    }];
    let containers = vec![
        ContainerInfo {
            namespace: "ns".into(),
            id: "plain".into(),
            image: "r.io/a:1".into(),
            runtime: "io.containerd.runc.v2".into(),
            created_at: Some(t(9)),
        },
        ContainerInfo {
            namespace: "ns".into(),
            id: "kept".into(),
            image: "r.io/b:1".into(),
            runtime: "io.containerd.runc.v2".into(),
            created_at: Some(t(20)),
        },
        ContainerInfo {
            namespace: "ns".into(),
            id: "old".into(),
            image: "r.io/b:1".into(),
            runtime: "io.containerd.runc.v2".into(),
            created_at: Some(t(-20)),
        },
        ContainerInfo {
            namespace: "ns".into(),
            id: "ours".into(),
            image: "r.io/b:1".into(),
            runtime: crate::doctor::RUNTIME_TYPE.into(),
            created_at: Some(t(20)),
        },
    ];
    let gaps = find_gaps(
        period(0, 100),
        &[&runc, &gated, &unjudged],
        &verdicts,
        &containers,
    );
    let ids: Vec<(&str, &str)> = gaps
        .iter()
        .map(|g| (g.container_id.as_str(), g.found_by.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("plain", "task-start-record"),
            ("lost", "task-start-record"),
            ("kept", "containerd-container-record")
        ]
    );
    assert!(gaps[0].detail.contains("io.containerd.runc.v2"));
}

#[test]
fn journal_entries_become_verdicts_and_heartbeats() {
    let out = format!(
        "{{\"__REALTIME_TIMESTAMP\":\"1800000000000000\",\"MESSAGE_ID\":\"{}\",\"PORTCULLIS_VERDICT\":\"allow\",\"PORTCULLIS_MODE\":\"enforce\",\"PORTCULLIS_RULE\":\"r\",\"PORTCULLIS_IMAGE_DIGEST\":\"sha256:{}\",\"PORTCULLIS_TRUST_ROOT_DIGEST\":\"sha256:{}\",\"PORTCULLIS_REKOR_LOG_INDEX\":\"7\"}}\nnot json\n{{\"__REALTIME_TIMESTAMP\":\"1800000001000000\",\"MESSAGE_ID\":\"{}\",\"PORTCULLIS_MODE\":\"enforce\",\"PORTCULLIS_ENFORCING\":\"true\",\"PORTCULLIS_POLICY_DIGEST\":\"sha256:{}\"}}\n",
        message_id::VERIFIED,
        "1".repeat(64),
        "2".repeat(64),
        message_id::HEARTBEAT,
        "3".repeat(64)
    );
    let es = parse_journal(out.as_bytes());
    assert_eq!(es.len(), 2);
    let v = verdict_record(&es[0].1).unwrap();
    assert_eq!(v.kind, "verified");
    assert_eq!(v.rekor_log_index.as_deref(), Some("7"));
    assert!(v.trust_root_digest.is_some());
    assert!(heartbeat_record(&es[0].1).is_none());
    let h = heartbeat_record(&es[1].1).unwrap();
    assert!(h.enforcing);
    assert!(verdict_record(&es[1].1).is_none());
}

#[test]
fn times_parse_in_three_spellings() {
    assert_eq!(parse_time("@1800000000").unwrap(), t(0));
    assert_eq!(parse_time("2027-01-15T08:00:00Z").unwrap(), t(0));
    assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
}

#[test]
fn manifest_catches_a_changed_an_added_and_a_removed_file() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "a.json", b"{}").unwrap();
    write_file(dir.path(), "docs/b.json", b"[1]").unwrap();
    assert_eq!(write_manifest(dir.path()).unwrap(), 2);
    let (n, problems) = check_manifest(dir.path()).unwrap();
    assert_eq!((n, problems.len()), (2, 0));
    std::fs::write(dir.path().join("docs/b.json"), b"[2]").unwrap();
    std::fs::write(dir.path().join("extra"), b"x").unwrap();
    std::fs::remove_file(dir.path().join("a.json")).unwrap();
    let (_, problems) = check_manifest(dir.path()).unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.contains("docs/b.json: SHA-256 differs")));
    assert!(problems
        .iter()
        .any(|p| p.contains("extra: in the pack but not in the manifest")));
    std::fs::write(dir.path().join(MANIFEST), "00  ../etc/passwd\n").unwrap();
    let (_, problems) = check_manifest(dir.path()).unwrap();
    assert!(problems[0].contains("leaves the pack"), "{problems:?}");
}

fn pack() -> Pack {
    Pack {
        format: FORMAT.into(),
        node: "n1".into(),
        generated_at: t(500),
        portcullis_version: "0".into(),
        period: period(0, 400),
        summary: Summary::default(),
        steps: Vec::new(),
        policies: Vec::new(),
        trust_roots: Vec::new(),
        keys: Vec::new(),
        heartbeat_interval_seconds: 300,
        heartbeats: vec![hb(-1, true)],
        images: Vec::new(),
        denials: Vec::new(),
        unverified_allows: Vec::new(),
        exemptions: Vec::new(),
        inactive_periods: Vec::new(),
        gaps: Vec::new(),
        revoked: Vec::new(),
        observation: Observation {
            observed: Vec::new(),
            unobserved: Vec::new(),
            task_starts: 0,
            containerd_address: "/s".into(),
            containers_examined: Some(0),
            containerd_error: None,
            limits: Vec::new(),
        },
        journal_integrity: JournalIntegrity {
            sealing: "not-enabled".into(),
            command: "journalctl --verify".into(),
            exit_code: Some(0),
            output: String::new(),
        },
    }
}

fn verified_image(prov: bool, reverified: bool) -> ImageEvidence {
    let rec = VerdictRecord {
        kind: "verified".into(),
        verdict: "allow".into(),
        mode: "enforce".into(),
        provenance_digest: prov.then(|| format!("sha256:{}", "4".repeat(64))),
        ..Default::default()
    };
    ImageEvidence {
        digest: format!("sha256:{}", "1".repeat(64)),
        refs: vec![],
        starts: 1,
        all_verified: true,
        records: vec![rec],
        documents: vec![Document {
            subject: format!("sha256:{}", "1".repeat(64)),
            file: "documents/x.json".into(),
            sha256: String::new(),
            artifacts: BTreeMap::new(),
        }],
        reverification: Some(Reverification {
            as_of: t(1),
            policy_digest: String::new(),
            rule: "r".into(),
            trust_root_digest: None,
            signature: if reverified {
                CheckResult::pass("ok")
            } else {
                CheckResult::fail("changed")
            },
            provenance: CheckResult::pass("ok"),
        }),
        provenance_statement: None,
    }
}

fn statuses(p: &Pack) -> Vec<(String, String)> {
    judge(p).into_iter().map(|s| (s.id, s.status)).collect()
}

#[test]
fn a_clean_period_passes_every_step() {
    let mut p = pack();
    p.images.push(verified_image(true, true));
    assert!(
        judge(&p).iter().all(|s| s.status == "pass"),
        "{:?}",
        statuses(&p)
    );
}

#[test]
fn each_shortcoming_fails_its_steps_only() {
    let fails = |p: &Pack| -> Vec<String> {
        judge(p)
            .into_iter()
            .filter(|s| s.status == "fail")
            .map(|s| s.id)
            .collect()
    };
    let mut p = pack();
    p.images.push(verified_image(false, true));
    assert_eq!(fails(&p), ["provenance-present"]);
    let mut p = pack();
    p.images.push(verified_image(true, false));
    assert_eq!(fails(&p), ["signatures-reverified"]);
    let mut p = pack();
    p.images.push(verified_image(true, true));
    p.gaps.push(Gap {
        namespace: "ns".into(),
        container_id: "c".into(),
        image: None,
        runtime: None,
        time: t(3),
        found_by: "task-start-record".into(),
        detail: String::new(),
    });
    assert_eq!(fails(&p), ["verification-logged", "no-unsigned-deployed"]);
    let mut p = pack();
    p.images.push(verified_image(true, true));
    p.inactive_periods.push(Interval {
        from: t(0),
        to: t(1),
        reason: "no heartbeat".into(),
    });
    assert_eq!(fails(&p), ["enforcement-configured"]);
    let mut p = pack();
    p.images.push(verified_image(true, true));
    let mut warned = verified_image(false, true);
    warned.all_verified = false;
    warned.reverification = None;
    warned.records[0].kind = "warned".into();
    warned.records[0].mode = "warn".into();
    p.unverified_allows.push(warned.records[0].clone());
    p.images.push(warned);
    assert_eq!(
        fails(&p),
        [
            "signatures-present",
            "provenance-present",
            "enforcement-configured",
            "no-unsigned-deployed"
        ]
    );
    // nothing started: nothing to sample is not a pass
    let p = pack();
    assert!(fails(&p).contains(&"signatures-present".to_string()));
}

#[test]
fn report_is_self_contained_and_escapes() {
    let mut p = pack();
    p.images.push(verified_image(true, true));
    p.node = "<script>alert(1)</script>".into();
    p.steps = judge(&p);
    p.summary = summarize(&p);
    let h = html::render(&p);
    assert!(!h.contains("<script"), "unescaped input");
    assert!(
        !h.contains("http://") && !h.contains("https://"),
        "external URL"
    );
    assert!(h.contains("id=\"step-signatures-present\" class=\"step pass\""));
    assert!(h.contains("href=\"#gaps\""));
    assert!(h.contains("id=\"gaps\""));
}

/// A pack holding a policy, its key and a cosign signature made with it,
/// re-verified from the pack alone; then with the key swapped, and without
/// the policy text.
#[test]
fn reverification_uses_only_the_pack() {
    use crate::cache::{Artifact, Layer, ENTRY_FORMAT};
    use base64::Engine;
    use sigstore_verify::crypto::{KeyAlgorithm, KeyPair};
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let pem = crate::base::testing::public_key_pem;
    let digest = format!("sha256:{}", "1".repeat(64));
    let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"x.io/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let sig = kp.sign(payload.as_bytes()).unwrap();
    let entry = Entry {
        format: ENTRY_FORMAT,
        subject: digest.clone(),
        repository: "x.io/app".into(),
        fetched_at: "t".into(),
        artifacts: vec![Artifact {
            kind: crate::cache::kind::COSIGN_SIGNATURE.into(),
            source: "s".into(),
            manifest_digest: format!("sha256:{}", "2".repeat(64)),
            layers: vec![Layer::new(
                crate::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                BTreeMap::from([(
                    crate::cosign::SIGNATURE_ANNOTATION.to_string(),
                    b64(sig.as_bytes()),
                )]),
                payload.as_bytes(),
            )],
        }],
    };
    let dir = tempfile::tempdir().unwrap();
    let policy = "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"r\"\nimages = [\"x.io/*\"]\n[[rule.signer]]\nkey = \"/node/only/release.pub\"\n";
    let pdigest = crate::digest::sha256_prefixed(policy.as_bytes());
    write_file(dir.path(), "policies/p.toml", policy.as_bytes()).unwrap();
    write_file(dir.path(), "keys/k.pem", pem(&kp).as_bytes()).unwrap();
    let doc = serde_json::to_vec(&entry).unwrap();
    write_file(dir.path(), "documents/d.json", &doc).unwrap();
    let mut p = pack();
    p.policies.push(PolicyVersion {
        digest: pdigest.clone(),
        first_seen: t(0),
        last_seen: t(0),
        paths: vec!["/etc/portcullis/policy.toml".into()],
        records: 1,
        file: Some("policies/p.toml".into()),
        missing: None,
        trusted: vec![],
    });
    p.keys.push(KeyFile {
        original: "/node/only/release.pub".into(),
        file: Some("keys/k.pem".into()),
        sha256: None,
        missing: None,
    });
    let mut img = verified_image(false, true);
    img.digest = digest.clone();
    img.reverification = None;
    img.records[0].policy_digest = Some(pdigest);
    img.records[0].rule = "r".into();
    img.records[0].signed_digest = Some(digest.clone());
    img.documents = vec![Document {
        subject: digest.clone(),
        file: "documents/d.json".into(),
        sha256: crate::digest::sha256_prefixed(&doc),
        artifacts: BTreeMap::new(),
    }];
    let r = reverify(dir.path(), &p, &img).unwrap();
    assert!(r.signature.passed(), "{:?}", r.signature);
    assert_eq!(r.provenance.status, "not-required");
    assert!(r.passed());

    let other = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    write_file(dir.path(), "keys/k.pem", pem(&other).as_bytes()).unwrap();
    let r = reverify(dir.path(), &p, &img).unwrap();
    assert!(!r.passed(), "a swapped key must not verify");

    p.policies[0].file = None;
    let r = reverify(dir.path(), &p, &img).unwrap();
    assert!(
        r.signature.detail.contains("is not in the pack"),
        "{:?}",
        r.signature
    );

    // an exempt-only image has nothing to re-verify
    img.records[0].kind = "exempt".into();
    assert!(reverify(dir.path(), &p, &img).is_none());
}

#[test]
fn derive_classifies_records_and_keeps_the_heartbeat_before() {
    let v = |at: i64, id: &str, verdict: &str, c: &str| {
        entry(
            at,
            &[
                ("MESSAGE_ID", id),
                ("PORTCULLIS_VERDICT", verdict),
                ("PORTCULLIS_MODE", "enforce"),
                ("PORTCULLIS_NAMESPACE", "ns"),
                ("PORTCULLIS_CONTAINER_ID", c),
                ("PORTCULLIS_IMAGE_DIGEST", "sha256:aa"),
            ],
        )
    };
    let es = [
        entry(
            -50,
            &[
                ("MESSAGE_ID", message_id::HEARTBEAT),
                ("PORTCULLIS_ENFORCING", "true"),
            ],
        ),
        entry(
            -60,
            &[
                ("MESSAGE_ID", message_id::HEARTBEAT),
                ("PORTCULLIS_ENFORCING", "false"),
            ],
        ),
        v(10, message_id::VERIFIED, "allow", "c1"),
        v(11, message_id::DENIED, "deny", "c2"),
        v(12, message_id::EXEMPT, "allow", "c3"),
        v(13, message_id::WARNED, "warn", "c4"),
        v(500, message_id::VERIFIED, "allow", "late"),
    ];
    let refs: Vec<&JEntry> = es.iter().collect();
    let d = derive(period(0, 100), &refs, &[], Duration::from_secs(200));
    assert_eq!(d.heartbeats.len(), 1, "only the last one before the period");
    assert!(d.heartbeats[0].enforcing);
    assert!(d.inactive_periods.is_empty());
    assert_eq!(
        d.verdicts.len(),
        4,
        "the record after the period is not counted"
    );
    assert_eq!(d.images.len(), 1);
    assert_eq!(d.images[0].starts, 3);
    assert!(!d.images[0].all_verified);
    assert_eq!(
        (
            d.denials.len(),
            d.exemptions.len(),
            d.unverified_allows.len()
        ),
        (1, 1, 1)
    );
    assert_eq!(d.unobserved.len(), 1, "no observer: the whole period");
}

#[test]
fn a_provenance_only_reverification_passes_on_provenance_alone() {
    let r = |sig: CheckResult, prov: CheckResult| Reverification {
        as_of: t(0),
        policy_digest: String::new(),
        rule: "r".into(),
        trust_root_digest: None,
        signature: sig,
        provenance: prov,
    };
    let nr = || CheckResult::not_required("-");
    assert!(r(nr(), CheckResult::pass("p")).passed());
    assert!(!r(nr(), CheckResult::fail("f")).passed());
    // Nothing required is never a pass.
    assert!(!r(nr(), nr()).passed());
    assert!(r(CheckResult::pass("s"), nr()).passed());
    assert!(!r(CheckResult::fail("s"), CheckResult::pass("p")).passed());
}
