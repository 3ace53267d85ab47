//! The files a policy refers to, found in its text with their positions, so
//! `portcullis policy publish` can ship them with it and rewrite each
//! reference to the shipped copy without touching anything else in the file.
//!
//! This module owns which keys name files: a signer's `key` and `ca` (in
//! `[[rule.signer]]` and `[[rule.provenance.signer]]`) and a rule's
//! `trust_root` (a path, or the name of a root kept in the state directory).

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// What a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A signer's public key file.
    Key,
    /// A signer's CA bundle.
    Ca,
    /// A rule's trust root file (a value with a `/`).
    TrustRootFile,
    /// A rule's trust root by name (kept in the state directory).
    TrustRootName,
}

/// One file reference in a policy's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// What it names.
    pub kind: RefKind,
    /// The value as written.
    pub value: String,
    /// Byte range of the value (quotes included) in the text.
    pub span: Range<usize>,
}

/// Every file reference of `text`, in text order. The text must be TOML
/// (validate it as a policy first).
pub fn file_references(text: &str) -> Result<Vec<FileRef>, String> {
    let root = DeTable::parse(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let Some(rules) = root.get_ref().get("rule") else {
        return Ok(out);
    };
    for rule in array(rules) {
        let DeValue::Table(r) = rule.get_ref() else {
            continue;
        };
        if let Some(t) = r.get("trust_root") {
            if let DeValue::String(s) = t.get_ref() {
                let kind = if s.contains('/') {
                    RefKind::TrustRootFile
                } else {
                    RefKind::TrustRootName
                };
                out.push(one(kind, s, t));
            }
        }
        signers(r.get("signer"), &mut out);
        if let Some(p) = r.get("provenance") {
            if let DeValue::Table(p) = p.get_ref() {
                signers(p.get("signer"), &mut out);
            }
        }
    }
    out.sort_by_key(|r| r.span.start);
    Ok(out)
}

fn array<'a, 'b>(v: &'a Spanned<DeValue<'b>>) -> Vec<&'a Spanned<DeValue<'b>>> {
    match v.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        _ => Vec::new(),
    }
}

fn one(kind: RefKind, s: &str, v: &Spanned<DeValue<'_>>) -> FileRef {
    FileRef {
        kind,
        value: s.to_string(),
        span: v.span(),
    }
}

fn signers(v: Option<&Spanned<DeValue<'_>>>, out: &mut Vec<FileRef>) {
    let Some(v) = v else { return };
    for s in array(v) {
        let DeValue::Table(t) = s.get_ref() else {
            continue;
        };
        for (key, kind) in [("key", RefKind::Key), ("ca", RefKind::Ca)] {
            if let Some(x) = t.get(key) {
                if let DeValue::String(text) = x.get_ref() {
                    out.push(one(kind, text, x));
                }
            }
        }
    }
}

/// `text` with each reference's value replaced by a new one (a TOML basic
/// string); `refs` as [`file_references`] returned them, `new` one per ref.
pub fn rewrite(text: &str, refs: &[FileRef], new: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (r, n) in refs.iter().zip(new) {
        out.push_str(&text[at..r.span.start]);
        out.push_str(&toml::Value::String(n.clone()).to_string());
        at = r.span.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"mode = "enforce"
default = "deny"
[[rule]]
name = "a"
images = ["r.io/**"]
trust_root = "staging"
[[rule.signer]]
key = "keys/release.pub"
[[rule.signer]]
issuer = "https://i"
subject = "s"
ca = '/etc/pki/ca.pem'
[rule.provenance]
builder_ids = ["b"]
[[rule.provenance.signer]]
key = "/abs/builder.pub" # comment stays
[[rule]]
name = "b"
images = ["q.io/**"]
trust_root = "/srv/root.json"
[[rule.signer]]
key = "keys/release.pub"
"#;

    #[test]
    fn finds_every_reference_in_order() {
        let refs = file_references(POLICY).unwrap();
        let got: Vec<_> = refs.iter().map(|r| (r.kind, r.value.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (RefKind::TrustRootName, "staging"),
                (RefKind::Key, "keys/release.pub"),
                (RefKind::Ca, "/etc/pki/ca.pem"),
                (RefKind::Key, "/abs/builder.pub"),
                (RefKind::TrustRootFile, "/srv/root.json"),
                (RefKind::Key, "keys/release.pub"),
            ]
        );
    }

    #[test]
    fn rewrites_only_the_values() {
        let refs = file_references(POLICY).unwrap();
        let new: Vec<String> = (0..refs.len()).map(|i| format!("files/f{i}")).collect();
        let out = rewrite(POLICY, &refs, &new);
        assert!(out.contains("trust_root = \"files/f0\"\n"));
        assert!(out.contains("ca = \"files/f2\"\n"));
        assert!(out.contains("key = \"files/f3\" # comment stays\n"));
        assert!(!out.contains("keys/release.pub"));
        let again = file_references(&out).unwrap();
        assert_eq!(again.len(), refs.len());
        let dir = std::path::Path::new("/x");
        crate::policy::Policy::parse(&out, &dir.join("policy.toml")).unwrap();
    }

    #[test]
    fn no_rules_no_references() {
        assert!(file_references("mode = \"audit\"\n").unwrap().is_empty());
    }
}
