//! A FIFO at each start-path input is refused at once: the policy, a signer
//! key, a keyless CA bundle (read to verify and hashed for the verdict-cache
//! key), a cached verdict, a cache entry and the trust root. Each read runs in
//! a thread with a timeout, so a regression fails instead of hanging.

use std::path::{Path, PathBuf};

use crate::base::fsio::tests::{fifo, refuses_at_once};
use crate::state::cache::StateDir;

fn dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_path_buf();
    (d, p)
}

#[test]
fn policy() {
    let (_d, p) = dir();
    let f = p.join("policy.toml");
    fifo(&f);
    let r = refuses_at_once("policy", move || {
        crate::policy::Policy::load(&f).map(|_| ())
    });
    let e = r.unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn signer_key() {
    let (_d, p) = dir();
    let f = p.join("key.pub");
    fifo(&f);
    let r = refuses_at_once("signer key", move || {
        crate::formats::keys::LoadedSigner::from_key_file(&f).map(|_| ())
    });
    let e = r.unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let r = refuses_at_once("signer key (bundle path)", move || {
        crate::formats::keys::load_der(&p.join("key.pub")).map(|_| ())
    });
    let e = r.unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn keyless_ca_bundle() {
    use crate::verify::signer::{Keyless, Matcher, Signer};
    let (_d, p) = dir();
    let f = p.join("ca.pem");
    fifo(&f);
    let k = Keyless {
        issuer: Matcher::Exact("https://issuer.example".into()),
        subject: Matcher::Exact("me@example.com".into()),
        extensions: vec![],
        ca: Some(f.clone()),
        require_tlog: true,
    };
    // Hashed for the verdict-cache key.
    let fp = refuses_at_once("CA bundle (verdict-cache key)", move || {
        crate::verify::rule::fingerprint(&[Signer::Keyless(Box::new(k))], None)
    });
    assert!(
        String::from_utf8_lossy(&fp).contains("unreadable"),
        "{fp:?}"
    );
    // Read to verify against.
    let root = crate::bundle::TrustRoot::load(&root_file()).unwrap();
    let r = refuses_at_once("CA bundle (verification)", move || {
        root.with_private_ca(&f).map(|_| ())
    });
    assert!(r.is_err());
}

fn root_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/trust-roots/production/trusted_root.json")
}

#[test]
fn cached_verdict() {
    let (_d, p) = dir();
    let state = StateDir::new(&p);
    let key = crate::verdict_cache::Key::new([b"fifo".as_slice()]);
    std::fs::create_dir_all(p.join("verdicts")).unwrap();
    fifo(&p.join("verdicts").join(format!("{}.json", key.as_str())));
    let hit = refuses_at_once("verdict", move || {
        crate::verdict_cache::lookup(&state, &key, jiff::Timestamp::now()).is_some()
    });
    assert!(!hit);
}

#[test]
fn cache_entry() {
    let (_d, p) = dir();
    let state = StateDir::new(&p);
    let digest = format!("sha256:{}", "a".repeat(64));
    let path = state.entry_path(&digest).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    fifo(&path);
    let r = refuses_at_once("cache entry", move || state.read(&digest).map(|_| ()));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn trust_root() {
    let (_d, p) = dir();
    let f = p.join("trusted_root.json");
    fifo(&f);
    let r = refuses_at_once("trust root", move || {
        crate::bundle::TrustRoot::load(&f).map(|_| ())
    });
    let e = r.unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}
