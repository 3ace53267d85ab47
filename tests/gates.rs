//! The start-path binaries skip Rust's runtime start-up (`#![no_main]`,
//! `portcullis::base::entry`): what they hand the program they exec must be
//! what std's start-up gave it, on the real binaries.

use std::path::Path;
use std::process::Command;

/// A stand-in for the real runc that writes what it inherited to `$OUT`:
/// its ignored-signal mask and where descriptors 0 to 2 point.
fn recorder(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("runc");
    std::fs::write(
        &script,
        "#!/bin/sh\n{ grep '^SigIgn:' /proc/self/status; for fd in 0 1 2; do echo \"fd$fd $(readlink /proc/self/fd/$fd)\"; done; echo \"args $*\"; } >\"$OUT\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Run `runc_gate ARGS` (an ungated command: handed straight to the
/// stand-in) from `sh` with `closing` applied, and return what the stand-in
/// recorded.
fn pass_through(closing: &str, args: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let runc = recorder(dir.path());
    let out = dir.path().join("inherited");
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{closing} exec \"$GATE\" {args}"))
        .env("GATE", env!("CARGO_BIN_EXE_portcullis-runc"))
        .env("PORTCULLIS_RUNC", &runc)
        .env("OUT", &out)
        .status()
        .unwrap();
    (status, std::fs::read_to_string(&out).unwrap_or_default())
}

fn sigpipe_ignored(record: &str) -> bool {
    let mask = record
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(0);
    // SIGPIPE is 13: bit 12 of the mask.
    mask & (1 << 12) != 0
}

#[test]
fn runc_gets_the_arguments_unchanged_and_sigpipe_at_its_default() {
    // As containerd would exec it: the gate's own SIGPIPE setting is not
    // handed on (std's `Command` resets it before the exec).
    let (status, record) = pass_through("", "--root /run/x state some-id");
    assert!(status.success(), "{status:?}: {record}");
    assert!(
        record.contains("args --root /run/x state some-id"),
        "{record}"
    );
    assert!(record.contains("SigIgn:"), "{record}");
    assert!(!sigpipe_ignored(&record), "{record}");
}

#[test]
fn closed_standard_descriptors_are_opened_on_dev_null() {
    // stdin and stderr closed before the exec of the gate.
    let (status, record) = pass_through("exec 0<&- 2>&-;", "state some-id");
    assert!(status.success(), "{status:?}: {record}");
    assert!(record.contains("fd0 /dev/null"), "{record}");
    assert!(record.contains("fd2 /dev/null"), "{record}");
}

#[test]
fn a_refusal_written_to_a_broken_pipe_is_not_a_death_by_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let runc = recorder(dir.path());
    let out = dir.path().join("inherited");
    // stderr: a pipe whose reading end is already closed.
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let status = Command::new(env!("CARGO_BIN_EXE_portcullis-runc"))
        .args(["create", "--bundle", "/nonexistent/bundle", "cid"])
        .env("PORTCULLIS_RUNC", &runc)
        .env("OUT", &out)
        .env("CONTAINERD_ADDRESS", dir.path().join("no-containerd.sock"))
        .env("PORTCULLIS_POLICY", dir.path().join("no-policy.toml"))
        .env("PORTCULLIS_STATE_DIR", dir.path().join("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(w))
        .status()
        .unwrap();
    // Refused (runc never ran), and by an exit status: the gate started
    // with SIGPIPE at its default (std's `Command` resets it), so only
    // `entry::prepare` keeps the write from killing it.
    assert_eq!(status.signal(), None, "{status:?}");
    assert_ne!(status.code(), Some(0), "{status:?}");
    assert!(!out.exists(), "runc ran");
}
