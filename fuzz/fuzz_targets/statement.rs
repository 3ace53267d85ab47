//! in-toto statements and SLSA provenance predicates (a DSSE payload).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::provenance::{self, Provenance, Statement};

/// A fixed digest some seeds' subjects name (sha256 of the Sigstore
/// conformance suite's `a.txt`).
const DIGEST: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

fn exercise(p: &Provenance) {
    let _ = p.built_on();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = provenance::extract(data, &[DIGEST]) {
        exercise(&p);
    }
    let Ok(statement) = Statement::parse(data) else {
        return;
    };
    assert!(!statement.subjects.is_empty(), "a statement parsed with no subject");
    let _ = statement.subject_for(&[DIGEST]);
    if let Ok(p) = Provenance::from_statement(&statement) {
        exercise(&p);
    }
    // Extract again for the digest the statement itself names, so that the
    // predicate is reached whatever its subject.
    let named: Vec<String> = statement
        .subjects
        .iter()
        .filter_map(|s| s.digest.get("sha256"))
        .map(|hex| format!("sha256:{hex}"))
        .collect();
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    if !named.is_empty() {
        if let Ok(p) = provenance::extract(data, &named) {
            exercise(&p);
        }
    }
});
