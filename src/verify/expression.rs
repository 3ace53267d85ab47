//! The regular expressions a keyless signer's identity is matched with
//! (`issuer_regex`, `subject_regex`): their syntax (Rust's `regex` syntax,
//! Unicode-aware), their anchoring (an expression must match the whole
//! value), their size limit, and the engine that matches them.
//!
//! The engine is regex-automata's PikeVM over a Thompson NFA compiled at
//! the byte level, built once per verification in the sandboxed child.
//! Compiling an expression with a non-ASCII class (`.` is one) the usual
//! way makes the NFA compiler zero-fill a 10,000-entry UTF-8 map (about
//! 400 KB, some 100 page faults in a fresh process) whatever the
//! expression's size. Here a small Unicode class is rewritten first into
//! the alternation of its UTF-8 byte sequences (regex-syntax's
//! `Utf8Sequences`), which accepts exactly the UTF-8 encodings of the
//! class's characters. Matched against a `&str`, the result is the same as
//! the `regex` crate's; the differential test below holds the two engines
//! to that. Large classes (Unicode `\w`, `\d`) are left to the compiler.

use regex_automata::nfa::thompson::{self, pikevm::PikeVM};
use regex_automata::{Anchored, Input};
use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, Hir, HirKind};
use regex_syntax::utf8::Utf8Sequences;

/// The compiled NFA's size limit: an expression over it is refused.
const SIZE_LIMIT: usize = 1 << 20;

/// A Unicode class of at most this many UTF-8 byte sequences is rewritten
/// into them; a larger one keeps the compiler's shared-suffix encoding.
const SMALL_CLASS: usize = 32;

/// Why an expression is refused.
#[derive(Debug, thiserror::Error)]
pub enum ExpressionError {
    /// Not valid syntax (including nesting deeper than 250).
    #[error("invalid regular expression: {0}")]
    Syntax(#[from] Box<regex_syntax::Error>),
    /// Valid, but its NFA exceeds the size limit.
    #[error("invalid regular expression: {0}")]
    Build(#[from] Box<thompson::BuildError>),
}

/// A compiled, anchored expression.
#[derive(Debug, Clone)]
pub struct Expression {
    vm: PikeVM,
}

impl Expression {
    /// Check `src`'s syntax without compiling it (a policy's load does).
    pub fn parse(src: &str) -> Result<(), ExpressionError> {
        parse(src).map(|_| ())
    }

    /// Compile `src`, anchored at both ends.
    pub fn compile(src: &str) -> Result<Expression, ExpressionError> {
        let hir = bytes(&parse(src)?);
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .utf8(false)
                    .nfa_size_limit(Some(SIZE_LIMIT)),
            )
            .build_from_hir(&hir)
            .map_err(Box::new)?;
        let vm = PikeVM::new_from_nfa(nfa).map_err(Box::new)?;
        Ok(Expression { vm })
    }

    /// Does the expression match all of `value`?
    pub fn is_match(&self, value: &str) -> bool {
        let mut cache = self.vm.create_cache();
        self.vm
            .is_match(&mut cache, Input::new(value).anchored(Anchored::Yes))
    }
}

fn parse(src: &str) -> Result<Hir, ExpressionError> {
    regex_syntax::Parser::new()
        .parse(&format!("^(?:{src})$"))
        .map_err(|e| Box::new(e).into())
}

/// `hir` with each small non-ASCII Unicode class replaced by the
/// alternation of its UTF-8 byte sequences.
fn bytes(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) if !class.is_ascii() => {
            let sequences: Vec<_> = class
                .iter()
                .flat_map(|r| Utf8Sequences::new(r.start(), r.end()))
                .take(SMALL_CLASS + 1)
                .collect();
            if sequences.len() > SMALL_CLASS {
                return hir.clone();
            }
            Hir::alternation(
                sequences
                    .iter()
                    .map(|seq| {
                        Hir::concat(
                            seq.as_slice()
                                .iter()
                                .map(|b| {
                                    Hir::class(Class::Bytes(ClassBytes::new([
                                        ClassBytesRange::new(b.start, b.end),
                                    ])))
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
        }
        HirKind::Repetition(rep) => {
            let mut rep = rep.clone();
            rep.sub = Box::new(bytes(&rep.sub));
            Hir::repetition(rep)
        }
        HirKind::Capture(cap) => {
            let mut cap = cap.clone();
            cap.sub = Box::new(bytes(&cap.sub));
            Hir::capture(cap)
        }
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(bytes).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(bytes).collect()),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => hir.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-level engine accepts exactly what the `regex` crate does,
    /// anchored, over expressions built from fragments that exercise the
    /// rewrite (`.`, negated classes, case folding with non-ASCII
    /// equivalents, Unicode `\s`, `\w`, `\d`, word boundaries) and values
    /// with one- to four-byte characters.
    #[test]
    fn byte_level_engine_agrees_with_the_regex_crate() {
        let fragments = [
            "",
            ".",
            ".+",
            "a.c",
            "[^/]+",
            "[^a]",
            "(?i)k",
            "(?i)straße",
            r"\s",
            r"\w+",
            r"\d",
            r"\b",
            r"(?-u:\w)+",
            "[é-ü]",
            "[^é]",
            ".{2}",
            "(?s).",
            "☃|x",
            "[\u{10000}-\u{10FFFF}]",
        ];
        let values = [
            "",
            "a",
            "abc",
            "aéc",
            "a☃c",
            "a\u{1F600}c",
            "K",
            "\u{212A}",
            "STRASSE",
            "straße",
            "a/b",
            "\u{2003}",
            "\n",
            "ü",
            "٣",
            "x y",
            "é",
            "ßé",
        ];
        let (mut checked, mut matched) = (0, 0);
        for a in fragments {
            for b in fragments {
                let src = format!("{a}{b}");
                let ours = Expression::compile(&src).unwrap();
                let theirs = regex::Regex::new(&format!("^(?:{src})$")).unwrap();
                for v in values {
                    for w in values {
                        let value = format!("{v}{w}");
                        assert_eq!(
                            ours.is_match(&value),
                            theirs.is_match(&value),
                            "/{src}/ against {value:?}"
                        );
                        checked += 1;
                        matched += usize::from(theirs.is_match(&value));
                    }
                }
            }
        }
        assert_eq!(checked, fragments.len().pow(2) * values.len().pow(2));
        assert!(
            matched > 1_000 && checked - matched > 1_000,
            "{matched} of {checked}"
        );
    }

    #[test]
    fn anchored_at_both_ends() {
        let e = Expression::compile("https://github.com/acme/.+").unwrap();
        assert!(e.is_match("https://github.com/acme/app"));
        assert!(!e.is_match("xhttps://github.com/acme/app"));
        assert!(!e.is_match("https://github.com/acme/"));
        let alt = Expression::compile("a|b").unwrap();
        assert!(alt.is_match("b"));
        assert!(!alt.is_match("ab"));
    }

    #[test]
    fn syntax_errors_and_oversized_expressions_are_refused() {
        let e = Expression::parse("(unclosed").unwrap_err();
        assert!(matches!(e, ExpressionError::Syntax(_)));
        assert!(e.to_string().starts_with("invalid regular expression"));
        assert!(Expression::parse("(?:[a-z]{1,100}){1,100}x").is_ok());
        let e = Expression::compile("(?:[a-z]{1,100}){1,100}x").unwrap_err();
        assert!(matches!(e, ExpressionError::Build(_)), "{e}");
    }

    /// `.` is rewritten; Unicode `\w` (hundreds of sequences) is not.
    #[test]
    fn small_classes_are_rewritten_and_large_ones_kept() {
        fn non_ascii_unicode_classes(h: &Hir) -> usize {
            match h.kind() {
                HirKind::Class(Class::Unicode(c)) => usize::from(!c.is_ascii()),
                HirKind::Repetition(r) => non_ascii_unicode_classes(&r.sub),
                HirKind::Capture(c) => non_ascii_unicode_classes(&c.sub),
                HirKind::Concat(v) | HirKind::Alternation(v) => {
                    v.iter().map(non_ascii_unicode_classes).sum()
                }
                _ => 0,
            }
        }
        let dot = parse("a.b[^/]").unwrap();
        assert_eq!(non_ascii_unicode_classes(&dot), 2);
        assert_eq!(non_ascii_unicode_classes(&bytes(&dot)), 0);
        let word = parse(r"\w").unwrap();
        assert_eq!(non_ascii_unicode_classes(&bytes(&word)), 1);
    }
}
