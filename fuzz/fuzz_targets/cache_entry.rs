//! The signature cache (`$STATE/cache/sha256/<hex>.json`): a file another
//! process, or an attacker with write access to the state directory, wrote.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::cache::{Entry, StateDir};

/// The subject digest the seeds are filed under.
const DIGEST: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

struct Fixture {
    // Kept alive for the whole run; removed when the process exits normally.
    _dir: tempfile::TempDir,
    state: StateDir,
    path: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary state directory");
        let state = StateDir::new(dir.path());
        let path = state.entry_path(DIGEST).expect("valid digest");
        std::fs::create_dir_all(path.parent().unwrap()).expect("cache directory");
        Fixture {
            _dir: dir,
            state,
            path,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    std::fs::write(&f.path, data).expect("write cache file");
    if let Ok(Some(entry)) = f.state.read(DIGEST) {
        assert_eq!(entry.subject, DIGEST);
        for a in &entry.artifacts {
            for l in &a.layers {
                let _ = l.blob();
            }
        }
    }
    let _ = serde_json::from_slice::<Entry>(data);
});
