//! Image references as containerd records them. Normalization must be a
//! fixed point: parsing a normalized reference gives the same normalized text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::reference::ImageRef;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = ImageRef::parse(text) else {
        return;
    };
    let again = ImageRef::parse(r.normalized()).unwrap_or_else(|e| {
        panic!(
            "round trip: {text:?} normalizes to {:?}, which does not parse: {e}",
            r.normalized()
        )
    });
    assert_eq!(
        again.normalized(),
        r.normalized(),
        "round trip: {text:?} normalizes to {:?}, which normalizes to {:?}",
        r.normalized(),
        again.normalized()
    );
    assert_eq!(again, r, "round trip of {text:?}: parts differ");
    let _ = r.pinned("sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf");
});
