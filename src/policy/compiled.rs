//! The policy compiled once for the start path.
//!
//! This module owns `policy-compiled/<hex>` in the state directory: a
//! policy that parsed and validated, written in a form a start reads without
//! parsing TOML or touching the rules it does not need. A start reads the
//! header, then only the index lines its binary search visits and the rules
//! the index names as candidates for its image (by `pread`, a 4 KiB page at
//! a time, each page read once), so its cost and memory do not grow with the
//! number of rules.
//!
//! The entry's name is the SHA-256 of this binary's version, the encoding's
//! version, the policy file's resolved path and the digest of its bytes, so
//! any change to any of them names another entry: it is invalidated by
//! construction, never by a timestamp. It is lines:
//!
//! - line 0: the header (JSON), the policy-wide settings and counts;
//! - line 1: the offset table, 16 hex digits per following line giving where
//!   it starts, and one more for the end of the entry;
//! - K lines: the rule index (see `policy::index`), one JSON
//!   `[key, [rule, …]]` per line, sorted by key, found by binary search;
//! - N lines: one JSON rule each, in policy order.
//!
//! Every failure to use an entry (missing, too large, a symlink, malformed,
//! for another policy, an offset table that does not span it) falls back to
//! the full parse, which then writes the entry again; an index or rule line
//! that does not decode at selection falls back to the full parse of the
//! policy file, accepted only if its digest is still the compiled one.
//! Writes are atomic and best effort: an entry that cannot be written costs
//! the next start the parse, nothing else. The entry is as trusted as the
//! rest of the root-owned state directory (the verdict cache beside it
//! decides more); docs/THREAT-MODEL.md T78 says so.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::index::{gather, RuleIndex};
use super::{
    Action, DefaultAction, ImagePattern, Keyless, Matcher, Mode, Policy, Problem, ProvenancePolicy,
    Revoked, Rule, Signer, Stale, MAX_POLICY_BYTES,
};
use crate::state::cache::StateDir;

/// The encoding's version: bump it when a form below changes.
const FORMAT: u32 = 2;
/// The directory under the state directory.
pub const DIR: &str = "policy-compiled";
/// Largest entry read: a policy at its size limit with room for the index
/// and the encoding's overhead.
const MAX_BYTES: u64 = 8 * MAX_POLICY_BYTES;

/// Line 0: what the policy says outside its rules.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    version: String,
    digest: String,
    path: PathBuf,
    mode: Mode,
    default: DefaultAction,
    shim: String,
    trust_root_max_age: Option<std::time::Duration>,
    trust_root_stale: Stale,
    revoked: Revoked,
    warnings: Vec<Problem>,
    keys: usize,
    rules: usize,
}

/// One rule as stored.
#[derive(Debug, Serialize, Deserialize)]
struct RuleForm {
    name: String,
    images: Vec<String>,
    action: Action,
    mode: Option<Mode>,
    signers: Vec<SignerForm>,
    provenance: Option<ProvenanceForm>,
    trust_root: Option<String>,
    line: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum SignerForm {
    Key {
        path: PathBuf,
        require_tlog: bool,
    },
    Keyless {
        issuer: MatcherForm,
        subject: MatcherForm,
        extensions: Vec<(String, String)>,
        ca: Option<PathBuf>,
        require_tlog: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MatcherForm {
    Exact(String),
    Regex(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct ProvenanceForm {
    builder_ids: Vec<String>,
    source_uris: Vec<String>,
    build_types: Vec<String>,
    source_refs: Vec<String>,
    max_age: Option<std::time::Duration>,
    signers: Vec<SignerForm>,
}

impl From<&Matcher> for MatcherForm {
    fn from(m: &Matcher) -> Self {
        match m {
            Matcher::Exact(s) => MatcherForm::Exact(s.clone()),
            Matcher::Regex(s, _) => MatcherForm::Regex(s.clone()),
        }
    }
}

impl From<&Signer> for SignerForm {
    fn from(s: &Signer) -> Self {
        match s {
            Signer::Key { path, require_tlog } => SignerForm::Key {
                path: path.clone(),
                require_tlog: *require_tlog,
            },
            Signer::Keyless(k) => SignerForm::Keyless {
                issuer: (&k.issuer).into(),
                subject: (&k.subject).into(),
                extensions: k.extensions.clone(),
                ca: k.ca.clone(),
                require_tlog: k.require_tlog,
            },
        }
    }
}

impl From<&Rule> for RuleForm {
    fn from(r: &Rule) -> Self {
        RuleForm {
            name: r.name.clone(),
            images: r.images.iter().map(|p| p.as_str().to_string()).collect(),
            action: r.action,
            mode: r.mode,
            signers: r.signers.iter().map(Into::into).collect(),
            provenance: r.provenance.as_ref().map(|p| ProvenanceForm {
                builder_ids: p.builder_ids.clone(),
                source_uris: p.source_uris.clone(),
                build_types: p.build_types.clone(),
                source_refs: p.source_refs.clone(),
                max_age: p.max_age,
                signers: p.signers.iter().map(Into::into).collect(),
            }),
            trust_root: r.trust_root.clone(),
            line: r.line,
        }
    }
}

fn matcher(m: MatcherForm) -> Option<Matcher> {
    match m {
        MatcherForm::Exact(s) => Some(Matcher::Exact(s)),
        // Checked again as the parse checks it: a stored expression is never
        // trusted to be valid.
        MatcherForm::Regex(s) => Matcher::regex(&s).ok(),
    }
}

fn signer(s: SignerForm) -> Option<Signer> {
    Some(match s {
        SignerForm::Key { path, require_tlog } => Signer::Key { path, require_tlog },
        SignerForm::Keyless {
            issuer,
            subject,
            extensions,
            ca,
            require_tlog,
        } => Signer::Keyless(Box::new(Keyless {
            issuer: matcher(issuer)?,
            subject: matcher(subject)?,
            extensions,
            ca,
            require_tlog,
        })),
    })
}

impl RuleForm {
    /// The rule again, its patterns parsed as the policy parse parses them;
    /// `None` if any does not.
    fn into_rule(self) -> Option<Rule> {
        let images = self
            .images
            .iter()
            .map(|t| ImagePattern::new(t).ok())
            .collect::<Option<Vec<_>>>()?;
        let signers = self
            .signers
            .into_iter()
            .map(signer)
            .collect::<Option<Vec<_>>>()?;
        let provenance = match self.provenance {
            None => None,
            Some(p) => Some(ProvenancePolicy {
                builder_ids: p.builder_ids,
                source_uris: p.source_uris,
                build_types: p.build_types,
                source_refs: p.source_refs,
                max_age: p.max_age,
                signers: p
                    .signers
                    .into_iter()
                    .map(signer)
                    .collect::<Option<Vec<_>>>()?,
            }),
        };
        Some(Rule {
            name: self.name,
            images,
            action: self.action,
            mode: self.mode,
            signers,
            provenance,
            trust_root: self.trust_root,
            line: self.line,
        })
    }
}

/// Where the entry of this policy (its resolved path and digest) lives.
fn entry_path(state: &StateDir, resolved: &Path, digest: &str) -> PathBuf {
    let mut id = Vec::new();
    id.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    id.push(0);
    id.extend_from_slice(&FORMAT.to_le_bytes());
    id.extend_from_slice(resolved.as_os_str().as_encoded_bytes());
    id.push(0);
    id.extend_from_slice(digest.as_bytes());
    state.root().join(DIR).join(crate::digest::sha256_hex(&id))
}

/// The entry for a parsed policy.
fn encode(p: &Policy, resolved: &Path) -> Result<Vec<u8>, serde_json::Error> {
    let index = RuleIndex::build(&p.rules);
    let entries = index.sorted_entries();
    let header = Header {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").to_string(),
        digest: p.digest.clone(),
        path: resolved.to_path_buf(),
        mode: p.mode,
        default: p.default,
        shim: p.shim.clone(),
        trust_root_max_age: p.trust_root_max_age,
        trust_root_stale: p.trust_root_stale,
        revoked: p.revoked,
        warnings: p.warnings.clone(),
        keys: entries.len(),
        rules: p.rules.len(),
    };
    // The lines after the offset table, and where each starts in them.
    let mut body = Vec::new();
    let mut starts = Vec::with_capacity(entries.len() + p.rules.len() + 1);
    for e in &entries {
        starts.push(body.len());
        serde_json::to_writer(&mut body, e)?;
        body.push(b'\n');
    }
    for r in &p.rules {
        starts.push(body.len());
        serde_json::to_writer(&mut body, &RuleForm::from(r))?;
        body.push(b'\n');
    }
    starts.push(body.len());
    let mut out = serde_json::to_vec(&header)?;
    out.push(b'\n');
    let body_at = out.len() + OFFSET_WIDTH * starts.len() + 1;
    for s in starts {
        out.extend_from_slice(format!("{:016x}", body_at + s).as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&body);
    Ok(out)
}

/// Write the entry for `p`, read from `resolved` (best effort: a failure
/// costs the next start a parse).
pub(super) fn store(state: &StateDir, resolved: &Path, p: &Policy) {
    let path = entry_path(state, resolved, &p.digest);
    let Ok(bytes) = encode(p, resolved) else {
        return;
    };
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::create_dir_all(dir).and_then(|()| {
        crate::base::fsio::write_atomic(&path, &bytes, crate::base::fsio::Durability::BestEffort)
    });
}

/// A compiled policy's rules, read and decoded on demand: only the pages
/// holding the header, the offsets and the lines a selection asks for are
/// read, so a start touches a few pages of the entry whatever its size.
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    /// The entry's bytes (and its size when opened), read a page at a time.
    pages: Pages,
    /// Where the offset table starts: 16 hex digits per line after it, the
    /// index lines then the rule lines, and one more for the end.
    table_at: u64,
    keys: usize,
    /// One per rule: decoded on first use (`None`: it does not decode);
    /// boxed, so a slot never decoded costs a pointer.
    slots: Vec<OnceLock<Option<Box<Rule>>>>,
    /// The policy file and its digest, for the full parse when a rule does
    /// not decode or every rule is asked for.
    resolved: PathBuf,
    digest: String,
    full: OnceLock<Option<Vec<Rule>>>,
}

/// The width of one offset in the table.
const OFFSET_WIDTH: usize = 16;
/// Largest header or line read: a policy at its limit could not need more.
const MAX_LINE: u64 = MAX_POLICY_BYTES;

/// The policy from its entry, if there is a usable one for a policy file at
/// `resolved` whose bytes have `digest`.
pub(super) fn open(state: &StateDir, resolved: &Path, digest: &str) -> Option<Policy> {
    let opts = crate::base::fsio::ReadOptions::bounded(MAX_BYTES).no_symlink();
    // At most MAX_BYTES: `fsio::open` checked the size it returns.
    let (file, len) = crate::base::fsio::open(&entry_path(state, resolved, digest), opts).ok()?;
    let pages = Pages::new(file, len);
    let header_line = pages.line_from(0)?;
    let header: Header = serde_json::from_slice(&header_line).ok()?;
    if header.format != FORMAT
        || header.version != env!("CARGO_PKG_VERSION")
        || header.digest != digest
        || header.path != resolved
    {
        return None;
    }
    let lines = header.keys.checked_add(header.rules)?.checked_add(1)?;
    let table_at = header_line.len() as u64 + 1;
    let body_at = table_at.checked_add((OFFSET_WIDTH as u64).checked_mul(lines as u64)?)? + 1;
    // The counts are bounded by the entry's own length before anything is
    // allocated for them (a header claiming 2^40 rules is not a reason to
    // reserve memory for them).
    if body_at > len {
        return None;
    }
    let compiled = Compiled {
        pages,
        table_at,
        keys: header.keys,
        slots: (0..header.rules).map(|_| OnceLock::new()).collect(),
        resolved: resolved.to_path_buf(),
        digest: header.digest.clone(),
        full: OnceLock::new(),
    };
    // The table is whole: its first line starts right after it and its
    // last ends at the end of the entry.
    if compiled.offset(0)? != body_at || compiled.offset(lines - 1)? != len {
        return None;
    }
    Some(Policy {
        mode: header.mode,
        default: header.default,
        shim: header.shim,
        rules: Vec::new(),
        digest: header.digest,
        path: resolved.to_path_buf(),
        warnings: header.warnings,
        trust_root_max_age: header.trust_root_max_age,
        trust_root_stale: header.trust_root_stale,
        revoked: header.revoked,
        index: OnceLock::new(),
        compiled: Some(Box::new(compiled)),
    })
}

/// The size of a page of an entry, read at once.
const PAGE: u64 = 4096;

/// An entry's bytes, read a page at a time on first use (`pread`) and kept:
/// a binary search visits several offsets and lines on the same page, and
/// reads it once (a small policy's whole entry is one read).
#[derive(Debug, Clone)]
struct Pages {
    file: std::sync::Arc<std::fs::File>,
    /// The entry's size when opened.
    len: u64,
    /// One per page; `None` when the page could not be read whole.
    pages: Vec<OnceLock<Option<Box<[u8]>>>>,
}

impl Pages {
    fn new(file: std::fs::File, len: u64) -> Self {
        Self {
            file: std::sync::Arc::new(file),
            len,
            pages: (0..len.div_ceil(PAGE)).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Page `i`, read on first use; `None` if the file no longer holds it
    /// whole (it shrank since it was opened).
    fn page(&self, i: usize) -> Option<&[u8]> {
        use std::os::unix::fs::FileExt;
        self.pages
            .get(i)?
            .get_or_init(|| {
                let at = i as u64 * PAGE;
                let mut buf = vec![0u8; PAGE.min(self.len - at) as usize];
                self.file.read_exact_at(&mut buf, at).ok()?;
                Some(buf.into_boxed_slice())
            })
            .as_deref()
    }

    /// Fill `buf` from offset `at`; `None` past the end or on a failed read.
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> Option<()> {
        let end = at.checked_add(buf.len() as u64)?;
        if end > self.len {
            return None;
        }
        let mut pos = at;
        let mut done = 0;
        while done < buf.len() {
            let page = self.page((pos / PAGE) as usize)?;
            let from = (pos % PAGE) as usize;
            let n = (page.len() - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&page[from..from + n]);
            done += n;
            pos += n as u64;
        }
        Some(())
    }

    /// The line starting at `at`, without its newline (at most
    /// [`MAX_LINE`] bytes).
    fn line_from(&self, at: u64) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut pos = at;
        while pos < self.len && (out.len() as u64) < MAX_LINE {
            let page = self.page((pos / PAGE) as usize)?;
            let rest = &page[(pos % PAGE) as usize..];
            // A plain search: the memchr crate's would probe the CPU
            // (`cpuid`, a VM exit each on a virtual machine) on its first
            // call, in every start; policy lines are short.
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&rest[..i]);
                    return Some(out);
                }
                None => out.extend_from_slice(rest),
            }
            pos += rest.len() as u64;
        }
        None
    }
}

impl Compiled {
    /// Offset `i` of the table.
    fn offset(&self, i: usize) -> Option<u64> {
        let mut hex = [0u8; OFFSET_WIDTH];
        let at = self.table_at + (OFFSET_WIDTH * i) as u64;
        self.pages.read_exact_at(&mut hex, at)?;
        u64::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()
    }

    /// Line `i` after the table (index lines first, then rules), without
    /// its newline; `None` when the table or the line is not sound.
    fn line(&self, i: usize) -> Option<Vec<u8>> {
        let (start, end) = (self.offset(i)?, self.offset(i + 1)?);
        if start >= end || end > self.pages.len || end - start > MAX_LINE {
            return None;
        }
        let mut buf = vec![0u8; (end - start) as usize];
        self.pages.read_exact_at(&mut buf, start)?;
        (buf.pop() == Some(b'\n')).then_some(buf)
    }

    /// The rules filed under `key`, by binary search of the sorted index
    /// lines; `Err` when a line does not decode.
    fn lookup(&self, key: &str) -> Result<Vec<usize>, ()> {
        let (mut lo, mut hi) = (0, self.keys);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let l = self.line(mid).ok_or(())?;
            let (k, ids): (String, Vec<usize>) = serde_json::from_slice(&l).map_err(|_| ())?;
            match k.as_str().cmp(key) {
                std::cmp::Ordering::Equal => return Ok(ids),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(Vec::new())
    }

    /// The rules that may match one of `subjects`, in rule order (as
    /// [`RuleIndex::candidates`]); `Err` when the index does not decode.
    pub(super) fn candidates(&self, subjects: &[&str]) -> Result<Vec<usize>, ()> {
        let out = gather(subjects, |k, out| {
            out.extend(self.lookup(k)?);
            Ok::<(), ()>(())
        })?;
        if out.last().is_some_and(|&i| i >= self.slots.len()) {
            return Err(());
        }
        Ok(out)
    }

    /// Rule `i`, decoded on first use; `None` if its line does not decode.
    pub(super) fn rule(&self, i: usize) -> Option<&Rule> {
        self.slots
            .get(i)?
            .get_or_init(|| {
                let l = self.line(self.keys + i)?;
                serde_json::from_slice::<RuleForm>(&l)
                    .ok()?
                    .into_rule()
                    .map(Box::new)
            })
            .as_deref()
    }

    /// Every rule, from the full parse of the policy file, read again and
    /// accepted only if its digest is still the one compiled (`None` if it
    /// changed or no longer parses: the caller refuses).
    pub(super) fn full(&self) -> Option<&[Rule]> {
        self.full
            .get_or_init(|| {
                Policy::load(&self.resolved)
                    .ok()
                    .filter(|p| p.digest == self.digest)
                    .map(|p| p.rules)
            })
            .as_deref()
    }

    /// How many rules have been decoded (for the tests: a start decodes only
    /// its candidates).
    #[cfg(test)]
    pub(super) fn decoded(&self) -> usize {
        self.slots.iter().filter(|s| s.get().is_some()).count()
    }

    /// How many pages of the entry have been read, and how many it has (for
    /// the tests: a start reads a few pages of a large entry).
    #[cfg(test)]
    fn pages_read(&self) -> (usize, usize) {
        let p = &self.pages.pages;
        (p.iter().filter(|s| s.get().is_some()).count(), p.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_gen::{image, policy_text, Rng};
    use super::super::Selection;
    use super::*;

    fn entries(state: &StateDir) -> Vec<PathBuf> {
        match std::fs::read_dir(state.root().join(DIR)) {
            Ok(d) => d.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn form(r: &Rule) -> String {
        serde_json::to_string(&RuleForm::from(r)).unwrap()
    }

    /// The first load parses and writes the entry; the next reads it, decodes
    /// only the candidates of the image it selects for, and selects exactly
    /// what the full parse selects, over generated policies and images.
    #[test]
    fn compiled_selection_is_the_parsed_selection() {
        let mut rng = Rng(0x5eed_c0de);
        let (mut matched, mut defaulted) = (0, 0);
        for round in 0..60 {
            let dir = tempfile::tempdir().unwrap();
            let state = StateDir::new(dir.path().join("state"));
            let path = dir.path().join("policy.toml");
            let n = 1 + rng.below(80);
            std::fs::write(&path, policy_text(&mut rng, n)).unwrap();
            let parsed = Policy::load(&path).unwrap();
            let first = Policy::load_for_start(&path, &state).unwrap();
            assert!(first.compiled.is_none(), "nothing compiled yet");
            assert_eq!(entries(&state).len(), 1);
            for _ in 0..30 {
                let img = image(&mut rng);
                let p = Policy::load_for_start(&path, &state).unwrap();
                let c = p.compiled.as_deref().expect("read from the entry");
                assert_eq!(
                    (p.digest.as_str(), p.path.as_path()),
                    (parsed.digest.as_str(), path.as_path())
                );
                match (p.select(&img), parsed.select(&img)) {
                    (Selection::Rule(got), Selection::Rule(want)) => {
                        assert_eq!(form(got), form(want), "{img}");
                        matched += 1;
                    }
                    (Selection::Default(a), Selection::Default(b)) => {
                        assert_eq!(a, b);
                        defaulted += 1;
                    }
                    (got, want) => {
                        panic!("round {round}, {img}: compiled {got:?}, parsed {want:?}")
                    }
                }
                let candidates = c
                    .candidates(&[img.normalized(), img.repository_name()])
                    .unwrap();
                assert!(c.decoded() <= candidates.len());
            }
            let p = Policy::load_for_start(&path, &state).unwrap();
            let all: Vec<_> = p.rules().iter().map(form).collect();
            let want: Vec<_> = parsed.rules().iter().map(form).collect();
            assert_eq!(all, want);
        }
        assert!(matched > 1000 && defaulted > 100, "{matched} {defaulted}");
    }

    #[test]
    fn a_selection_reads_a_few_pages_of_a_large_entry_and_a_small_entry_once() {
        let mut rng = Rng(0x9a6e_5eed);
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, policy_text(&mut rng, 5000)).unwrap();
        let parsed = Policy::load(&path).unwrap();
        Policy::load_for_start(&path, &state).unwrap(); // compiles
        for _ in 0..20 {
            let img = image(&mut rng);
            let p = Policy::load_for_start(&path, &state).unwrap();
            match (p.select(&img), parsed.select(&img)) {
                (Selection::Rule(got), Selection::Rule(want)) => assert_eq!(form(got), form(want)),
                (Selection::Default(a), Selection::Default(b)) => assert_eq!(a, b),
                (got, want) => panic!("{img}: compiled {got:?}, parsed {want:?}"),
            }
            let (read, all) = p.compiled.as_deref().unwrap().pages_read();
            // the header, the offset table's pages a binary search visits,
            // its index lines and the candidate rules (12 to 15 pages of 235
            // when this was written)
            assert!(
                all > 200 && read <= 30,
                "{read} of {all} pages read for {img}"
            );
        }
        std::fs::write(&path, policy_text(&mut rng, 3)).unwrap();
        Policy::load_for_start(&path, &state).unwrap();
        let p = Policy::load_for_start(&path, &state).unwrap();
        let img = image(&mut rng);
        let _ = p.select(&img);
        assert_eq!(p.compiled.as_deref().unwrap().pages_read(), (1, 1));
    }

    /// Every form a rule can take survives the round trip: key and keyless
    /// signers, regex and exact matchers, extensions, a CA, provenance with
    /// its own signer, a mode override, a trust root; and the settings.
    #[test]
    fn every_rule_form_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let path = dir.path().join("policy.toml");
        std::fs::write(
            &path,
            r#"mode = "warn"
default = "allow"
shim = "containerd-shim-kata-v2"
trust_root_max_age = "30d"
trust_root_stale = "refuse"
revoked = "stop"

[[rule]]
name = "keys"
images = ["registry.example/team/*", "docker.io/library/nginx:1.*"]
mode = "enforce"
signer = [{ key = "k.pub", require_tlog = true }]

[[rule]]
name = "keyless"
images = ["ghcr.io/acme/**"]
trust_root = "staging"
[[rule.signer]]
issuer = "https://token.actions.githubusercontent.com"
subject_regex = "https://github.com/acme/.+"
ca = "ca.pem"
[rule.signer.extensions]
github_workflow_repository = "acme/app"
[rule.provenance]
builder_ids = ["https://github.com/slsa-framework/*"]
source_uris = ["git+https://github.com/acme/app"]
max_age = "7d"
[[rule.provenance.signer]]
key = "build.pub"
"#,
        )
        .unwrap();
        let parsed = Policy::load(&path).unwrap();
        Policy::load_for_start(&path, &state).unwrap();
        let p = Policy::load_for_start(&path, &state).unwrap();
        assert!(p.compiled.is_some());
        assert_eq!(
            (p.mode, p.default, p.shim.as_str(), p.trust_root_max_age),
            (
                parsed.mode,
                parsed.default,
                parsed.shim.as_str(),
                parsed.trust_root_max_age
            )
        );
        assert_eq!(
            (p.trust_root_stale, p.revoked),
            (Stale::Refuse, Revoked::Stop)
        );
        assert_eq!(p.warnings, parsed.warnings);
        let img = crate::reference::ImageRef::parse("ghcr.io/acme/x/y:1").unwrap();
        let Selection::Rule(r) = p.select(&img) else {
            panic!("no rule")
        };
        assert_eq!(form(r), form(&parsed.rules()[1]));
        let Signer::Keyless(k) = &r.signers[0] else {
            panic!("not keyless")
        };
        assert!(k.subject.matches("https://github.com/acme/app"));
        assert!(!k.subject.matches("https://github.com/other/app"));
        let p2 = Policy::load_for_start(&path, &state).unwrap();
        let img = crate::reference::ImageRef::parse("docker.io/library/nginx:1.25").unwrap();
        let Selection::Rule(r) = p2.select(&img) else {
            panic!("no rule")
        };
        assert_eq!(form(r), form(&parsed.rules()[0]));
        assert_eq!(p2.compiled.as_deref().unwrap().decoded(), 1);
    }

    /// A changed policy names another entry; an entry that is damaged, a
    /// symlink or another policy's is never used: the parse answers and the
    /// entry is written again.
    #[test]
    fn bad_or_stale_entries_fall_back_to_the_parse() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let path = dir.path().join("policy.toml");
        let v1 = "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"a\"\nimages = [\"x.io/a\"]\naction = \"allow\"\n";
        std::fs::write(&path, v1).unwrap();
        Policy::load_for_start(&path, &state).unwrap();
        let entry = entries(&state).pop().unwrap();
        let img = crate::reference::ImageRef::parse("x.io/a:1").unwrap();
        let good = std::fs::read(&entry).unwrap();

        // a new policy text: another entry, and its own rules
        std::fs::write(&path, v1.replace("allow", "deny")).unwrap();
        let p = Policy::load_for_start(&path, &state).unwrap();
        assert!(p.compiled.is_none());
        assert_eq!(entries(&state).len(), 2);
        let p = Policy::load_for_start(&path, &state).unwrap();
        let Selection::Rule(r) = p.select(&img) else {
            panic!()
        };
        assert_eq!(r.action, Action::Deny);
        std::fs::write(&path, v1).unwrap();

        let header_end = good.iter().position(|b| *b == b'\n').unwrap();
        let other_digest = {
            let mut h: serde_json::Value = serde_json::from_slice(&good[..header_end]).unwrap();
            h["digest"] = crate::base::testing::digest(7).into();
            let mut b = serde_json::to_vec(&h).unwrap();
            b.extend_from_slice(&good[header_end..]);
            b
        };
        // A header whose counts the entry cannot hold (nothing is reserved
        // for them: this would otherwise abort on a 16 TiB allocation).
        let huge_count = {
            let mut h: serde_json::Value = serde_json::from_slice(&good[..header_end]).unwrap();
            h["rules"] = (1u64 << 40).into();
            let mut b = serde_json::to_vec(&h).unwrap();
            b.extend_from_slice(&good[header_end..]);
            b
        };
        let damaged: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"garbage\n".to_vec(),
            good[..good.len() - 1].to_vec(),
            good[..header_end + 1].to_vec(),
            other_digest,
            huge_count,
        ];
        for bad in damaged {
            std::fs::write(&entry, &bad).unwrap();
            let p = Policy::load_for_start(&path, &state).unwrap();
            assert!(p.compiled.is_none(), "used a bad entry");
            let Selection::Rule(r) = p.select(&img) else {
                panic!()
            };
            assert_eq!(r.action, Action::Allow);
            assert_eq!(std::fs::read(&entry).unwrap(), good, "not written again");
        }
        std::fs::remove_file(&entry).unwrap();
        std::fs::write(dir.path().join("elsewhere"), &good).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &entry).unwrap();
        assert!(Policy::load_for_start(&path, &state)
            .unwrap()
            .compiled
            .is_none());
    }

    /// A rule or index line damaged after the header was accepted sends the
    /// selection to the full parse: the answer is the parse's, never a
    /// skipped rule.
    #[test]
    fn a_line_that_does_not_decode_falls_back_to_the_full_parse() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let path = dir.path().join("policy.toml");
        std::fs::write(
            &path,
            "default = \"allow\"\n[[rule]]\nname = \"deny-a\"\nimages = [\"x.io/a\"]\naction = \"deny\"\n[[rule]]\nname = \"b\"\nimages = [\"x.io/b\"]\naction = \"allow\"\n",
        )
        .unwrap();
        Policy::load_for_start(&path, &state).unwrap();
        let entry = entries(&state).pop().unwrap();
        let good = String::from_utf8(std::fs::read(&entry).unwrap()).unwrap();
        let img = crate::reference::ImageRef::parse("x.io/a").unwrap();
        // Each change keeps the line's length, so the offsets still hold.
        for (from, to) in [
            // the rule's pattern no longer parses
            ("\"images\":[\"x.io/a\"]", "\"images\":[\"[.io/a\"]"),
            // the rule's line is not a rule
            ("{\"name\":\"deny-a\"", "[\"name\",\"deny-a\""),
            // the index line of its key is not one
            ("[\"x.io/a\",[0]]", "[\"x.io/a\",{0}]"),
        ] {
            assert!(good.contains(from), "{from}");
            std::fs::write(&entry, good.replace(from, to)).unwrap();
            let p = Policy::load_for_start(&path, &state).unwrap();
            assert!(p.compiled.is_some());
            let Selection::Rule(r) = p.select(&img) else {
                panic!("{from}: the default (allow) answered")
            };
            assert_eq!(r.name, "deny-a");
        }
    }

    /// An offset table pointing elsewhere sends the selection to the full
    /// parse; a policy file that changed since its entry was opened is never
    /// parsed in its place: the start is refused, whatever the default.
    #[test]
    fn offsets_elsewhere_and_a_changed_file_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let path = dir.path().join("policy.toml");
        let text = "default = \"allow\"\n[[rule]]\nname = \"deny-a\"\nimages = [\"x.io/a\"]\naction = \"deny\"\n";
        std::fs::write(&path, text).unwrap();
        Policy::load_for_start(&path, &state).unwrap();
        let entry = entries(&state).pop().unwrap();
        let good = std::fs::read(&entry).unwrap();
        let table = good.iter().position(|b| *b == b'\n').unwrap() + 1;
        let img = crate::reference::ImageRef::parse("x.io/a").unwrap();
        // the rule's start (offset 1: after the one index line) moved onto
        // the index line: a line, but not a rule
        let mut moved = good.clone();
        moved[table + OFFSET_WIDTH..table + 2 * OFFSET_WIDTH]
            .copy_from_slice(&good[table..table + OFFSET_WIDTH]);
        std::fs::write(&entry, &moved).unwrap();
        let p = Policy::load_for_start(&path, &state).unwrap();
        assert!(p.compiled.is_some());
        let Selection::Rule(r) = p.select(&img) else {
            panic!("the default (allow) answered")
        };
        assert_eq!(r.name, "deny-a");
        // the same damage, and the file changes after the entry was opened
        let p = Policy::load_for_start(&path, &state).unwrap();
        assert!(p.compiled.is_some());
        std::fs::write(&path, text.replace("deny-a", "renamed")).unwrap();
        assert!(matches!(
            p.select(&img),
            Selection::Default(DefaultAction::Deny)
        ));
    }
}
