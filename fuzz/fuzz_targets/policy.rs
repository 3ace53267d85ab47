//! Policy text (`/etc/portcullis/policy.toml`, `portcullis policy check FILE`):
//! `policy::check` and `Policy::parse` must never panic, and must agree.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portcullis::policy::{self, Policy};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/etc/portcullis/policy.toml");
    let (checked, problems) = policy::check(&text, path);
    for p in &problems {
        // Display computes line/column from offsets: exercise it too.
        let _ = p.to_string();
    }
    let parsed = Policy::parse(&text, path);
    // `parse` succeeds exactly when `check` finds no error.
    let check_ok = checked.is_some()
        && !problems
            .iter()
            .any(|p| p.severity == policy::Severity::Error);
    assert_eq!(
        parsed.is_ok(),
        check_ok,
        "Policy::parse and policy::check disagree on {text:?}"
    );
    if let Ok(p) = parsed {
        // Selecting a rule for a few images must not panic either.
        for name in ["busybox", "registry.example.com/apps/web:1", "ghcr.io/acme/app@sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"] {
            let image = portcullis::reference::ImageRef::parse(name).expect("valid reference");
            let selection = p.select(&image);
            let _ = p.mode_for(&selection);
        }
    }
});
