//! The rule index: which rules can match an image, found from the literal
//! prefixes of their patterns rather than by trying every rule in turn.
//!
//! This module owns the index and the fact it rests on: a glob matches only
//! strings that begin with its literal prefix (its text before the first
//! glob metacharacter). Each pattern is filed under that prefix cut back to
//! a whole path segment (its *key*: `registry.example/team` for
//! `registry.example/team/*`, the whole text for a pattern without
//! metacharacters, empty for one that starts with a wildcard). Any string a
//! pattern matches then has the pattern's key as one of its own segment
//! prefixes, so an image's candidates are the rules filed under its few
//! segment prefixes: a handful of hash lookups whatever the number of rules.
//! Candidates are tried in rule order with the rule's own matcher, so the
//! first that matches is the one a scan of every rule would find.

use std::collections::HashMap;

use super::{ImagePattern, Rule};

/// Everything that may start glob syntax in a pattern, `\` escapes included:
/// a superset is safe (the key only gets shorter).
const META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

/// The key a pattern is filed under: its text up to the last `/` before its
/// first metacharacter (the whole text when it has none).
pub(super) fn key(text: &str) -> &str {
    match text.find(META) {
        None => text,
        Some(i) => text[..i].rfind('/').map_or("", |j| &text[..j]),
    }
}

/// The keys a string can have been filed under: the empty key, each prefix
/// that ends before a `/`, and the whole string.
fn keys_of(s: &str) -> impl Iterator<Item = &str> {
    std::iter::once("")
        .chain(s.match_indices('/').map(move |(i, _)| &s[..i]))
        .chain(std::iter::once(s))
}

/// The rules filed under the keys of `subjects`, in rule order, each once;
/// `rules_of` adds those of one key (the index in memory, or the compiled
/// form's lines).
pub(super) fn gather<E>(
    subjects: &[&str],
    mut rules_of: impl FnMut(&str, &mut Vec<usize>) -> Result<(), E>,
) -> Result<Vec<usize>, E> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for s in subjects {
        for k in keys_of(s) {
            if seen.contains(&k) {
                continue;
            }
            seen.push(k);
            rules_of(k, &mut out)?;
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Rules by the keys of their patterns.
#[derive(Debug, Clone, Default)]
pub(super) struct RuleIndex {
    /// Key to the indices of the rules with a pattern filed under it, ascending.
    by_key: HashMap<Box<str>, Vec<usize>>,
    /// How many rules it was built from.
    rules: usize,
}

impl RuleIndex {
    /// Index these rules (their order is their index).
    pub(super) fn build(rules: &[Rule]) -> Self {
        Self::from_patterns(rules.iter().map(|r| r.images.as_slice()))
    }

    /// Index one list of patterns per rule, in rule order.
    pub(super) fn from_patterns<'a>(rules: impl Iterator<Item = &'a [ImagePattern]>) -> Self {
        let mut by_key: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut n = 0;
        for (i, patterns) in rules.enumerate() {
            n = i + 1;
            for p in patterns {
                let k = key(p.as_str());
                match by_key.get_mut(k) {
                    Some(v) => {
                        if v.last() != Some(&i) {
                            v.push(i);
                        }
                    }
                    None => {
                        by_key.insert(k.into(), vec![i]);
                    }
                }
            }
        }
        RuleIndex { by_key, rules: n }
    }

    /// Its entries sorted by key: what [`super::compiled`] stores.
    pub(super) fn sorted_entries(&self) -> Vec<(&str, &[usize])> {
        let mut v: Vec<_> = self
            .by_key
            .iter()
            .map(|(k, ids)| (&**k, ids.as_slice()))
            .collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    }

    /// How many rules it indexes.
    pub(super) fn len(&self) -> usize {
        self.rules
    }

    /// The rules that may have a pattern matching one of `subjects`, in rule
    /// order, each once: every rule that does is among them.
    pub(super) fn candidates(&self, subjects: &[&str]) -> Vec<usize> {
        let found: Result<_, std::convert::Infallible> = gather(subjects, |k, out| {
            if let Some(v) = self.by_key.get(k) {
                out.extend_from_slice(v);
            }
            Ok(())
        });
        found.unwrap_or_else(|e| match e {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stop_at_the_segment_before_the_first_wildcard() {
        assert_eq!(key("registry.example/team/*"), "registry.example/team");
        assert_eq!(key("registry.example/team/app-*"), "registry.example/team");
        assert_eq!(key("registry.example/team/**"), "registry.example/team");
        assert_eq!(key("registry.example/te?m/app"), "registry.example");
        assert_eq!(key("docker.io/library/nginx"), "docker.io/library/nginx");
        assert_eq!(key("docker.io/library/nginx:1.*"), "docker.io/library");
        assert_eq!(key("x.io/a\\*b"), "x.io");
        assert_eq!(key("**"), "");
        assert_eq!(key("*.example/app"), "");
        assert_eq!(key("{a,b}.io/x"), "");
    }

    #[test]
    fn a_string_is_looked_up_under_every_segment_prefix() {
        let ks: Vec<_> = keys_of("r.io/a/b:1").collect();
        assert_eq!(ks, ["", "r.io", "r.io/a", "r.io/a/b:1"]);
    }
}
