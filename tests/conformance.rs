//! The sigstore-conformance bundle-verify suite, run through the built
//! `portcullis verify-bundle` exactly as the conformance harness would.
//!
//! Every case in `tests/data/sigstore-conformance/CASES.json` runs twice
//! (`argv_path_form` and `argv_digest_form`) from `test/assets`, offline: a
//! case whose `trusted_root` is null gets `--trusted-root` with its
//! `trusted_root_offline`. A case named `*_fail` must be refused (exit 1,
//! one line on stderr); any other must verify (exit 0). The suite is
//! required: if it is missing, this test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/sigstore-conformance/CASES.json"
);

/// Exit code of a negative answer (`portcullis::cli::EXIT_NO`).
const EXIT_NO: i32 = portcullis::cli::EXIT_NO as i32;

fn field<'a>(case: &'a Value, key: &str) -> &'a Value {
    case.get(key)
        .unwrap_or_else(|| panic!("CASES.json: a case has no `{key}`: {case}"))
}

fn string(case: &Value, key: &str) -> String {
    field(case, key)
        .as_str()
        .unwrap_or_else(|| panic!("CASES.json: `{key}` is not a string: {case}"))
        .to_string()
}

/// The argv of one form, with the offline trusted root substituted.
fn argv(case: &Value, form: &str) -> Vec<String> {
    let mut argv: Vec<String> = field(case, form)
        .as_array()
        .unwrap_or_else(|| panic!("CASES.json: `{form}` is not an array: {case}"))
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap_or_else(|| panic!("CASES.json: `{form}` holds a non-string: {case}"))
                .to_string()
        })
        .collect();
    assert_eq!(
        argv.first().map(String::as_str),
        Some("verify-bundle"),
        "CASES.json: `{form}` does not start with verify-bundle: {case}"
    );
    assert!(
        argv.len() >= 2,
        "CASES.json: `{form}` has no artifact: {case}"
    );
    let has_root = argv.iter().any(|a| a == "--trusted-root");
    match field(case, "trusted_root") {
        Value::Null => {
            assert!(
                !has_root,
                "CASES.json: trusted_root is null but `{form}` passes one: {case}"
            );
            let offline = string(case, "trusted_root_offline");
            let at = argv.len() - 1; // before FILE_OR_DIGEST
            argv.splice(at..at, ["--trusted-root".to_string(), offline]);
        }
        Value::String(_) => assert!(
            has_root,
            "CASES.json: trusted_root is set but `{form}` does not pass it: {case}"
        ),
        other => panic!("CASES.json: trusted_root is {other}: {case}"),
    }
    argv
}

#[test]
fn sigstore_conformance_bundle_verify() {
    let text = std::fs::read_to_string(CASES).unwrap_or_else(|e| {
        panic!(
            "cannot read the sigstore-conformance suite at {CASES}: {e}; \
             it is required (tests/data is part of the repository), never skipped"
        )
    });
    let doc: Value = serde_json::from_str(&text).expect("CASES.json is not JSON");
    let cases = doc
        .get("cases")
        .and_then(Value::as_array)
        .expect("CASES.json has no `cases` array");
    assert!(!cases.is_empty(), "CASES.json has no cases");
    let (assets, _) = suite();
    // An empty state directory: no cached trust root can leak in.
    let state = tempfile::tempdir().expect("temp dir");

    let mut total = 0usize;
    let mut wrong = Vec::new();
    for case in cases {
        let name = string(case, "name");
        let should_pass = !name.ends_with("_fail");
        let expected = string(case, "expected");
        assert_eq!(
            expected,
            if should_pass { "pass" } else { "fail" },
            "CASES.json: {name}: `expected` disagrees with the name"
        );
        for form in ["argv_path_form", "argv_digest_form"] {
            total += 1;
            let args = argv(case, form);
            let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(&args)
                .current_dir(&assets)
                .env("PORTCULLIS_STATE_DIR", state.path())
                .output()
                .expect("run portcullis");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let code = out.status.code();
            let right = if should_pass {
                code == Some(0)
            } else {
                code == Some(EXIT_NO) && stderr.trim_end().lines().count() == 1
            };
            if !right {
                wrong.push(format!(
                    "WRONG {name} [{form}]: expected {}, got exit {} — {}",
                    if should_pass {
                        "pass (exit 0)"
                    } else {
                        "refusal (exit 1, one line)"
                    },
                    code.map_or("by signal".to_string(), |c| c.to_string()),
                    stderr.trim_end().replace('\n', " | ")
                ));
            }
        }
    }
    for w in &wrong {
        println!("{w}");
    }
    println!("conformance: {}/{total} runs right", total - wrong.len());
    assert_eq!(total, 2 * cases.len());
    assert!(
        wrong.is_empty(),
        "conformance: {} of {total} runs wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The suite's directories, or a loud failure.
fn suite() -> (PathBuf, PathBuf) {
    let root = Path::new(CASES).parent().expect("CASES.json has a parent");
    let assets = root.join("test/assets");
    assert!(
        assets.is_dir(),
        "the sigstore-conformance suite is missing at {}; it is required, never skipped",
        assets.display()
    );
    let offline = assets.join("../../../trust-roots/production/trusted_root.json");
    (assets, offline)
}

const BEACON: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const GITHUB_ACTIONS: &str = "https://token.actions.githubusercontent.com";

fn run(args: &[&str], cwd: &Path, state: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(cwd)
        .env("PORTCULLIS_STATE_DIR", state)
        .output()
        .expect("run portcullis")
}

#[test]
fn without_trusted_root_the_cached_one_is_used_or_refused() {
    let (assets, offline) = suite();
    let state = tempfile::tempdir().expect("temp dir");
    let args = [
        "verify-bundle",
        "--bundle",
        "bundle-verify/happy-path-v0.3/bundle.sigstore.json",
        "--certificate-identity",
        BEACON,
        "--certificate-oidc-issuer",
        GITHUB_ACTIONS,
        "bundle-verify/a.txt",
    ];
    let out = run(&args, &assets, state.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_NO), "{stderr}");
    assert!(
        stderr.contains("--trusted-root") && stderr.trim_end().lines().count() == 1,
        "{stderr}"
    );
    std::fs::create_dir_all(state.path().join("trust")).unwrap();
    std::fs::copy(&offline, state.path().join("trust/trusted_root.json")).unwrap();
    let out = run(&args, &assets, state.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn json_reports_signer_log_and_time() {
    let (assets, offline) = suite();
    let state = tempfile::tempdir().expect("temp dir");
    let offline = offline.to_str().expect("UTF-8 path");
    let out = run(
        &[
            "verify-bundle",
            "--json",
            "--bundle",
            "bundle-verify/happy-path-v0.3/bundle.sigstore.json",
            "--certificate-identity",
            BEACON,
            "--certificate-oidc-issuer",
            GITHUB_ACTIONS,
            "--trusted-root",
            offline,
            "bundle-verify/a.txt",
        ],
        &assets,
        state.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["signer"]["kind"], "certificate");
    assert_eq!(v["signer"]["subject"], BEACON);
    assert_eq!(v["signer"]["issuer"], GITHUB_ACTIONS);
    let entry = &v["log_entries"][0];
    assert_eq!(entry["log_id"].as_str().map(str::len), Some(64));
    assert!(entry["log_index"].is_u64());
    assert_eq!(v["timestamps"][0]["source"], "rekor_integrated_time");
    assert_eq!(v["signing_time"], v["timestamps"][0]["time"]);

    // A managed-key bundle with an RFC 3161 timestamp reports both sources.
    let out = run(
        &[
            "verify-bundle",
            "--json",
            "--bundle",
            "bundle-verify/managed-key-happy-path/bundle.sigstore.json",
            "--key",
            "bundle-verify/managed-key-happy-path/key.pub",
            "--trusted-root",
            offline,
            "bundle-verify/a.txt",
        ],
        &assets,
        state.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["signer"]["kind"], "key");
    assert!(v["signer"]["fingerprint"]
        .as_str()
        .is_some_and(|f| f.starts_with("sha256:")));
    let sources: Vec<&str> = v["timestamps"]
        .as_array()
        .expect("timestamps")
        .iter()
        .filter_map(|t| t["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"rekor_integrated_time") && sources.contains(&"rfc3161"),
        "{v}"
    );
}

/// sigstore-verify does not tie a Rekor v2 entry's `logId` to the log whose
/// key signed its checkpoint; Portcullis refuses a log ID the trusted root
/// does not list, so the log of record is always a trusted one.
#[test]
fn rekor_v2_entry_naming_an_untrusted_log_is_refused() {
    let (assets, _) = suite();
    let state = tempfile::tempdir().expect("temp dir");
    let case = assets.join("bundle-verify/rekor2-happy-path");
    let mut bundle: Value = serde_json::from_slice(
        &std::fs::read(case.join("bundle.sigstore.json")).expect("read bundle"),
    )
    .expect("bundle JSON");
    // 32 bytes 00..1f, base64
    bundle["verificationMaterial"]["tlogEntries"][0]["logId"]["keyId"] =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into();
    let forged = state.path().join("forged.json");
    std::fs::write(&forged, bundle.to_string()).unwrap();
    let root = case.join("trusted_root.json");
    let out = run(
        &[
            "verify-bundle",
            "--bundle",
            forged.to_str().expect("UTF-8 path"),
            "--certificate-identity",
            BEACON,
            "--certificate-oidc-issuer",
            GITHUB_ACTIONS,
            "--trusted-root",
            root.to_str().expect("UTF-8 path"),
            "bundle-verify/a.txt",
        ],
        &assets,
        state.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_NO), "{stderr}");
    assert!(stderr.contains("does not list"), "{stderr}");
}
