//! Which manifest of an image index a container's rootfs was unpacked from.
//!
//! This module owns the observation behind multi-arch admission (threat T75
//! in docs/THREAT-MODEL.md). [`crate::containerd::platform`] models the
//! manifest containerd picks by default; an operator can take another one
//! (`ctr run --platform linux/arm64`, a `--platform` pull, a CRI runtime
//! handler with its own platform). What ran is observable: the parent of the
//! container's active snapshot is the chain ID of the layers unpacked. This
//! module walks every manifest the index reaches (nested indexes included,
//! bounded), keeps those whose manifest and config are in containerd's
//! content store (containerd cannot have unpacked or configured a container
//! from one that is not), and returns those whose layer chain is the
//! container's. [`settle`] turns that into the manifest the gate binds:
//! containerd's default pick when it has those layers (the platform model's
//! verdict then stands), else the one match (another platform was chosen);
//! several other matches (manifests sharing their layers and differing in
//! their configuration, which is not observable) leave only the index
//! signature able to vouch for what ran.

use std::collections::{BTreeSet, HashSet, VecDeque};

use super::platform::{INDEX_TYPES, MANIFEST_TYPES, MAX_DEPTH, MAX_INDEXES};

/// How many manifests of one index are examined at most; beyond that the
/// observation is incomplete and only an index signature admits.
pub const MAX_MANIFESTS: usize = 64;

/// What the content store says about the index's manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Local manifests of the index whose layer chain is the container's rootfs parent.
    pub matches: BTreeSet<String>,
    /// The chain ID of each local image manifest examined, by digest.
    pub chains: Vec<(String, String)>,
    /// False when the index reaches more manifests or indexes than the bounds.
    pub complete: bool,
}

/// The manifest the gate binds for a container started from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The platform manifest digest a signature may name next to the index.
    pub platform_digest: String,
    /// The chain ID the rootfs must have (the lineage check).
    pub chain_id: Option<String>,
    /// Why only a signature over the index digest may admit, if so.
    pub ambiguity: Option<String>,
}

/// From containerd's default pick (`default_pick`, its chain when known and
/// the platform model's ambiguity) and the observation, the manifest to bind.
pub fn settle(
    index: &str,
    default_pick: &str,
    default_chain: Option<String>,
    model_ambiguity: Option<String>,
    parent: &str,
    observed: &Observed,
) -> Settled {
    let m = &observed.matches;
    // containerd's default pick has the container's layers: it is what the
    // platform model says containerd runs, and the model's verdict stands.
    // (A sibling of another platform with the very same layers is not told
    // apart: the residual of T75.)
    if m.contains(default_pick) {
        return Settled {
            platform_digest: default_pick.to_string(),
            chain_id: Some(parent.to_string()),
            ambiguity: model_ambiguity,
        };
    }
    if !observed.complete {
        return Settled {
            platform_digest: default_pick.to_string(),
            chain_id: default_chain,
            ambiguity: Some(model_ambiguity.unwrap_or_else(|| format!(
                "image index {index} reaches more than {MAX_MANIFESTS} manifests or {MAX_INDEXES} indexes, so which one this container's rootfs came from is not established; only a signature over the index digest binds it: sign the index (cosign sign <image>@{index})"
            ))),
        };
    }
    match m.len() {
        // The rootfs is no manifest's of this index: the lineage check refuses.
        0 => Settled {
            platform_digest: default_pick.to_string(),
            chain_id: default_chain,
            ambiguity: model_ambiguity,
        },
        // Another platform was chosen (`--platform`): that manifest is what runs.
        1 => Settled {
            platform_digest: m.iter().next().cloned().unwrap_or_default(),
            chain_id: Some(parent.to_string()),
            ambiguity: None,
        },
        // Another platform was chosen and several of its manifests have the
        // container's layers (differing only in a configuration).
        _ => {
            let ran = m.iter().next().cloned().unwrap_or_default();
            let list: Vec<&str> = m.iter().map(String::as_str).collect();
            Settled {
                platform_digest: ran,
                chain_id: Some(parent.to_string()),
                ambiguity: Some(model_ambiguity.unwrap_or_else(|| format!(
                    "image index {index} has {} local manifests with this container's layers ({}), which differ only in a configuration the node cannot attribute; only a signature over the index digest binds what ran: sign the index (cosign sign <image>@{index})",
                    m.len(),
                    list.join(", ")
                ))),
            }
        }
    }
}

/// Why the index cannot be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// An index blob is not an OCI/Docker index.
    #[error("image index {digest} is malformed: {why}")]
    Malformed {
        /// The index.
        digest: String,
        /// Why.
        why: String,
    },
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
}

/// The children of an index blob: (manifest digests, nested index digests).
pub fn children(digest: &str, blob: &[u8]) -> Result<(Vec<String>, Vec<String>), OriginError> {
    let bad = |why: String| OriginError::Malformed {
        digest: digest.to_string(),
        why,
    };
    let idx: Index = serde_json::from_slice(blob).map_err(|e| bad(e.to_string()))?;
    let (mut manifests, mut indexes) = (Vec::new(), Vec::new());
    for d in idx.manifests {
        if crate::digest::sha256_hex_of(&d.digest).is_err() {
            return Err(bad(format!("entry digest `{}` is not sha256", d.digest)));
        }
        if INDEX_TYPES.contains(&d.media_type.as_str()) {
            indexes.push(d.digest);
        } else if MANIFEST_TYPES.contains(&d.media_type.as_str()) {
            manifests.push(d.digest);
        }
    }
    Ok((manifests, indexes))
}

/// Walk the index `index` (its `blob` already read) and find the manifests
/// whose layer chain is `parent`. `read_index` gives a nested index's blob,
/// `chain_of` a manifest's layer chain; each answers `None` when the blob is
/// not in the content store (or, for `chain_of`, is not an image).
pub async fn observe<E, FI, FutI, FC, FutC>(
    index: &str,
    blob: &[u8],
    parent: &str,
    mut read_index: FI,
    mut chain_of: FC,
) -> Result<Observed, E>
where
    E: From<OriginError>,
    FI: FnMut(String) -> FutI,
    FutI: std::future::Future<Output = Result<Option<Vec<u8>>, E>>,
    FC: FnMut(String) -> FutC,
    FutC: std::future::Future<Output = Result<Option<String>, E>>,
{
    let mut out = Observed {
        complete: true,
        ..Observed::default()
    };
    let mut queue: VecDeque<(String, Vec<u8>, usize)> = VecDeque::new();
    queue.push_back((index.to_string(), blob.to_vec(), 0));
    let (mut seen, mut indexes) = (HashSet::new(), 1usize);
    while let Some((digest, blob, depth)) = queue.pop_front() {
        let (manifests, nested) = children(&digest, &blob)?;
        for n in nested {
            indexes += 1;
            if depth + 1 > MAX_DEPTH || indexes > MAX_INDEXES {
                out.complete = false;
                continue;
            }
            if let Some(b) = read_index(n.clone()).await? {
                queue.push_back((n, b, depth + 1));
            }
        }
        for m in manifests {
            if !seen.insert(m.clone()) {
                continue;
            }
            if seen.len() > MAX_MANIFESTS {
                out.complete = false;
                break;
            }
            if let Some(chain) = chain_of(m.clone()).await? {
                if chain == parent {
                    out.matches.insert(m.clone());
                }
                out.chains.push((m, chain));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::digest as d;

    fn obs(matches: &[String]) -> Observed {
        Observed {
            matches: matches.iter().cloned().collect(),
            chains: Vec::new(),
            complete: true,
        }
    }

    #[test]
    fn the_default_pick_that_ran_keeps_the_model_verdict() {
        let s = settle(&d(1), &d(2), Some(d(9)), None, &d(9), &obs(&[d(2)]));
        assert_eq!(s.platform_digest, d(2));
        assert_eq!(s.chain_id, Some(d(9)));
        assert_eq!(s.ambiguity, None);
        let s = settle(
            &d(1),
            &d(2),
            Some(d(9)),
            Some("two".into()),
            &d(9),
            &obs(&[d(2)]),
        );
        assert_eq!(s.ambiguity.as_deref(), Some("two"));
    }

    #[test]
    fn another_platform_that_ran_is_what_is_bound() {
        // `ctr run --platform linux/arm64`: the arm64 manifest d(3) ran, the
        // default pick d(2) is not even local (its chain is unknown).
        let s = settle(&d(1), &d(2), None, None, &d(8), &obs(&[d(3)]));
        assert_eq!(s.platform_digest, d(3));
        assert_eq!(s.chain_id, Some(d(8)));
        assert_eq!(s.ambiguity, None);
    }

    #[test]
    fn a_rootfs_of_no_manifest_of_the_index_fails_the_lineage() {
        let s = settle(&d(1), &d(2), Some(d(9)), None, &d(7), &obs(&[]));
        assert_eq!(s.platform_digest, d(2));
        // The lineage check compares the parent d(7) with this chain: unequal.
        assert_eq!(s.chain_id, Some(d(9)));
    }

    #[test]
    fn shared_layers_leave_only_the_index_signature() {
        // Another platform ran and two of the index's manifests have its layers.
        let s = settle(&d(1), &d(2), None, None, &d(9), &obs(&[d(3), d(4)]));
        assert!(s.platform_digest == d(3) || s.platform_digest == d(4));
        let why = s.ambiguity.unwrap();
        assert!(why.contains(&d(3)) && why.contains(&d(4)), "{why}");
        assert!(why.contains("signature over the index"), "{why}");
    }

    #[test]
    fn the_default_pick_among_shared_layers_keeps_the_model_verdict() {
        // containerd 2.x keeps every platform's manifest and config after a
        // pull: a sibling with the same layers is local too. The default
        // pick is bound, with the platform model's verdict (T75 residual).
        let s = settle(&d(1), &d(2), Some(d(9)), None, &d(9), &obs(&[d(2), d(3)]));
        assert_eq!(s.platform_digest, d(2));
        assert_eq!(s.ambiguity, None);
        let s = settle(
            &d(1),
            &d(2),
            None,
            Some("model".into()),
            &d(9),
            &obs(&[d(2), d(3)]),
        );
        assert_eq!(s.ambiguity.as_deref(), Some("model"));
    }

    #[test]
    fn an_incomplete_walk_leaves_only_the_index_signature() {
        let mut o = obs(&[d(3)]);
        o.complete = false;
        let s = settle(&d(1), &d(2), Some(d(7)), None, &d(9), &o);
        assert_eq!(s.platform_digest, d(2));
        assert!(s.ambiguity.unwrap().contains("more than 64 manifests"));
    }

    #[test]
    fn children_split_manifests_from_nested_indexes_and_skip_other_types() {
        let idx = format!(
            r#"{{"manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}"}},
            {{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{}"}},
            {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}"}},
            {{"mediaType":"application/vnd.example.thing","digest":"{}"}}]}}"#,
            d(2),
            d(3),
            d(4),
            d(5)
        );
        let (m, n) = children(&d(1), idx.as_bytes()).unwrap();
        assert_eq!(m, vec![d(2), d(4)]);
        assert_eq!(n, vec![d(3)]);
        assert!(children(&d(1), b"{").is_err());
        let bad = r#"{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:zz"}]}"#;
        assert!(children(&d(1), bad.as_bytes()).is_err());
    }

    fn index_json(entries: &[(&str, String)]) -> Vec<u8> {
        let m: Vec<serde_json::Value> = entries
            .iter()
            .map(|(mt, dg)| serde_json::json!({"mediaType": mt, "digest": dg, "size": 1}))
            .collect();
        serde_json::to_vec(&serde_json::json!({"manifests": m})).unwrap()
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    const M: &str = "application/vnd.oci.image.manifest.v1+json";
    const I: &str = "application/vnd.oci.image.index.v1+json";

    /// A content store: manifest d(n) has chain d(100 + n) when local.
    fn walk(
        outer: &[u8],
        nested: Vec<(String, Vec<u8>)>,
        local: &[String],
        parent: &str,
    ) -> Observed {
        let nested: std::collections::HashMap<_, _> = nested.into_iter().collect();
        run(observe::<OriginError, _, _, _, _>(
            &d(1),
            outer,
            parent,
            |n| {
                let b = nested.get(&n).cloned();
                async move { Ok(b) }
            },
            |m| {
                let n: u8 = (2..100).find(|i| d(*i) == m).unwrap();
                let c = local.contains(&m).then(|| d(100 + n));
                async move { Ok(c) }
            },
        ))
        .unwrap()
    }

    #[test]
    fn observe_finds_the_local_manifest_with_the_rootfs_chain() {
        let outer = index_json(&[(M, d(2)), (M, d(3)), (I, d(4))]);
        let inner = index_json(&[(M, d(5))]);
        // Everything local: the parent is d(3)'s chain.
        let local = [d(2), d(3), d(5)];
        let o = walk(&outer, vec![(d(4), inner.clone())], &local, &d(103));
        assert_eq!(o.matches.iter().cloned().collect::<Vec<_>>(), vec![d(3)]);
        assert!(o.complete);
        assert_eq!(o.chains.len(), 3);
        // Through the nested index.
        let o = walk(&outer, vec![(d(4), inner.clone())], &local, &d(105));
        assert_eq!(o.matches.iter().cloned().collect::<Vec<_>>(), vec![d(5)]);
        // A manifest that is not local is never a match.
        let o = walk(&outer, vec![(d(4), inner)], &[d(2)], &d(103));
        assert!(o.matches.is_empty());
        // A nested index that is not local is skipped.
        let o = walk(&outer, vec![], &local, &d(105));
        assert!(o.matches.is_empty() && o.complete);
    }

    #[test]
    fn observe_is_bounded() {
        let many: Vec<(&str, String)> = (2..(MAX_MANIFESTS as u8 + 4)).map(|i| (M, d(i))).collect();
        let local: Vec<String> = many.iter().map(|(_, x)| x.clone()).collect();
        let o = walk(&index_json(&many), vec![], &local, &d(102));
        assert!(!o.complete);
        let bad = run(observe::<OriginError, _, _, _, _>(
            &d(1),
            b"{",
            &d(102),
            |_| async { Ok(None) },
            |_| async { Ok(None) },
        ));
        assert!(matches!(bad, Err(OriginError::Malformed { .. })));
    }
}
