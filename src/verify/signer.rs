//! Who may sign: the signer types a policy rule names (keys, keyless
//! identities, Fulcio claims) and what a rule asks of provenance. The policy
//! file ([`crate::policy`]) builds them; verification ([`crate::verify`])
//! consumes them.

use std::fmt;
use std::path::PathBuf;

use super::expression::Expression;

/// Who may sign images of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// A public key in PEM (SubjectPublicKeyInfo) form, read from a file.
    Key {
        /// The key file.
        path: PathBuf,
        /// Also require a transparency-log entry for the signature.
        require_tlog: bool,
    },
    /// A keyless identity: a short-lived certificate from a CA of the trust
    /// root (Fulcio), or of the named CA bundle (bring-your-own PKI).
    Keyless(Box<Keyless>),
}

/// The keyless signer form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyless {
    /// The certificate's OIDC issuer.
    pub issuer: Matcher,
    /// The certificate's subject alternative name.
    pub subject: Matcher,
    /// Fulcio extension claims that must match exactly, by name
    /// (see [`FULCIO_EXTENSIONS`]).
    pub extensions: Vec<(String, String)>,
    /// A PEM CA bundle to chain to instead of the trust root's Fulcio CAs.
    pub ca: Option<PathBuf>,
    /// Require a transparency-log entry (default true).
    pub require_tlog: bool,
}

/// Exact or regular-expression match of a certificate field. Regular
/// expressions must match the whole value (they are anchored).
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to this string.
    Exact(String),
    /// Matched in full by this expression (source kept for display),
    /// compiled on first use: only a verification matches, and most starts
    /// are answered by the verdict cache. Its syntax is checked at load.
    Regex(String, std::sync::OnceLock<Option<Expression>>),
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Matcher::Exact(a), Matcher::Exact(b)) => a == b,
            (Matcher::Regex(a, _), Matcher::Regex(b, _)) => a == b,
            _ => false,
        }
    }
}
impl Eq for Matcher {}

impl Matcher {
    /// Does `value` match?
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            // An expression that parsed but does not compile within the
            // size limit matches nothing: the signer is refused.
            Matcher::Regex(src, cell) => compiled(src, cell).is_some_and(|r| r.is_match(value)),
        }
    }

    /// Compile the expression now, if not yet. A rule's signers load (and
    /// call this) before the verification child forks: the child inherits
    /// the compiled expression and runs only the match, without faulting
    /// in the compiler's code and heap a second time. The expression is
    /// policy text, which the gate parses anyway; the child is for the
    /// registry's bytes.
    pub fn prepare(&self) {
        if let Matcher::Regex(src, cell) = self {
            compiled(src, cell);
        }
    }

    /// Compile the expression now (`policy check` does, so that one over the
    /// compiled size limit is reported before a start refuses its signer).
    pub fn compile_check(&self) -> Result<(), String> {
        match self {
            Matcher::Exact(_) => Ok(()),
            Matcher::Regex(src, _) => Expression::compile(src)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// Parse (not compile) `src`: a syntax error fails the policy's load.
    pub(crate) fn regex(src: &str) -> Result<Matcher, String> {
        Expression::parse(src)
            .map(|()| Matcher::Regex(src.to_string(), std::sync::OnceLock::new()))
            .map_err(|e| e.to_string())
    }
}

/// The expression `src`, compiled on first use into `cell`; `None` when
/// it does not compile within the size limit.
fn compiled<'a>(
    src: &str,
    cell: &'a std::sync::OnceLock<Option<Expression>>,
) -> Option<&'a Expression> {
    cell.get_or_init(|| Expression::compile(src).ok()).as_ref()
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(s) => f.write_str(s),
            Matcher::Regex(s, _) => write!(f, "/{s}/"),
        }
    }
}

/// Fulcio certificate extension claims a keyless signer may constrain.
pub const FULCIO_EXTENSIONS: &[&str] = &[
    "build_signer_uri",
    "build_signer_digest",
    "runner_environment",
    "source_repository_uri",
    "source_repository_digest",
    "source_repository_ref",
    "source_repository_identifier",
    "source_repository_owner_uri",
    "source_repository_owner_identifier",
    "build_config_uri",
    "build_config_digest",
    "build_trigger",
    "run_invocation_uri",
    "source_repository_visibility_at_signing",
    "deployment_environment",
    "github_workflow_trigger",
    "github_workflow_sha",
    "github_workflow_name",
    "github_workflow_repository",
    "github_workflow_ref",
];

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Key { path, .. } => write!(f, "key:{}", path.display()),
            Signer::Keyless(k) => write!(f, "keyless:{} @ {}", k.subject, k.issuer),
        }
    }
}

/// What a rule requires of provenance (`[rule.provenance]`), as written;
/// [`crate::provenance`] compiles and checks it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProvenancePolicy {
    /// Allowed builder IDs (exact or glob).
    pub builder_ids: Vec<String>,
    /// Allowed source repository URIs (exact or glob).
    pub source_uris: Vec<String>,
    /// Allowed build types (exact or glob).
    pub build_types: Vec<String>,
    /// Allowed source refs (exact or glob, e.g. `refs/tags/v*`).
    pub source_refs: Vec<String>,
    /// Oldest acceptable build, as a duration before now.
    pub max_age: Option<std::time::Duration>,
    /// Who may sign the attestation; empty: the rule's own signers.
    pub signers: Vec<Signer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsed at load, compiled on first use, anchored either way; a syntax
    /// error still fails the load; an expression over the compiled size
    /// limit matches nothing (the signer is refused).
    #[test]
    fn regex_matchers_compile_lazily_and_match_in_full() {
        let m = Matcher::regex("https://github.com/acme/.+").unwrap();
        let Matcher::Regex(_, cell) = &m else {
            panic!("not a regex")
        };
        assert!(cell.get().is_none(), "compiled at load");
        assert!(m.matches("https://github.com/acme/app"));
        assert!(cell.get().is_some_and(Option::is_some));
        assert!(!m.matches("xhttps://github.com/acme/app"));
        assert!(!m.matches("https://github.com/acme/"));
        assert!(Matcher::regex("(unclosed")
            .unwrap_err()
            .starts_with("invalid regular expression"));
        let huge = Matcher::regex("(?:[a-z]{1,100}){1,100}x").unwrap();
        assert!(!huge.matches("ax"));
    }
}
