//! SLSA provenance: in-toto statements, their SLSA predicates, and the
//! policy's provenance requirements.
//!
//! This module owns everything between "a DSSE envelope verified" (see
//! [`crate::dsse`]) and "the provenance meets the rule": parsing the in-toto
//! statement the envelope carries, binding it to the image being started,
//! validating the SLSA predicate against its published schema, reducing it to
//! a normalized [`Provenance`], and checking that against a
//! [`Requirement`]. It does no I/O and no cryptography.
//!
//! # Statements
//!
//! In-toto Statements `https://in-toto.io/Statement/v1` and
//! `https://in-toto.io/Statement/v0.1` are accepted (other `_type`s are
//! refused). A statement needs at least one subject, every subject a
//! non-empty digest set, a non-empty `predicateType` and a `predicate`
//! object. The in-toto spec calls `predicate` optional; it is required here,
//! as by the in-toto Go reference (`ErrPredicateRequired`), because a
//! provenance statement without one says nothing that could be checked.
//! Digest values of the fixed-size algorithms the in-toto reference
//! implementation knows (`md5`, `sha1`, the SHA-2 and SHA-3 families,
//! `dirHash`) must be lowercase hex of the algorithm's length, and the git
//! object digests (`gitCommit`, `gitTree`, `gitBlob`, `gitTag`) 40 or 64
//! lowercase hex characters; other algorithm names are accepted as opaque
//! strings. A resource descriptor needs at least one of `name`, `uri` or
//! `digest`.
//!
//! Duplicate JSON keys are refused anywhere in the statement, so a second
//! `sha256` or `builder` cannot hide behind the one a reader sees first.
//! Unknown fields are ignored, as the in-toto and SLSA parsing rules require
//! of consumers; an unset, `null` or empty field is treated as absent.
//!
//! Binding: [`Statement::subject_for`] accepts a statement only when one of
//! its subjects' `sha256` equals a digest being started (the image index
//! digest or this platform's manifest digest). An attestation of another
//! image never counts, whatever it says; subjects without a `sha256` never
//! match.
//!
//! # Predicates
//!
//! `https://slsa.dev/provenance/v1` and `https://slsa.dev/provenance/v0.2`
//! are validated against the required fields and field types of their
//! schemas; a malformed predicate is refused with the JSON path of the
//! offending field, e.g. `predicate.runDetails.builder.id: missing` or
//! `predicate.buildDefinition.resolvedDependencies[0].digest.sha256:
//! expected string, found number`. Timestamps must be RFC 3339.
//!
//! # Source rules
//!
//! [`Provenance::source_uri`] names the repository the build came from,
//! [`Provenance::source_ref`] the git ref built (only a value starting with
//! `refs/` counts as a ref) and [`Provenance::source_digest`] its digest set.
//! They are derived thus:
//!
//! * SLSA v1, GitHub Actions workflow build types
//!   (`https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1`
//!   and GitHub's own `https://actions.github.io/buildtypes/workflow/v1`,
//!   used by `actions/attest-build-provenance`): the documented external
//!   parameters `externalParameters.workflow.repository` (the source) and
//!   `.ref` (the ref), both required for these types. The digest is that of
//!   the `resolvedDependencies` entry `git+<repository>@<ref>`, if present.
//! * SLSA v1, any other build type: the git entry of
//!   `buildDefinition.resolvedDependencies` (a `uri` starting with `git+`).
//! * SLSA v0.2: `invocation.configSource.uri` (with its `digest`) when set,
//!   else the git entry of `materials`.
//!
//! A git URI `git+<repo>@<suffix>` is split: the source is `<repo>` without
//! the `git+` prefix (so `git+https://github.com/o/r@refs/heads/main` gives
//! source `https://github.com/o/r` and ref `refs/heads/main`, the same form
//! GitHub's `workflow.repository` has); a suffix that is a commit id is
//! dropped; nothing else is rewritten (a `.git` suffix stays). A non-git
//! `configSource.uri` is the source as written, without a ref.
//!
//! When several git entries name different sources (Tekton Chains lists the
//! pipeline's repository beside the built one), the source is ambiguous: no
//! source is derived, [`Provenance::source_note`] says why, and a requirement
//! on the source then fails rather than guessing.
//!
//! # Requirements
//!
//! A [`Requirement`] constrains the builder id, build type, source URI and
//! source ref with lists of [`Pattern`]s (an empty list constrains nothing)
//! and the build's age with `max_age`. A pattern without `*`, `?`, `[` or `{`
//! must equal the value; otherwise it is a glob (`globset`, as for image
//! patterns): `*` stays within one `/`-separated segment, `**` as a whole
//! segment (`a/**`, `a/**/b`) crosses segments, `\` escapes. The age is
//! measured from `finishedOn` (v1) / `buildFinishedOn` (v0.2), else from the
//! start time; provenance recording neither fails a `max_age`, as does a
//! build time more than [`CLOCK_SKEW`] in the future.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use globset::{GlobBuilder, GlobMatcher};
use jiff::Timestamp;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// `_type` of in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `_type` of in-toto Statement v0.1.
pub const STATEMENT_V0_1: &str = "https://in-toto.io/Statement/v0.1";
/// `predicateType` of SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// `predicateType` of SLSA provenance v0.2.
pub const SLSA_PROVENANCE_V0_2: &str = "https://slsa.dev/provenance/v0.2";
/// The GitHub Actions workflow build types whose documented external
/// parameters name the source.
pub const GITHUB_WORKFLOW_BUILD_TYPES: &[&str] = &[
    "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
    "https://actions.github.io/buildtypes/workflow/v1",
];
/// Largest statement accepted, in bytes (what fits in the largest envelope).
pub const MAX_STATEMENT_BYTES: usize = crate::dsse::MAX_ENVELOPE_BYTES / 4 * 3;
/// How far in the future a build time may lie (clock skew) before `max_age`
/// refuses it.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Errors reading a statement or its predicate, or compiling a pattern.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProvenanceError {
    /// Bigger than [`MAX_STATEMENT_BYTES`].
    #[error("in-toto statement is {0} bytes, over the {MAX_STATEMENT_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON (or a duplicate key, or nested too deep).
    #[error("in-toto statement is not valid JSON: {0}")]
    Json(String),
    /// A field is missing or malformed; `path` is its JSON path.
    #[error("{path}: {problem}")]
    Invalid {
        /// Where, e.g. `predicate.runDetails.builder.id`.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The predicate is not SLSA provenance.
    #[error("predicate type {0:?} is not SLSA provenance (\"{SLSA_PROVENANCE_V1}\" or \"{SLSA_PROVENANCE_V0_2}\")")]
    NotProvenance(String),
    /// No subject is the image being started.
    #[error("the attestation is for {subjects}, not the image being started ({digests}): an attestation of another image never counts", subjects = .subjects.join(", "), digests = .digests.join(" or "))]
    OtherSubject {
        /// The statement's subjects, as `sha256:<hex>` (or why not).
        subjects: Vec<String>,
        /// The digests being started.
        digests: Vec<String>,
    },
    /// A requirement pattern does not compile.
    #[error("pattern {pattern:?} is not valid: {why}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// Why.
        why: String,
    },
}

fn invalid(path: impl Into<String>, problem: impl Into<String>) -> ProvenanceError {
    ProvenanceError::Invalid {
        path: path.into(),
        problem: problem.into(),
    }
}

// ---------------------------------------------------------------------------
// Strict JSON: a serde_json::Value that refuses duplicate object keys.

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn parse_strict(bytes: &[u8]) -> Result<Value, ProvenanceError> {
    if bytes.len() > MAX_STATEMENT_BYTES {
        return Err(ProvenanceError::TooLarge(bytes.len()));
    }
    serde_json::from_slice::<StrictValue>(bytes)
        .map(|StrictValue(v)| v)
        .map_err(|e| ProvenanceError::Json(e.to_string()))
}

// ---------------------------------------------------------------------------
// Schema walking with JSON paths.

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(what: &str, v: &Value) -> String {
    format!("expected {what}, found {}", kind(v))
}

/// `parent.key`, or `parent["odd key"]` for keys that are not plain names.
fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// An object being validated, with its path.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

fn as_obj(v: &Value, path: String) -> Result<Obj<'_>, ProvenanceError> {
    match v {
        Value::Object(map) => Ok(Obj { map, path }),
        other => Err(invalid(path, expected("object", other))),
    }
}

impl<'a> Obj<'a> {
    fn at(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// The field's value; absent and `null` are both `None`.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ProvenanceError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(self.at(key), expected("string", other))),
        }
    }

    fn req_str(&self, key: &str) -> Result<&'a str, ProvenanceError> {
        match self.get(key) {
            None => Err(invalid(self.at(key), "missing")),
            Some(Value::String(s)) if s.is_empty() => Err(invalid(self.at(key), "empty")),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(invalid(self.at(key), expected("string", other))),
        }
    }

    fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, ProvenanceError> {
        self.get(key).map(|v| as_obj(v, self.at(key))).transpose()
    }

    /// A required object; an empty one counts as missing.
    fn req_obj(&self, key: &str) -> Result<Obj<'a>, ProvenanceError> {
        match self.opt_obj(key)? {
            None => Err(invalid(self.at(key), "missing")),
            Some(o) if o.map.is_empty() => Err(invalid(self.at(key), "empty")),
            Some(o) => Ok(o),
        }
    }

    fn opt_arr(&self, key: &str) -> Result<&'a [Value], ProvenanceError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(invalid(self.at(key), expected("array", other))),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ProvenanceError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(invalid(self.at(key), expected("boolean", other))),
        }
    }

    fn opt_timestamp(&self, key: &str) -> Result<Option<Timestamp>, ProvenanceError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) => s
                .parse::<Timestamp>()
                .map(Some)
                .map_err(|_| invalid(self.at(key), format!("{s:?} is not an RFC 3339 timestamp"))),
        }
    }

    fn opt_digest_set(&self, key: &str) -> Result<DigestSet, ProvenanceError> {
        match self.get(key) {
            None => Ok(DigestSet::new()),
            Some(v) => digest_set(v, self.at(key)),
        }
    }

    /// A map of string to string.
    fn opt_string_map(&self, key: &str) -> Result<(), ProvenanceError> {
        if let Some(o) = self.opt_obj(key)? {
            for (k, v) in o.map {
                if !v.is_string() {
                    return Err(invalid(o.at(k), expected("string", v)));
                }
            }
        }
        Ok(())
    }
}

/// An in-toto DigestSet: algorithm → digest.
pub type DigestSet = BTreeMap<String, String>;

/// Lowercase-hex lengths of the algorithms the in-toto DigestSet spec names.
fn hex_lengths(algorithm: &str) -> Option<&'static [usize]> {
    Some(match algorithm {
        "md5" => &[32],
        "sha1" => &[40],
        "sha224" | "sha512_224" | "sha3_224" => &[56],
        "sha256" | "sha512_256" | "sha3_256" | "dirHash" => &[64],
        "sha384" | "sha3_384" => &[96],
        "sha512" | "sha3_512" => &[128],
        "gitCommit" | "gitTree" | "gitBlob" | "gitTag" => &[40, 64],
        _ => return None,
    })
}

fn digest_set(v: &Value, path: String) -> Result<DigestSet, ProvenanceError> {
    let o = as_obj(v, path)?;
    let mut out = DigestSet::new();
    for (alg, value) in o.map {
        let Value::String(s) = value else {
            return Err(invalid(o.at(alg), expected("string", value)));
        };
        if let Some(lengths) = hex_lengths(alg) {
            if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(invalid(o.at(alg), "not lowercase hex"));
            }
            if !lengths.contains(&s.len()) {
                let want = lengths
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ");
                return Err(invalid(
                    o.at(alg),
                    format!("expected {want} hex characters, found {}", s.len()),
                ));
            }
        }
        out.insert(alg.clone(), s.clone());
    }
    Ok(out)
}

/// The parts of an in-toto ResourceDescriptor this module uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Descriptor {
    name: Option<String>,
    uri: Option<String>,
    digest: DigestSet,
}

fn resource_descriptor(v: &Value, path: String) -> Result<Descriptor, ProvenanceError> {
    let o = as_obj(v, path)?;
    let name = o.opt_str("name")?.map(str::to_string);
    let uri = o.opt_str("uri")?.map(str::to_string);
    let digest = o.opt_digest_set("digest")?;
    o.opt_str("downloadLocation")?;
    o.opt_str("mediaType")?;
    if let Some(content) = o.opt_str("content")? {
        if crate::dsse::decode_b64(content).is_none() {
            return Err(invalid(o.at("content"), "not base64"));
        }
    }
    o.opt_obj("annotations")?;
    if name.is_none() && uri.is_none() && digest.is_empty() {
        return Err(invalid(
            o.path,
            "a resource descriptor needs at least one of name, uri or digest",
        ));
    }
    Ok(Descriptor { name, uri, digest })
}

fn descriptors(o: &Obj<'_>, key: &str) -> Result<Vec<Descriptor>, ProvenanceError> {
    let at = o.at(key);
    o.opt_arr(key)?
        .iter()
        .enumerate()
        .map(|(i, v)| resource_descriptor(v, index(&at, i)))
        .collect()
}

// ---------------------------------------------------------------------------
// Statements.

/// Which in-toto Statement version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StatementVersion {
    /// `https://in-toto.io/Statement/v0.1`
    V0_1,
    /// `https://in-toto.io/Statement/v1`
    V1,
}

/// One subject of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its name, if set (informational; matching is by digest only).
    pub name: Option<String>,
    /// Its digests (never empty).
    pub digest: DigestSet,
}

/// A validated in-toto statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `_type`.
    pub version: StatementVersion,
    /// `subject` (never empty).
    pub subjects: Vec<Subject>,
    /// `predicateType` (never empty).
    pub predicate_type: String,
    /// `predicate` (a JSON object, not yet validated against its type).
    pub predicate: Value,
}

impl Statement {
    /// Parse and validate a statement (the payload of a verified envelope).
    pub fn parse(bytes: &[u8]) -> Result<Statement, ProvenanceError> {
        Self::from_value(parse_strict(bytes)?)
    }

    fn from_value(value: Value) -> Result<Statement, ProvenanceError> {
        let top = as_obj(&value, String::new())
            .map_err(|_| invalid("(statement)", expected("object", &value)))?;
        let version = match top.req_str("_type")? {
            STATEMENT_V1 => StatementVersion::V1,
            STATEMENT_V0_1 => StatementVersion::V0_1,
            other => {
                return Err(invalid(
                    "_type",
                    format!(
                        "{other:?} is not an in-toto Statement type (expected \"{STATEMENT_V1}\" or \"{STATEMENT_V0_1}\")"
                    ),
                ))
            }
        };
        let subject = match top.get("subject") {
            None => return Err(invalid("subject", "missing")),
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(invalid(
                    "subject",
                    "empty: a statement needs at least one subject",
                ))
            }
            Some(Value::Array(a)) => a,
            Some(other) => return Err(invalid("subject", expected("array", other))),
        };
        let mut subjects = Vec::with_capacity(subject.len());
        for (i, v) in subject.iter().enumerate() {
            let path = index("subject", i);
            let d = resource_descriptor(v, path.clone())?;
            if d.digest.is_empty() {
                return Err(invalid(
                    child(&path, "digest"),
                    "missing: every subject needs a digest",
                ));
            }
            subjects.push(Subject {
                name: d.name,
                digest: d.digest,
            });
        }
        let predicate_type = top.req_str("predicateType")?.to_string();
        let predicate = match top.get("predicate") {
            None => return Err(invalid("predicate", "missing")),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(other) => return Err(invalid("predicate", expected("object", other))),
        };
        Ok(Statement {
            version,
            subjects,
            predicate_type,
            predicate,
        })
    }

    /// The digest among `digests` (the ones being started: index digest,
    /// platform manifest digest) that one of the subjects names by `sha256`.
    /// Any other statement is about another image and never counts.
    pub fn subject_for<'d>(&self, digests: &[&'d str]) -> Result<&'d str, ProvenanceError> {
        for d in digests {
            let Ok(hex) = crate::digest::sha256_hex_of(d) else {
                continue;
            };
            if self
                .subjects
                .iter()
                .any(|s| s.digest.get("sha256").is_some_and(|h| h == hex))
            {
                return Ok(d);
            }
        }
        const SHOWN: usize = 5;
        let mut subjects: Vec<String> = self
            .subjects
            .iter()
            .take(SHOWN)
            .map(|s| match s.digest.get("sha256") {
                Some(h) => format!("sha256:{h}"),
                None => format!(
                    "{:?} (no sha256 digest)",
                    s.name.as_deref().unwrap_or("unnamed subject")
                ),
            })
            .collect();
        if self.subjects.len() > SHOWN {
            subjects.push(format!("{} more", self.subjects.len() - SHOWN));
        }
        Err(ProvenanceError::OtherSubject {
            subjects,
            digests: digests.iter().map(|d| d.to_string()).collect(),
        })
    }
}

// ---------------------------------------------------------------------------
// Provenance.

/// What a SLSA provenance predicate says, normalized across v0.2 and v1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provenance {
    /// The predicate type ([`SLSA_PROVENANCE_V1`] or [`SLSA_PROVENANCE_V0_2`]).
    pub predicate_type: String,
    /// `runDetails.builder.id` (v1) / `builder.id` (v0.2).
    pub builder_id: String,
    /// `buildDefinition.buildType` (v1) / `buildType` (v0.2).
    pub build_type: String,
    /// The source repository, by the rules in the module docs.
    pub source_uri: Option<String>,
    /// The source's digests (e.g. `gitCommit`, `sha1`); may be empty.
    pub source_digest: DigestSet,
    /// The git ref built (`refs/…`), when derivable.
    pub source_ref: Option<String>,
    /// Why no source was derived though the provenance names candidates.
    pub source_note: Option<String>,
    /// When the build started.
    pub started_on: Option<Timestamp>,
    /// When the build finished.
    pub finished_on: Option<Timestamp>,
}

/// Parse a verified statement, bind it to the image being started and
/// extract its provenance, in that order: the one call the gate needs.
pub fn extract(payload: &[u8], digests: &[&str]) -> Result<Provenance, ProvenanceError> {
    extract_bound(payload, digests).map(|(p, _)| p)
}

/// [`extract`], also naming which of `digests` the statement binds.
pub fn extract_bound<'d>(
    payload: &[u8],
    digests: &[&'d str],
) -> Result<(Provenance, &'d str), ProvenanceError> {
    let statement = Statement::parse(payload)?;
    let bound = statement.subject_for(digests)?;
    Ok((Provenance::from_statement(&statement)?, bound))
}

#[derive(Default)]
struct Source {
    uri: Option<String>,
    reference: Option<String>,
    digest: DigestSet,
    note: Option<String>,
}

fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Split `<repo>@<suffix>` (the `git+` prefix already removed): a `refs/…`
/// suffix is the ref, a commit id is dropped, anything else stays in place.
fn split_git(rest: &str) -> (String, Option<String>) {
    let path_start = match rest.find("://") {
        Some(i) => rest[i + 3..].find('/').map_or(rest.len(), |j| i + 3 + j),
        None => 0,
    };
    if let Some(at) = rest[path_start..].rfind('@').map(|i| path_start + i) {
        let suffix = &rest[at + 1..];
        if suffix.starts_with("refs/") && suffix.len() > "refs/".len() {
            return (rest[..at].to_string(), Some(suffix.to_string()));
        }
        if is_commit(suffix) {
            return (rest[..at].to_string(), None);
        }
    }
    (rest.to_string(), None)
}

fn source_from_uri(uri: &str, digest: DigestSet) -> Source {
    let (uri, reference) = match uri.strip_prefix("git+") {
        Some(rest) => split_git(rest),
        None => (uri.to_string(), None),
    };
    Source {
        uri: Some(uri),
        reference,
        digest,
        note: None,
    }
}

/// A git source candidate: repository, ref, digests.
type GitCandidate = (String, Option<String>, DigestSet);

/// The git entry among `(uri, digest)` pairs: exactly one distinct source.
fn git_source<'a>(entries: impl Iterator<Item = (Option<&'a str>, &'a DigestSet)>) -> Source {
    let mut found: Vec<(&'a str, GitCandidate)> = Vec::new();
    for (uri, digest) in entries {
        let Some(uri) = uri else { continue };
        let Some(rest) = uri.strip_prefix("git+") else {
            continue;
        };
        let (repo, reference) = split_git(rest);
        let key = (repo, reference, digest.clone());
        if !found.iter().any(|(_, k)| *k == key) {
            found.push((uri, key));
        }
    }
    match found.len() {
        0 => Source::default(),
        1 => {
            let (_, (repo, reference, digest)) = found.remove(0);
            Source {
                uri: Some(repo),
                reference,
                digest,
                note: None,
            }
        }
        n => {
            const SHOWN: usize = 5;
            let mut listed: Vec<String> = found
                .iter()
                .take(SHOWN)
                .map(|(uri, _)| format!("{uri:?}"))
                .collect();
            if n > SHOWN {
                listed.push(format!("{} more", n - SHOWN));
            }
            Source {
                note: Some(format!(
                    "{n} git dependencies name different sources ({}), so the source is ambiguous",
                    listed.join(", ")
                )),
                ..Source::default()
            }
        }
    }
}

/// The documented external parameters of the GitHub workflow build types.
fn github_source(ext: &Obj<'_>, deps: &[Descriptor]) -> Result<Source, ProvenanceError> {
    let workflow = ext.req_obj("workflow")?;
    let repository = workflow.req_str("repository")?;
    let reference = workflow.req_str("ref")?;
    workflow.opt_str("path")?;
    let repository = repository.strip_prefix("git+").unwrap_or(repository);
    let digest = deps
        .iter()
        .find(|d| {
            d.uri
                .as_deref()
                .and_then(|u| u.strip_prefix("git+"))
                .map(split_git)
                .is_some_and(|(repo, r)| repo == repository && r.as_deref() == Some(reference))
        })
        .map(|d| d.digest.clone())
        .unwrap_or_default();
    Ok(Source {
        uri: Some(repository.to_string()),
        reference: Some(reference.to_string()),
        digest,
        note: None,
    })
}

impl Provenance {
    /// Validate a statement's predicate and extract its provenance. Refuses
    /// predicate types other than SLSA provenance v1 and v0.2.
    pub fn from_statement(statement: &Statement) -> Result<Provenance, ProvenanceError> {
        Self::from_predicate(&statement.predicate_type, &statement.predicate)
    }

    /// [`Provenance::from_statement`] for a bare predicate.
    pub fn from_predicate(
        predicate_type: &str,
        predicate: &Value,
    ) -> Result<Provenance, ProvenanceError> {
        let root = as_obj(predicate, "predicate".to_string())?;
        match predicate_type {
            SLSA_PROVENANCE_V1 => v1(&root),
            SLSA_PROVENANCE_V0_2 => v0_2(&root),
            other => Err(ProvenanceError::NotProvenance(other.to_string())),
        }
    }

    /// The build time `max_age` is measured from: finish, else start.
    pub fn built_on(&self) -> Option<Timestamp> {
        self.finished_on.or(self.started_on)
    }
}

fn v1(root: &Obj<'_>) -> Result<Provenance, ProvenanceError> {
    let def = root.req_obj("buildDefinition")?;
    let build_type = def.req_str("buildType")?;
    let external = def.req_obj("externalParameters")?;
    def.opt_obj("internalParameters")?;
    let deps = descriptors(&def, "resolvedDependencies")?;

    let run = root.req_obj("runDetails")?;
    let builder = run.req_obj("builder")?;
    let builder_id = builder.req_str("id")?;
    builder.opt_string_map("version")?;
    descriptors(&builder, "builderDependencies")?;
    let (started_on, finished_on) = match run.opt_obj("metadata")? {
        None => (None, None),
        Some(m) => {
            m.opt_str("invocationId")?;
            (
                m.opt_timestamp("startedOn")?,
                m.opt_timestamp("finishedOn")?,
            )
        }
    };
    descriptors(&run, "byproducts")?;

    let source = if GITHUB_WORKFLOW_BUILD_TYPES.contains(&build_type) {
        github_source(&external, &deps)?
    } else {
        git_source(deps.iter().map(|d| (d.uri.as_deref(), &d.digest)))
    };
    Ok(Provenance {
        predicate_type: SLSA_PROVENANCE_V1.to_string(),
        builder_id: builder_id.to_string(),
        build_type: build_type.to_string(),
        source_uri: source.uri,
        source_digest: source.digest,
        source_ref: source.reference,
        source_note: source.note,
        started_on,
        finished_on,
    })
}

fn v0_2(root: &Obj<'_>) -> Result<Provenance, ProvenanceError> {
    let builder = root.req_obj("builder")?;
    let builder_id = builder.req_str("id")?;
    let build_type = root.req_str("buildType")?;

    let mut config_source: Option<(&str, DigestSet)> = None;
    if let Some(invocation) = root.opt_obj("invocation")? {
        if let Some(cs) = invocation.opt_obj("configSource")? {
            let uri = cs.opt_str("uri")?;
            let digest = cs.opt_digest_set("digest")?;
            cs.opt_str("entryPoint")?;
            config_source = uri.map(|u| (u, digest));
        }
        invocation.opt_obj("parameters")?;
        invocation.opt_obj("environment")?;
    }
    root.opt_obj("buildConfig")?;

    let (started_on, finished_on) = match root.opt_obj("metadata")? {
        None => (None, None),
        Some(m) => {
            m.opt_str("buildInvocationId")?;
            if let Some(c) = m.opt_obj("completeness")? {
                c.opt_bool("parameters")?;
                c.opt_bool("environment")?;
                c.opt_bool("materials")?;
            }
            m.opt_bool("reproducible")?;
            (
                m.opt_timestamp("buildStartedOn")?,
                m.opt_timestamp("buildFinishedOn")?,
            )
        }
    };

    let materials_at = root.at("materials");
    let mut materials: Vec<(Option<&str>, DigestSet)> = Vec::new();
    for (i, v) in root.opt_arr("materials")?.iter().enumerate() {
        let m = as_obj(v, index(&materials_at, i))?;
        materials.push((m.opt_str("uri")?, m.opt_digest_set("digest")?));
    }

    let source = match config_source {
        Some((uri, digest)) => source_from_uri(uri, digest),
        None => git_source(materials.iter().map(|(u, d)| (*u, d))),
    };
    Ok(Provenance {
        predicate_type: SLSA_PROVENANCE_V0_2.to_string(),
        builder_id: builder_id.to_string(),
        build_type: build_type.to_string(),
        source_uri: source.uri,
        source_digest: source.digest,
        source_ref: source.reference,
        source_note: source.note,
        started_on,
        finished_on,
    })
}

// ---------------------------------------------------------------------------
// Requirements.

/// A value pattern: exact, or a glob when it has `*`, `?`, `[` or `{`.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    /// Parsed at load, compiled on first match (most starts never match:
    /// the verdict cache answers them).
    glob: Option<(globset::Glob, std::sync::OnceLock<GlobMatcher>)>,
}

impl Pattern {
    /// Compile a pattern; `*` stays inside one `/`-separated segment, `**`
    /// as a whole segment crosses them.
    pub fn new(text: &str) -> Result<Pattern, ProvenanceError> {
        let bad = |why: String| ProvenanceError::BadPattern {
            pattern: text.to_string(),
            why,
        };
        if text.is_empty() {
            return Err(bad("a pattern cannot be empty".into()));
        }
        let glob = if text.contains(['*', '?', '[', '{']) {
            let g = GlobBuilder::new(text)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| bad(e.kind().to_string()))?;
            Some((g, std::sync::OnceLock::new()))
        } else {
            None
        };
        Ok(Pattern {
            text: text.to_string(),
            glob,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does `value` match?
    pub fn matches(&self, value: &str) -> bool {
        match &self.glob {
            Some((g, m)) => m.get_or_init(|| g.compile_matcher()).is_match(value),
            None => self.text == value,
        }
    }
}

/// What a rule requires of an image's provenance. Empty lists constrain
/// nothing; every non-empty list must have a pattern matching the value.
#[derive(Debug, Clone, Default)]
pub struct Requirement {
    /// Allowed builder ids.
    pub builder_ids: Vec<Pattern>,
    /// Allowed source repositories.
    pub source_uris: Vec<Pattern>,
    /// Allowed build types.
    pub build_types: Vec<Pattern>,
    /// Allowed source refs.
    pub source_refs: Vec<Pattern>,
    /// Oldest acceptable build.
    pub max_age: Option<Duration>,
}

/// A requirement the provenance does not meet: which, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmet {
    /// The value matches none of the allowed patterns.
    #[error("{what} {found:?} is not one of the allowed {constraint} {}", list(.allowed))]
    NotAllowed {
        /// The constraint (`builder_ids`, `build_types`, `source_uris`, `source_refs`).
        constraint: &'static str,
        /// What the value is (`builder id`, …).
        what: &'static str,
        /// The value found.
        found: String,
        /// The allowed patterns.
        allowed: Vec<String>,
    },
    /// The provenance has no such value at all.
    #[error("the provenance names no {what}{}, but {constraint} requires one of {}", .note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default(), list(.allowed))]
    Absent {
        /// The constraint.
        constraint: &'static str,
        /// What is missing.
        what: &'static str,
        /// The allowed patterns.
        allowed: Vec<String>,
        /// Why, when known (an ambiguous source).
        note: Option<String>,
    },
    /// Built too long ago.
    #[error("built at {built}, {} ago: older than max_age {}", human(*.age), human(*.max_age))]
    TooOld {
        /// The build time.
        built: Timestamp,
        /// Its age.
        age: Duration,
        /// The limit.
        max_age: Duration,
    },
    /// `max_age` is set but the provenance records no build time.
    #[error("the provenance records no build time (finishedOn or startedOn), but max_age {} requires one", human(*.max_age))]
    NoBuildTime {
        /// The limit.
        max_age: Duration,
    },
    /// The build time lies further in the future than clock skew explains.
    #[error(
        "the build time {built} is after now ({now}) by more than {}",
        human(CLOCK_SKEW)
    )]
    FromTheFuture {
        /// The build time.
        built: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `40d 3h`, `5m 2s`, `0s`: the two largest non-zero units.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, "d"),
        (s / 3_600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let shown: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n != 0)
        .take(2)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if shown.is_empty() {
        "0s".into()
    } else {
        shown.join(" ")
    }
}

fn check_one(
    patterns: &[Pattern],
    value: Option<&str>,
    constraint: &'static str,
    what: &'static str,
    note: Option<&String>,
) -> Result<(), Unmet> {
    if patterns.is_empty() {
        return Ok(());
    }
    let allowed = || patterns.iter().map(|p| p.text.clone()).collect();
    match value {
        None => Err(Unmet::Absent {
            constraint,
            what,
            allowed: allowed(),
            note: note.cloned(),
        }),
        Some(v) if patterns.iter().any(|p| p.matches(v)) => Ok(()),
        Some(v) => Err(Unmet::NotAllowed {
            constraint,
            what,
            found: v.to_string(),
            allowed: allowed(),
        }),
    }
}

impl Requirement {
    /// Does this requirement constrain anything?
    pub fn is_empty(&self) -> bool {
        self.builder_ids.is_empty()
            && self.source_uris.is_empty()
            && self.build_types.is_empty()
            && self.source_refs.is_empty()
            && self.max_age.is_none()
    }

    /// Check provenance against this requirement at time `now`; the first
    /// constraint that fails is reported (builder, build type, source,
    /// ref, age, in that order).
    pub fn check(&self, p: &Provenance, now: Timestamp) -> Result<(), Unmet> {
        check_one(
            &self.builder_ids,
            Some(&p.builder_id),
            "builder_ids",
            "builder id",
            None,
        )?;
        check_one(
            &self.build_types,
            Some(&p.build_type),
            "build_types",
            "build type",
            None,
        )?;
        check_one(
            &self.source_uris,
            p.source_uri.as_deref(),
            "source_uris",
            "source uri",
            p.source_note.as_ref(),
        )?;
        check_one(
            &self.source_refs,
            p.source_ref.as_deref(),
            "source_refs",
            "source ref",
            p.source_note.as_ref(),
        )?;
        if let Some(max_age) = self.max_age {
            let Some(built) = p.built_on() else {
                return Err(Unmet::NoBuildTime { max_age });
            };
            let age = i128::from(now.as_second()) - i128::from(built.as_second());
            if age < 0 {
                if age.unsigned_abs() > u128::from(CLOCK_SKEW.as_secs()) {
                    return Err(Unmet::FromTheFuture { built, now });
                }
            } else {
                let age = Duration::from_secs(u64::try_from(age).unwrap_or(u64::MAX));
                if age > max_age {
                    return Err(Unmet::TooOld {
                        built,
                        age,
                        max_age,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/provenance")
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sha(hex: &str) -> String {
        format!("sha256:{hex}")
    }

    fn full(bytes: &[u8]) -> Result<Provenance, ProvenanceError> {
        Statement::parse(bytes).and_then(|s| Provenance::from_statement(&s))
    }

    /// Replace (or with `None`, remove) the field at JSON pointer `ptr` of a
    /// fixture, then parse and extract.
    fn mutate(file: &str, ptr: &str, new: Option<Value>) -> Result<Provenance, ProvenanceError> {
        let mut v: Value = serde_json::from_slice(&read(file)).unwrap();
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        match (v.pointer_mut(parent).unwrap(), new) {
            (Value::Object(m), Some(n)) => {
                m.insert(key.to_string(), n);
            }
            (Value::Object(m), None) => {
                m.remove(key);
            }
            (Value::Array(a), Some(n)) => a[key.parse::<usize>().unwrap()] = n,
            (Value::Array(a), None) => {
                a.remove(key.parse::<usize>().unwrap());
            }
            (other, _) => panic!("{ptr}: cannot mutate {other}"),
        }
        full(&serde_json::to_vec(&v).unwrap())
    }

    fn err(r: Result<Provenance, ProvenanceError>) -> String {
        r.expect_err("expected a refusal").to_string()
    }

    // ---- in-toto reference vectors -------------------------------------

    /// `tests/data/in-toto-vectors` in this repository, or where
    /// `PORTCULLIS_INTOTO_VECTORS` says.
    fn vectors_dir() -> PathBuf {
        let candidates = [
            std::env::var_os("PORTCULLIS_INTOTO_VECTORS").map(PathBuf::from),
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/in-toto-vectors")),
        ];
        candidates
            .into_iter()
            .flatten()
            .find(|p| p.join("CASES.json").is_file())
            .expect("in-toto vectors not found: set PORTCULLIS_INTOTO_VECTORS to the directory holding CASES.json")
    }

    #[test]
    fn in_toto_vectors_parse_or_are_refused_as_expected() {
        let dir = vectors_dir();
        let cases: Vec<Value> =
            serde_json::from_slice(&std::fs::read(dir.join("CASES.json")).unwrap()).unwrap();
        // For each refused vector, the field our message must name.
        let named: BTreeMap<&str, &str> = [
            ("statement-bad-type.json", "_type: "),
            ("statement-type-v2.json", "_type: "),
            ("statement-type-v0.2.json", "_type: "),
            ("statement-no-subjects.json", "subject: empty"),
            (
                "statement-subject-missing-rd-required-field.json",
                "subject[0]: a resource descriptor needs",
            ),
            (
                "statement-subject-missing-statement-requirement-on-digest.json",
                "subject[0].digest: missing",
            ),
            (
                "statement-missing-predicate-type.json",
                "predicateType: empty",
            ),
            ("statement-missing-predicate.json", "predicate: missing"),
            (
                "slsa-v1-predicate-no-builddefinition.json",
                "predicate.buildDefinition: empty",
            ),
            (
                "slsa-v1-predicate-builddefinition-missing-buildtype-required-field.json",
                "predicate.buildDefinition.buildType: missing",
            ),
            (
                "slsa-v1-predicate-builddefinition-missing-externalparameters-required-field.json",
                "predicate.buildDefinition.externalParameters: missing",
            ),
            (
                "slsa-v1-predicate-no-rundetails.json",
                "predicate.runDetails: empty",
            ),
            (
                "slsa-v1-predicate-rundetails-missing-builder-required-field.json",
                "predicate.runDetails.builder: empty",
            ),
            (
                "slsa-v1-predicate-rundetails-builder-missing-id-required-field.json",
                "predicate.runDetails.builder.id: empty",
            ),
            (
                "resource-descriptor-badRd.json",
                "needs at least one of name, uri or digest",
            ),
            (
                "resource-descriptor-badRdDigestEncoding.json",
                "rd.digest.sha256: not lowercase hex",
            ),
            (
                "resource-descriptor-badRdDigestLength.json",
                "rd.digest.sha256: expected 64 hex characters, found 6",
            ),
            (
                "resource-descriptor-badGitCommitLengthRd.json",
                "rd.digest.gitCommit: expected 40 or 64 hex characters, found 6",
            ),
        ]
        .into_iter()
        .collect();
        let mut seen = 0;
        for case in &cases {
            let file = case["file"].as_str().unwrap();
            let kind = case["kind"].as_str().unwrap();
            let expected = case["expected"].as_str().unwrap();
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let result: Result<(), ProvenanceError> = if kind.starts_with("in-toto Statement") {
                Statement::parse(&bytes).map(drop)
            } else if kind.starts_with("SLSA provenance v1 predicate") {
                parse_strict(&bytes)
                    .and_then(|v| Provenance::from_predicate(SLSA_PROVENANCE_V1, &v))
                    .map(drop)
            } else if kind.starts_with("in-toto ResourceDescriptor") {
                parse_strict(&bytes)
                    .and_then(|v| resource_descriptor(&v, "rd".into()))
                    .map(drop)
            } else {
                panic!("{file}: unknown vector kind {kind:?}");
            };
            let name = Path::new(file).file_name().unwrap().to_str().unwrap();
            match (expected, result) {
                ("valid", Ok(())) => {}
                ("invalid", Err(e)) => {
                    let want = named
                        .get(name)
                        .unwrap_or_else(|| panic!("{name}: no expected message ({e})"));
                    assert!(e.to_string().contains(want), "{name}: {e}");
                }
                (want, got) => panic!("{file} ({kind}): expected {want}, got {got:?}"),
            }
            seen += 1;
        }
        assert_eq!(seen, 26, "every vector ran");
        assert_eq!(
            named.len(),
            cases.iter().filter(|c| c["expected"] == "invalid").count()
        );
    }

    // ---- fixtures ------------------------------------------------------

    struct Expect {
        file: &'static str,
        subject: &'static str,
        predicate_type: &'static str,
        builder_id: &'static str,
        build_type: &'static str,
        source_uri: Option<&'static str>,
        source_ref: Option<&'static str>,
        source_digest: &'static [(&'static str, &'static str)],
        ambiguous: bool,
        started_on: Option<&'static str>,
        finished_on: Option<&'static str>,
    }

    const FIXTURES: &[Expect] = &[
        Expect {
            file: "slsa-v1-spec-example.json",
            subject: "c6cad725fced12b1e7594736b205ac4ca71d0f3a665e2e471f6e23b9f1debc86",
            predicate_type: SLSA_PROVENANCE_V1,
            builder_id: "https://builder.example/slsa/v1",
            build_type: "https://builder.example/buildtypes/git-make/v1",
            source_uri: Some("https://github.com/octocat/hello-world"),
            source_ref: Some("refs/heads/main"),
            source_digest: &[("gitCommit", "2f22765d04931a078909145ca628d2264c852d7d")],
            ambiguous: false,
            started_on: Some("2025-03-01T10:00:00Z"),
            finished_on: Some("2025-03-01T10:07:31Z"),
        },
        Expect {
            file: "slsa-v02-spec-example.json",
            subject: "5a671e81f44234b16fe6d2265bb4d426a0e6ab8160959b60bb11bdd4ff86b66d",
            predicate_type: SLSA_PROVENANCE_V0_2,
            builder_id: "mailto:person@example.com",
            build_type: "https://example.com/Makefile",
            source_uri: Some("https://example.com/example-1.2.3.tar.gz"),
            source_ref: None,
            source_digest: &[(
                "sha256",
                "db4b4d0d1cb480bf9aeea253771c00febe627f236765fa37d6a5614f079a3aa0",
            )],
            ambiguous: false,
            started_on: Some("2024-11-05T09:30:00Z"),
            finished_on: Some("2024-11-05T09:41:12Z"),
        },
        Expect {
            file: "slsa-github-generator-container.json",
            subject: "099562028c6db23d3611ac4a2bba1e852ada1932d7853d68aa0b0ea1c7503adc",
            predicate_type: SLSA_PROVENANCE_V0_2,
            builder_id: "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v1.10.0",
            build_type: "https://github.com/slsa-framework/slsa-github-generator/container@v1",
            source_uri: Some("https://github.com/acme/widget"),
            source_ref: Some("refs/tags/v2.3.0"),
            source_digest: &[("sha1", "6b1f53303a732ccc8c6aae6640399827c15250e3")],
            ambiguous: false,
            started_on: None,
            finished_on: None,
        },
        Expect {
            file: "github-attest-build-provenance.json",
            subject: "9f2a0d5e83b1c47f6e0a2d9b8c7f1e3a5b4d6c8e0f2a4b6c8d0e2f4a6b8c0d1e",
            predicate_type: SLSA_PROVENANCE_V1,
            builder_id: "https://github.com/actions/runner/github-hosted",
            build_type: "https://actions.github.io/buildtypes/workflow/v1",
            source_uri: Some("https://github.com/acme/app"),
            source_ref: Some("refs/heads/main"),
            source_digest: &[("gitCommit", "a625406f6977d45c1391b078f4d3656e0b75bfcb")],
            ambiguous: false,
            started_on: None,
            finished_on: None,
        },
        Expect {
            file: "gcb-triggered-build.json",
            subject: "4c9ea250ded5143e15efabea2c25eb1eb4f5c85fde4485f6ace3a2e4d9530960",
            predicate_type: SLSA_PROVENANCE_V1,
            builder_id: "https://cloudbuild.googleapis.com/GoogleHostedWorker",
            build_type: "https://slsa-framework.github.io/gcb-buildtypes/triggered-build/v1",
            source_uri: Some("https://github.com/acme/api"),
            source_ref: Some("refs/heads/main"),
            source_digest: &[("gitCommit", "e4666a670f042877c67a84473a71675ee0950a08")],
            ambiguous: false,
            started_on: Some("2025-03-02T08:15:03.412956Z"),
            finished_on: Some("2025-03-02T08:19:47.008113Z"),
        },
        Expect {
            file: "tekton-chains-v1.json",
            subject: "4ceb414e89df55c58e5346ebc1ad1da4008e2634e92f2ded36e35088357b9851",
            predicate_type: SLSA_PROVENANCE_V1,
            builder_id: "https://tekton.dev/chains/v2",
            build_type: "https://tekton.dev/chains/v2/slsa",
            source_uri: None,
            source_ref: None,
            source_digest: &[],
            ambiguous: true,
            started_on: Some("2025-02-20T14:02:11Z"),
            finished_on: Some("2025-02-20T14:09:58Z"),
        },
        Expect {
            file: "tekton-chains-v02.json",
            subject: "b8d1d3af41dd9e38a1d2f41ed6bfe9e4e3d19c616365f63d01070818eb0628d3",
            predicate_type: SLSA_PROVENANCE_V0_2,
            builder_id: "https://tekton.dev/chains/v2",
            build_type: "tekton.dev/v1beta1/TaskRun",
            source_uri: Some("https://github.com/acme/ledger.git"),
            source_ref: None,
            source_digest: &[("sha1", "555c3f9218ba41a596519c8f01708a0ec9ef821b")],
            ambiguous: false,
            started_on: Some("2025-02-20T14:02:11Z"),
            finished_on: Some("2025-02-20T14:05:40Z"),
        },
    ];

    #[test]
    fn fixtures_extract_as_documented() {
        for e in FIXTURES {
            let bytes = read(e.file);
            let subject = sha(e.subject);
            let p = extract(&bytes, &["sha256:".to_string().as_str(), &subject])
                .unwrap_or_else(|err| panic!("{}: {err}", e.file));
            assert_eq!(p.predicate_type, e.predicate_type, "{}", e.file);
            assert_eq!(p.builder_id, e.builder_id, "{}", e.file);
            assert_eq!(p.build_type, e.build_type, "{}", e.file);
            assert_eq!(p.source_uri.as_deref(), e.source_uri, "{}", e.file);
            assert_eq!(p.source_ref.as_deref(), e.source_ref, "{}", e.file);
            let digest: DigestSet = e
                .source_digest
                .iter()
                .map(|(a, d)| (a.to_string(), d.to_string()))
                .collect();
            assert_eq!(p.source_digest, digest, "{}", e.file);
            assert_eq!(p.source_note.is_some(), e.ambiguous, "{}", e.file);
            assert_eq!(p.started_on, e.started_on.map(ts), "{}", e.file);
            assert_eq!(p.finished_on, e.finished_on.map(ts), "{}", e.file);
            // another image's digest: refused before anything else is read
            let other = sha(&"0".repeat(64));
            let refusal = extract(&bytes, &[&other]).unwrap_err();
            assert!(
                matches!(&refusal, ProvenanceError::OtherSubject { subjects, .. } if subjects == &vec![subject.clone()]),
                "{}: {refusal}",
                e.file
            );
        }
        // every fixture statement is covered
        let listed = std::fs::read_dir(fixtures())
            .unwrap()
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json") && !n.starts_with("dsse-"))
            .count();
        assert_eq!(listed, FIXTURES.len());
    }

    #[test]
    fn tekton_ambiguity_is_explained() {
        let p = full(&read("tekton-chains-v1.json")).unwrap();
        let note = p.source_note.as_deref().unwrap();
        assert!(
            note.contains("git+https://github.com/acme/pipelines.git")
                && note.contains("git+https://github.com/acme/ledger.git"),
            "{note}"
        );
        let req = Requirement {
            source_uris: vec![Pattern::new("https://github.com/acme/ledger*").unwrap()],
            ..Requirement::default()
        };
        let unmet = req.check(&p, ts("2025-02-21T00:00:00Z")).unwrap_err();
        assert!(matches!(
            unmet,
            Unmet::Absent {
                constraint: "source_uris",
                ..
            }
        ));
        assert!(unmet.to_string().contains("ambiguous"), "{unmet}");
    }

    // ---- statements ----------------------------------------------------

    const D1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn statement(subject: &str) -> String {
        format!(
            r#"{{"_type":"{STATEMENT_V1}","subject":{subject},"predicateType":"https://example.com/p","predicate":{{}}}}"#
        )
    }

    fn stmt_err(text: &str) -> String {
        Statement::parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn statement_structure() {
        let ok = statement(&format!(r#"[{{"name":"a","digest":{{"sha256":"{D1}"}}}}]"#));
        let s = Statement::parse(ok.as_bytes()).unwrap();
        assert_eq!(s.version, StatementVersion::V1);
        assert_eq!(s.subjects[0].name.as_deref(), Some("a"));
        assert_eq!(s.predicate_type, "https://example.com/p");
        // v0.1 too
        let v01 = ok.replace(STATEMENT_V1, STATEMENT_V0_1);
        assert_eq!(
            Statement::parse(v01.as_bytes()).unwrap().version,
            StatementVersion::V0_1
        );
        for (text, want) in [
            (
                "[]".to_string(),
                "(statement): expected object, found array",
            ),
            (r#"{"subject":[]}"#.to_string(), "_type: missing"),
            (
                ok.replace(STATEMENT_V1, "https://in-toto.io/Statement/v1.0"),
                "_type: \"https://in-toto.io/Statement/v1.0\" is not an in-toto Statement type",
            ),
            (statement("{}"), "subject: expected array, found object"),
            (statement("[]"), "subject: empty"),
            (
                statement("[7]"),
                "subject[0]: expected object, found number",
            ),
            (statement(r#"[{"name":"x"}]"#), "subject[0].digest: missing"),
            (
                statement(r#"[{"name":"x","digest":{}}]"#),
                "subject[0].digest: missing",
            ),
            (
                statement(r#"[{"digest":{"sha256":"ABCD"}}]"#),
                "subject[0].digest.sha256: not lowercase hex",
            ),
            (
                statement(&format!(
                    r#"[{{"digest":{{"sha256":"{}"}}}}]"#,
                    "AB".repeat(32)
                )),
                "not lowercase hex",
            ),
            (
                statement(r#"[{"digest":{"sha512":"abcd"}}]"#),
                "subject[0].digest.sha512: expected 128 hex characters, found 4",
            ),
            (
                statement(r#"[{"digest":{"custom":7}}]"#),
                "subject[0].digest.custom: expected string, found number",
            ),
            (
                statement(r#"[{"digest":{"odd key!":7}}]"#),
                "subject[0].digest[\"odd key!\"]: expected string",
            ),
            (
                statement(&format!(r#"[{{"digest":{{"sha256":"{D1}"}},"name":5}}]"#)),
                "subject[0].name: expected string, found number",
            ),
            (
                ok.replace(
                    r#""predicateType":"https://example.com/p""#,
                    r#""predicateType":5"#,
                ),
                "predicateType: expected string, found number",
            ),
            (ok.replace(r#","predicate":{}"#, ""), "predicate: missing"),
            (
                ok.replace(r#""predicate":{}"#, r#""predicate":null"#),
                "predicate: missing",
            ),
            (
                ok.replace(r#""predicate":{}"#, r#""predicate":[1]"#),
                "predicate: expected object, found array",
            ),
        ] {
            let got = stmt_err(&text);
            assert!(got.contains(want), "{text}\n  got: {got}\n want: {want}");
        }
        // custom algorithms are opaque; git digests may be SHA-1 or SHA-256 sized
        let custom = statement(&format!(
            r#"[{{"digest":{{"myHash":"Not-Hex!","gitCommit":"{D1}","sha1":"{}"}}}}]"#,
            &D2[..40]
        ));
        assert!(Statement::parse(custom.as_bytes()).is_ok());
    }

    #[test]
    fn duplicate_keys_are_refused_everywhere() {
        // a second sha256 must not replace the one a first reader saw
        let dup_digest = statement(&format!(
            r#"[{{"digest":{{"sha256":"{D1}","sha256":"{D2}"}}}}]"#
        ));
        let e = stmt_err(&dup_digest);
        assert!(e.contains("duplicate key \"sha256\""), "{e}");
        let dup_top = statement(&format!(r#"[{{"digest":{{"sha256":"{D1}"}}}}]"#))
            .replace(r#""predicate":{}"#, r#""predicate":{},"predicate":{"a":1}"#);
        assert!(stmt_err(&dup_top).contains("duplicate key"));
        // deep inside the predicate too
        let mut text = String::from_utf8(read("slsa-v1-spec-example.json")).unwrap();
        text = text.replacen(
            r#""id": "https://builder.example/slsa/v1","#,
            r#""id": "https://builder.example/slsa/v1", "id": "https://evil.example/builder","#,
            1,
        );
        assert!(stmt_err(&text).contains("duplicate key \"id\""));
    }

    #[test]
    fn limits_and_garbage() {
        assert_eq!(
            Statement::parse(&vec![b' '; MAX_STATEMENT_BYTES + 1]).unwrap_err(),
            ProvenanceError::TooLarge(MAX_STATEMENT_BYTES + 1)
        );
        for bad in [&b""[..], b"{", b"\xff\xfe", b"{} {}", b"nul"] {
            assert!(matches!(
                Statement::parse(bad),
                Err(ProvenanceError::Json(_))
            ));
        }
        let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
        assert!(matches!(
            Statement::parse(deep.as_bytes()),
            Err(ProvenanceError::Json(_))
        ));
        // every truncation and a pseudo-random byte at every position of
        // every fixture: refused or accepted, never a panic
        let mut x: u32 = 0x9e37_79b9;
        for e in FIXTURES {
            let good = read(e.file);
            for i in 0..good.len() {
                let _ = full(&good[..i]);
                let mut m = good.clone();
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                m[i] = (x & 0xff) as u8;
                let _ = full(&m);
            }
        }
    }

    #[test]
    fn subjects_bind_to_the_image_being_started() {
        let two = statement(&format!(
            r#"[{{"name":"a","digest":{{"sha256":"{D1}"}}}},{{"name":"b","digest":{{"sha512":"{}"}}}}]"#,
            "ab".repeat(64)
        ));
        let s = Statement::parse(two.as_bytes()).unwrap();
        let d1 = sha(D1);
        let d2 = sha(D2);
        // index digest or platform digest, whichever the subject names
        assert_eq!(s.subject_for(&[&d1, &d2]).unwrap(), d1);
        assert_eq!(s.subject_for(&[&d2, &d1]).unwrap(), d1);
        // malformed digests being started are skipped, never matched loosely
        assert_eq!(s.subject_for(&["sha256:", "latest", &d1]).unwrap(), d1);
        let e = s.subject_for(&[&d2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the attestation is for sha256:{D1}, \"b\" (no sha256 digest), not the image being started (sha256:{D2}): an attestation of another image never counts"
            )
        );
        assert!(s.subject_for(&[]).is_err());
        // a prefix of the digest is not the digest
        let short = format!("sha256:{}", &D1[..63]);
        assert!(s.subject_for(&[&short]).is_err());
        // many subjects: the message stays short
        let many: Vec<String> = (0..20)
            .map(|i| format!(r#"{{"digest":{{"sha256":"{:064x}"}}}}"#, i))
            .collect();
        let s = Statement::parse(statement(&format!("[{}]", many.join(","))).as_bytes()).unwrap();
        let msg = s.subject_for(&[&d2]).unwrap_err().to_string();
        assert!(msg.contains("15 more"), "{msg}");
        assert_eq!(
            s.subject_for(&[&sha(&format!("{:064x}", 19))])
                .unwrap()
                .len(),
            71
        );
    }

    // ---- predicates ----------------------------------------------------

    #[test]
    fn malformed_v1_predicates_name_the_field() {
        let f = "slsa-v1-spec-example.json";
        let cases: &[(&str, Option<Value>, &str)] = &[
            ("/predicate/runDetails/builder/id", Some(5.into()), "predicate.runDetails.builder.id: expected string, found number"),
            ("/predicate/runDetails/builder/id", None, "predicate.runDetails.builder.id: missing"),
            ("/predicate/runDetails/builder/id", Some(Value::Null), "predicate.runDetails.builder.id: missing"),
            ("/predicate/runDetails/builder/id", Some("".into()), "predicate.runDetails.builder.id: empty"),
            ("/predicate/runDetails/builder", Some("b".into()), "predicate.runDetails.builder: expected object, found string"),
            ("/predicate/runDetails/builder/version", Some(serde_json::json!({"builder": 1})), "predicate.runDetails.builder.version.builder: expected string, found number"),
            ("/predicate/runDetails/builder/builderDependencies", Some(serde_json::json!([{"digest": {"sha256": "x"}}])), "predicate.runDetails.builder.builderDependencies[0].digest.sha256: not lowercase hex"),
            ("/predicate/runDetails", None, "predicate.runDetails: missing"),
            ("/predicate/runDetails/metadata", Some(serde_json::json!([])), "predicate.runDetails.metadata: expected object, found array"),
            ("/predicate/runDetails/metadata/startedOn", Some("yesterday".into()), "predicate.runDetails.metadata.startedOn: \"yesterday\" is not an RFC 3339 timestamp"),
            ("/predicate/runDetails/metadata/finishedOn", Some("2025-03-01 10:07:31".into()), "predicate.runDetails.metadata.finishedOn: \"2025-03-01 10:07:31\" is not an RFC 3339 timestamp"),
            ("/predicate/runDetails/metadata/invocationId", Some(serde_json::json!({})), "predicate.runDetails.metadata.invocationId: expected string, found object"),
            ("/predicate/runDetails/byproducts", Some(serde_json::json!({})), "predicate.runDetails.byproducts: expected array, found object"),
            ("/predicate/runDetails/byproducts/0/content", Some("%%%".into()), "predicate.runDetails.byproducts[0].content: not base64"),
            ("/predicate/buildDefinition", None, "predicate.buildDefinition: missing"),
            ("/predicate/buildDefinition/buildType", Some(true.into()), "predicate.buildDefinition.buildType: expected string, found boolean"),
            ("/predicate/buildDefinition/externalParameters", Some(serde_json::json!([])), "predicate.buildDefinition.externalParameters: expected object, found array"),
            ("/predicate/buildDefinition/externalParameters", Some(serde_json::json!({})), "predicate.buildDefinition.externalParameters: empty"),
            ("/predicate/buildDefinition/internalParameters", Some("x".into()), "predicate.buildDefinition.internalParameters: expected object, found string"),
            ("/predicate/buildDefinition/resolvedDependencies", Some(serde_json::json!({})), "predicate.buildDefinition.resolvedDependencies: expected array, found object"),
            ("/predicate/buildDefinition/resolvedDependencies/0", Some(serde_json::json!({})), "predicate.buildDefinition.resolvedDependencies[0]: a resource descriptor needs at least one of name, uri or digest"),
            ("/predicate/buildDefinition/resolvedDependencies/1/digest/sha256", Some(5.into()), "predicate.buildDefinition.resolvedDependencies[1].digest.sha256: expected string, found number"),
            ("/predicate/buildDefinition/resolvedDependencies/0/uri", Some(serde_json::json!(["git+x"])), "predicate.buildDefinition.resolvedDependencies[0].uri: expected string, found array"),
            ("/predicate/buildDefinition/resolvedDependencies/0/digest/gitCommit", Some("abc".into()), "predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit: expected 40 or 64 hex characters, found 3"),
            ("/predicate/buildDefinition/resolvedDependencies/0/annotations", Some(1.into()), "predicate.buildDefinition.resolvedDependencies[0].annotations: expected object, found number"),
        ];
        for (ptr, new, want) in cases {
            let got = err(mutate(f, ptr, new.clone()));
            assert_eq!(&got, want, "{ptr}");
        }
    }

    #[test]
    fn malformed_v0_2_predicates_name_the_field() {
        let f = "slsa-v02-spec-example.json";
        let cases: &[(&str, Option<Value>, &str)] = &[
            ("/predicate/builder", None, "predicate.builder: missing"),
            ("/predicate/builder/id", Some(serde_json::json!(["x"])), "predicate.builder.id: expected string, found array"),
            ("/predicate/buildType", None, "predicate.buildType: missing"),
            ("/predicate/buildType", Some(1.5.into()), "predicate.buildType: expected string, found number"),
            ("/predicate/invocation", Some("x".into()), "predicate.invocation: expected object, found string"),
            ("/predicate/invocation/configSource/uri", Some(1.into()), "predicate.invocation.configSource.uri: expected string, found number"),
            ("/predicate/invocation/configSource/digest/sha256", Some("XYZ".into()), "predicate.invocation.configSource.digest.sha256: not lowercase hex"),
            ("/predicate/invocation/configSource/entryPoint", Some(false.into()), "predicate.invocation.configSource.entryPoint: expected string, found boolean"),
            ("/predicate/invocation/parameters", Some("-O3".into()), "predicate.invocation.parameters: expected object, found string"),
            ("/predicate/invocation/environment", Some(serde_json::json!([])), "predicate.invocation.environment: expected object, found array"),
            ("/predicate/buildConfig", Some(serde_json::json!([])), "predicate.buildConfig: expected object, found array"),
            ("/predicate/metadata/buildInvocationId", Some(7.into()), "predicate.metadata.buildInvocationId: expected string, found number"),
            ("/predicate/metadata/buildStartedOn", Some("2024-13-05T09:30:00Z".into()), "predicate.metadata.buildStartedOn: \"2024-13-05T09:30:00Z\" is not an RFC 3339 timestamp"),
            ("/predicate/metadata/buildFinishedOn", Some(1_730_800_000.into()), "predicate.metadata.buildFinishedOn: expected string, found number"),
            ("/predicate/metadata/completeness/materials", Some(1.into()), "predicate.metadata.completeness.materials: expected boolean, found number"),
            ("/predicate/metadata/reproducible", Some("no".into()), "predicate.metadata.reproducible: expected boolean, found string"),
            ("/predicate/materials", Some(serde_json::json!({})), "predicate.materials: expected array, found object"),
            ("/predicate/materials/0", Some("x".into()), "predicate.materials[0]: expected object, found string"),
            ("/predicate/materials/0/uri", Some(1.into()), "predicate.materials[0].uri: expected string, found number"),
            ("/predicate/materials/0/digest", Some("sha256:abc".into()), "predicate.materials[0].digest: expected object, found string"),
        ];
        for (ptr, new, want) in cases {
            let got = err(mutate(f, ptr, new.clone()));
            assert_eq!(&got, want, "{ptr}");
        }
    }

    #[test]
    fn github_build_types_require_their_documented_parameters() {
        let f = "github-attest-build-provenance.json";
        let w = "/predicate/buildDefinition/externalParameters/workflow";
        for (ptr, new, want) in [
            (w.to_string(), Some(Value::Null), "predicate.buildDefinition.externalParameters.workflow: missing"),
            (w.to_string(), None, "predicate.buildDefinition.externalParameters: empty"),
            (format!("{w}/ref"), None, "predicate.buildDefinition.externalParameters.workflow.ref: missing"),
            (format!("{w}/repository"), Some(5.into()), "predicate.buildDefinition.externalParameters.workflow.repository: expected string, found number"),
            (format!("{w}/path"), Some(serde_json::json!({})), "predicate.buildDefinition.externalParameters.workflow.path: expected string, found object"),
        ] {
            assert_eq!(err(mutate(f, &ptr, new)), want, "{ptr}");
        }
        // the community build type follows the same rule
        let p = mutate(
            f,
            "/predicate/buildDefinition/buildType",
            Some(GITHUB_WORKFLOW_BUILD_TYPES[0].into()),
        )
        .unwrap();
        assert_eq!(p.source_uri.as_deref(), Some("https://github.com/acme/app"));
        // a dependency for another ref does not lend its digest
        let p = mutate(
            f,
            "/predicate/buildDefinition/resolvedDependencies/0/uri",
            Some("git+https://github.com/acme/app@refs/heads/dev".into()),
        )
        .unwrap();
        assert_eq!(p.source_ref.as_deref(), Some("refs/heads/main"));
        assert!(p.source_digest.is_empty());
        // the external parameters win over the dependencies for these types
        let p = mutate(
            f,
            "/predicate/buildDefinition/resolvedDependencies/0/uri",
            Some("git+https://github.com/evil/fork@refs/heads/main".into()),
        )
        .unwrap();
        assert_eq!(p.source_uri.as_deref(), Some("https://github.com/acme/app"));
        assert!(p.source_digest.is_empty());
    }

    #[test]
    fn only_slsa_provenance_predicates_are_accepted() {
        for t in [
            "https://slsa.dev/provenance/v1?draft",
            "https://slsa.dev/provenance/v0.1",
            "https://spdx.dev/Document",
            "https://in-toto.io/attestation/vulns/v0.1",
        ] {
            let e = mutate(
                "slsa-v1-spec-example.json",
                "/predicateType",
                Some(t.into()),
            )
            .unwrap_err();
            assert_eq!(e, ProvenanceError::NotProvenance(t.into()));
            assert!(e.to_string().contains(&format!("{t:?}")), "{e}");
        }
        // the v1 body under the v0.2 type is refused, not half-read
        let e = err(mutate(
            "slsa-v1-spec-example.json",
            "/predicateType",
            Some(SLSA_PROVENANCE_V0_2.into()),
        ));
        assert_eq!(e, "predicate.builder: missing");
        assert!(Provenance::from_predicate(SLSA_PROVENANCE_V1, &serde_json::json!([])).is_err());
    }

    #[test]
    fn unknown_fields_and_nulls_are_ignored() {
        // extension fields anywhere, null optional fields
        let p = mutate(
            "slsa-v1-spec-example.json",
            "/predicate/runDetails/examplebuilder_isCodeReviewed",
            Some(true.into()),
        )
        .unwrap();
        assert_eq!(p.builder_id, "https://builder.example/slsa/v1");
        let p = mutate(
            "slsa-v1-spec-example.json",
            "/predicate/runDetails/metadata",
            Some(Value::Null),
        )
        .unwrap();
        assert_eq!(p.started_on, None);
        let p = mutate(
            "slsa-v02-spec-example.json",
            "/predicate/invocation",
            Some(Value::Null),
        )
        .unwrap();
        // without configSource the git material is the source; this one has none
        assert_eq!(p.source_uri, None);
        assert_eq!(p.source_note, None);
        // an empty optional string is unset
        let p = mutate(
            "slsa-v02-spec-example.json",
            "/predicate/invocation/configSource/uri",
            Some("".into()),
        )
        .unwrap();
        assert_eq!(p.source_uri, None);
    }

    // ---- source rules --------------------------------------------------

    #[test]
    fn git_uris_split_into_repository_and_ref() {
        for (uri, repo, reference) in [
            (
                "https://github.com/o/r@refs/heads/main",
                "https://github.com/o/r",
                Some("refs/heads/main"),
            ),
            (
                "https://github.com/o/r@refs/tags/v1.2.3",
                "https://github.com/o/r",
                Some("refs/tags/v1.2.3"),
            ),
            (
                "https://github.com/o/r.git@refs/heads/a@b",
                "https://github.com/o/r.git@refs/heads/a@b",
                None,
            ),
            (
                "https://github.com/o/r@2f22765d04931a078909145ca628d2264c852d7d",
                "https://github.com/o/r",
                None,
            ),
            (
                "https://github.com/o/r@main",
                "https://github.com/o/r@main",
                None,
            ),
            (
                "https://github.com/o/r@refs/",
                "https://github.com/o/r@refs/",
                None,
            ),
            ("https://github.com/o/r", "https://github.com/o/r", None),
            (
                "https://github.com/o/r.git",
                "https://github.com/o/r.git",
                None,
            ),
            (
                "https://user@host.example/o/r",
                "https://user@host.example/o/r",
                None,
            ),
            (
                "https://user@host.example/o/r@refs/heads/x",
                "https://user@host.example/o/r",
                Some("refs/heads/x"),
            ),
            (
                "ssh://git@github.com/o/r@refs/heads/main",
                "ssh://git@github.com/o/r",
                Some("refs/heads/main"),
            ),
            ("git@github.com:o/r", "git@github.com:o/r", None),
            (
                "git@github.com:o/r@refs/heads/main",
                "git@github.com:o/r",
                Some("refs/heads/main"),
            ),
            ("", "", None),
            ("@", "@", None),
            ("://@refs/x", "://@refs/x", None),
        ] {
            let (r, f) = split_git(uri);
            assert_eq!((r.as_str(), f.as_deref()), (repo, reference), "{uri}");
        }
    }

    #[test]
    fn source_rules() {
        // v0.2: configSource wins over materials
        let p = mutate(
            "slsa-github-generator-container.json",
            "/predicate/materials/0/uri",
            Some("git+https://github.com/other/repo@refs/heads/main".into()),
        )
        .unwrap();
        assert_eq!(
            p.source_uri.as_deref(),
            Some("https://github.com/acme/widget")
        );
        assert_eq!(p.source_ref.as_deref(), Some("refs/tags/v2.3.0"));
        // v0.2 without configSource: the git material
        let p = mutate(
            "slsa-github-generator-container.json",
            "/predicate/invocation/configSource",
            None,
        )
        .unwrap();
        assert_eq!(
            p.source_uri.as_deref(),
            Some("https://github.com/acme/widget")
        );
        assert_eq!(p.source_ref.as_deref(), Some("refs/tags/v2.3.0"));
        assert_eq!(
            p.source_digest.get("sha1").map(String::as_str),
            Some("6b1f53303a732ccc8c6aae6640399827c15250e3")
        );
        // v1: no git dependency, no source (and no note: nothing was ambiguous)
        let p = mutate(
            "slsa-v1-spec-example.json",
            "/predicate/buildDefinition/resolvedDependencies/0",
            None,
        )
        .unwrap();
        assert_eq!((p.source_uri, p.source_note), (None, None));
        // v1: the same git entry twice is one source; two different ones are ambiguous
        let dep = serde_json::json!({
            "uri": "git+https://github.com/octocat/hello-world@refs/heads/main",
            "digest": {"gitCommit": "2f22765d04931a078909145ca628d2264c852d7d"}
        });
        let p = mutate(
            "slsa-v1-spec-example.json",
            "/predicate/buildDefinition/resolvedDependencies/1",
            Some(dep.clone()),
        )
        .unwrap();
        assert_eq!(
            p.source_uri.as_deref(),
            Some("https://github.com/octocat/hello-world")
        );
        let mut other = dep;
        other["digest"]["gitCommit"] = "6b1f53303a732ccc8c6aae6640399827c15250e3".into();
        let p = mutate(
            "slsa-v1-spec-example.json",
            "/predicate/buildDefinition/resolvedDependencies/1",
            Some(other),
        )
        .unwrap();
        assert_eq!(p.source_uri, None);
        assert!(p.source_note.unwrap().contains("2 git dependencies"));
    }

    // ---- patterns and requirements -------------------------------------

    fn pats(v: &[&str]) -> Vec<Pattern> {
        v.iter().map(|p| Pattern::new(p).unwrap()).collect()
    }

    #[test]
    fn patterns_are_exact_or_globs() {
        let exact = Pattern::new("https://builder.example/slsa/v1").unwrap();
        assert!(exact.matches("https://builder.example/slsa/v1"));
        assert!(!exact.matches("https://builder.example/slsa/v1/"));
        assert!(!exact.matches("https://builder.example/slsa/v10"));
        assert_eq!(exact.as_str(), "https://builder.example/slsa/v1");
        // `*` stays within a segment
        let star = Pattern::new("https://github.com/acme/*").unwrap();
        assert!(star.matches("https://github.com/acme/app"));
        assert!(!star.matches("https://github.com/acme/app/sub"));
        assert!(!star.matches("https://github.com/acme-evil/app"));
        let gen = Pattern::new(
            "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v*",
        )
        .unwrap();
        assert!(gen.matches("https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v1.10.0"));
        assert!(!gen.matches("https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/heads/main"));
        // `**` as a segment crosses them
        let deep = Pattern::new("https://github.com/acme/**").unwrap();
        assert!(deep.matches("https://github.com/acme/app/sub"));
        let mid = Pattern::new("refs/**/v1").unwrap();
        assert!(mid.matches("refs/tags/release/v1"));
        // `**` inside a segment is two `*`: it does not cross
        let inner = Pattern::new("refs/tags/v**").unwrap();
        assert!(!inner.matches("refs/tags/v1/evil"));
        // escapes
        let q = Pattern::new(r"https://x.example/a\?b=*").unwrap();
        assert!(q.matches("https://x.example/a?b=1"));
        assert!(!q.matches("https://x.example/aXb=1"));
        // bad patterns
        for bad in ["", "[", "a{b"] {
            let e = Pattern::new(bad).unwrap_err();
            assert!(
                matches!(e, ProvenanceError::BadPattern { .. }),
                "{bad}: {e}"
            );
        }
    }

    fn provenance() -> Provenance {
        full(&read("slsa-v1-spec-example.json")).unwrap()
    }

    #[test]
    fn empty_requirement_constrains_nothing() {
        let r = Requirement::default();
        assert!(r.is_empty());
        for e in FIXTURES {
            let p = full(&read(e.file)).unwrap();
            assert_eq!(r.check(&p, Timestamp::MAX), Ok(()), "{}", e.file);
        }
    }

    #[test]
    fn unmet_constraints_name_the_constraint_and_the_value() {
        let now = ts("2025-03-02T00:00:00Z");
        let mut p = provenance();
        p.builder_id = "https://evil.example/builder".into();
        let r = Requirement {
            builder_ids: pats(&["https://builder.example/slsa/v1"]),
            ..Requirement::default()
        };
        assert!(!r.is_empty());
        assert_eq!(
            r.check(&p, now).unwrap_err().to_string(),
            r#"builder id "https://evil.example/builder" is not one of the allowed builder_ids ["https://builder.example/slsa/v1"]"#
        );
        assert_eq!(r.check(&provenance(), now), Ok(()));

        let r = Requirement {
            build_types: pats(&["https://builder.example/buildtypes/*/v2", "x"]),
            ..Requirement::default()
        };
        assert_eq!(
            r.check(&provenance(), now).unwrap_err().to_string(),
            r#"build type "https://builder.example/buildtypes/git-make/v1" is not one of the allowed build_types ["https://builder.example/buildtypes/*/v2", "x"]"#
        );

        let r = Requirement {
            source_uris: pats(&["https://github.com/acme/*"]),
            ..Requirement::default()
        };
        assert_eq!(
            r.check(&provenance(), now).unwrap_err().to_string(),
            r#"source uri "https://github.com/octocat/hello-world" is not one of the allowed source_uris ["https://github.com/acme/*"]"#
        );
        let r = Requirement {
            source_uris: pats(&["https://github.com/octocat/*"]),
            source_refs: pats(&["refs/tags/v*"]),
            ..Requirement::default()
        };
        assert_eq!(
            r.check(&provenance(), now).unwrap_err().to_string(),
            r#"source ref "refs/heads/main" is not one of the allowed source_refs ["refs/tags/v*"]"#
        );
        // absent values fail a constraint on them
        let mut p = provenance();
        p.source_uri = None;
        p.source_ref = None;
        let r = Requirement {
            source_refs: pats(&["refs/heads/main"]),
            ..Requirement::default()
        };
        assert_eq!(
            r.check(&p, now).unwrap_err().to_string(),
            r#"the provenance names no source ref, but source_refs requires one of ["refs/heads/main"]"#
        );
        // values are escaped in messages (they come from the document)
        let mut p = provenance();
        p.builder_id = "evil\n\u{1b}[0m".into();
        let r = Requirement {
            builder_ids: pats(&["https://builder.example/slsa/v1"]),
            ..Requirement::default()
        };
        let msg = r.check(&p, now).unwrap_err().to_string();
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg}");
        // everything at once passes on the fixture
        let r = Requirement {
            builder_ids: pats(&["https://builder.example/slsa/v1"]),
            build_types: pats(&["https://builder.example/buildtypes/**"]),
            source_uris: pats(&["https://github.com/octocat/hello-world"]),
            source_refs: pats(&["refs/heads/main"]),
            max_age: Some(Duration::from_secs(86_400)),
        };
        assert_eq!(r.check(&provenance(), now), Ok(()));
    }

    #[test]
    fn max_age() {
        let p = provenance(); // finished 2025-03-01T10:07:31Z
        let day = Duration::from_secs(86_400);
        let r = Requirement {
            max_age: Some(day),
            ..Requirement::default()
        };
        assert_eq!(r.check(&p, ts("2025-03-02T10:07:31Z")), Ok(()));
        let e = r.check(&p, ts("2025-03-02T10:07:32Z")).unwrap_err();
        assert_eq!(
            e,
            Unmet::TooOld {
                built: ts("2025-03-01T10:07:31Z"),
                age: Duration::from_secs(86_401),
                max_age: day,
            }
        );
        assert_eq!(
            e.to_string(),
            "built at 2025-03-01T10:07:31Z, 1d 1s ago: older than max_age 1d"
        );
        let e = r.check(&p, ts("2025-04-10T13:00:00Z")).unwrap_err();
        assert!(e.to_string().contains("40d 2h ago"), "{e}");
        // the start time when there is no finish time
        let mut started = p.clone();
        started.finished_on = None;
        assert!(r.check(&started, ts("2025-03-02T10:00:01Z")).is_err());
        assert!(r.check(&started, ts("2025-03-02T10:00:00Z")).is_ok());
        // no build time at all: max_age cannot be met
        let mut none = p.clone();
        none.finished_on = None;
        none.started_on = None;
        let e = r.check(&none, ts("2025-03-01T11:00:00Z")).unwrap_err();
        assert_eq!(e, Unmet::NoBuildTime { max_age: day });
        assert!(e.to_string().contains("records no build time"), "{e}");
        // the future: within clock skew is fine, beyond it is not
        assert!(r.check(&p, ts("2025-03-01T10:03:00Z")).is_ok());
        let e = r.check(&p, ts("2025-03-01T10:00:00Z")).unwrap_err();
        assert!(matches!(e, Unmet::FromTheFuture { .. }), "{e}");
        // extremes do not overflow
        assert!(r.check(&p, Timestamp::MAX).is_err());
        assert!(r.check(&p, Timestamp::MIN).is_err());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::ZERO), "0s");
        assert_eq!(human(Duration::from_secs(59)), "59s");
        assert_eq!(human(Duration::from_secs(302)), "5m 2s");
        assert_eq!(human(Duration::from_secs(3_600)), "1h");
        assert_eq!(human(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(human(Duration::from_secs(86_400 + 300)), "1d 5m");
        assert_eq!(human(Duration::from_secs(86_400 + 3_600 + 1)), "1d 1h");
    }
}
