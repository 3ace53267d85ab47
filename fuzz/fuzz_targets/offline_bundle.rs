//! Offline bundle files (`portcullis bundle import FILE`): the tar reader,
//! member limits and manifest parsing, then the import checks against an
//! empty state directory and a key policy (nothing can verify, so nothing
//! may be stored).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::cache::StateDir;
use portcullis::offline::{import, read_from, ImportOptions};
use portcullis::policy::Policy;

struct Fixture {
    _dir: tempfile::TempDir,
    state: StateDir,
    policy: Policy,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path().join("state"));
        let policy = Policy::parse(
            "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"r\"\nimages = [\"**\"]\n[[rule.signer]]\nkey = \"/nonexistent.pub\"\n",
            Path::new("/fuzz/policy.toml"),
        )
        .expect("fixture policy");
        Fixture {
            _dir: dir,
            state,
            policy,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    if let Ok(contents) = read_from(data, "fuzz") {
        let report = import(
            &contents,
            &f.state,
            &f.policy,
            &ImportOptions::default(),
            &mut |_| {},
        )
        .expect("import of parsed contents reports per item");
        assert_eq!(report.stored, 0, "nothing can verify, nothing may be stored");
    }
});
