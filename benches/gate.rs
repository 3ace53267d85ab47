//! In-process costs of the gate's steps, with criterion: policy parsing and
//! rule selection, a key signature, a keyless Sigstore bundle (certificate
//! chain, Rekor inclusion proof and signed entry timestamp), a DSSE-signed
//! SLSA provenance statement, a cold decision's verification (key and
//! keyless), the verdict cache's key and lookup, the
//! journal record, a whole warm decision, the policy's cost as it grows
//! (load, selection and lints at 10, 1,000 and 10,000 rules), and a start's
//! journal step while journald is down (a spool of 10 and 1,000 records).
//!
//!   cargo bench --bench gate            (full)
//!   cargo bench --bench gate -- --test  (each once, as a check that they run)
//!
//! Fixtures: `tests/fixtures/provenance` and `tests/data`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::cache::{kind, Artifact, Entry, Layer, StateDir, ENTRY_FORMAT};
use portcullis::containerd::ImageTarget;
use portcullis::gate::{decide, redecide, Subject, Verdict};
use portcullis::policy::Policy;
use portcullis::reference::ImageRef;
use sigstore_verify::crypto::{KeyAlgorithm, KeyPair};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared() -> PathBuf {
    manifest_dir().join("tests/data")
}

fn d(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn pem(kp: &KeyPair) -> String {
    use base64::Engine;
    let der = kp.public_key_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

/// A policy shaped like a node's: a dozen rules, globs, one keyless signer.
fn policy_text(key: &Path) -> String {
    let mut s = String::from("mode = \"enforce\"\ndefault = \"deny\"\n");
    for i in 0..10 {
        s.push_str(&format!(
            "[[rule]]\nname = \"team{i}\"\nimages = [\"registry.example/team{i}/**\", \"mirror.example/team{i}/*\"]\n[[rule.signer]]\nkey = \"{}\"\n",
            key.display()
        ));
    }
    s.push_str(&format!(
        "[[rule]]\nname = \"app\"\nimages = [\"x.io/app\"]\n[[rule.signer]]\nkey = \"{}\"\n\
         [[rule]]\nname = \"ci\"\nimages = [\"ghcr.io/acme/**\"]\n[[rule.signer]]\nissuer = \"https://token.actions.githubusercontent.com\"\n\
         subject_regex = \"https://github.com/acme/.+/.github/workflows/release.yml@refs/tags/v.+\"\n\
         [rule.provenance]\nbuilder_ids = [\"https://github.com/slsa-framework/slsa-github-generator/*\"]\nsource_uris = [\"git+https://github.com/acme/*\"]\n",
        key.display()
    ));
    s
}

/// A key-signed cosign signature entry for `d(1)` in `state`.
fn signed_entry(state: &StateDir, kp: &KeyPair) -> Entry {
    use base64::Engine;
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"x.io/app"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        d(1)
    );
    let sig = kp.sign(payload.as_bytes()).unwrap();
    let ann = BTreeMap::from([(
        portcullis::cosign::SIGNATURE_ANNOTATION.to_string(),
        base64::engine::general_purpose::STANDARD.encode(sig.as_bytes()),
    )]);
    let e = Entry {
        format: ENTRY_FORMAT,
        subject: d(1),
        repository: "x.io/app".into(),
        fetched_at: "t".into(),
        artifacts: vec![Artifact {
            kind: kind::COSIGN_SIGNATURE.into(),
            source: "s".into(),
            manifest_digest: d(2),
            layers: vec![Layer::new(
                portcullis::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                ann,
                payload.as_bytes(),
            )],
        }],
    };
    state.write(&e).unwrap();
    e
}

fn target() -> ImageTarget {
    ImageTarget {
        name: "x.io/app:1".into(),
        target_digest: d(1),
        target_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        platform_digest: None,
        platform_ambiguity: None,
        snapshot_key: None,
        snapshotter: None,
        chain_id: None,
        snapshot_parent: None,
    }
}

fn subject() -> Subject {
    Subject {
        namespace: "default".into(),
        container_id: Some("c1".into()),
    }
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let key = dir.path().join("k.pub");
    std::fs::write(&key, pem(&kp)).unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let entry = signed_entry(&state, &kp);
    let text = policy_text(&key);
    let policy_path = dir.path().join("policy.toml");

    c.bench_function("policy_parse", |b| {
        b.iter(|| Policy::parse(black_box(&text), &policy_path).unwrap())
    });
    let policy = Policy::parse(&text, &policy_path).unwrap();
    let image = ImageRef::parse("ghcr.io/acme/app/server:1.2").unwrap();
    c.bench_function("policy_select_rule", |b| {
        b.iter(|| {
            let _ = black_box(policy.select(black_box(&image)));
        })
    });

    let signer = portcullis::verify::LoadedSigner::from_pem(&pem(&kp), "k").unwrap();
    let d1 = d(1);
    c.bench_function("key_signature_verify", |b| {
        b.iter(|| {
            portcullis::verify::verify_entries(
                std::slice::from_ref(black_box(&entry)),
                &[d1.as_str()],
                std::slice::from_ref(&signer),
            )
            .unwrap()
        })
    });

    let bv = shared().join("sigstore-conformance/test/assets/bundle-verify");
    let bundle = std::fs::read(bv.join("happy-path-v0.3/bundle.sigstore.json")).unwrap();
    let artifact = std::fs::read(bv.join("a.txt")).unwrap();
    let root_path = shared().join("trust-roots/production/trusted_root.json");
    let root = portcullis::bundle::TrustRoot::load(&root_path).unwrap();
    let expectation = portcullis::bundle::Expectation::Identity {
        subject: "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main".into(),
        issuer: "https://token.actions.githubusercontent.com".into(),
    };
    c.bench_function("trust_root_load", |b| {
        b.iter(|| portcullis::bundle::TrustRoot::load(black_box(&root_path)).unwrap())
    });
    c.bench_function("keyless_bundle_verify", |b| {
        b.iter(|| {
            portcullis::bundle::verify_bundle(
                black_box(&bundle),
                portcullis::bundle::Artifact::Bytes(&artifact),
                &expectation,
                &root,
            )
            .unwrap()
        })
    });

    let prov = manifest_dir().join("tests/fixtures/provenance");
    let envelope = std::fs::read(prov.join("dsse-ecdsa-p256.json")).unwrap();
    let dsse_signer = portcullis::verify::LoadedSigner::from_pem(
        &std::fs::read_to_string(prov.join("dsse-ecdsa-p256.pub")).unwrap(),
        "builder",
    )
    .unwrap();
    c.bench_function("provenance_dsse_verify_and_validate", |b| {
        b.iter(|| {
            let env = portcullis::dsse::Envelope::parse(black_box(&envelope)).unwrap();
            let verified = env.verify(std::slice::from_ref(&dsse_signer)).unwrap();
            let _ = black_box(verified);
            let st = portcullis::provenance::Statement::parse(env.payload_unverified()).unwrap();
            portcullis::provenance::Provenance::from_statement(&st).unwrap()
        })
    });

    let parts: Vec<Vec<u8>> = (0..8).map(|i| vec![i as u8; 64]).collect();
    let vkey = portcullis::verdict_cache::Key::new(parts.iter().map(Vec::as_slice));
    let hit = portcullis::verdict_cache::Hit {
        reason: "signature by key:k over sha256:x".into(),
        signer: Some("key:k".into()),
        signed_digest: Some(d(1)),
        sigstore: None,
        provenance: None,
    };
    let now = jiff::Timestamp::now();
    portcullis::verdict_cache::store(&state, &vkey, &hit, now, None);
    c.bench_function("verdict_cache_key", |b| {
        b.iter(|| portcullis::verdict_cache::Key::new(black_box(&parts).iter().map(Vec::as_slice)))
    });
    c.bench_function("verdict_cache_lookup_hit", |b| {
        b.iter(|| portcullis::verdict_cache::lookup(&state, black_box(&vkey), now).unwrap())
    });

    // The warm decision: the verdict cache answers (the first call fills it).
    let app_policy = Ok(Policy::parse(&text, &policy_path).unwrap());
    let first = in_process(|| {
        decide(
            &app_policy,
            Ok(target()),
            &state,
            &subject(),
            Instant::now(),
        )
    });
    assert_eq!(first.verdict, Verdict::Allow, "{}", first.reason);
    c.bench_function("decide_warm", |b| {
        b.iter(|| {
            let dec = decide(
                &app_policy,
                Ok(target()),
                &state,
                &subject(),
                Instant::now(),
            );
            assert_eq!(dec.verdict_cache, Some("hit"));
            dec
        })
    });
    c.bench_function("journal_record_build", |b| {
        b.iter(|| portcullis::journal::Record::from_decision(black_box(&first)))
    });
}

/// Runs `f` with a second thread parked, so that a decision in it verifies
/// in this process: the sandbox forks only a single-threaded process, and
/// whether criterion has a thread of its own alive at that moment is a race
/// (its gnuplot probe). In process, the steps time the verification without
/// the fork, and callgrind (integration/bench.sh runs this bench under it
/// for the function order) can follow it: valgrind implements no seccomp,
/// so a forked child could not confine itself there and the decision would
/// be a refusal.
fn in_process<R>(f: impl FnOnce() -> R) -> R {
    let (hold, parked) = std::sync::mpsc::channel::<()>();
    let second = std::thread::spawn(move || {
        let _ = parked.recv();
    });
    let r = f();
    drop(hold);
    second.join().unwrap();
    r
}

/// A cold decision's verification, in this process ([`in_process`]):
/// `redecide` (the decision that reads and writes no verdict) of the key
/// signature of [`signed_entry`] and of a keyless image signature as
/// `portcullis fetch` caches it (`tests/fixtures/keyless-image`: a Sigstore
/// bundle checked against an identity expression and an extension), the
/// functions a cold start's verification child runs.
fn cold_decision(c: &mut Criterion) {
    in_process(|| cold_decisions(c));
}

fn cold_decisions(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let key = dir.path().join("k.pub");
    std::fs::write(&key, pem(&kp)).unwrap();
    signed_entry(&state, &kp);
    let key_policy =
        Ok(Policy::parse(&policy_text(&key), &dir.path().join("policy.toml")).unwrap());

    let fixture = manifest_dir().join("tests/fixtures/keyless-image");
    let entry: Entry =
        serde_json::from_slice(&std::fs::read(fixture.join("entry.json")).unwrap()).unwrap();
    state.write(&entry).unwrap();
    let keyless_policy = Ok(Policy::parse(
        &format!(
            "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"ci\"\nimages = [\"127.0.0.1:5099/bench/keyless\"]\ntrust_root = \"{}\"\n\
             [[rule.signer]]\nissuer = \"https://token.actions.githubusercontent.com\"\n\
             subject_regex = \"https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v.+\"\n\
             [rule.signer.extensions]\ngithub_workflow_repository = \"acme/app\"\n",
            fixture.join("trusted_root.json").display()
        ),
        &dir.path().join("keyless.toml"),
    )
    .unwrap());
    let mut keyless_target = target();
    keyless_target.name = "127.0.0.1:5099/bench/keyless:1".into();
    keyless_target.target_digest = entry.subject.clone();

    for (name, policy, t) in [
        ("decide_cold_key", &key_policy, target()),
        ("decide_cold_keyless", &keyless_policy, keyless_target),
    ] {
        let once = redecide(policy, Ok(t.clone()), &state, &subject(), Instant::now());
        assert_eq!(once.verdict, Verdict::Allow, "{name}: {}", once.reason);
        assert_eq!(
            once.phases.isolation,
            Some(portcullis::sandbox::Isolation::InProcess),
            "{name}"
        );
        c.bench_function(name, |b| {
            b.iter(|| {
                redecide(
                    policy,
                    Ok(black_box(&t).clone()),
                    &state,
                    &subject(),
                    Instant::now(),
                )
            })
        });
    }
}

/// The sandbox's own cost: fork, drop privileges, install the seccomp
/// filter, return a small result over the pipe, reap.
fn sandbox(c: &mut Criterion) {
    use portcullis::sandbox::{run, thread_count, Isolation};
    if thread_count() != 1 {
        eprintln!("sandbox_round_trip skipped: criterion runs this process with {} threads, and the sandbox forks only a single-threaded one", thread_count());
        return;
    }
    // Checked when this bench is selected only: a filtered run of another
    // (integration/bench.sh's callgrind, under valgrind, which implements
    // no seccomp) never forks a child here.
    c.bench_function("sandbox_round_trip", |b| {
        assert_eq!(run(|| 1u32).unwrap().1, Isolation::Child);
        b.iter(|| run(|| black_box(1u32)).unwrap())
    });
}

/// A policy of `n` rules, one per team, shaped as `bench.sh --policy-scale`
/// writes them: a team's repositories, a team's tree, one repository, a
/// repository prefix; each with a key signer.
fn scale_policy(n: usize, key: &Path) -> String {
    let mut s = String::from("mode = \"enforce\"\ndefault = \"deny\"\n");
    for i in 0..n {
        let img = match i % 4 {
            0 => format!("registry.example/t{i}/*"),
            1 => format!("registry.example/t{i}/**"),
            2 => format!("mirror.example/t{i}/app"),
            _ => format!("registry.example/t{i}/app-*"),
        };
        s.push_str(&format!(
            "[[rule]]\nname = \"t{i}\"\nimages = [\"{img}\"]\nsigner = [{{ key = \"{}\" }}]\n",
            key.display()
        ));
    }
    s
}

/// What the policy costs as it grows (10, 1,000 and 10,000 rules): the load
/// a start makes (parse and validate), the start's one selection on a
/// freshly loaded policy (the index built, then used) of an image only the
/// last rule matches, a selection once indexed, and `policy check`'s lints.
fn policy_scale(c: &mut Criterion) {
    use criterion::BatchSize;
    let dir = tempfile::tempdir().unwrap();
    // Relative to the policy's directory, as fleets write it: 10,000 rules
    // then stay under the policy file's 1 MiB limit, which the start's
    // loader enforces (an absolute temporary path would not).
    let key = Path::new("k.pub");
    let path = dir.path().join("policy.toml");
    let mut g = c.benchmark_group("policy_scale");
    g.sample_size(10);
    for n in [10usize, 1_000, 10_000] {
        let text = scale_policy(n, key);
        let last = n - 1;
        let image = ImageRef::parse(&match last % 4 {
            0 | 1 => format!("registry.example/t{last}/app:1"),
            2 => format!("mirror.example/t{last}/app:1"),
            _ => format!("registry.example/t{last}/app-x:1"),
        })
        .unwrap();
        g.bench_function(format!("load/{n}"), |b| {
            b.iter(|| Policy::parse(black_box(&text), &path).unwrap())
        });
        g.bench_function(format!("select_first/{n}"), |b| {
            b.iter_batched(
                || Policy::parse(&text, &path).unwrap(),
                |p| {
                    assert!(matches!(
                        p.select(&image),
                        portcullis::policy::Selection::Rule(_)
                    ));
                    p
                },
                BatchSize::LargeInput,
            )
        });
        let policy = Policy::parse(&text, &path).unwrap();
        g.bench_function(format!("select_indexed/{n}"), |b| {
            b.iter(|| {
                let _ = black_box(policy.select(black_box(&image)));
            })
        });
        // The start's path: read the policy file, hash it, read its
        // compiled form and decode only the candidates of the image.
        std::fs::write(&path, &text).unwrap();
        let state = StateDir::new(dir.path().join("state"));
        Policy::load_for_start(&path, &state).unwrap();
        g.bench_function(format!("start_compiled/{n}"), |b| {
            b.iter(|| {
                let p = Policy::load_for_start(black_box(&path), &state).unwrap();
                assert!(matches!(
                    p.select(&image),
                    portcullis::policy::Selection::Rule(r) if r.name == format!("t{last}")
                ));
            })
        });
        g.bench_function(format!("lint/{n}"), |b| {
            b.iter(|| portcullis::policy::lint::lint(black_box(policy.rules())))
        });
    }
    g.finish();
}

/// A start while journald is down: the spool already holds `n` records
/// (each start journald missed added one), the sink refuses, and this
/// record is appended behind them (with its `fsync`).
fn journal_down(c: &mut Criterion) {
    struct Down;
    impl portcullis::journal::Sink for Down {
        fn send(&self, _: &portcullis::journal::Record) -> Result<(), String> {
            Err("journald is down".into())
        }
    }
    let record = portcullis::journal::Record {
        message: "portcullis: verified".into(),
        priority: 6,
        fields: (0..24)
            .map(|i| (format!("PORTCULLIS_FIELD_{i}"), "x".repeat(40)))
            .collect(),
    };
    let mut g = c.benchmark_group("journal_down");
    g.sample_size(10);
    for n in [10usize, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let seed = portcullis::journal::Spool::new(dir.path().join("seed"));
        for _ in 0..n {
            seed.append(&record).unwrap();
        }
        let seeded = std::fs::read(dir.path().join("seed/journal.jsonl")).unwrap();
        let live = dir.path().join("live");
        let spool = portcullis::journal::Spool::new(&live);
        std::fs::create_dir_all(&live).unwrap();
        g.bench_function(format!("record/{n}"), |b| {
            b.iter_batched(
                || {
                    // On disk already, as the appends before it left it.
                    std::fs::write(live.join("journal.jsonl"), &seeded).unwrap();
                    std::fs::File::open(live.join("journal.jsonl"))
                        .and_then(|f| f.sync_all())
                        .unwrap();
                },
                |()| portcullis::journal::record(&Down, &spool, black_box(&record)).unwrap(),
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// What the runc gate asks of the kernel about the rootfs: the mount at a
/// path, by `statmount(2)` (where the kernel has it) and by reading
/// `/proc/self/mountinfo`, whose cost grows with every mount on the node
/// (bench.sh's dense-node case measures that in whole starts).
fn mount_lookup(c: &mut Criterion) {
    use portcullis::base::mounts::{mounted_at, mountinfo_at, statmount_at, Answer};
    let root = Path::new("/");
    let mut g = c.benchmark_group("mount_lookup");
    if matches!(statmount_at(root), Ok(Answer::Known(Some(_)))) {
        g.bench_function("statmount", |b| {
            b.iter(|| mounted_at(black_box(root)).unwrap())
        });
    } else {
        eprintln!(
            "mount_lookup/statmount skipped: this kernel has no statmount with mount options"
        );
    }
    g.bench_function("mountinfo", |b| {
        b.iter(|| mountinfo_at(black_box(root)).unwrap())
    });
    g.finish();
}

criterion_group!(
    gate,
    cold_decision,
    benches,
    sandbox,
    policy_scale,
    journal_down,
    mount_lookup
);
criterion_main!(gate);
