//! Which manifest of an image index containerd runs on this node.
//!
//! This module owns the model of containerd's platform selection (1.6
//! through 2.x: `platforms.Default()` on linux/amd64 and `images.Manifest`,
//! which `ctr run`, CRI and unpack all use), and the ambiguity rule built on
//! it. containerd, per index it walks: normalizes each entry's platform
//! (lower-case os, empty os is the host's, `x86_64`/`x86-64` are `amd64`,
//! `amd64/v1` is `amd64`, `i386` is `386`, …), keeps entries whose platform
//! is absent or matches the node's ordered vector (`linux/amd64`, then
//! `linux/386`), stable-sorts them by that rank (absent platforms last),
//! takes the first one only, and descends into it when it is an index. No
//! backtracking: the first pick of each level is what runs, or the pull
//! fails.
//!
//! The model is exact for the shapes in `tests/data/platform-oracle.json`.
//! Against a model error, [`Selection::ambiguity`] also reports every other
//! manifest containerd could plausibly take (any variant, any os spelling,
//! os features, a platform-less entry, another nesting): an index with more
//! than one distinct candidate is accepted only when the index digest
//! itself is signed, which the gate checks after verification.

use std::collections::{BTreeSet, HashMap};

/// Index media types containerd walks into.
pub const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Manifest media types containerd accepts.
pub const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// How deep nested indexes are followed (the outer index is depth 0).
pub const MAX_DEPTH: usize = 4;
/// How many entries one index may list.
pub const MAX_ENTRIES: usize = 1024;
/// How many index blobs one selection may read in all.
pub const MAX_INDEXES: usize = 16;

/// Why no manifest could be chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    /// An index blob is not an OCI/Docker index.
    #[error("image index {digest} is malformed: {why}")]
    Malformed {
        /// The index.
        digest: String,
        /// Why.
        why: String,
    },
    /// containerd would find nothing to run.
    #[error("image index {digest} has no manifest for {platform}")]
    NoMatch {
        /// The index.
        digest: String,
        /// This node's platform.
        platform: String,
    },
    /// containerd's first pick has a media type it cannot walk (its pull fails).
    #[error("image index {digest}: containerd's pick {child} has media type `{media_type}`, which containerd refuses")]
    Unsupported {
        /// The index.
        digest: String,
        /// The entry.
        child: String,
        /// Its media type.
        media_type: String,
    },
    /// Nesting or fan-out beyond the bounds.
    #[error(
        "image index {digest} is beyond the bounds ({why}); sign the index digest or flatten it"
    )]
    Bounds {
        /// The index.
        digest: String,
        /// Which bound.
        why: String,
    },
    /// A nested index's blob is needed; the caller reads it and asks again.
    #[error("nested image index {0} is not available")]
    NeedBlob(String),
}

/// What containerd takes from an index, and what else it could have taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The manifest containerd runs.
    pub chosen: String,
    /// The path of index digests from the outer index to the chosen manifest's parent.
    pub path: Vec<String>,
    /// Every distinct manifest digest that is a plausible candidate for this node.
    pub candidates: BTreeSet<String>,
}

impl Selection {
    /// A one-line reason when more than one manifest is a candidate: then
    /// only a signature over the index digest binds what runs.
    pub fn ambiguity(&self, index_digest: &str) -> Option<String> {
        if self.candidates.len() <= 1 {
            return None;
        }
        let others: Vec<&str> = self
            .candidates
            .iter()
            .map(String::as_str)
            .filter(|c| *c != self.chosen)
            .collect();
        Some(format!(
            "image index {index_digest} lists {} manifests for this node and containerd runs {} (not {}); only a signature over the index digest binds that choice: sign the index (cosign sign <image>@{index_digest}) or publish one manifest per platform",
            self.candidates.len(),
            self.chosen,
            others.join(", ")
        ))
    }
}

/// A platform after containerd's `Normalize` (os, architecture, variant, has os features).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Lower-case os; empty became the host's (`linux`).
    pub os: String,
    /// Canonical architecture.
    pub arch: String,
    /// Canonical variant.
    pub variant: String,
    /// Whether the entry lists `os.features` (2.x never matches those on linux; 1.6 ignores them).
    pub os_features: bool,
}

/// containerd's `platforms.Normalize` on a linux host.
pub fn normalize(os: &str, arch: &str, variant: &str, os_features: bool) -> Normalized {
    let mut os = os.to_ascii_lowercase();
    if os.is_empty() {
        os = "linux".into();
    } else if os == "macos" {
        os = "darwin".into();
    }
    let (mut arch, mut variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    match arch.as_str() {
        "i386" => {
            arch = "386".into();
            variant.clear();
        }
        "x86_64" | "x86-64" | "amd64" => {
            arch = "amd64".into();
            if variant == "v1" {
                variant.clear();
            }
        }
        "aarch64" | "arm64" => {
            arch = "arm64".into();
            match variant.as_str() {
                "8" | "v8" | "v8.0" => variant.clear(),
                "9" | "9.0" | "v9.0" => variant = "v9".into(),
                _ => {}
            }
        }
        "armhf" => {
            arch = "arm".into();
            variant = "v7".into();
        }
        "armel" => {
            arch = "arm".into();
            variant = "v6".into();
        }
        "arm" => match variant.as_str() {
            "" | "7" => variant = "v7".into(),
            "5" | "6" | "8" => variant = format!("v{variant}"),
            _ => {}
        },
        _ => {}
    }
    Normalized {
        os,
        arch,
        variant,
        os_features,
    }
}

/// containerd's rank of a platform under `Default()` for `node` (lower is
/// preferred), or `None` when it does not match. The node's vector is
/// `platformVector(Normalize(node))`: for amd64 the node itself then 386;
/// for arm64 the node then arm/v8 down to arm/v5.
fn rank(p: &Normalized, node: &Normalized) -> Option<usize> {
    if p.os_features {
        // 2.x: no match on linux; 1.6: ignored. Counted as a candidate, never chosen.
        return None;
    }
    let mut vector = vec![(node.arch.clone(), node.variant.clone())];
    match node.arch.as_str() {
        "amd64" => {
            if let Ok(v) = node.variant.trim_start_matches('v').parse::<u32>() {
                for lower in (1..v).rev() {
                    vector.push(("amd64".into(), format!("v{lower}")));
                }
            }
            vector.push(("386".into(), String::new()));
        }
        "arm64" => {
            for v in (5..=8).rev() {
                vector.push(("arm".into(), format!("v{v}")));
            }
        }
        _ => {}
    }
    if p.os != node.os {
        return None;
    }
    vector
        .iter()
        .position(|(a, v)| *a == p.arch && *v == p.variant)
}

/// Whether a platform could be taken for `node` by some containerd version or
/// configuration: same os after normalizing, same architecture or one of its
/// fallbacks, any variant, with or without os features.
fn plausible(p: &Normalized, node: &Normalized) -> bool {
    if p.os != node.os {
        return false;
    }
    let fallback = match node.arch.as_str() {
        "amd64" => p.arch == "386",
        "arm64" => p.arch == "arm",
        _ => false,
    };
    p.arch == node.arch || fallback
}

#[derive(serde::Deserialize)]
struct Index {
    manifests: Vec<Desc>,
}

#[derive(serde::Deserialize)]
struct Desc {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    platform: Option<Platform>,
}

#[derive(serde::Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(rename = "os.features", default)]
    os_features: Option<Vec<String>>,
}

impl Desc {
    fn normalized(&self) -> Option<Normalized> {
        self.platform.as_ref().map(|p| {
            normalize(
                &p.os,
                &p.architecture,
                p.variant.as_deref().unwrap_or(""),
                p.os_features.as_ref().is_some_and(|f| !f.is_empty()),
            )
        })
    }
}

/// This node as containerd's `DefaultSpec()` sees it (amd64 has no variant).
pub fn node(os: &str, arch: &str) -> Normalized {
    let variant = if arch == "arm64" { "v8" } else { "" };
    normalize(os, arch, variant, false)
}

/// Choose the manifest containerd runs from the index `blob` (digest
/// `index_digest`) for `node`, reading nested indexes through `nested`
/// (a digest to its verified blob; `None` makes the call fail with
/// [`PlatformError::NeedBlob`] so an async caller can read it and retry).
pub fn select(
    index_digest: &str,
    blob: &[u8],
    (os, arch): (&str, &str),
    nested: &HashMap<String, Vec<u8>>,
) -> Result<Selection, PlatformError> {
    let node = node(os, arch);
    let platform = format!("{os}/{arch}");
    let mut candidates = BTreeSet::new();
    let mut read = 0usize;
    // Candidates: every plausible manifest reachable, bounded.
    collect(
        index_digest,
        blob,
        &node,
        nested,
        0,
        &mut read,
        &mut candidates,
    )?;
    // containerd's path: first pick per level, no backtracking.
    let mut path = vec![index_digest.to_string()];
    let mut cur_digest = index_digest.to_string();
    let mut cur_blob = blob.to_vec();
    for _depth in 0..=MAX_DEPTH {
        let idx = parse(&cur_digest, &cur_blob)?;
        let mut matching: Vec<(usize, &Desc)> = idx
            .manifests
            .iter()
            .filter_map(|d| match d.normalized() {
                None => Some((usize::MAX, d)),
                Some(p) => rank(&p, &node).map(|r| (r, d)),
            })
            .collect();
        // Stable: equal ranks keep index order; absent platforms go last.
        matching.sort_by_key(|(r, _)| *r);
        let Some((_, first)) = matching.first() else {
            return Err(PlatformError::NoMatch {
                digest: index_digest.to_string(),
                platform,
            });
        };
        check_digest(&cur_digest, &first.digest)?;
        if MANIFEST_TYPES.contains(&first.media_type.as_str()) {
            candidates.insert(first.digest.clone());
            return Ok(Selection {
                chosen: first.digest.clone(),
                path,
                candidates,
            });
        }
        if !INDEX_TYPES.contains(&first.media_type.as_str()) {
            return Err(PlatformError::Unsupported {
                digest: index_digest.to_string(),
                child: first.digest.clone(),
                media_type: first.media_type.clone(),
            });
        }
        let inner = nested
            .get(&first.digest)
            .ok_or_else(|| PlatformError::NeedBlob(first.digest.clone()))?;
        cur_digest = first.digest.clone();
        cur_blob = inner.clone();
        path.push(cur_digest.clone());
    }
    Err(PlatformError::Bounds {
        digest: index_digest.to_string(),
        why: format!("nested deeper than {MAX_DEPTH}"),
    })
}

fn parse(digest: &str, blob: &[u8]) -> Result<Index, PlatformError> {
    let idx: Index = serde_json::from_slice(blob).map_err(|e| PlatformError::Malformed {
        digest: digest.to_string(),
        why: e.to_string(),
    })?;
    if idx.manifests.len() > MAX_ENTRIES {
        return Err(PlatformError::Bounds {
            digest: digest.to_string(),
            why: format!(
                "{} entries, over the limit of {MAX_ENTRIES}",
                idx.manifests.len()
            ),
        });
    }
    Ok(idx)
}

fn check_digest(index: &str, d: &str) -> Result<(), PlatformError> {
    crate::base::digest::sha256_hex_of(d)
        .map(|_| ())
        .map_err(|e| PlatformError::Malformed {
            digest: index.to_string(),
            why: e.to_string(),
        })
}

#[allow(clippy::too_many_arguments)]
fn collect(
    digest: &str,
    blob: &[u8],
    node: &Normalized,
    nested: &HashMap<String, Vec<u8>>,
    depth: usize,
    read: &mut usize,
    out: &mut BTreeSet<String>,
) -> Result<(), PlatformError> {
    *read += 1;
    if *read > MAX_INDEXES {
        return Err(PlatformError::Bounds {
            digest: digest.to_string(),
            why: format!("more than {MAX_INDEXES} nested indexes"),
        });
    }
    let idx = parse(digest, blob)?;
    for d in &idx.manifests {
        let plausible = d.normalized().is_none_or(|p| plausible(&p, node));
        if !plausible {
            continue;
        }
        check_digest(digest, &d.digest)?;
        if INDEX_TYPES.contains(&d.media_type.as_str()) {
            if depth + 1 > MAX_DEPTH {
                return Err(PlatformError::Bounds {
                    digest: digest.to_string(),
                    why: format!("nested deeper than {MAX_DEPTH}"),
                });
            }
            let inner = nested
                .get(&d.digest)
                .ok_or_else(|| PlatformError::NeedBlob(d.digest.clone()))?;
            collect(&d.digest, inner, node, nested, depth + 1, read, out)?;
        } else if MANIFEST_TYPES.contains(&d.media_type.as_str()) {
            out.insert(d.digest.clone());
        }
        // Other media types (attestations are manifests with an
        // unknown/unknown platform, filtered above; anything else with a
        // plausible platform) are never run: containerd fails on them if it
        // picks one, which `select` reports.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::base::testing::digest as d;

    /// Every shape of `tests/data/platform-oracle.json`: our choice is what
    /// both real containerds took; where they disagree or failed, the index
    /// is refused unless signed as a whole (or selection fails).
    #[test]
    fn containerd_is_the_oracle() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/platform-oracle.json"
        );
        let table: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let label = |digest: &str| table["manifests"][digest].as_str().unwrap().to_string();
        let nested: HashMap<String, Vec<u8>> = table["nested"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
            .collect();
        let shapes = table["shapes"].as_array().unwrap();
        assert!(shapes.len() >= 20, "the oracle table lost shapes");
        for s in shapes {
            let name = s["name"].as_str().unwrap();
            let index = s["index"].as_str().unwrap().as_bytes();
            let digest = s["index_digest"].as_str().unwrap();
            let v1 = s["observed"]["containerd-1.6"].as_str().unwrap();
            let v2 = s["observed"]["containerd-2.4"].as_str().unwrap();
            let got = select(digest, index, ("linux", "amd64"), &nested);
            match (v1.starts_with("error"), v2.starts_with("error")) {
                (true, true) => {
                    assert!(got.is_err(), "{name}: containerd failed, we chose {got:?}")
                }
                (false, false) if v1 == v2 => {
                    let sel = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(label(&sel.chosen), v1, "{name}");
                    assert_eq!(
                        sel.ambiguity(digest).is_some(),
                        s["ambiguous"].as_bool().unwrap(),
                        "{name}: candidates {:?}",
                        sel.candidates
                    );
                }
                _ => {
                    // containerd 1.6 and 2.x disagree: only an index signature may allow it.
                    let sel = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(sel.ambiguity(digest).is_some(), "{name}: {v1} vs {v2}");
                }
            }
        }
    }

    fn entry(n: u8, platform: &str) -> String {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1{platform}}}"#,
            d(n)
        )
    }

    fn index(entries: &[String]) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            entries.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn normalizes_as_containerd() {
        let n = |o, a, v| normalize(o, a, v, false);
        assert_eq!(n("", "x86_64", "").os, "linux");
        assert_eq!(n("Linux", "X86-64", "V1").arch, "amd64");
        assert_eq!(n("Linux", "X86-64", "V1").variant, "");
        assert_eq!(n("linux", "aarch64", "8").arch, "arm64");
        assert_eq!(n("linux", "aarch64", "8").variant, "");
        assert_eq!(n("linux", "armhf", "").variant, "v7");
        assert_eq!(n("linux", "armel", "").variant, "v6");
        assert_eq!(n("linux", "arm", "").variant, "v7");
        assert_eq!(n("linux", "i386", "").arch, "386");
        assert_eq!(n("macos", "arm64", "").os, "darwin");
    }

    #[test]
    fn arm64_node_takes_arm64_then_arm_v8() {
        let idx = index(&[
            entry(
                1,
                r#","platform":{"os":"linux","architecture":"arm","variant":"v8"}"#,
            ),
            entry(2, r#","platform":{"os":"linux","architecture":"aarch64"}"#),
        ]);
        let s = select(&d(9), &idx, ("linux", "arm64"), &HashMap::new()).unwrap();
        assert_eq!(s.chosen, d(2));
        assert!(s.ambiguity(&d(9)).is_some());
    }

    #[test]
    fn bounds_fail_closed() {
        // A nested index not supplied is asked for, not guessed.
        let inner =
            r#"{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"DIG","size":1}"#
                .replace("DIG", &d(7));
        let idx = index(std::slice::from_ref(&inner));
        assert_eq!(
            select(&d(9), &idx, ("linux", "amd64"), &HashMap::new()),
            Err(PlatformError::NeedBlob(d(7)))
        );
        // An index that contains itself is cut at the depth bound.
        let mut nested = HashMap::new();
        nested.insert(d(7), index(std::slice::from_ref(&inner)));
        assert!(matches!(
            select(&d(9), &idx, ("linux", "amd64"), &nested),
            Err(PlatformError::Bounds { .. })
        ));
        let wide: Vec<String> = (0..=MAX_ENTRIES)
            .map(|_| entry(1, r#","platform":{"os":"linux","architecture":"amd64"}"#))
            .collect();
        assert!(matches!(
            select(&d(9), &index(&wide), ("linux", "amd64"), &HashMap::new()),
            Err(PlatformError::Bounds { .. })
        ));
        assert!(select(&d(9), b"{", ("linux", "amd64"), &HashMap::new()).is_err());
        assert!(select(&d(9), &index(&[]), ("linux", "amd64"), &HashMap::new()).is_err());
    }

    #[test]
    fn ambiguity_names_the_manifest_containerd_runs() {
        let idx = index(&[
            entry(2, r#","platform":{"os":"Linux","architecture":"amd64"}"#),
            entry(1, r#","platform":{"os":"linux","architecture":"amd64"}"#),
        ]);
        let s = select(&d(9), &idx, ("linux", "amd64"), &HashMap::new()).unwrap();
        assert_eq!(s.chosen, d(2));
        let why = s.ambiguity(&d(9)).unwrap();
        assert!(
            why.contains(&format!("containerd runs {} (not {})", d(2), d(1))),
            "{why}"
        );
    }
}
