//! The layering test: every module of `src/` imports only from layers below
//! its own, operator tools do not import each other (except the edges in
//! [`OPS_ALLOWED`]), no set of modules imports each other in a circle, and the
//! start path (`gate/` and everything it reaches) reaches nothing under `ops/`
//! or `cli/`.
//!
//! It reads the source text: every `crate::…` path and `super::…` path outside
//! comments, string literals and `#[cfg(test)]` items is an edge from the file
//! that writes it to the module it names. A file's layer is its first folder
//! under `src/`; the flat paths `lib.rs` re-exports (`crate::bundle`, …) are
//! resolved to the module they name.
//!
//! Run alone: `cargo test --test layering`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. Folders of equal rank are siblings and may not
/// import each other.
const LAYERS: &[(&str, u8)] = &[
    ("base", 0),
    ("formats", 1),
    ("state", 2),
    ("containerd", 2),
    ("verify", 3),
    ("policy", 4),
    ("gate", 5),
    ("ops", 6),
    ("cli", 7),
];

/// The operator tools that may use another one, and why.
const OPS_ALLOWED: &[(&str, &str)] = &[
    // `sync` fetches as containerd pulls: it drives `fetch::fetch`.
    ("sync", "fetch"),
    // `doctor` reports the default trust root's age as `trust` measures it.
    ("doctor", "trust"),
    // `bundle import` installs the trust roots a bundle carries through
    // `trust::import`, the same checks `portcullis trust import` makes.
    ("offline", "trust"),
    // `reverify` reads the gate's records back with `audit::parse_lines`.
    ("reverify", "audit"),
    // `evidence` over a collector drops records uploaded twice by audit's
    // one rule (`audit::record_key`, `audit::once_by`).
    ("evidence", "audit"),
    // `policy pull` explains a registry's failure as `fetch` does
    // (`fetch::registry_why`: the cause chain, and --plain-http only when
    // the scheme is the cause).
    ("policy_dist", "fetch"),
];

/// One source file: its module path (`gate/decide`, `policy`, …) and text.
struct Source {
    module: String,
    text: String,
}

fn rank(layer: &str) -> Option<u8> {
    LAYERS.iter().find(|(l, _)| *l == layer).map(|(_, r)| *r)
}

fn layer(module: &str) -> &str {
    module.split('/').next().unwrap_or(module)
}

/// The operator tool an `ops/` module belongs to (`ops/evidence/html` →
/// `evidence`); `None` for `ops/mod.rs` itself.
fn tool(module: &str) -> Option<&str> {
    module.split('/').nth(1)
}

/// Blank out comments, string literals and character literals, keeping the
/// line structure, so that neither braces nor paths inside them count.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            let end = (j + close.len()).min(b.len());
            for &x in &b[i..end] {
                blank(&mut out, x);
            }
            i = end;
        } else if c == b'"' {
            blank(&mut out, c);
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                blank(&mut out, b[i]);
                i += 1;
            }
            if i < b.len() {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for &x in &b[i..=e] {
                        blank(&mut out, x);
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps ASCII structure")
}

/// Remove every item annotated `#[cfg(test)]` (a `mod … { … }` block or a
/// `mod …;` declaration).
fn strip_cfg_test(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // The item ends at the `;` or at the brace matching its first `{`.
        let semi = after.find(';');
        let brace = after.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (_, Some(b)) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (k, ch) in after[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(s), None) => s + 1,
            (None, None) => after.len(),
        };
        out.extend(
            after[..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every path written as `crate::a::b…` (use-groups expanded) or
/// `super::a…`, as segment lists; `super` paths keep a leading `super`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(p) = code[from..].find(start) {
            let at = from + p;
            from = at + start.len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let head = if start == "crate::" {
                vec![]
            } else {
                vec!["super".to_string()]
            };
            expand(&code[from..], head, &mut out);
        }
    }
    out
}

/// Read one path (or use-group) at the start of `s`, prefixed by `head`.
fn expand(s: &str, mut head: Vec<String>, out: &mut Vec<Vec<String>>) {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('{') {
        // Split the group at top-level commas.
        let mut depth = 0;
        let mut item = String::new();
        for ch in inner.chars() {
            match ch {
                '{' => {
                    depth += 1;
                    item.push(ch);
                }
                '}' if depth == 0 => break,
                '}' => {
                    depth -= 1;
                    item.push(ch);
                }
                ',' if depth == 0 => {
                    expand(&item, head.clone(), out);
                    item.clear();
                }
                _ => item.push(ch),
            }
        }
        if !item.trim().is_empty() {
            expand(&item, head, out);
        }
        return;
    }
    let ident: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() || ident == "self" || ident == "*" {
        if !head.is_empty() {
            out.push(head);
        }
        return;
    }
    head.push(ident.clone());
    let rest = &s[ident.len()..];
    match rest.strip_prefix("::") {
        Some(r) if r.trim_start().starts_with('*') => out.push(head),
        Some(r) => expand(r, head, out),
        None => out.push(head),
    }
}

/// The flat aliases of `lib.rs` (`pub use verify::{sigstore as bundle}` →
/// `bundle` ↦ `verify/sigstore`).
fn aliases(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in code_only(lib).lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((prefix, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, alias) = match item.split_once(" as ") {
                Some((n, a)) => (n.trim(), a.trim()),
                None => (item, item),
            };
            map.insert(alias.to_string(), format!("{prefix}/{name}"));
        }
    }
    map
}

/// The longest known module named by the leading segments of `segs` under
/// the module `base` (`""` for the crate root).
fn resolve(
    base: &str,
    segs: &[String],
    modules: &BTreeSet<String>,
    aliases: &BTreeMap<String, String>,
) -> Option<String> {
    let mut best = None;
    let mut cur = base.to_string();
    for (k, s) in segs.iter().enumerate() {
        let next = if k == 0 && cur.is_empty() {
            match aliases.get(s) {
                Some(t) => t.clone(),
                None => s.clone(),
            }
        } else if cur.is_empty() {
            s.clone()
        } else {
            format!("{cur}/{s}")
        };
        let folder = format!("{next}/");
        if modules.contains(&next) {
            best = Some(next.clone());
        } else if !modules.iter().any(|m| m.starts_with(&folder)) {
            break;
        }
        cur = next;
    }
    best.or_else(|| (!base.is_empty()).then(|| base.to_string()))
}

/// The module `super` names from `module` (a `mod.rs` file's module is its
/// folder, so `super` is one folder up either way).
fn parent(module: &str) -> String {
    let mut parts: Vec<&str> = module.split('/').collect();
    parts.pop();
    parts.join("/")
}

/// The import edges between the modules of `sources`, and the problems of
/// resolving them (a path to a root file that is not in a layer).
fn edges(
    sources: &[Source],
    aliases: &BTreeMap<String, String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in sources {
        let code = strip_cfg_test(&code_only(&s.text));
        let out = graph.entry(s.module.clone()).or_default();
        // `pub use child::*;` in a folder module: what it re-exports is the
        // child's, so a path through the folder reaches the child.
        for line in code.lines() {
            if let Some(rest) = line.trim().strip_prefix("pub use ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let child = format!("{}/{name}", s.module);
                if modules.contains(&child) {
                    out.insert(child);
                }
            }
        }
        for p in paths(&code) {
            let (base, segs) = if p.first().map(String::as_str) == Some("super") {
                let mut base = parent(&s.module);
                let mut segs = &p[1..];
                while segs.first().map(String::as_str) == Some("super") {
                    base = parent(&base);
                    segs = &segs[1..];
                }
                (base, segs.to_vec())
            } else {
                (String::new(), p)
            };
            let target = match resolve(&base, &segs, &modules, aliases) {
                Some(t) => t,
                None => match segs.first() {
                    Some(first) => first.clone(),
                    None => continue,
                },
            };
            if target != s.module {
                out.insert(target);
            }
        }
    }
    graph
}

/// Every rule the tree breaks, one line each.
fn problems(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, tos) in graph {
        let lf = layer(from);
        let Some(rf) = rank(lf) else {
            problems.push(format!(
                "src/{from}.rs is in no layer folder: move it under one of {:?}",
                LAYERS.iter().map(|(l, _)| *l).collect::<Vec<_>>()
            ));
            continue;
        };
        for to in tos {
            let lt = layer(to);
            let Some(rt) = rank(lt) else {
                problems.push(format!(
                    "{from} -> {to}: {to} is in no layer folder (a path through a flat name lib.rs does not re-export?)"
                ));
                continue;
            };
            if lf == lt {
                if lf == "ops" {
                    if let (Some(a), Some(b)) = (tool(from), tool(to)) {
                        if a != b && !OPS_ALLOWED.contains(&(a, b)) {
                            problems.push(format!(
                                "{from} -> {to}: operator tools do not import each other; move what both need down a layer"
                            ));
                        }
                    }
                }
            } else if rt == rf {
                problems.push(format!(
                    "{from} -> {to}: sideways between sibling layers {lf} and {lt}"
                ));
            } else if rt > rf {
                problems.push(format!(
                    "{from} -> {to}: points up from layer {lf} ({rf}) to {lt} ({rt})"
                ));
            }
        }
    }
    problems.extend(cycles(graph));
    problems
}

/// One line per import cycle found (depth-first search, back edges).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit<'a>(
        n: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        found: &mut Vec<String>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|x| *x == m).unwrap_or(0);
                    let mut cyc: Vec<&str> = stack[at..].to_vec();
                    cyc.push(m);
                    found.push(format!("import cycle: {}", cyc.join(" -> ")));
                }
                Some(_) => {}
                None => visit(m, graph, state, stack, found),
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    let mut state = BTreeMap::new();
    let mut found = Vec::new();
    for n in graph.keys() {
        if !state.contains_key(n.as_str()) {
            visit(n, graph, &mut state, &mut Vec::new(), &mut found);
        }
    }
    found
}

/// Every module the start path reaches: `gate/` and what it imports,
/// transitively.
fn reached_from_gate(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut seen: BTreeSet<String> = graph
        .keys()
        .filter(|m| layer(m) == "gate")
        .cloned()
        .collect();
    let mut todo: Vec<String> = seen.iter().cloned().collect();
    while let Some(m) = todo.pop() {
        for n in graph.get(&m).into_iter().flatten() {
            if seen.insert(n.clone()) {
                todo.push(n.clone());
            }
        }
    }
    seen
}

/// Read `src/`: every `.rs` file except `lib.rs` (the map and the flat
/// aliases), the binaries, and files that are only compiled for tests.
fn read_tree(src: &Path) -> (Vec<Source>, BTreeMap<String, String>) {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let mut test_only = BTreeSet::new();
    let mut sources = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(src).expect("under src");
        if rel.starts_with("bin") || rel == Path::new("lib.rs") {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("source file");
        let is_mod = rel.file_name().is_some_and(|n| n == "mod.rs");
        let module = if is_mod {
            rel.parent().expect("mod.rs in a folder").to_path_buf()
        } else {
            rel.with_extension("")
        };
        let module = module.to_string_lossy().into_owned();
        // Files declared `#[cfg(test)] mod x;` (or testing helpers) are test code.
        let code = code_only(&text);
        for (k, _) in code.match_indices("#[cfg(test)]") {
            let decl = code[k + 12..].trim_start();
            let decl = decl
                .strip_prefix("pub(crate) ")
                .or_else(|| decl.strip_prefix("pub "))
                .unwrap_or(decl);
            if let Some(rest) = decl.strip_prefix("mod ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if rest[name.len()..].trim_start().starts_with(';') {
                    test_only.insert(format!("{module}/{name}"));
                }
            }
        }
        sources.push(Source { module, text });
    }
    sources.retain(|s| !test_only.contains(&s.module));
    (sources, aliases(&lib))
}

#[test]
fn layers_point_down_and_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (sources, aliases) = read_tree(&src);
    let graph = edges(&sources, &aliases);
    let count: usize = graph.values().map(BTreeSet::len).sum();
    // Not vacuous: the tree has well over a hundred edges between modules.
    assert!(
        count > 100,
        "only {count} edges found: is the scanner broken?"
    );
    assert!(
        graph.contains_key("gate/decide") && graph["gate/decide"].contains("policy"),
        "the gate's decide must be seen importing the policy: {:?}",
        graph.get("gate/decide")
    );
    let problems = problems(&graph);
    assert!(
        problems.is_empty(),
        "{} layering problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_start_path_reaches_no_operator_tool() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (sources, aliases) = read_tree(&src);
    let graph = edges(&sources, &aliases);
    let reached = reached_from_gate(&graph);
    assert!(reached.contains("gate/shim") && reached.contains("verify/signatures"));
    let bad: Vec<_> = reached
        .iter()
        .filter(|m| matches!(layer(m), "ops" | "cli"))
        .collect();
    assert!(bad.is_empty(), "the start path reaches {bad:?}");
}

fn synthetic(files: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let sources: Vec<Source> = files
        .iter()
        .map(|(m, t)| Source {
            module: m.to_string(),
            text: t.to_string(),
        })
        .collect();
    let aliases = aliases("pub use base::{digest};\npub use verify::{sigstore as bundle};\n");
    edges(&sources, &aliases)
}

#[test]
fn an_upward_edge_is_detected() {
    let g = synthetic(&[
        ("base/digest", "use crate::bundle::TrustRoot;\n"),
        ("verify/sigstore", "use crate::digest::short;\n"),
    ]);
    assert_eq!(
        g["base/digest"],
        BTreeSet::from(["verify/sigstore".to_string()])
    );
    let p = problems(&g);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter().any(|l| l.contains("points up from layer base")),
        "{p:?}"
    );
    assert!(p.iter().any(|l| l.starts_with("import cycle")), "{p:?}");
}

#[test]
fn sideways_edges_and_comments_are_told_apart() {
    let g = synthetic(&[
        (
            "ops/evidence",
            "//! see [`crate::ops::sync`]\nfn f() { let s = \"crate::ops::sync\"; crate::ops::fetch::x(); }\n#[cfg(test)]\nmod tests { use crate::ops::doctor; }\n",
        ),
        ("ops/sync", "use crate::ops::{fetch::{self, X}, evidence};\n"),
        ("ops/fetch", ""),
        ("ops/doctor", ""),
        ("state/cache", "use crate::containerd::lookup;\n"),
        ("containerd/lookup", "fn f() { super::lookup::g(); }\n"),
    ]);
    assert_eq!(g["ops/evidence"], BTreeSet::from(["ops/fetch".to_string()]));
    let p = problems(&g);
    assert!(p.contains(&"ops/evidence -> ops/fetch: operator tools do not import each other; move what both need down a layer".to_string()), "{p:?}");
    assert!(
        p.iter().any(|l| l.starts_with("ops/sync -> ops/evidence")),
        "{p:?}"
    );
    assert!(
        !p.iter().any(|l| l.starts_with("ops/sync -> ops/fetch")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|l| l.contains("sideways between sibling layers state and containerd")),
        "{p:?}"
    );
    assert_eq!(p.len(), 3, "{p:?}");
}
