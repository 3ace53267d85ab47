//! Sigstore bundles (OCI referrers, `portcullis verify-bundle`) verified
//! against the Sigstore production trusted root, and legacy cosign
//! signature layers re-expressed as bundles.
//!
//! Input: the whole input is tried as a bundle. It is also split on NUL
//! bytes into a legacy cosign layer: payload, then the annotations
//! signature, certificate, chain and Rekor bundle (an empty or missing field
//! leaves its annotation out). When `legacy_to_bundle` produces a bundle it
//! is verified too, for the payload's bytes, as the gate does.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::bundle::{verify_bundle, Artifact, Expectation, TrustRoot};
use portcullis::cosign;

const TRUSTED_ROOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/trust-roots/production/trusted_root.json"
);

/// sha256 of the conformance suite's `a.txt`, which the seed bundles sign.
const DIGEST: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

struct Fixture {
    root: TrustRoot,
    identity: Expectation,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        root: TrustRoot::load(Path::new(TRUSTED_ROOT))
            .unwrap_or_else(|e| panic!("loading {TRUSTED_ROOT}: {e}")),
        identity: Expectation::Identity {
            subject: "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
        },
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let _ = verify_bundle(data, Artifact::Digest(DIGEST), &f.identity, &f.root);

    let mut parts = data.split(|&b| b == 0);
    let payload = parts.next().unwrap_or_default();
    let mut annotations = BTreeMap::new();
    for name in [
        cosign::SIGNATURE_ANNOTATION,
        cosign::CERTIFICATE_ANNOTATION,
        cosign::CHAIN_ANNOTATION,
        cosign::REKOR_BUNDLE_ANNOTATION,
    ] {
        match parts.next() {
            Some(v) if !v.is_empty() => {
                annotations.insert(name.to_string(), text(v));
            }
            _ => {}
        }
    }
    let _ = cosign::is_keyless(&annotations);
    if let Ok(Some(bundle)) = cosign::legacy_to_bundle(payload, &annotations) {
        let _ = verify_bundle(&bundle, Artifact::Bytes(payload), &f.identity, &f.root);
    }
});
