//! The node's policy: which images must be signed by whom, and what happens
//! when they are not.
//!
//! This module owns the policy file format (TOML), its validation (every
//! error reported with its line and column, unknown keys included), and rule
//! selection (ordered rules, first match wins), and the form a start reads
//! instead of the TOML once a text has been parsed ([`compiled`]: only the
//! rules that can match the image are decoded). It reads no signatures and
//! knows nothing of containerd; it answers one question: for this normalized
//! image reference, which rule applies, in which mode.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub mod compiled;
pub mod file_check;
mod index;
pub mod lint;
pub mod references;
pub mod summary;
#[cfg(test)]
mod test_gen;

pub use crate::verify::signer::{Keyless, Matcher, ProvenancePolicy, Signer, FULCIO_EXTENSIONS};

/// Where the policy lives unless `PORTCULLIS_POLICY` says otherwise.
pub const DEFAULT_POLICY_PATH: &str = "/etc/portcullis/policy.toml";
/// The shim v2 binary Portcullis hands over to unless the policy names another.
pub const DEFAULT_SHIM: &str = "containerd-shim-runc-v2";
/// Our own shim binary; the policy may never name it as the inner shim.
pub const OWN_SHIM: &str = "containerd-shim-portcullis-v2";
/// Largest policy file accepted, in bytes.
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// Errors loading or validating a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy {path}: {source}; {}", if source.kind() == std::io::ErrorKind::NotFound {
        "create it, or point --policy / PORTCULLIS_POLICY at the policy file"
    } else {
        "make it readable, or point --policy / PORTCULLIS_POLICY at the policy file"
    })]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_POLICY_BYTES`].
    #[error("policy {path} is {size} bytes, over the {MAX_POLICY_BYTES}-byte limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file was read but is not a valid policy.
    #[error("policy {path} is invalid: {first} ({count} error(s); run `portcullis policy check {path}`)", first = .problems.first().map(|p| p.to_string()).unwrap_or_default(), count = .problems.len())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

/// One problem found in a policy file, with its position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
    /// `error` or `warning`.
    pub severity: Severity,
}

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy is refused.
    Error,
    /// The policy is accepted but probably not what was meant.
    Warning,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {sev}: {}", self.line, self.column, self.message)
    }
}

/// What happens when a rule's requirements are not met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse the start.
    Enforce,
    /// Allow the start and record a warning.
    Warn,
    /// Allow the start and record the outcome only.
    Audit,
}

impl Mode {
    /// The policy-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

/// What a rule does with the images it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Require a valid signature from one of the rule's signers.
    Verify,
    /// Exemption: allow without verification (recorded like any verdict).
    Allow,
    /// Refuse outright.
    Deny,
}

impl Action {
    /// The policy-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Verify => "verify",
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

/// One image pattern of a rule.
///
/// Parsed (and so validated) with the policy, but its matcher is compiled
/// only when a start first needs it, and a pattern without glob
/// metacharacters is compared as a string and never parsed as a glob: a
/// node's policy has many rules and each start consults few of them.
#[derive(Debug, Clone)]
pub struct ImagePattern {
    text: String,
    /// `None`: no glob metacharacters, matched by string equality.
    glob: Option<Glob>,
    matcher: std::sync::OnceLock<GlobMatcher>,
    /// The pattern names a repository without tag or digest, so it matches
    /// every tag and digest of the repositories it covers.
    repository_only: bool,
}

impl ImagePattern {
    /// Compile a pattern; `*` stays inside one path segment, `**` crosses them.
    pub fn new(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an image pattern cannot be empty".into());
        }
        let first = text.split('/').next().unwrap_or_default();
        let is_host = first.contains('.') || first.contains(':') || first == "localhost";
        if !is_host && first != "*" && first != "**" {
            return Err(format!(
                "image pattern `{text}` does not start with a registry host; patterns match normalized references, write e.g. `docker.io/library/{text}`"
            ));
        }
        let last = text.rsplit('/').next().unwrap_or_default();
        let repository_only = !text.contains('@') && !last.contains(':');
        let literal = !text.contains(['*', '?', '[', ']', '{', '}', '\\']);
        let glob = if literal {
            None
        } else {
            Some(
                Self::glob(text)
                    .map_err(|e| format!("image pattern `{text}` is not a valid glob: {e}"))?,
            )
        };
        Ok(Self {
            text: text.to_string(),
            glob,
            matcher: std::sync::OnceLock::new(),
            repository_only,
        })
    }

    /// `text` as a glob: `*` within one path segment, a backslash escaping.
    fn glob(text: &str) -> Result<Glob, globset::Error> {
        GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does the pattern match this string as written?
    fn matches_str(&self, s: &str) -> bool {
        match &self.glob {
            None => self.text == s,
            Some(glob) => self
                .matcher
                .get_or_init(|| glob.compile_matcher())
                .is_match(s),
        }
    }

    /// Does this pattern match a normalized reference (`registry/repo:tag`,
    /// `registry/repo@digest` or both)?
    pub fn matches(&self, image: &crate::reference::ImageRef) -> bool {
        self.matches_str(image.normalized())
            || (self.repository_only && self.matches_str(image.repository_name()))
    }
}

/// One ordered rule of the policy.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, unique in the policy, recorded in every verdict.
    pub name: String,
    /// The images it applies to.
    pub images: Vec<ImagePattern>,
    /// What it does.
    pub action: Action,
    /// Its own mode, if it overrides the policy's.
    pub mode: Option<Mode>,
    /// Who may sign (for [`Action::Verify`]); any one suffices.
    pub signers: Vec<Signer>,
    /// Provenance required on top of a signature, if any.
    pub provenance: Option<ProvenancePolicy>,
    /// The trust root for keyless signers (`public-good`, `staging`, or a
    /// file); `None`: the node's cached root.
    pub trust_root: Option<String>,
    /// The line the rule starts on.
    pub line: usize,
}

/// A parsed, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The global mode.
    pub mode: Mode,
    /// What happens to an image no rule matches.
    pub default: DefaultAction,
    /// The inner shim binary (a name looked up on PATH, or an absolute path).
    pub shim: String,
    /// The rules, in order (see [`Policy::rules`]); empty when they are
    /// read from the compiled form instead. Read-only once loaded:
    /// [`Policy::select`] indexes them on first use.
    rules: Vec<Rule>,
    /// `sha256:<hex>` of the file's bytes: recorded with each verdict.
    pub digest: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Warnings found while validating (errors make the load fail).
    pub warnings: Vec<Problem>,
    /// A cached trust root older than this is stale.
    pub trust_root_max_age: Option<std::time::Duration>,
    /// What a stale trust root means.
    pub trust_root_stale: Stale,
    /// What `portcullis reverify` does to a running container whose
    /// verdict no longer holds.
    pub revoked: Revoked,
    /// The rules by the literal prefixes of their patterns, built on the
    /// first [`Policy::select`].
    index: std::sync::OnceLock<index::RuleIndex>,
    /// The compiled form the rules come from, when loaded by
    /// [`Policy::load_for_start`] from one.
    compiled: Option<Box<compiled::Compiled>>,
}

/// `revoked`: what `portcullis reverify` does to a running container that
/// would now be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Revoked {
    /// Record it in the journal and leave it running (the default).
    #[default]
    Report,
    /// Record it, then stop its task (SIGTERM, SIGKILL after a grace period).
    Stop,
}

impl Revoked {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Revoked::Report => "report",
            Revoked::Stop => "stop",
        }
    }
}

/// What a trust root older than `trust_root_max_age` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stale {
    /// Verify anyway and say so in the verdict.
    Warn,
    /// Refuse starts that need the root (subject to the mode).
    Refuse,
}

/// The default action for images that match no rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// Allow them (recorded).
    Allow,
    /// Refuse them (subject to the global mode).
    Deny,
}

/// The rule that applies to an image, or the default.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// A rule matched.
    Rule(&'a Rule),
    /// No rule matched; the policy's default applies.
    Default(DefaultAction),
}

impl Policy {
    /// The path named by `PORTCULLIS_POLICY`, else [`DEFAULT_POLICY_PATH`].
    pub fn default_path() -> PathBuf {
        std::env::var_os("PORTCULLIS_POLICY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_POLICY_PATH))
    }

    /// Read and validate a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let resolved = Self::resolve(path);
        let text = Self::read(path, &resolved)?;
        Self::parse_read(path, &resolved, &text)
    }

    /// [`Policy::load`] for a start: the same policy, read from its compiled
    /// form in the state directory when there is one for these bytes (see
    /// [`compiled`]), else parsed and then compiled for the next start. Only
    /// the rules [`Policy::select`] consults are decoded; [`Policy::rules`]
    /// parses them all.
    pub fn load_for_start(
        path: &Path,
        state: &crate::state::cache::StateDir,
    ) -> Result<Policy, PolicyError> {
        let resolved = Self::resolve(path);
        // The digest names the compiled entry: hashed in parts, so a start
        // that finds its entry never holds the whole text.
        let digest = Self::digest_of(path, &resolved)?;
        if let Some(mut p) = compiled::open(state, &resolved, &digest) {
            p.path = path.to_path_buf();
            return Ok(p);
        }
        let text = Self::read(path, &resolved)?;
        let p = Self::parse_read(path, &resolved, &text)?;
        compiled::store(state, &resolved, &p);
        Ok(p)
    }

    /// `sha256:<hex>` of the policy file at `resolved`, read in parts under
    /// the same checks as [`Policy::read`].
    fn digest_of(path: &Path, resolved: &Path) -> Result<String, PolicyError> {
        use crate::base::fsio::ReadOptions;
        crate::digest::sha256_prefixed_file(resolved, ReadOptions::bounded(MAX_POLICY_BYTES))
            .map_err(|e| read_failure(path, e))
    }

    /// Where the policy file named `path` really is. Symlinks are followed:
    /// /etc files may be placed as symlinks. The path is resolved once, and
    /// the file and every relative path in it are read from that one
    /// directory: a pulled policy's release directory, which `policy pull`
    /// swaps in by a symlink rename, is never mixed with the next one (see
    /// `crate::state::policy_store`).
    fn resolve(path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }

    /// The text of the policy file named `path`, read at `resolved`,
    /// bounded and never blocking.
    fn read(path: &Path, resolved: &Path) -> Result<String, PolicyError> {
        use crate::base::fsio::{self, ReadOptions};
        let bytes = fsio::read(resolved, ReadOptions::bounded(MAX_POLICY_BYTES))
            .map_err(|e| read_failure(path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| PolicyError::Invalid {
            path: path.to_path_buf(),
            problems: vec![Problem {
                line: 1,
                column: 1,
                message: "the file is not UTF-8 text".into(),
                severity: Severity::Error,
            }],
        })?;
        Ok(text)
    }

    /// Parse what [`Policy::read`] read: relative paths resolve against
    /// `resolved`'s directory, errors name `path`.
    fn parse_read(path: &Path, resolved: &Path, text: &str) -> Result<Policy, PolicyError> {
        let mut p = Self::parse(text, resolved).map_err(|e| match e {
            PolicyError::Invalid { problems, .. } => PolicyError::Invalid {
                path: path.to_path_buf(),
                problems,
            },
            other => other,
        })?;
        p.path = path.to_path_buf();
        Ok(p)
    }

    /// The rules, in order. A policy read from its compiled form parses its
    /// text for them (empty only if that text no longer parses, which a text
    /// that compiled under this binary cannot do).
    pub fn rules(&self) -> &[Rule] {
        match &self.compiled {
            Some(c) => c.full().unwrap_or_default(),
            None => &self.rules,
        }
    }

    /// [`Policy::load`], with the lints' findings (see [`lint`]) among its
    /// warnings: for the tools that report them, never for a start.
    pub fn load_with_lints(path: &Path) -> Result<Policy, PolicyError> {
        let mut p = Self::load(path)?;
        p.warnings.extend(lint::lint(p.rules()));
        p.warnings = sort(std::mem::take(&mut p.warnings));
        Ok(p)
    }

    /// Validate policy text (no lints: see [`check`]); `path` is recorded (and used to resolve relative
    /// key paths against the policy's directory).
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        let (policy, problems) = parse_collect(text, path, false);
        let (errors, warnings): (Vec<_>, Vec<_>) = problems
            .into_iter()
            .partition(|p| p.severity == Severity::Error);
        match policy {
            Some(mut p) if errors.is_empty() => {
                p.warnings = warnings;
                Ok(p)
            }
            _ => Err(PolicyError::Invalid {
                path: path.to_path_buf(),
                problems: errors,
            }),
        }
    }

    /// Which rule governs this image: the first that matches, else the default.
    ///
    /// Only the rules the index names as candidates are tried (in order), so
    /// the cost does not grow with the number of rules.
    pub fn select(&self, image: &crate::reference::ImageRef) -> Selection<'_> {
        if let Some(c) = &self.compiled {
            return self.select_compiled(c, image);
        }
        let index = self
            .index
            .get_or_init(|| index::RuleIndex::build(&self.rules));
        if index.len() != self.rules.len() {
            // The rules changed after they were indexed: try them all.
            return self.select_linear(image);
        }
        index
            .candidates(&[image.normalized(), image.repository_name()])
            .into_iter()
            .map(|i| &self.rules[i])
            .find(|r| r.images.iter().any(|p| p.matches(image)))
            .map(Selection::Rule)
            .unwrap_or(Selection::Default(self.default))
    }

    /// [`Policy::select`] on the compiled form: the candidates its index
    /// names, each decoded on first use. A candidate or index line that does
    /// not decode sends the selection to the full parse of the text; if even
    /// that fails, the start is refused (never a rule skipped).
    fn select_compiled<'a>(
        &'a self,
        c: &'a compiled::Compiled,
        image: &crate::reference::ImageRef,
    ) -> Selection<'a> {
        let full = || match c.full() {
            Some(rules) => Self::first_match(rules, image, self.default),
            None => Selection::Default(DefaultAction::Deny),
        };
        let Ok(candidates) = c.candidates(&[image.normalized(), image.repository_name()]) else {
            return full();
        };
        for i in candidates {
            match c.rule(i) {
                Some(r) if r.images.iter().any(|p| p.matches(image)) => return Selection::Rule(r),
                Some(_) => {}
                None => return full(),
            }
        }
        Selection::Default(self.default)
    }

    /// [`Policy::select`] by trying every rule in order.
    fn select_linear(&self, image: &crate::reference::ImageRef) -> Selection<'_> {
        Self::first_match(&self.rules, image, self.default)
    }

    /// The first of `rules` that matches, else `default`.
    fn first_match<'a>(
        rules: &'a [Rule],
        image: &crate::reference::ImageRef,
        default: DefaultAction,
    ) -> Selection<'a> {
        rules
            .iter()
            .find(|r| r.images.iter().any(|p| p.matches(image)))
            .map(Selection::Rule)
            .unwrap_or(Selection::Default(default))
    }

    /// The mode that applies under a selection.
    pub fn mode_for(&self, selection: &Selection<'_>) -> Mode {
        match selection {
            Selection::Rule(r) => r.mode.unwrap_or(self.mode),
            Selection::Default(_) => self.mode,
        }
    }
}

/// Validate `text` fully and return every problem (errors, warnings and the
/// lints' findings), in file order, with the policy when there were no
/// errors. Used by `portcullis policy check`.
pub fn check(text: &str, path: &Path) -> (Option<Policy>, Vec<Problem>) {
    parse_collect(text, path, true)
}

struct Ctx<'t> {
    text: &'t str,
    problems: Vec<Problem>,
    /// Offsets of the text's newlines, found on the first position asked for.
    newlines: std::cell::OnceCell<Vec<usize>>,
}

impl Ctx<'_> {
    fn pos(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let newlines = self.newlines.get_or_init(|| {
            self.text
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect()
        });
        let before = newlines.partition_point(|&nl| nl < offset);
        let line_start = before.checked_sub(1).map_or(0, |i| newlines[i] + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (before + 1, col)
    }

    fn push(&mut self, span: Range<usize>, severity: Severity, message: String) {
        let (line, column) = self.pos(span.start);
        self.problems.push(Problem {
            line,
            column,
            message,
            severity,
        });
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(span, Severity::Error, message.into());
    }

    fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(span, Severity::Warning, message.into());
    }

    fn string(&mut self, v: &Spanned<DeValue<'_>>, what: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    v.span(),
                    format!("`{what}` must be a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn enum_value<T: Copy>(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        what: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let s = self.string(v, what)?;
        match choices.iter().find(|(name, _)| *name == s) {
            Some((_, t)) => Some(*t),
            None => {
                let names: Vec<_> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                self.error(
                    v.span(),
                    format!(
                        "`{what}` is \"{s}\"; it must be one of {}",
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

const MODES: &[(&str, Mode)] = &[
    ("enforce", Mode::Enforce),
    ("warn", Mode::Warn),
    ("audit", Mode::Audit),
];
const DEFAULTS: &[(&str, DefaultAction)] = &[
    ("allow", DefaultAction::Allow),
    ("deny", DefaultAction::Deny),
];
const ACTIONS: &[(&str, Action)] = &[
    ("verify", Action::Verify),
    ("allow", Action::Allow),
    ("deny", Action::Deny),
];

fn unknown_key(
    ctx: &mut Ctx<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    known: &[&str],
    at: &str,
) {
    ctx.error(
        key.span(),
        format!(
            "unknown key `{}` in {at}; known keys: {}",
            key.get_ref(),
            known.join(", ")
        ),
    );
}

fn parse_collect(text: &str, path: &Path, lints: bool) -> (Option<Policy>, Vec<Problem>) {
    let mut ctx = Ctx {
        text,
        problems: Vec::new(),
        newlines: std::cell::OnceCell::new(),
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    for e in &syntax {
        let span = e.span().unwrap_or(0..0);
        ctx.error(span, format!("TOML syntax: {}", e.message().trim()));
    }
    if !syntax.is_empty() {
        return (None, sort(ctx.problems));
    }
    let root = root.into_inner();
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();

    let mut mode = Mode::Enforce;
    let mut default = DefaultAction::Deny;
    let mut shim = DEFAULT_SHIM.to_string();
    let mut rules = Vec::new();
    let mut saw_mode = false;
    let mut saw_default = false;
    let mut trust_root_max_age = None;
    let mut trust_root_stale = Stale::Warn;
    let mut revoked = Revoked::Report;
    const TOP: &[&str] = &[
        "version",
        "mode",
        "default",
        "shim",
        "trust_root_max_age",
        "trust_root_stale",
        "revoked",
        "rule",
    ];
    for (k, v) in root.iter() {
        match k.get_ref().as_ref() {
            "version" => match v.get_ref() {
                DeValue::Integer(i) if i.as_str() == "1" => {}
                _ => ctx.error(
                    v.span(),
                    "`version` must be 1 (the only policy format version)",
                ),
            },
            "mode" => {
                saw_mode = true;
                if let Some(m) = ctx.enum_value(v, "mode", MODES) {
                    mode = m;
                }
            }
            "default" => {
                saw_default = true;
                if let Some(d) = ctx.enum_value(v, "default", DEFAULTS) {
                    default = d;
                }
            }
            "shim" => {
                if let Some(s) = ctx.string(v, "shim") {
                    match validate_shim(&s) {
                        Ok(()) => shim = s,
                        Err(m) => ctx.error(v.span(), m),
                    }
                }
            }
            "trust_root_max_age" => match ctx
                .string(v, "trust_root_max_age")
                .map(|t| parse_duration(&t))
            {
                Some(Ok(d)) => trust_root_max_age = Some(d),
                Some(Err(m)) => ctx.error(v.span(), format!("`trust_root_max_age`: {m}")),
                None => {}
            },
            "trust_root_stale" => {
                if let Some(x) = ctx.enum_value(
                    v,
                    "trust_root_stale",
                    &[("warn", Stale::Warn), ("refuse", Stale::Refuse)],
                ) {
                    trust_root_stale = x;
                }
            }
            "revoked" => {
                if let Some(x) = ctx.enum_value(
                    v,
                    "revoked",
                    &[("report", Revoked::Report), ("stop", Revoked::Stop)],
                ) {
                    revoked = x;
                }
            }
            "rule" => match v.get_ref() {
                DeValue::Array(items) => {
                    for item in items {
                        if let Some(rule) = parse_rule(&mut ctx, item, &base_dir) {
                            rules.push(rule);
                        }
                    }
                }
                other => ctx.error(
                    v.span(),
                    format!(
                        "`rule` must be an array of tables (`[[rule]]`), found {}",
                        other.type_str()
                    ),
                ),
            },
            _ => unknown_key(&mut ctx, k, TOP, "the policy"),
        }
    }
    if !saw_mode {
        ctx.warn(0..0, "no `mode` set: defaulting to \"enforce\"");
    }
    if !saw_default {
        ctx.warn(0..0, "no `default` set: images no rule matches are denied");
    }
    check_names(&mut ctx, &rules);
    if lints {
        ctx.problems.extend(lint::lint(&rules));
    }

    let has_errors = ctx.problems.iter().any(|p| p.severity == Severity::Error);
    let policy = (!has_errors).then(|| Policy {
        mode,
        default,
        shim,
        rules,
        digest: crate::digest::sha256_prefixed(text.as_bytes()),
        path: path.to_path_buf(),
        warnings: Vec::new(),
        trust_root_max_age,
        trust_root_stale,
        revoked,
        index: std::sync::OnceLock::new(),
        compiled: None,
    });
    (policy, sort(ctx.problems))
}

/// The policy error for a failed read of the policy file at `path`.
fn read_failure(path: &Path, e: crate::base::fsio::ReadError) -> PolicyError {
    use crate::base::fsio::ReadError;
    let read_err = |source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    };
    match e {
        // A FIFO or device would block or never end.
        ReadError::NotRegular => read_err(std::io::Error::other(
            "not a regular file (a FIFO, device or directory)",
        )),
        ReadError::TooLarge { size, .. } => PolicyError::TooLarge {
            path: path.to_path_buf(),
            size,
        },
        ReadError::Io(e) => read_err(e),
        e @ ReadError::HardLinks(_) => read_err(std::io::Error::other(e)),
    }
}

fn sort(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| (p.line, p.column));
    problems
}

/// Check a `shim` value: a shim v2 binary name or an absolute path, never ourselves.
pub fn validate_shim(s: &str) -> Result<(), String> {
    let file = Path::new(s)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    if file == OWN_SHIM {
        return Err(format!(
            "`shim` cannot be {OWN_SHIM} itself (that would loop); name the runtime's shim, e.g. {DEFAULT_SHIM}"
        ));
    }
    let is_abs = s.starts_with('/');
    if s.contains('/') && !is_abs {
        return Err(format!(
            "`shim` \"{s}\" must be a bare binary name found on PATH or an absolute path"
        ));
    }
    if !(file.starts_with("containerd-shim-") && file.ends_with("-v2")) {
        return Err(format!(
            "`shim` \"{s}\" is not a shim v2 binary (expected containerd-shim-NAME-v2, e.g. {DEFAULT_SHIM} or containerd-shim-kata-v2)"
        ));
    }
    Ok(())
}

fn parse_rule(ctx: &mut Ctx<'_>, item: &Spanned<DeValue<'_>>, base: &Path) -> Option<Rule> {
    let DeValue::Table(t) = item.get_ref() else {
        ctx.error(item.span(), "each `rule` must be a table");
        return None;
    };
    let (line, _) = ctx.pos(item.span().start);
    let start_errors = ctx.problems.len();
    let mut name = None;
    let mut images = Vec::new();
    let mut images_span = None;
    let mut action = None;
    let mut mode = None;
    let mut signers = Vec::new();
    let mut signer_span = None;
    let mut provenance = None;
    let mut trust_root = None;
    let mut signers_had_errors = false;
    const KNOWN: &[&str] = &[
        "name",
        "images",
        "action",
        "mode",
        "signer",
        "provenance",
        "trust_root",
    ];
    for (k, v) in t.iter() {
        match k.get_ref().as_ref() {
            "name" => {
                if let Some(n) = ctx.string(v, "name") {
                    if n.trim().is_empty() {
                        ctx.error(v.span(), "`name` cannot be empty");
                    } else {
                        name = Some(n);
                    }
                }
            }
            "images" => {
                images_span = Some(v.span());
                match v.get_ref() {
                    DeValue::Array(a) => {
                        if a.is_empty() {
                            ctx.error(v.span(), "`images` is empty: the rule would match nothing");
                        }
                        for p in a {
                            if let Some(s) = ctx.string(p, "images") {
                                match ImagePattern::new(&s) {
                                    Ok(pat) => images.push(pat),
                                    Err(m) => ctx.error(p.span(), m),
                                }
                            }
                        }
                    }
                    other => ctx.error(
                        v.span(),
                        format!(
                            "`images` must be an array of glob strings, found {}",
                            other.type_str()
                        ),
                    ),
                }
            }
            "action" => action = ctx.enum_value(v, "action", ACTIONS),
            "mode" => mode = ctx.enum_value(v, "mode", MODES),
            "signer" => {
                signer_span = Some(v.span());
                let before = ctx.problems.len();
                signers = parse_signers(ctx, v, base, "[[rule.signer]]");
                signers_had_errors = ctx.problems[before..]
                    .iter()
                    .any(|p| p.severity == Severity::Error);
            }
            "provenance" => provenance = parse_provenance(ctx, v, base),
            "trust_root" => {
                if let Some(t) = ctx.string(v, "trust_root") {
                    if t.is_empty() {
                        ctx.error(v.span(), "`trust_root` cannot be empty");
                    } else if !t.contains('/') {
                        // A named root under the state directory (`public-good`, `staging`, ...).
                        match crate::state::trust_names::RootName::parse(&t) {
                            Ok(_) => trust_root = Some(t),
                            Err(e) => ctx.error(v.span(), format!("`trust_root`: {e}")),
                        }
                    } else {
                        trust_root = Some(resolve(base, &t).display().to_string());
                    }
                }
            }
            _ => unknown_key(ctx, k, KNOWN, "a rule"),
        }
    }
    let rule_span = item.span();
    if name.is_none() && !t.contains_key("name") {
        ctx.error(
            rule_span.clone(),
            "a rule needs a `name` (recorded with every verdict)",
        );
    }
    if images_span.is_none() {
        ctx.error(
            rule_span.clone(),
            "a rule needs `images`, a list of image globs",
        );
    }
    let action = action.unwrap_or(Action::Verify);
    // A rule whose `[rule.provenance]` names its own signers may ask for
    // provenance alone: the attestation's signature binds the digest.
    let provenance_only = provenance.as_ref().is_some_and(|p| !p.signers.is_empty());
    // Signers dropped for their own errors are not also reported as missing.
    match action {
        Action::Verify if signers.is_empty() && signers_had_errors => {}
        Action::Verify if signers.is_empty() && provenance_only => {}
        Action::Verify if signers.is_empty() && !t.contains_key("action") => ctx.error(
            signer_span.unwrap_or(rule_span.clone()),
            crate::verify::rule::NOTHING_REQUIRED,
        ),
        Action::Verify if signers.is_empty() => ctx.error(
            signer_span.unwrap_or(rule_span.clone()),
            "action \"verify\" needs at least one `[[rule.signer]]`, or a `[rule.provenance]` with its own `[[rule.provenance.signer]]` to require provenance alone",
        ),
        Action::Allow | Action::Deny if provenance.is_some() => ctx.error(
            rule_span.clone(),
            format!(
                "action \"{}\" takes no [rule.provenance]; remove it or use action = \"verify\"",
                action.as_str()
            ),
        ),
        Action::Allow | Action::Deny if !signers.is_empty() => ctx.error(
            signer_span.unwrap_or(rule_span.clone()),
            format!(
                "action \"{}\" takes no signers; remove the `[[rule.signer]]` entries or use action = \"verify\"",
                action.as_str()
            ),
        ),
        _ => {}
    }
    if ctx.problems[start_errors..]
        .iter()
        .any(|p| p.severity == Severity::Error)
    {
        return None;
    }
    Some(Rule {
        name: name?,
        images,
        action,
        mode,
        signers,
        provenance,
        trust_root,
        line,
    })
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

fn parse_signers(
    ctx: &mut Ctx<'_>,
    v: &Spanned<DeValue<'_>>,
    base: &Path,
    what: &str,
) -> Vec<Signer> {
    let mut signers = Vec::new();
    match v.get_ref() {
        DeValue::Array(a) => {
            for s in a {
                if let Some(signer) = parse_signer(ctx, s, base) {
                    signers.push(signer);
                }
            }
        }
        other => ctx.error(
            v.span(),
            format!(
                "`signer` must be an array of tables (`{what}`), found {}",
                other.type_str()
            ),
        ),
    }
    signers
}

fn string_list(ctx: &mut Ctx<'_>, v: &Spanned<DeValue<'_>>, what: &str) -> Vec<String> {
    match v.get_ref() {
        DeValue::Array(a) => a.iter().filter_map(|x| ctx.string(x, what)).collect(),
        other => {
            ctx.error(
                v.span(),
                format!(
                    "`{what}` must be an array of strings, found {}",
                    other.type_str()
                ),
            );
            Vec::new()
        }
    }
}

/// Parse `30d`, `12h`, `90m`, `3600s` (or a bare number of seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'd')) => (&t[..i], 86_400),
        Some((i, 'h')) => (&t[..i], 3_600),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 's')) => (&t[..i], 1),
        _ => (t, 1),
    };
    let n: u64 = num.trim().parse().map_err(|_| {
        format!("\"{text}\" is not a duration; write e.g. \"30d\", \"12h\", \"90m\"")
    })?;
    if n == 0 {
        return Err("a duration must be positive".into());
    }
    n.checked_mul(mult)
        .filter(|s| *s <= MAX_DURATION_SECS)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("\"{text}\" is too long; at most \"36500d\" (100 years)"))
}

/// The longest duration [`parse_duration`] accepts: 100 years, so that a
/// time plus any duration of the policy still fits every clock type.
pub const MAX_DURATION_SECS: u64 = 36_500 * 86_400;

fn parse_provenance(
    ctx: &mut Ctx<'_>,
    v: &Spanned<DeValue<'_>>,
    base: &Path,
) -> Option<ProvenancePolicy> {
    let DeValue::Table(t) = v.get_ref() else {
        ctx.error(
            v.span(),
            "`provenance` must be a table (`[rule.provenance]`)",
        );
        return None;
    };
    const KNOWN: &[&str] = &[
        "builder_ids",
        "source_uris",
        "build_types",
        "source_refs",
        "max_age",
        "signer",
    ];
    let mut p = ProvenancePolicy::default();
    for (k, val) in t.iter() {
        match k.get_ref().as_ref() {
            "builder_ids" => p.builder_ids = string_list(ctx, val, "builder_ids"),
            "source_uris" => p.source_uris = string_list(ctx, val, "source_uris"),
            "build_types" => p.build_types = string_list(ctx, val, "build_types"),
            "source_refs" => p.source_refs = string_list(ctx, val, "source_refs"),
            "max_age" => {
                let d = match val.get_ref() {
                    DeValue::String(s) => parse_duration(s),
                    DeValue::Integer(i) => parse_duration(i.as_str()),
                    other => Err(format!(
                        "`max_age` must be a duration string like \"30d\", found {}",
                        other.type_str()
                    )),
                };
                match d {
                    Ok(d) => p.max_age = Some(d),
                    Err(m) => ctx.error(val.span(), format!("`max_age`: {m}")),
                }
            }
            "signer" => {
                p.signers = parse_signers(ctx, val, base, "[[rule.provenance.signer]]");
                if p.signers.is_empty() {
                    ctx.error(
                        val.span(),
                        "`[[rule.provenance.signer]]` is present but empty; remove it to use the rule's signers",
                    );
                }
            }
            _ => unknown_key(ctx, k, KNOWN, "[rule.provenance]"),
        }
    }
    for (list, what) in [
        (&p.builder_ids, "builder_ids"),
        (&p.source_uris, "source_uris"),
        (&p.build_types, "build_types"),
        (&p.source_refs, "source_refs"),
    ] {
        for pat in list {
            if let Err(e) = crate::provenance::Pattern::new(pat) {
                ctx.error(v.span(), format!("`{what}` pattern \"{pat}\": {e}"));
            }
        }
    }
    if p.builder_ids.is_empty() {
        ctx.warn(
            v.span(),
            "[rule.provenance] has no `builder_ids`: provenance from any builder is accepted",
        );
    }
    Some(p)
}

fn parse_signer(ctx: &mut Ctx<'_>, item: &Spanned<DeValue<'_>>, base: &Path) -> Option<Signer> {
    let DeValue::Table(t) = item.get_ref() else {
        ctx.error(item.span(), "each `signer` must be a table");
        return None;
    };
    const KNOWN: &[&str] = &[
        "key",
        "issuer",
        "issuer_regex",
        "subject",
        "subject_regex",
        "extensions",
        "ca",
        "require_tlog",
    ];
    let before = ctx.problems.len();
    let mut key = None;
    let mut issuer = None;
    let mut subject = None;
    let mut extensions = Vec::new();
    let mut ca = None;
    let mut require_tlog = None;
    for (k, v) in t.iter() {
        match k.get_ref().as_ref() {
            "key" => {
                if let Some(p) = ctx.string(v, "key") {
                    if p.is_empty() {
                        ctx.error(v.span(), "`key` cannot be empty");
                    } else {
                        key = Some(resolve(base, &p));
                    }
                }
            }
            name @ ("issuer" | "subject" | "issuer_regex" | "subject_regex") => {
                let Some(text) = ctx.string(v, name) else {
                    continue;
                };
                let m = if name.ends_with("_regex") {
                    match Matcher::regex(&text) {
                        Ok(m) => m,
                        Err(e) => {
                            ctx.error(v.span(), format!("`{name}`: {e}"));
                            continue;
                        }
                    }
                } else if text.is_empty() {
                    ctx.error(v.span(), format!("`{name}` cannot be empty"));
                    continue;
                } else {
                    Matcher::Exact(text)
                };
                let slot = if name.starts_with("issuer") {
                    &mut issuer
                } else {
                    &mut subject
                };
                if slot.is_some() {
                    let base_name = name.trim_end_matches("_regex");
                    ctx.error(
                        k.span(),
                        format!("give `{base_name}` or `{base_name}_regex`, not both"),
                    );
                } else {
                    *slot = Some(m);
                }
            }
            "extensions" => match v.get_ref() {
                DeValue::Table(ext) => {
                    for (ek, ev) in ext.iter() {
                        let name = ek.get_ref().to_string();
                        if !FULCIO_EXTENSIONS.contains(&name.as_str()) {
                            unknown_key(ctx, ek, FULCIO_EXTENSIONS, "`extensions`");
                        } else if let Some(val) = ctx.string(ev, &name) {
                            extensions.push((name, val));
                        }
                    }
                }
                other => ctx.error(
                    v.span(),
                    format!(
                        "`extensions` must be a table of claim = \"value\", found {}",
                        other.type_str()
                    ),
                ),
            },
            "ca" => {
                if let Some(p) = ctx.string(v, "ca") {
                    ca = Some(resolve(base, &p));
                }
            }
            "require_tlog" => match v.get_ref() {
                DeValue::Boolean(b) => require_tlog = Some(*b),
                other => ctx.error(
                    v.span(),
                    format!(
                        "`require_tlog` must be true or false, found {}",
                        other.type_str()
                    ),
                ),
            },
            _ => unknown_key(ctx, k, KNOWN, "a signer"),
        }
    }
    if ctx.problems[before..]
        .iter()
        .any(|p| p.severity == Severity::Error)
    {
        return None;
    }
    let keyless_fields =
        issuer.is_some() || subject.is_some() || !extensions.is_empty() || ca.is_some();
    match (key, keyless_fields) {
        (Some(_), true) => {
            ctx.error(
                item.span(),
                "a signer is either `key` or a keyless identity (`issuer`/`subject`), not both",
            );
            None
        }
        (Some(path), false) => Some(Signer::Key {
            path,
            require_tlog: require_tlog.unwrap_or(false),
        }),
        (None, true) if require_tlog == Some(false) => {
            ctx.error(
                item.span(),
                "a keyless signer needs a transparency-log entry to prove when it signed; `require_tlog = false` is for key signers only",
            );
            None
        }
        (None, true) => match (issuer, subject) {
            (Some(issuer), Some(subject)) => Some(Signer::Keyless(Box::new(Keyless {
                issuer,
                subject,
                extensions,
                ca,
                require_tlog: require_tlog.unwrap_or(true),
            }))),
            _ => {
                ctx.error(
                    item.span(),
                    "a keyless signer needs both an issuer (`issuer` or `issuer_regex`) and a subject (`subject` or `subject_regex`)",
                );
                None
            }
        },
        (None, false) => {
            ctx.error(
                item.span(),
                "a signer needs `key` (a PEM public key) or `issuer` and `subject` (a keyless identity)",
            );
            None
        }
    }
}

/// Rule names are unique: each verdict records the rule's name.
fn check_names(ctx: &mut Ctx<'_>, rules: &[Rule]) {
    let mut first: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(rules.len());
    for r in rules {
        match first.get(r.name.as_str()) {
            Some(&prev_line) => ctx.problems.push(Problem {
                line: r.line,
                column: 1,
                message: format!(
                    "rule name \"{}\" is already used by the rule on line {prev_line}; names must be unique",
                    r.name
                ),
                severity: Severity::Error,
            }),
            None => {
                first.insert(&r.name, r.line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ImageRef;

    const ISSUE_EXAMPLE: &str = r#"mode = "enforce"
default = "deny"

[[rule]]
name = "demo"
images = ["127.0.0.1:5000/demo/*"]

[[rule.signer]]
key = "/etc/portcullis/keys/release.pub"
"#;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new("/etc/portcullis/policy.toml"))
    }

    fn problems(text: &str) -> Vec<Problem> {
        check(text, Path::new("/p.toml")).1
    }

    fn img(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn accepts_the_documented_example_as_is() {
        let p = parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.default, DefaultAction::Deny);
        assert_eq!(p.rules.len(), 1);
        assert_eq!(p.rules[0].name, "demo");
        assert_eq!(p.rules[0].line, 4);
        assert_eq!(
            p.rules[0].signers,
            vec![Signer::Key {
                path: "/etc/portcullis/keys/release.pub".into(),
                require_tlog: false,
            }]
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.shim, DEFAULT_SHIM);
        assert!(p.digest.starts_with("sha256:") && p.digest.len() == 71);
    }

    #[test]
    fn revoked_defaults_to_report_and_accepts_stop_only() {
        assert_eq!(parse(ISSUE_EXAMPLE).unwrap().revoked, Revoked::Report);
        let stop = format!("revoked = \"stop\"\n{ISSUE_EXAMPLE}");
        assert_eq!(parse(&stop).unwrap().revoked, Revoked::Stop);
        let report = format!("revoked = \"report\"\n{ISSUE_EXAMPLE}");
        assert_eq!(parse(&report).unwrap().revoked, Revoked::Report);
        let bad = problems(&format!("revoked = \"kill\"\n{ISSUE_EXAMPLE}"));
        assert!(
            bad.iter().any(|p| p.severity == Severity::Error
                && p.message
                    .contains("`revoked` is \"kill\"; it must be one of \"report\", \"stop\"")),
            "{bad:?}"
        );
        let not_a_string = problems(&format!("revoked = true\n{ISSUE_EXAMPLE}"));
        assert!(
            not_a_string
                .iter()
                .any(|p| p.severity == Severity::Error && p.message.contains("revoked")),
            "{not_a_string:?}"
        );
        assert_eq!(Revoked::Stop.as_str(), "stop");
    }

    #[test]
    fn first_match_wins_and_default_applies() {
        let p = parse(
            r#"mode = "enforce"
default = "allow"
[[rule]]
name = "exempt"
images = ["127.0.0.1:5000/demo/debug:*"]
action = "allow"
[[rule]]
name = "demo"
images = ["127.0.0.1:5000/demo/*"]
mode = "warn"
[[rule.signer]]
key = "k.pub"
"#,
        )
        .unwrap();
        let sel = p.select(&img("127.0.0.1:5000/demo/debug:1"));
        assert!(matches!(sel, Selection::Rule(r) if r.name == "exempt"));
        assert_eq!(p.mode_for(&sel), Mode::Enforce);
        let sel = p.select(&img("127.0.0.1:5000/demo/app:1"));
        assert!(matches!(sel, Selection::Rule(r) if r.name == "demo"));
        assert_eq!(p.mode_for(&sel), Mode::Warn);
        // relative key paths resolve against the policy's directory
        if let Selection::Rule(r) = sel {
            assert_eq!(
                r.signers[0],
                Signer::Key {
                    path: "/etc/portcullis/k.pub".into(),
                    require_tlog: false,
                }
            );
        }
        let sel = p.select(&img("docker.io/library/nginx:1.27"));
        assert!(matches!(sel, Selection::Default(DefaultAction::Allow)));
    }

    #[test]
    fn star_stays_in_a_segment_and_double_star_crosses() {
        let one = ImagePattern::new("127.0.0.1:5000/demo/*").unwrap();
        assert!(one.matches(&img("127.0.0.1:5000/demo/app:v1")));
        assert!(one.matches(&img(
            "127.0.0.1:5000/demo/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        )));
        assert!(!one.matches(&img("127.0.0.1:5000/demo/team/app:v1")));
        assert!(!one.matches(&img("127.0.0.1:5000/demox/app:v1")));
        let two = ImagePattern::new("127.0.0.1:5000/demo/**").unwrap();
        assert!(two.matches(&img("127.0.0.1:5000/demo/team/app:v1")));
        assert!(!two.matches(&img("127.0.0.2:5000/demo/team/app:v1")));
    }

    #[test]
    fn repository_pattern_matches_every_tag_but_not_other_repos() {
        let p = ImagePattern::new("docker.io/library/nginx").unwrap();
        assert!(p.matches(&img("nginx")));
        assert!(p.matches(&img("nginx:1.27")));
        assert!(!p.matches(&img("nginx-extra:1")));
        let tagged = ImagePattern::new("docker.io/library/nginx:1.27").unwrap();
        assert!(tagged.matches(&img("nginx:1.27")));
        assert!(!tagged.matches(&img("nginx:1.28")));
    }

    /// Literal patterns skip the glob matcher: they must decide exactly as
    /// the compiled glob would.
    #[test]
    fn literal_patterns_match_as_their_glob_would() {
        let refs = [
            "nginx",
            "nginx:1.27",
            "docker.io/library/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "nginx:1.27@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "nginx-extra:1",
            "127.0.0.1:5000/demo/app:v1",
            "127.0.0.1:5000/demo/app",
        ];
        for pat in [
            "docker.io/library/nginx",
            "docker.io/library/nginx:1.27",
            "docker.io/library/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "127.0.0.1:5000/demo/app",
            "127.0.0.1:5000/demo/app:v1",
        ] {
            let p = ImagePattern::new(pat).unwrap();
            assert!(p.glob.is_none(), "{pat}");
            // what the pattern would match as a glob
            let glob = ImagePattern::glob(pat).unwrap().compile_matcher();
            for r in refs {
                let i = img(r);
                let by_glob = glob.is_match(i.normalized())
                    || (p.repository_only && glob.is_match(i.repository_name()));
                assert_eq!(p.matches(&i), by_glob, "{pat} vs {r}");
            }
        }
        assert!(ImagePattern::new("docker.io/library/ngin?")
            .unwrap()
            .glob
            .is_some());
    }

    /// The index only narrows which rules are tried: over generated
    /// policies and images, the indexed selection is always the one a scan
    /// of every rule in order finds.
    #[test]
    fn indexed_selection_is_the_first_match_of_a_full_scan() {
        use test_gen::{image, policy_of, Rng};
        let mut rng = Rng(0x0c0f_fee5);
        let (mut matched, mut later_rule, mut defaulted) = (0, 0, 0);
        for _ in 0..300 {
            let n = 1 + rng.below(60);
            let policy = policy_of(&mut rng, n);
            for _ in 0..40 {
                let img = image(&mut rng);
                let want = policy.select_linear(&img);
                match (policy.select(&img), want) {
                    (Selection::Rule(got), Selection::Rule(want)) => {
                        assert!(
                            std::ptr::eq(got, want),
                            "{img}: {} vs {}",
                            got.name,
                            want.name
                        );
                        matched += 1;
                        if !std::ptr::eq(want, &policy.rules[0]) {
                            later_rule += 1;
                        }
                    }
                    (Selection::Default(a), Selection::Default(b)) => {
                        assert_eq!(a, b);
                        defaulted += 1;
                    }
                    (got, want) => panic!("{img}: indexed {got:?}, full scan {want:?}"),
                }
            }
        }
        // Both outcomes, and first matches past the first rule, were exercised.
        assert!(
            matched > 1000 && later_rule > 500 && defaulted > 1000,
            "{matched} {later_rule} {defaulted}"
        );
    }

    #[test]
    fn rules_changed_after_indexing_are_still_all_tried() {
        let mut p =
            parse("[[rule]]\nname = \"a\"\nimages = [\"x.io/a\"]\naction = \"allow\"\n").unwrap();
        assert!(matches!(p.select(&img("x.io/b:1")), Selection::Default(_)));
        let mut extra = p.rules[0].clone();
        extra.name = "b".into();
        extra.images = vec![ImagePattern::new("x.io/b").unwrap()];
        p.rules.push(extra);
        assert!(matches!(p.select(&img("x.io/b:1")), Selection::Rule(r) if r.name == "b"));
    }

    #[test]
    fn lints_run_in_check_and_doctor_but_not_on_load() {
        let text = "mode=\"enforce\"\ndefault=\"deny\"\n[[rule]]\nname = \"a\"\nimages = [\"x.io/**\"]\naction = \"allow\"\n[[rule]]\nname = \"b\"\nimages = [\"x.io/team/app\"]\naction = \"deny\"\n";
        let shadowed = |ps: &[Problem]| ps.iter().any(|p| p.message.contains("shadowed"));
        assert!(!shadowed(&parse(text).unwrap().warnings));
        assert!(shadowed(&problems(text)));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, text).unwrap();
        assert!(!shadowed(&Policy::load(&f).unwrap().warnings));
        let p = Policy::load_with_lints(&f).unwrap();
        assert!(shadowed(&p.warnings), "{:?}", p.warnings);
        assert_eq!((p.warnings[0].line, p.warnings[0].column), (7, 1));
    }

    #[test]
    fn unqualified_patterns_are_refused_with_the_fix() {
        let e = ImagePattern::new("nginx").unwrap_err();
        assert!(e.contains("docker.io/library/nginx"), "{e}");
        assert!(ImagePattern::new("").is_err());
        assert!(ImagePattern::new("**").is_ok());
        assert!(ImagePattern::new("localhost/x").is_ok());
    }

    #[test]
    fn unknown_keys_are_errors_with_positions() {
        let ps = problems(
            "mode = \"enforce\"\ndefault = \"deny\"\ncolour = 1\n[[rule]]\nname = \"a\"\nimages = [\"x.io/*\"]\nsigner = [{ key = \"k\", kee = 2 }]\n",
        );
        let errs: Vec<_> = ps
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .collect();
        assert_eq!(errs.len(), 2, "{ps:?}");
        assert_eq!((errs[0].line, errs[0].column), (3, 1));
        assert!(errs[0].message.contains("unknown key `colour`"));
        assert_eq!(errs[1].line, 7);
        assert!(errs[1].message.contains("unknown key `kee`"));
    }

    #[test]
    fn reports_every_error_not_just_the_first() {
        let ps = problems(
            "mode = \"strict\"\ndefault = 3\nshim = \"containerd-shim-portcullis-v2\"\n[[rule]]\nimages = []\n[[rule]]\nname = \"x\"\nimages = [\"nginx\"]\nsigner = []\n",
        );
        let msgs: Vec<_> = ps
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| (p.line, p.message.clone()))
            .collect();
        assert!(
            msgs.iter()
                .any(|(l, m)| *l == 1 && m.contains("\"strict\"")),
            "{msgs:?}"
        );
        assert!(msgs
            .iter()
            .any(|(l, m)| *l == 2 && m.contains("must be a string")));
        assert!(msgs.iter().any(|(l, m)| *l == 3 && m.contains("loop")));
        assert!(msgs.iter().any(|(_, m)| m.contains("needs a `name`")));
        assert!(msgs
            .iter()
            .any(|(l, m)| *l == 5 && m.contains("`images` is empty")));
        assert!(msgs
            .iter()
            .any(|(l, m)| *l == 8 && m.contains("registry host")));
        assert!(msgs
            .iter()
            .any(|(l, m)| *l == 9 && m.contains("empty signer list")));
        assert!(msgs.len() >= 7, "{msgs:?}");
    }

    #[test]
    fn empty_signer_list_is_an_error_not_a_pass() {
        let e = parse("[[rule]]\nname = \"a\"\nimages = [\"x.io/*\"]\n").unwrap_err();
        assert!(e.to_string().contains("empty signer list"), "{e}");
        let e = parse("[[rule]]\nname = \"a\"\naction = \"verify\"\nimages = [\"x.io/*\"]\n")
            .unwrap_err();
        assert!(e.to_string().contains("at least one"), "{e}");
    }

    #[test]
    fn exemptions_take_no_signers() {
        let e = parse(
            "[[rule]]\nname = \"a\"\naction = \"allow\"\nimages = [\"x.io/*\"]\n[[rule.signer]]\nkey = \"/k\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("takes no signers"), "{e}");
        let p =
            parse("[[rule]]\nname = \"a\"\naction = \"deny\"\nimages = [\"x.io/*\"]\n").unwrap();
        assert_eq!(p.rules[0].action, Action::Deny);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let ps = problems("mode = \"enforce\"\n[[rule]\nname = 1\n");
        assert!(!ps.is_empty());
        assert!(ps[0].message.starts_with("TOML syntax"), "{ps:?}");
        assert_eq!(ps[0].line, 2);
    }

    #[test]
    fn duplicate_names_are_errors_and_shadowed_rules_warn() {
        let ps = problems(
            "mode=\"enforce\"\ndefault=\"deny\"\n[[rule]]\nname = \"a\"\nimages = [\"x.io/**\"]\naction = \"allow\"\n[[rule]]\nname = \"a\"\nimages = [\"x.io/team/app\"]\naction = \"deny\"\n",
        );
        assert!(ps
            .iter()
            .any(|p| p.severity == Severity::Error && p.message.contains("already used")));
        assert!(ps
            .iter()
            .any(|p| p.severity == Severity::Warning && p.message.contains("shadowed")));
    }

    #[test]
    fn keyless_signers_always_need_a_log_and_key_signers_may_ask_for_one() {
        let e = parse("[[rule]]\nname=\"a\"\nimages=[\"x.io/*\"]\n[[rule.signer]]\nissuer=\"i\"\nsubject=\"s\"\nrequire_tlog=false\n").unwrap_err();
        assert!(e.to_string().contains("for key signers only"), "{e}");
        let p = parse("[[rule]]\nname=\"a\"\nimages=[\"x.io/*\"]\n[[rule.signer]]\nkey=\"/k.pub\"\nrequire_tlog=true\n").unwrap();
        assert_eq!(
            p.rules[0].signers[0],
            Signer::Key {
                path: "/k.pub".into(),
                require_tlog: true
            }
        );
        let e = parse("[[rule]]\nname=\"a\"\nimages=[\"x.io/*\"]\n[[rule.signer]]\nkey=\"/k.pub\"\nissuer=\"i\"\n").unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = parse("[[rule]]\nname=\"a\"\nimages=[\"x.io/*\"]\n[[rule.signer]]\nissuer=\"i\"\nsubject_regex=\"(\"\n").unwrap_err();
        assert!(e.to_string().contains("regular expression"), "{e}");
    }

    #[test]
    fn shim_must_be_a_v2_shim_and_not_ourselves() {
        assert!(validate_shim("containerd-shim-runc-v2").is_ok());
        assert!(validate_shim("/usr/bin/containerd-shim-kata-v2").is_ok());
        assert!(validate_shim("containerd-shim-portcullis-v2").is_err());
        assert!(validate_shim("/opt/x/containerd-shim-portcullis-v2").is_err());
        assert!(validate_shim("bin/containerd-shim-runc-v2").is_err());
        assert!(validate_shim("/bin/sh").is_err());
    }

    #[test]
    fn non_utf8_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(Policy::load(&p), Err(PolicyError::Invalid { .. })));
        std::fs::write(&p, vec![b'#'; (MAX_POLICY_BYTES + 1) as usize]).unwrap();
        assert!(matches!(
            Policy::load(&p),
            Err(PolicyError::TooLarge { .. })
        ));
        assert!(matches!(
            Policy::load(&dir.path().join("missing.toml")),
            Err(PolicyError::Read { .. })
        ));
        // A FIFO would block the shim forever if it were opened.
        let fifo = dir.path().join("fifo.toml");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = Policy::load(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(Policy::load(dir.path()).is_err());
    }

    #[test]
    fn wrong_types_never_panic() {
        for text in [
            "rule = 3",
            "rule = [1, 2]",
            "[[rule]]\nname = \"a\"\nimages = \"x.io/*\"\nsigner = 5",
            "[[rule]]\nname = \"a\"\nimages = [1]\nsigner = [3]",
            "[rule]\nname = \"a\"",
            "mode = [\"enforce\"]",
            "version = 2",
            "",
        ] {
            let (_, ps) = check(text, Path::new("/p.toml"));
            if text.is_empty() {
                assert!(ps.iter().all(|p| p.severity == Severity::Warning));
            } else {
                assert!(
                    ps.iter().any(|p| p.severity == Severity::Error),
                    "{text}: {ps:?}"
                );
            }
        }
    }
}
