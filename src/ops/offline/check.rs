//! The check of one bundle item, run in the verification sandbox
//! ([`crate::sandbox`]): its parse as a known kind and each layer's
//! verification against the signers of the rule that governs its image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cache::{self, kind, Artifact, Entry, StateDir, ENTRY_FORMAT};
use crate::policy::{Action, Policy, Selection};
use crate::reference::ImageRef;

use super::manifest::{item_kind, sha, ItemRecord};

/// The digests an image's items may be filed under, each with whether it
/// was established (a platform digest only when the index lists it).
pub(super) struct ImageCheck {
    pub(super) image: ImageRef,
    pub(super) digests: Vec<String>,
    pub(super) platform_problem: Option<String>,
}

pub(super) enum Checked {
    Index,
    Artifact {
        /// Indexes of the layers that verified.
        kept: Vec<usize>,
        refusals: Vec<String>,
    },
}

/// What the sandboxed check of one item returns to the parent.
#[derive(Serialize, Deserialize)]
pub(super) enum SandboxVerdict {
    Index,
    Artifact {
        kept: Vec<usize>,
        refusals: Vec<String>,
    },
}

pub(super) fn check_item(
    item: &ItemRecord,
    bytes: &[u8],
    images: &BTreeMap<String, Result<ImageCheck, String>>,
    state: &StateDir,
    policy: &Policy,
) -> Result<Checked, String> {
    let image_name = item.image.as_deref().ok_or("no image named")?;
    let subject = item.subject.as_deref().ok_or("no subject digest")?;
    let img = match images.get(image_name) {
        None => {
            return Err(format!(
                "image {image_name} is not among the bundle's images"
            ))
        }
        Some(Err(e)) => return Err(format!("image {image_name}: {e}")),
        Some(Ok(i)) => i,
    };
    if item.kind == item_kind::IMAGE_INDEX {
        if sha(bytes) != subject || img.digests[0] != subject {
            return Err(format!(
                "index does not hash to the image digest {}",
                img.digests[0]
            ));
        }
        return Ok(Checked::Index);
    }
    if ![
        kind::COSIGN_SIGNATURE,
        kind::COSIGN_ATTESTATION,
        kind::SIGSTORE_BUNDLE,
    ]
    .contains(&item.kind.as_str())
    {
        return Err(format!("unknown item kind {:?}", item.kind));
    }
    if !img.digests.iter().any(|d| d == subject) {
        return Err(match &img.platform_problem {
            Some(p) => format!("subject {subject} is not established for {image_name}: {p}"),
            None => format!("subject {subject} is not a digest of {image_name}"),
        });
    }
    let artifact: Artifact =
        serde_json::from_slice(bytes).map_err(|e| format!("not a {} artifact: {e}", item.kind))?;
    if artifact.kind != item.kind {
        return Err(format!(
            "the manifest says {} but the item is a {}",
            item.kind, artifact.kind
        ));
    }
    // The cache's own checks (layer blobs against their digests, limits).
    let probe = Entry {
        format: ENTRY_FORMAT,
        subject: subject.to_string(),
        repository: img.image.repository_name().to_string(),
        fetched_at: String::new(),
        artifacts: vec![artifact.clone()],
    };
    cache::check(&probe).map_err(|e| format!("not a valid cache artifact: {e}"))?;
    let rule = match policy.select(&img.image) {
        Selection::Rule(r) if r.action == Action::Verify => r,
        Selection::Rule(r) => {
            return Err(format!(
                "rule \"{}\" (action {}) does not check signatures of {image_name}: nothing to verify this item against",
                r.name,
                r.action.as_str()
            ))
        }
        Selection::Default(_) => {
            return Err(format!(
                "no rule of {} matches {image_name}: nothing to verify this item against (add a rule with its signers)",
                policy.path.display()
            ))
        }
    };
    let signers = crate::verify::RuleSigners::load(&rule.signers)
        .map_err(|e| format!("rule \"{}\": {e}", rule.name))?;
    let (att_signers, req) =
        crate::verify::rule::provenance_terms(&rule.signers, rule.provenance.as_ref())
            .map_err(|e| format!("rule \"{}\": {e}", rule.name))?;
    let root = crate::verify::rule::LazyTrustRoot::new(crate::gate::trust_root_path(
        state,
        rule.trust_root.as_deref(),
    ));
    let mut trust = || root.get();
    let digests: Vec<&str> = img.digests.iter().map(String::as_str).collect();
    let mut kept = Vec::new();
    let mut refusals = Vec::new();
    for (k, layer) in artifact.layers.iter().enumerate() {
        let one = Entry {
            artifacts: vec![Artifact {
                layers: vec![layer.clone()],
                ..artifact.clone()
            }],
            ..probe.clone()
        };
        let blob = layer.blob();
        let as_signature = artifact.kind == kind::COSIGN_SIGNATURE
            || (artifact.kind == kind::SIGSTORE_BUNDLE
                && crate::verify::is_signature_bundle(&blob));
        let verdict = if as_signature && rule.signers.is_empty() {
            Err("the rule requires provenance alone: it names no `[[rule.signer]]` to verify an image signature with".to_string())
        } else if as_signature {
            match crate::verify::verify_entries_with(
                std::slice::from_ref(&one),
                &digests,
                &signers,
                &mut trust,
            ) {
                Ok(_) => Ok(()),
                Err(crate::verify::Rejection::NothingCached) => {
                    Err(format!("not a signature (media type {})", layer.media_type))
                }
                Err(crate::verify::Rejection::NoValidSignature { reason, .. }) => {
                    Err(reason.to_string())
                }
            }
        } else {
            match crate::verify::rule::check_provenance_with(
                std::slice::from_ref(&one),
                &digests,
                &att_signers,
                &req,
                &root,
                jiff::Timestamp::now(),
            ) {
                Ok(_) => Ok(()),
                Err(crate::attestation::ProvenanceRejection::NothingCached) => Err(format!(
                    "not an attestation (media type {})",
                    layer.media_type
                )),
                Err(crate::attestation::ProvenanceRejection::NoneAcceptable { reason, .. }) => {
                    Err(reason.to_string())
                }
            }
        };
        match verdict {
            Ok(()) => kept.push(k),
            Err(why) => refusals.push(format!(
                "{} layer {}: {} (rule \"{}\")",
                item.path,
                crate::digest::short(&layer.digest),
                crate::bundle::one_line(&why),
                rule.name
            )),
        }
    }
    Ok(Checked::Artifact { kept, refusals })
}
