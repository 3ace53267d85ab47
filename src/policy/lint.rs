//! The policy's lints: findings that leave a policy loadable but probably
//! not what its author meant: a pattern no start can reach because an
//! earlier rule matches first (a warning), and a keyless signer's regular
//! expression that parses but does not compile within the size limit (an
//! error: that signer matches nothing, so every start it governs is refused).
//!
//! This module owns those findings. They run only where an operator reads
//! them (`portcullis policy check`, `portcullis doctor`), never on the load
//! at container start, which parses expressions without compiling them. Each pattern
//! is compared only with the earlier patterns the rule index says can cover
//! it, so the cost follows the number of patterns, not its square.

use super::index::RuleIndex;
use super::{ImagePattern, Problem, Rule, Severity};

/// The warnings for these rules, in rule order.
pub fn lint(rules: &[Rule]) -> Vec<Problem> {
    let index = RuleIndex::build(rules);
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        for pat in &r.images {
            // Every earlier rule with a pattern that can shadow `pat` has a
            // key that is a segment prefix of it (see `shadows`).
            let prev = index
                .candidates(&[pat.as_str()])
                .into_iter()
                .take_while(|&j| j < i)
                .map(|j| &rules[j])
                .find(|p| p.images.iter().any(|pp| shadows(pp, pat)));
            if let Some(prev) = prev {
                out.push(shadowed(r, pat, prev));
            }
        }
        let provenance = r.provenance.iter().flat_map(|p| p.signers.iter());
        for signer in r.signers.iter().chain(provenance) {
            let crate::verify::signer::Signer::Keyless(k) = signer else {
                continue;
            };
            for m in [&k.issuer, &k.subject] {
                if let Err(why) = m.compile_check() {
                    out.push(Problem {
                        line: r.line,
                        column: 1,
                        message: format!(
                            "rule {:?}: keyless signer {m}: {why}; this signer matches nothing, so every start it governs is refused: simplify the expression",
                            r.name
                        ),
                        severity: Severity::Error,
                    });
                }
            }
        }
    }
    out
}

fn shadowed(r: &Rule, pat: &ImagePattern, prev: &Rule) -> Problem {
    Problem {
        line: r.line,
        column: 1,
        message: format!(
            "pattern `{}` of rule \"{}\" is shadowed by rule \"{}\" (line {}), which matches first",
            pat.as_str(),
            r.name,
            prev.name,
            prev.line
        ),
        severity: Severity::Warning,
    }
}

/// Conservative shadowing test: `earlier` certainly matches everything `later`
/// matches when both are equal, or `earlier` is `**`-suffixed and covers
/// `later`'s literal prefix.
///
/// Each case implies that `earlier`'s index key is a segment prefix of
/// `later`'s text: equal texts have equal keys; `**` has the empty key; a
/// literal `P/**` has the key `P`, and `later` starts with `P/`; a glob that
/// matches `later` as a string is a prefix of it up to its first wildcard.
fn shadows(earlier: &ImagePattern, later: &ImagePattern) -> bool {
    let e = earlier.as_str();
    let l = later.as_str();
    if e == l || e == "**" {
        return true;
    }
    if let Some(prefix) = e.strip_suffix("/**") {
        let literal = !prefix.contains(['*', '?', '[', '{']);
        return literal && l.starts_with(&format!("{prefix}/"));
    }
    // A literal later pattern that the earlier glob matches is shadowed.
    if !l.contains(['*', '?', '[', '{']) {
        return earlier.matches_str(l);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_gen::{policy_of, Rng};

    /// The lint as it was before the index: every pattern against every
    /// earlier rule's.
    fn lint_quadratic(rules: &[Rule]) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            for pat in &r.images {
                if let Some(prev) = rules[..i]
                    .iter()
                    .find(|p| p.images.iter().any(|pp| shadows(pp, pat)))
                {
                    out.push(shadowed(r, pat, prev));
                }
            }
        }
        out
    }

    #[test]
    fn indexed_lint_finds_what_the_full_comparison_finds() {
        let mut rng = Rng(0x5eed_1e55);
        let mut found = 0;
        for _ in 0..400 {
            let n = 1 + rng.below(40);
            let policy = policy_of(&mut rng, n);
            let want = lint_quadratic(policy.rules());
            found += want.len();
            assert_eq!(lint(policy.rules()), want);
        }
        // The generated policies do exercise the lint.
        assert!(found > 100, "{found}");
    }

    #[test]
    fn an_expression_over_the_compiled_size_limit_fails_policy_check_not_the_load() {
        let text = r#"mode = "enforce"
default = "deny"
[[rule]]
name = "kl"
images = ["r.example/*"]
[[rule.signer]]
issuer = "https://token.actions.githubusercontent.com"
subject_regex = '(?:[a-z]{1,100}){1,100}x'
"#;
        let path = std::path::Path::new("/etc/portcullis/policy.toml");
        // a start parses it (the signer will match nothing: fail closed)
        assert!(crate::policy::Policy::parse(text, path).is_ok());
        // `policy check` compiles it and says so, as an error
        let (policy, problems) = crate::policy::check(text, path);
        assert!(policy.is_none());
        let p = problems
            .iter()
            .find(|p| p.message.contains("matches nothing"))
            .expect("a finding for the expression");
        assert_eq!(p.severity, Severity::Error);
        assert!(p.message.contains("rule \"kl\""), "{}", p.message);
        // a usual expression is no finding
        let fine = text.replace("(?:[a-z]{1,100}){1,100}x", "https://github[.]com/acme/.+");
        let (policy, problems) = crate::policy::check(&fine, path);
        assert!(policy.is_some(), "{problems:?}");
    }
}
