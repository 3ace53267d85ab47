//! The `portcullis` binary's contract with scripts: help on every command,
//! man pages for every command, and the documented exit codes.

use std::process::Command;

fn portcullis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_remove("PORTCULLIS_POLICY")
        .env_remove("PORTCULLIS_STATE_DIR")
        .output()
        .expect("run portcullis")
}

const COMMANDS: &[&[&str]] = &[
    &["check"],
    &["provenance"],
    &["fetch"],
    &["policy", "check"],
    &["audit"],
    &["journal", "replay"],
    &["trust", "update"],
    &["trust", "import"],
    &["trust", "show"],
    &["verify-bundle"],
    &["man"],
    &["completions"],
    &["sync"],
    &["doctor"],
    &["bundle", "export"],
    &["bundle", "import"],
    &["heartbeat"],
    &["evidence"],
    &["evidence", "verify"],
    &["evidence", "merge"],
];

#[test]
fn every_command_has_help_and_a_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = portcullis(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    for c in COMMANDS {
        let mut args = c.to_vec();
        args.push("--help");
        let o = portcullis(&args);
        assert!(o.status.success(), "{c:?} --help: {o:?}");
        assert!(!o.stdout.is_empty(), "{c:?} --help printed nothing");
        let page = dir.path().join(format!("portcullis-{}.1", c.join("-")));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("missing {}", page.display()));
        assert!(text.contains(".SH NAME"), "{}", page.display());
    }
}

#[test]
fn doctor_exits_1_with_every_check_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = portcullis(&[
        "doctor",
        "--json",
        "--address",
        &format!("{d}/no.sock"),
        "--policy",
        &format!("{d}/no.toml"),
        "--state-dir",
        d,
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let names: Vec<_> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "containerd",
            "cri-runtime",
            "shim",
            "node-wide",
            "policy",
            "trust-root",
            "policy-source",
            "journald",
            "state-dir",
            "sync-service"
        ]
    );
    for c in v["checks"].as_array().unwrap() {
        if c["status"] == "fail" {
            assert!(c["fix"].is_string(), "{c}");
        }
    }
}

#[test]
fn exit_codes_scripts_rely_on() {
    let dir = tempfile::tempdir().unwrap();
    // 2: usage error
    assert_eq!(portcullis(&["no-such-command"]).status.code(), Some(2));
    // 0: a valid policy
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"x\"\nimages = [\"x.io/*\"]\naction = \"allow\"\n").unwrap();
    let o = portcullis(&["policy", "check", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // 1: an invalid one, every error on its own line with line:column
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "mode = \"strict\"\ncolour = 1\n").unwrap();
    let o = portcullis(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(":1:8: error:"), "{stdout}");
    assert!(
        stdout.contains(":2:1: error: unknown key `colour`"),
        "{stdout}"
    );
    // --json carries the same problems
    let o = portcullis(&["policy", "check", "--json", bad.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let errors = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == "error")
        .count();
    assert_eq!(errors, 2, "{v}");
    // 3: an operational error (the file cannot be read), one line on stderr
    let o = portcullis(&[
        "policy",
        "check",
        dir.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim().lines().count(), 1);
}

#[test]
fn check_refuses_when_containerd_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "mode = \"enforce\"\ndefault = \"allow\"\n").unwrap();
    let sock = dir.path().join("none.sock");
    let o = portcullis(&[
        "check",
        "--json",
        "--policy",
        policy.to_str().unwrap(),
        "--state-dir",
        dir.path().to_str().unwrap(),
        "--address",
        sock.to_str().unwrap(),
        "x.io/app:1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "deny");
    assert!(v["reason"].as_str().unwrap().contains("unreachable"), "{v}");
}

#[test]
fn bundle_import_refuses_a_file_that_is_not_a_bundle_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("policy.toml"), "mode = \"enforce\"\n").unwrap();
    std::fs::write(d.join("x.bundle"), b"definitely not a tar archive").unwrap();
    let o = portcullis(&[
        "bundle",
        "import",
        "--policy",
        d.join("policy.toml").to_str().unwrap(),
        "--state-dir",
        d.join("state").to_str().unwrap(),
        d.join("x.bundle").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refused"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!d.join("state").exists());
}

#[test]
fn bundle_import_without_a_policy_is_an_error_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("x.bundle"), b"").unwrap();
    let o = portcullis(&[
        "bundle",
        "import",
        "--policy",
        d.join("none.toml").to_str().unwrap(),
        "--state-dir",
        d.join("state").to_str().unwrap(),
        d.join("x.bundle").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("without the policy"));
    assert!(!d.join("state").exists());
}

/// A pack from an empty journal directory: written (exit 1: nothing to
/// sample, nothing observed), intact (exit 0), and no longer intact after one
/// changed byte (exit 1); a directory that is no pack is an error (exit 3).
#[test]
fn evidence_exit_codes_and_tamper_detection() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let pack = dir.path().join("pack");
    let o = portcullis(&[
        "evidence",
        "--since",
        "1h",
        "-o",
        pack.to_str().unwrap(),
        "--directory",
        journal.to_str().unwrap(),
        "--address",
        &format!("{d}/no.sock"),
        "--policy",
        &format!("{d}/no.toml"),
        "--state-dir",
        d,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["result"], "fail");
    assert_eq!(
        summary["steps_passed"], 0,
        "nothing observed: no step can pass"
    );
    let v = portcullis(&["evidence", "verify", pack.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{v:?}");
    let report = pack.join("report.html");
    let mut bytes = std::fs::read(&report).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&report, bytes).unwrap();
    let v = portcullis(&["evidence", "verify", "--json", pack.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1), "{v:?}");
    let r: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert!(r["problems"][0]
        .as_str()
        .unwrap()
        .contains("report.html: SHA-256 differs"));
    let v = portcullis(&["evidence", "verify", d]);
    assert_eq!(v.status.code(), Some(3), "{v:?}");
    let again = portcullis(&["evidence", "--since", "1h", "-o", pack.to_str().unwrap()]);
    assert_eq!(
        again.status.code(),
        Some(3),
        "an existing pack is never overwritten"
    );
}
