//! The documents' test references: every unit test the README and `docs/`
//! cite as `path::tests::fn` (or another `…_tests` module) is a test under
//! that name, so `cargo test --lib path::tests::fn` runs it. An auditor who
//! follows a threat's or a limit's reference must find the test it names.
//!
//! It reads the source text: the module path names a file under `src/`
//! (`a/b.rs` or `a/b/mod.rs`), the test module is inline in it or its own
//! file beside it, and the test is a `fn` there.
//!
//! Run alone: `cargo test --test docs`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documents that cite tests.
fn documents() -> Vec<PathBuf> {
    let mut v = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    v.extend(docs);
    v
}

/// Every `` `a::b::tests::f` `` (or `…::x_tests::f`) in `text`, in order.
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quoted in text.split('`').skip(1).step_by(2) {
        let parts: Vec<&str> = quoted.split("::").collect();
        let word = |s: &&str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if parts.len() >= 3 && parts.iter().all(word) {
            let module = parts[parts.len() - 2];
            if module == "tests" || module.ends_with("_tests") {
                out.push(quoted.to_string());
            }
        }
    }
    out
}

/// The source of module `path` (under `src/`), if it is a file.
fn module_file(path: &[&str]) -> Option<PathBuf> {
    let base = path.iter().fold(root().join("src"), |p, s| p.join(s));
    [base.with_extension("rs"), base.join("mod.rs")]
        .into_iter()
        .find(|p| p.is_file())
}

/// Does `reference` name a test function that exists?
fn resolves(reference: &str) -> Result<(), String> {
    let parts: Vec<&str> = reference.split("::").collect();
    let (function, module, parent) = (
        parts[parts.len() - 1],
        parts[parts.len() - 2],
        &parts[..parts.len() - 2],
    );
    let parent_file =
        module_file(parent).ok_or_else(|| format!("no module {} in src/", parent.join("::")))?;
    let parent_text = std::fs::read_to_string(&parent_file).unwrap();
    let declared = |suffix: &str| parent_text.contains(&format!("mod {module}{suffix}"));
    let text = if declared(" {") {
        parent_text.clone()
    } else if declared(";") {
        let dir = parent_file.parent().unwrap();
        let own = if parent_file.ends_with("mod.rs") {
            dir.join(format!("{module}.rs"))
        } else {
            dir.join(parent.last().unwrap())
                .join(format!("{module}.rs"))
        };
        let beside = dir.join(format!("{module}.rs"));
        let file = [own, beside]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{}: `mod {module};` has no file", parent_file.display()))?;
        std::fs::read_to_string(file).unwrap()
    } else {
        return Err(format!(
            "{} declares no module `{module}`",
            rel(&parent_file)
        ));
    };
    if text.contains(&format!("fn {function}(")) {
        Ok(())
    } else {
        Err(format!(
            "no test fn {function} in {module} of {}",
            rel(&parent_file)
        ))
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn every_cited_unit_test_exists_under_the_cited_name() {
    let mut cited = 0;
    let mut wrong = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for r in references(&text) {
            cited += 1;
            if let Err(why) = resolves(&r) {
                wrong.push(format!("{}: `{r}`: {why}", rel(&doc)));
            }
        }
    }
    assert!(
        cited >= 100,
        "expected the threat model and limits to cite at least 100 unit tests, found {cited}"
    );
    assert!(
        wrong.is_empty(),
        "{} cited test(s) do not exist under the cited name (`cargo test --lib -- --list` gives the names):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_resolver_refuses_what_does_not_exist() {
    assert!(resolves("gate::runc::tests::an_unknown_global_flag_cannot_hide_a_start").is_ok());
    assert!(
        resolves("verify::signatures::sigstore_tests::identity_matchers_and_tampering").is_ok()
    );
    assert!(
        resolves("verify::tsa_tests::an_unknown_tsa_next_to_a_verified_rekor_time_is_ignored")
            .is_ok()
    );
    // the re-exported short name is not what cargo test names
    assert!(resolves("runc_gate::tests::an_unknown_global_flag_cannot_hide_a_start").is_err());
    assert!(resolves("gate::runc::tests::no_such_test").is_err());
    assert!(resolves("gate::runc::other_tests::real_runc_skips_the_gate_itself").is_err());
    assert_eq!(
        references("see `a::tests::f` and `b::c` and `d::x_tests::g`, `mod::tests::fn`"),
        vec!["a::tests::f", "d::x_tests::g", "mod::tests::fn"]
    );
}
