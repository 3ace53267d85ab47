//! Tests of [`crate::verify::tsa`] through `verify_bundle`, on public
//! sigstore-conformance vectors (tests/data/sigstore-conformance):
//! `managed-key-happy-path` (a key signature with a Rekor v1 entry, its
//! SET-authenticated integrated time and one RFC 3161 timestamp from the
//! production TSA) and `rekor2-happy-path` (Rekor v2, whose entries carry
//! no integrated time: the staging TSA's timestamp is its only time).
//! "Not in the trust root" is made by swapping the trust root's timestamp
//! authorities for the other instance's (production ↔ staging), so the
//! token's signer is a real TSA the root does not list.
use crate::verify::sigstore::{
    verify_bundle, Artifact, BundleError, Expectation, TimeSource, TrustRoot,
};
use crate::verify::tsa::{classify, Verdict};
use sigstore_verify::types::Bundle;
use std::path::{Path, PathBuf};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}
fn asset(p: &str) -> PathBuf {
    data(&format!(
        "sigstore-conformance/test/assets/bundle-verify/{p}"
    ))
}
fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}
const PRODUCTION: &str = "trust-roots/production/trusted_root.json";
const STAGING: &str =
    "sigstore-conformance/test/assets/bundle-verify/rekor2-happy-path/trusted_root.json";

/// `base` with its timestamp authorities replaced by `tsas_from`'s.
fn root_with_tsas_of(base: &str, tsas_from: &str) -> TrustRoot {
    let mut r = json(&data(base));
    r["timestampAuthorities"] = json(&data(tsas_from))["timestampAuthorities"].clone();
    TrustRoot::from_json(&serde_json::to_vec(&r).unwrap(), Path::new("test-root")).unwrap()
}
fn root(p: &str) -> TrustRoot {
    TrustRoot::load(&data(p)).unwrap()
}
fn managed_key() -> (Vec<u8>, Expectation, Vec<u8>) {
    (
        std::fs::read(asset("managed-key-happy-path/bundle.sigstore.json")).unwrap(),
        Expectation::Key {
            pem_path: asset("managed-key-happy-path/key.pub"),
        },
        std::fs::read(asset("a.txt")).unwrap(),
    )
}
fn rekor2() -> (Vec<u8>, Expectation, Vec<u8>) {
    (
        std::fs::read(asset("rekor2-happy-path/bundle.sigstore.json")).unwrap(),
        Expectation::Identity {
            subject: "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
        },
        std::fs::read(asset("a.txt")).unwrap(),
    )
}
fn parsed(b: &[u8]) -> Bundle {
    Bundle::from_json(std::str::from_utf8(b).unwrap()).unwrap()
}

#[test]
fn the_vectors_verify_with_their_own_tsa() {
    let (b, exp, a) = managed_key();
    let v = verify_bundle(&b, Artifact::Bytes(&a), &exp, &root(PRODUCTION)).unwrap();
    assert_eq!(v.ignored_timestamps, 0);
    assert!(
        v.timestamps.iter().any(|t| t.source == TimeSource::Rfc3161),
        "{v:?}"
    );
    assert_eq!(
        classify(&parsed(&b), root(PRODUCTION).trusted_root()),
        vec![Verdict::Verified]
    );
    let (b, exp, a) = rekor2();
    verify_bundle(&b, Artifact::Bytes(&a), &exp, &root(STAGING)).unwrap();
}

#[test]
fn an_unknown_tsa_next_to_a_verified_rekor_time_is_ignored() {
    let (b, exp, a) = managed_key();
    let other = root_with_tsas_of(PRODUCTION, STAGING);
    assert_eq!(
        classify(&parsed(&b), other.trusted_root()),
        vec![Verdict::UnknownAuthority]
    );
    let v = verify_bundle(&b, Artifact::Bytes(&a), &exp, &other).unwrap();
    assert_eq!(v.ignored_timestamps, 1);
    assert!(!v.timestamps.is_empty());
    assert!(
        v.timestamps
            .iter()
            .all(|t| t.source == TimeSource::RekorIntegratedTime),
        "{v:?}"
    );
    // No timestamp authority at all: the same.
    let mut r = json(&data(PRODUCTION));
    r["timestampAuthorities"] = serde_json::json!([]);
    let none = TrustRoot::from_json(&serde_json::to_vec(&r).unwrap(), Path::new("no-tsa")).unwrap();
    assert_eq!(
        verify_bundle(&b, Artifact::Bytes(&a), &exp, &none)
            .unwrap()
            .ignored_timestamps,
        1
    );
}

#[test]
fn an_unknown_tsa_as_the_only_time_source_is_refused() {
    let (b, exp, a) = rekor2();
    let other = root_with_tsas_of(STAGING, PRODUCTION);
    assert_eq!(
        classify(&parsed(&b), other.trusted_root()),
        vec![Verdict::UnknownAuthority]
    );
    let e = verify_bundle(&b, Artifact::Bytes(&a), &exp, &other).unwrap_err();
    assert!(
        matches!(e, BundleError::RejectedWithoutUnknownTsa { ignored: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("trust root does not list"), "{e}");
}

#[test]
fn a_tampered_timestamp_of_a_listed_tsa_is_refused() {
    let (b, exp, a) = managed_key();
    let mut j: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let at = "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp";
    let token = j.pointer(at).unwrap().as_str().unwrap().to_string();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut der = b64.decode(&token).unwrap();
    // The last bytes are the CMS signature value of the signer info.
    let n = der.len();
    der[n - 2] ^= 0x01;
    *j.pointer_mut(at).unwrap() = serde_json::Value::String(b64.encode(&der));
    let tampered = serde_json::to_vec(&j).unwrap();
    let prod = root(PRODUCTION);
    assert!(
        matches!(
            classify(&parsed(&tampered), prod.trusted_root())[..],
            [Verdict::Invalid(_)]
        ),
        "{:?}",
        classify(&parsed(&tampered), prod.trusted_root())
    );
    let e = verify_bundle(&tampered, Artifact::Bytes(&a), &exp, &prod).unwrap_err();
    assert!(matches!(e, BundleError::Rejected(_)), "{e}");
}

#[test]
fn an_unknown_tsa_does_not_hide_another_failure() {
    // The wrong key: refused for the key, not for the timestamp.
    let (b, _, a) = managed_key();
    let dir = tempfile::tempdir().unwrap();
    let (_, pem_path) = crate::base::testing::write_public_key(dir.path());
    let exp = Expectation::Key { pem_path };
    let other = root_with_tsas_of(PRODUCTION, STAGING);
    let e = verify_bundle(&b, Artifact::Bytes(&a), &exp, &other).unwrap_err();
    assert!(matches!(e, BundleError::Rejected(_)), "{e}");
    assert!(!e.to_string().contains("timestamp authority"), "{e}");
}
