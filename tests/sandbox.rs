//! The verification sandbox, tested from a single-threaded process.
//!
//! libtest runs tests on threads, and the sandbox refuses to fork a
//! threaded process, so this file is its own harness (`harness = false` in
//! Cargo.toml): `main` runs each check in turn on the only thread.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use portcullis::cache::{kind, Artifact, Entry, Layer, StateDir, ENTRY_FORMAT};
use portcullis::containerd::ImageTarget;
use portcullis::gate::{decide, Subject, Verdict};
use portcullis::policy::Policy;
use portcullis::sandbox::{self, Isolation, SandboxError};
use sigstore_verify::crypto::{KeyAlgorithm, KeyPair};

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "the_child_has_no_capabilities_no_new_privs_and_seccomp",
            the_child_has_no_capabilities_no_new_privs_and_seccomp,
        ),
        ("a_crashing_child_is_an_error", a_crashing_child_is_an_error),
        (
            "a_forbidden_system_call_kills_the_child",
            a_forbidden_system_call_kills_the_child,
        ),
        (
            "the_child_may_signal_itself_and_no_other_process",
            the_child_may_signal_itself_and_no_other_process,
        ),
        (
            "a_slow_child_is_killed_at_the_deadline",
            a_slow_child_is_killed_at_the_deadline,
        ),
        (
            "garbage_from_the_child_is_an_error",
            garbage_from_the_child_is_an_error,
        ),
        (
            "the_timeline_places_the_work_and_leaves_the_result_whole",
            the_timeline_places_the_work_and_leaves_the_result_whole,
        ),
        (
            "the_gate_verifies_in_the_child_and_a_cache_hit_does_not_fork",
            the_gate_verifies_in_the_child_and_a_cache_hit_does_not_fork,
        ),
        (
            "a_threaded_process_that_requires_isolation_is_refused",
            a_threaded_process_that_requires_isolation_is_refused,
        ),
    ];
    for (name, t) in tests {
        assert_eq!(sandbox::thread_count(), 1, "{name} needs a single thread");
        t();
        println!("test {name} ... ok");
    }
    println!("test result: ok. {} passed", tests.len());
}

fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn the_child_has_no_capabilities_no_new_privs_and_seccomp() {
    let (status, iso) =
        sandbox::run(|| std::fs::read_to_string("/proc/self/status").unwrap_or_default()).unwrap();
    assert_eq!(iso, Isolation::Child);
    for f in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:"] {
        assert_eq!(
            status_field(&status, f),
            "0000000000000000",
            "{f}\n{status}"
        );
    }
    assert_eq!(status_field(&status, "NoNewPrivs:"), "1", "{status}");
    // 2 = filter mode
    assert_eq!(status_field(&status, "Seccomp:"), "2", "{status}");
    // Run as root (CAP_SETPCAP), the bounding set is emptied as well.
    let parent = std::fs::read_to_string("/proc/self/status").unwrap();
    if status_field(&parent, "CapEff:") != "0000000000000000" {
        assert_eq!(
            status_field(&status, "CapBnd:"),
            "0000000000000000",
            "{status}"
        );
    }
    // The parent keeps what it had.
    assert_eq!(status_field(&parent, "NoNewPrivs:"), "0");
}

fn a_crashing_child_is_an_error() {
    let e = sandbox::run(|| -> u32 { std::process::abort() }).unwrap_err();
    assert!(
        matches!(&e, SandboxError::Killed(sig, _) if sig == "SIGABRT"),
        "{e}"
    );
    // The child's panic message would go to stderr: keep the test's output clean.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let e = sandbox::run(|| -> u32 { panic!("bad input") }).unwrap_err();
    std::panic::set_hook(hook);
    assert!(matches!(e, SandboxError::Panicked), "{e}");
}

fn a_forbidden_system_call_kills_the_child() {
    // Opening a file for writing is outside the allow-list.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("written");
    let t = target.clone();
    let e = sandbox::run(move || std::fs::write(&t, b"x").is_ok()).unwrap_err();
    assert!(e.to_string().contains("SIGSYS"), "{e}");
    assert!(!target.exists());
    // So is a socket.
    let e = sandbox::run(|| std::net::TcpStream::connect("127.0.0.1:9").is_ok()).unwrap_err();
    assert!(e.to_string().contains("seccomp"), "{e}");
}

fn the_child_may_signal_itself_and_no_other_process() {
    use nix::libc;
    // Signal 0 only checks that the target exists: nothing is delivered.
    let tgkill = |pid: u32| -> i64 {
        let pid = pid as libc::pid_t;
        // SAFETY: tgkill with signal 0 delivers nothing; no memory is passed.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, 0) }
    };
    let (own, _) = sandbox::run(move || tgkill(std::process::id())).unwrap();
    assert_eq!(own, 0);
    // The parent (this harness) is a process of the same user: allowed by
    // the kernel, refused by the filter.
    let parent = std::process::id();
    let e = sandbox::run(move || tgkill(parent)).unwrap_err();
    assert!(e.to_string().contains("SIGSYS"), "{e}");
    // SAFETY: tkill with signal 0 delivers nothing; no memory is passed.
    let tkill = move || unsafe { libc::syscall(libc::SYS_tkill, parent as libc::pid_t, 0) };
    let e = sandbox::run(tkill).unwrap_err();
    assert!(e.to_string().contains("SIGSYS"), "{e}");
}

fn a_slow_child_is_killed_at_the_deadline() {
    let started = Instant::now();
    let e = sandbox::run_raw(
        || loop {
            std::hint::spin_loop();
        },
        Duration::from_millis(200),
    )
    .unwrap_err();
    assert!(matches!(e, SandboxError::Timeout(200)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn garbage_from_the_child_is_an_error() {
    let bytes =
        sandbox::run_raw(|| b"\x00\x01not a verdict".to_vec(), Duration::from_secs(5)).unwrap();
    let e = sandbox::decode::<u32>(&bytes).unwrap_err();
    assert!(e.to_string().contains("do not decode"), "{e}");
    let e = sandbox::run_raw(
        || vec![b'1'; sandbox::MAX_RESULT_BYTES + 1],
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than"), "{e}");
}

/// The child's marks are stripped from its result, and its work is timed
/// as the work: a child that spins 50 ms of the monotonic clock (its
/// filter allows the clock, not sleeping) reports at least that much work,
/// and the steps, all read on that clock inside the call, add up to no more
/// than the call took.
fn the_timeline_places_the_work_and_leaves_the_result_whole() {
    let called = Instant::now();
    let (bytes, tl) = sandbox::run_raw_timed(
        || {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(50) {
                std::hint::spin_loop();
            }
            b"result".to_vec()
        },
        Duration::from_secs(5),
    )
    .unwrap();
    let took = called.elapsed().as_micros() as u64;
    assert_eq!(bytes, b"result");
    assert!(tl.work_us >= 50_000, "{tl:?}");
    let steps = tl.child_start_us + tl.confine_us + tl.work_us + tl.exit_us + tl.reap_us;
    assert!(
        steps <= took,
        "{steps} µs of steps in a {took} µs call: {tl:?}"
    );
    // `run_timed` hands the timeline up when a child ran.
    let (v, iso, tl) = sandbox::run_timed(|| 7u8).unwrap();
    assert_eq!((v, iso), (7, Isolation::Child));
    assert!(tl.is_some());
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

/// A key-signed image in a temporary state directory, and its policy.
fn signed_setup(
    dir: &Path,
    tamper: bool,
) -> (StateDir, Result<Policy, portcullis::policy::PolicyError>) {
    use base64::Engine;
    let kp = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    std::fs::write(dir.join("k.pub"), pem(&kp)).unwrap();
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"x.io/app"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        d(1)
    );
    let mut sig = kp.sign(payload.as_bytes()).unwrap().as_bytes().to_vec();
    if tamper {
        let last = sig.len() - 1;
        sig[last] ^= 1;
    }
    let ann = BTreeMap::from([(
        portcullis::cosign::SIGNATURE_ANNOTATION.to_string(),
        base64::engine::general_purpose::STANDARD.encode(&sig),
    )]);
    let state = StateDir::new(dir.join("state"));
    state
        .write(&Entry {
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
        })
        .unwrap();
    let policy = Policy::parse(
        &format!(
            "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"app\"\nimages = [\"x.io/app\"]\n[[rule.signer]]\nkey = \"{}\"\n",
            dir.join("k.pub").display()
        ),
        &dir.join("policy.toml"),
    );
    (state, policy)
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

fn the_gate_verifies_in_the_child_and_a_cache_hit_does_not_fork() {
    sandbox::require();
    let dir = tempfile::tempdir().unwrap();
    let (state, policy) = signed_setup(dir.path(), false);
    let pem_of_first = std::fs::read(dir.path().join("k.pub")).unwrap();
    let dec = decide(&policy, Ok(target()), &state, &subject(), Instant::now());
    assert_eq!(dec.verdict, Verdict::Allow, "{}", dec.reason);
    assert_eq!(dec.verdict_cache, Some("miss"));
    assert_eq!(dec.phases.isolation, Some(Isolation::Child));
    assert!(dec.phases.sandbox.is_some(), "{:?}", dec.phases);
    assert!(
        dec.signer.as_deref().unwrap_or("").starts_with("key:"),
        "{dec:?}"
    );
    let again = decide(&policy, Ok(target()), &state, &subject(), Instant::now());
    assert_eq!(again.verdict, Verdict::Allow);
    assert_eq!(again.verdict_cache, Some("hit"));
    assert_eq!(again.phases.isolation, None);
    assert_eq!(again.phases.sandbox, None);
    assert_eq!(again.signer, dec.signer);

    // The hit names the key by its file's bytes: another key in the same
    // file is a miss, verified (and refused) against the new key.
    let other = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let key_file = dir.path().join("k.pub");
    std::fs::write(&key_file, pem(&other)).unwrap();
    let rotated = decide(&policy, Ok(target()), &state, &subject(), Instant::now());
    assert_eq!(rotated.verdict, Verdict::Deny, "{}", rotated.reason);
    assert_eq!(rotated.phases.isolation, Some(Isolation::Child));
    // No key file: a miss, refused for the key, never the old pass.
    std::fs::remove_file(&key_file).unwrap();
    let gone = decide(&policy, Ok(target()), &state, &subject(), Instant::now());
    assert_eq!(gone.verdict, Verdict::Deny);
    assert_eq!(gone.phases.isolation, None);
    assert!(gone.reason.contains("k.pub"), "{}", gone.reason);
    // The first key back: the cached pass again, without a fork.
    std::fs::write(&key_file, pem_of_first).unwrap();
    let back = decide(&policy, Ok(target()), &state, &subject(), Instant::now());
    assert_eq!(back.verdict_cache, Some("hit"), "{}", back.reason);

    let dir = tempfile::tempdir().unwrap();
    let (state, policy) = signed_setup(dir.path(), true);
    let dec = decide(&policy, Ok(target()), &state, &subject(), Instant::now());
    assert_eq!(dec.verdict, Verdict::Deny);
    assert_eq!(dec.phases.isolation, Some(Isolation::Child));
    assert!(
        dec.reason.contains("cached signature(s) examined"),
        "{}",
        dec.reason
    );
}

fn a_threaded_process_that_requires_isolation_is_refused() {
    sandbox::require();
    let dir = tempfile::tempdir().unwrap();
    let (state, policy) = signed_setup(dir.path(), false);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let dec = decide(&policy, Ok(target()), &state, &subject(), Instant::now());
    drop(tx);
    other.join().unwrap();
    assert_eq!(dec.verdict, Verdict::Deny);
    assert!(dec.reason.contains("single-threaded"), "{}", dec.reason);
}
