//! Generated policies and image references for the property tests of rule
//! selection and of the lints (deterministic: a fixed seed gives the same
//! cases on every run).

use std::path::Path;

use super::Policy;
use crate::reference::ImageRef;

/// xorshift64: small, deterministic, good enough to spread test cases.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// One image pattern: a host (or a wildcard in its place), up to three path
/// segments mixing literals and glob syntax, and maybe a tag or digest.
pub fn pattern(rng: &mut Rng) -> String {
    if rng.below(40) == 0 {
        return "**".into();
    }
    let host = rng.pick(&[
        "a.io",
        "a.io",
        "b.io:5000",
        "localhost",
        "docker.io",
        "*.io",
        "*",
        "**",
        "a.i?",
        "{a,b}.io",
    ]);
    let mut s = host.to_string();
    let segments = rng.below(4);
    for _ in 0..segments {
        s.push('/');
        s.push_str(rng.pick(&[
            "x", "x", "y", "team", "library", "*", "**", "x*", "?", "[xy]", "{x,y}", "x\\*", "xa",
        ]));
    }
    let digest = format!("@{DIGEST}");
    let tail = rng.pick(&["", "", "", ":1", ":*", ":1*", "@*", &digest]);
    // `*@*` would not start with a host (a refused pattern)
    if segments > 0 || tail != "@*" {
        s.push_str(tail);
    }
    s
}

/// An image reference over the same vocabulary.
pub fn image(rng: &mut Rng) -> ImageRef {
    loop {
        let mut s = rng
            .pick(&["a.io", "b.io:5000", "localhost", "docker.io", "c.io"])
            .to_string();
        for _ in 0..1 + rng.below(3) {
            s.push('/');
            s.push_str(rng.pick(&["x", "y", "team", "xa", "library", "z"]));
        }
        match rng.below(4) {
            0 => {}
            1 => s.push_str(&format!(":{}", rng.pick(&["1", "12", "latest"]))),
            2 => s.push_str(&format!("@{DIGEST}")),
            _ => s.push_str(&format!(":1@{DIGEST}")),
        }
        if let Ok(r) = ImageRef::parse(&s) {
            return r;
        }
    }
}

/// A valid policy of `n` rules, each with one to three generated patterns.
pub fn policy_of(rng: &mut Rng, n: usize) -> Policy {
    Policy::parse(&policy_text(rng, n), Path::new("/p.toml")).expect("generated policy is valid")
}

/// The text of a valid policy of `n` rules, as [`policy_of`] parses it.
pub fn policy_text(rng: &mut Rng, n: usize) -> String {
    let mut text = String::from("mode = \"enforce\"\ndefault = \"deny\"\n");
    for i in 0..n {
        let pats: Vec<String> = (0..1 + rng.below(3))
            .map(|_| format!("'{}'", pattern(rng)))
            .collect();
        let action = rng.pick(&["allow", "deny"]);
        text.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\nimages = [{}]\naction = \"{action}\"\n",
            pats.join(", ")
        ));
    }
    text
}
