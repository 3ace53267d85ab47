use std::collections::BTreeMap;
use std::path::Path;

use crate::cache::{kind, Artifact, Entry, Layer, StateDir, ENTRY_FORMAT};
use crate::containerd::{INDEX_TYPES, MANIFEST_TYPES};
use crate::policy::Policy;

use super::*;

use crate::base::testing::digest as d;

fn contents_with(items: Vec<(ItemRecord, Vec<u8>)>, images: Vec<ImageRecord>) -> Contents {
    let mut members = BTreeMap::new();
    let mut recs = Vec::new();
    for (r, b) in items {
        members.insert(r.path.clone(), b);
        recs.push(r);
    }
    Contents {
        source: "test".into(),
        manifest: Manifest {
            format: FORMAT.into(),
            version: VERSION,
            created_at: "2026-11-25T00:00:00Z".into(),
            images,
            items: recs,
        },
        members,
    }
}

fn policy(dir: &Path) -> Policy {
    let (_kp, key) = crate::base::testing::write_public_key(dir);
    Policy::parse(
        &format!(
            "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"demo\"\nimages = [\"127.0.0.1:5000/demo/*\"]\n[[rule.signer]]\nkey = \"{}\"\n",
            key.display()
        ),
        &dir.join("policy.toml"),
    )
    .unwrap()
}

#[test]
fn round_trip_of_the_file_format() {
    let dir = tempfile::tempdir().unwrap();
    let c = contents_with(
        vec![(
            ItemRecord {
                path: member_name(0),
                kind: item_kind::IMAGE_INDEX.into(),
                subject: Some(d(1)),
                image: Some("127.0.0.1:5000/demo/a:1".into()),
                name: None,
                size: 2,
                sha256: sha(b"{}"),
            },
            b"{}".to_vec(),
        )],
        vec![],
    );
    let out = dir.path().join("b.tar");
    let report = write(&c, &out).unwrap();
    assert_eq!(report.items.len(), 1);
    let back = read(&out).unwrap();
    assert_eq!(back.manifest, c.manifest);
    assert_eq!(back.members, c.members);
}

#[test]
fn unknown_members_versions_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.tar");
    std::fs::write(&p, b"not a tar at all, just bytes").unwrap();
    assert!(matches!(read(&p), Err(OfflineError::BadBundle { .. })));
    // a member outside the layout
    let mut b = tar::Builder::new(Vec::new());
    // (tar's set_path refuses `..`: the name goes into the raw header, as a
    // hostile writer would put it)
    let mut h = tar::Header::new_ustar();
    let name = b"../etc/passwd";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(1);
    h.set_cksum();
    assert_eq!(h.path().unwrap().to_str(), Some("../etc/passwd"));
    b.append(&h, &b"x"[..]).unwrap();
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    match read(&p) {
        Err(OfflineError::BadBundle { why, .. }) => assert!(
            why.starts_with("unexpected member \"../etc/passwd\""),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    // a future version
    let mut b = tar::Builder::new(Vec::new());
    let m = format!("{{\"format\":\"{FORMAT}\",\"version\":2}}");
    let mut h = tar::Header::new_ustar();
    h.set_path(MANIFEST_PATH).unwrap();
    h.set_size(m.len() as u64);
    h.set_cksum();
    b.append(&h, m.as_bytes()).unwrap();
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    let e = read(&p).unwrap_err().to_string();
    assert!(e.contains("version"), "{e}");
    assert!(valid_member_path("items/0001.json"));
    assert!(!valid_member_path("items/../x.json"));
    assert!(!valid_member_path("items/0001.json/"));
}

#[test]
fn altered_items_and_unverifiable_ones_are_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let pol = policy(dir.path());
    let subject = d(7);
    // an existing entry must survive whatever the bundle holds
    let old = Entry {
        format: ENTRY_FORMAT,
        subject: subject.clone(),
        repository: "127.0.0.1:5000/demo/a".into(),
        fetched_at: "2026-01-01T00:00:00Z".into(),
        artifacts: vec![Artifact {
            kind: kind::COSIGN_SIGNATURE.into(),
            source: "s".into(),
            manifest_digest: d(9),
            layers: vec![Layer::new("x", BTreeMap::new(), b"old")],
        }],
    };
    state.write(&old).unwrap();
    let art = Artifact {
        kind: kind::COSIGN_SIGNATURE.into(),
        source: "s".into(),
        manifest_digest: d(8),
        layers: vec![Layer::new(
            crate::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
            BTreeMap::new(),
            b"{}",
        )],
    };
    let bytes = serde_json::to_vec(&art).unwrap();
    let rec = |n: usize, image: &str, sha256: String| ItemRecord {
        path: member_name(n),
        kind: kind::COSIGN_SIGNATURE.into(),
        subject: Some(subject.clone()),
        image: Some(image.into()),
        name: None,
        size: bytes.len() as u64,
        sha256,
    };
    let images = vec![
        ImageRecord {
            reference: "127.0.0.1:5000/demo/a:1".into(),
            digest: subject.clone(),
            media_type: MANIFEST_TYPES[0].into(),
            platform_digest: None,
        },
        ImageRecord {
            reference: "127.0.0.1:5000/other/b:1".into(),
            digest: subject.clone(),
            media_type: MANIFEST_TYPES[0].into(),
            platform_digest: None,
        },
    ];
    let c = contents_with(
        vec![
            // altered after export
            (
                rec(0, "127.0.0.1:5000/demo/a:1", sha(b"other")),
                bytes.clone(),
            ),
            // intact, but no valid signature
            (
                rec(1, "127.0.0.1:5000/demo/a:1", sha(&bytes)),
                bytes.clone(),
            ),
            // intact, but no rule verifies this image
            (
                rec(2, "127.0.0.1:5000/other/b:1", sha(&bytes)),
                bytes.clone(),
            ),
        ],
        images,
    );
    let r = import(&c, &state, &pol, &ImportOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(r.refused, 3, "{r:?}");
    assert!(r.items[0].refusals[0].contains("altered"), "{r:?}");
    assert!(r.items[1].refusals[0].contains("rule \"demo\""), "{r:?}");
    assert!(r.items[2].refusals[0].contains("no rule"), "{r:?}");
    assert_eq!(state.read(&subject).unwrap().unwrap(), old);
}

#[test]
fn platform_digests_need_the_index_that_lists_them() {
    let index = format!(
        "{{\"mediaType\":\"{}\",\"manifests\":[{{\"digest\":\"{}\"}}]}}",
        INDEX_TYPES[0],
        d(2)
    );
    let idx_digest = sha(index.as_bytes());
    let img = |p: String| ImageRecord {
        reference: "127.0.0.1:5000/demo/a:1".into(),
        digest: idx_digest.clone(),
        media_type: INDEX_TYPES[0].into(),
        platform_digest: Some(p),
    };
    let idx_item = ItemRecord {
        path: member_name(0),
        kind: item_kind::IMAGE_INDEX.into(),
        subject: Some(idx_digest.clone()),
        image: Some("127.0.0.1:5000/demo/a:1".into()),
        name: None,
        size: index.len() as u64,
        sha256: idx_digest.clone(),
    };
    let c = contents_with(
        vec![(idx_item.clone(), index.clone().into_bytes())],
        vec![img(d(2))],
    );
    let checks = check_images(&c);
    let ok = checks["127.0.0.1:5000/demo/a:1"].as_ref().unwrap();
    assert_eq!(ok.digests, vec![idx_digest.clone(), d(2)]);
    let c = contents_with(vec![(idx_item, index.into_bytes())], vec![img(d(3))]);
    let checks = check_images(&c);
    let bad = checks["127.0.0.1:5000/demo/a:1"].as_ref().unwrap();
    assert_eq!(bad.digests, vec![idx_digest]);
    assert!(bad
        .platform_problem
        .as_ref()
        .unwrap()
        .contains("does not list"));
}

#[test]
fn merge_is_a_union_and_idempotent() {
    let mut e = Entry {
        format: ENTRY_FORMAT,
        subject: d(1),
        repository: "r".into(),
        fetched_at: String::new(),
        artifacts: vec![],
    };
    let a = Artifact {
        kind: kind::COSIGN_SIGNATURE.into(),
        source: "s".into(),
        manifest_digest: d(2),
        layers: vec![Layer::new("m", BTreeMap::new(), b"1")],
    };
    assert!(merge(&mut e, &a));
    assert!(!merge(&mut e, &a));
    let mut b = a.clone();
    b.layers = vec![Layer::new("m", BTreeMap::new(), b"2")];
    assert!(merge(&mut e, &b));
    assert_eq!(e.artifacts.len(), 1);
    assert_eq!(e.artifacts[0].layers.len(), 2);
}
