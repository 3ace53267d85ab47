//! `portcullis bundle import --from-containerd`: signatures that arrived in
//! containerd's content store through `ctr images import` of an OCI layout,
//! read as a bundle's contents and imported through the same path.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cache::{self, kind, Artifact, Layer};
use crate::containerd::{self, INDEX_TYPES, MANIFEST_TYPES};
use crate::reference::ImageRef;

use super::error::OfflineError;
use super::manifest::{
    item_kind, member_name, sha, Contents, ImageRecord, ItemRecord, Manifest, FORMAT, VERSION,
};

/// Assemble import contents from containerd's content store: for each image
/// (as `ctr images ls` names it), its index, and the cosign signature and
/// attestation images (`REPO:sha256-<hex>.sig`, `.att`) and referrers-tag
/// indexes (`REPO:sha256-<hex>`) that `ctr images import` of an OCI layout
/// (or a pull) put there. Reads the content store only; no network.
pub fn from_containerd(
    address: &str,
    namespace: &str,
    images: &[String],
    timeout: std::time::Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Contents, OfflineError> {
    let mut members = BTreeMap::new();
    let mut manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: jiff::Timestamp::now().to_string(),
        images: Vec::new(),
        items: Vec::new(),
    };
    for name in images {
        let target = containerd::lookup_image(address, namespace, name, timeout)?;
        let image =
            ImageRef::parse(name).map_err(|e| OfflineError::Usage(format!("{name}: {e}")))?;
        let reference = image.normalized().to_string();
        // containerd names the imported images after the name given, so the
        // signature images sit next to it under the same repository spelling.
        let repo = name
            .rsplit_once('@')
            .map(|(r, _)| r)
            .unwrap_or(name)
            .to_string();
        let repo = match repo.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r.to_string(),
            _ => repo,
        };
        manifest.images.push(ImageRecord {
            reference: reference.clone(),
            digest: target.target_digest.clone(),
            media_type: target.target_media_type.clone(),
            platform_digest: target.platform_digest.clone(),
        });
        let mut push = |kind: &str, subject: &str, bytes: Vec<u8>| {
            let path = member_name(manifest.items.len());
            manifest.items.push(ItemRecord {
                path: path.clone(),
                kind: kind.into(),
                subject: Some(subject.into()),
                image: Some(reference.clone()),
                name: None,
                size: bytes.len() as u64,
                sha256: sha(&bytes),
            });
            members.insert(path, bytes);
        };
        if target.platform_digest.is_some() {
            let index = containerd::read_content(
                address,
                namespace,
                std::slice::from_ref(&target.target_digest),
                timeout,
            )?
            .remove(0);
            push(item_kind::IMAGE_INDEX, &target.target_digest, index);
        }
        let mut found = 0;
        for d in target.digests() {
            let hex =
                crate::digest::sha256_hex_of(d).map_err(|e| OfflineError::Usage(e.to_string()))?;
            for (suffix, k) in [
                (".sig", kind::COSIGN_SIGNATURE),
                (".att", kind::COSIGN_ATTESTATION),
            ] {
                let tagged = format!("{repo}:sha256-{hex}{suffix}");
                let Some((mdigest, mtype, _)) =
                    containerd::image_record(address, namespace, &tagged, timeout)?
                else {
                    continue;
                };
                if !MANIFEST_TYPES.contains(&mtype.as_str()) {
                    progress(&format!(
                        "{tagged}: media type {mtype} is not a manifest; ignored"
                    ));
                    continue;
                }
                let layers = content_layers(address, namespace, &mdigest, timeout)?;
                let art = Artifact {
                    kind: k.into(),
                    source: format!("containerd:{namespace}/{tagged}"),
                    manifest_digest: mdigest,
                    layers,
                };
                progress(&format!("{tagged}: {} layer(s)", art.layers.len()));
                push(
                    k,
                    d,
                    serde_json::to_vec(&art).map_err(|e| OfflineError::Usage(e.to_string()))?,
                );
                found += 1;
            }
            let tagged = format!("{repo}:sha256-{hex}");
            if let Some((idigest, itype, _)) =
                containerd::image_record(address, namespace, &tagged, timeout)?
            {
                if INDEX_TYPES.contains(&itype.as_str()) {
                    let raw = containerd::read_content(address, namespace, &[idigest], timeout)?
                        .remove(0);
                    for m in referrer_bundles(&raw) {
                        let layers = content_layers(address, namespace, &m, timeout)?;
                        let art = Artifact {
                            kind: kind::SIGSTORE_BUNDLE.into(),
                            source: format!("containerd:{namespace}/{repo}@{m}"),
                            manifest_digest: m,
                            layers,
                        };
                        push(
                            kind::SIGSTORE_BUNDLE,
                            d,
                            serde_json::to_vec(&art)
                                .map_err(|e| OfflineError::Usage(e.to_string()))?,
                        );
                        found += 1;
                    }
                }
            }
        }
        progress(&format!(
            "{reference}: {found} artifact(s) in containerd's content store"
        ));
        if found == 0 {
            return Err(OfflineError::Usage(format!(
                "containerd (namespace {namespace}) holds no signature images for {name} ({repo}:sha256-<hex>.sig/.att); import the OCI layout that carries them with `ctr images import --no-unpack --base-name {repo} FILE`"
            )));
        }
    }
    Ok(Contents {
        source: format!("containerd:{namespace}"),
        manifest,
        members,
    })
}

/// Manifest digests of the Sigstore bundles a referrers index lists.
fn referrer_bundles(index: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Index {
        manifests: Vec<Desc>,
    }
    #[derive(Deserialize)]
    struct Desc {
        digest: String,
        #[serde(rename = "artifactType")]
        artifact_type: Option<String>,
    }
    serde_json::from_slice::<Index>(index)
        .map(|i| {
            i.manifests
                .into_iter()
                .filter(|m| {
                    m.artifact_type
                        .as_deref()
                        .is_some_and(|t| crate::formats::referrers::BUNDLE_MEDIA_TYPES.contains(&t))
                })
                .take(crate::formats::referrers::MAX_REFERRERS)
                .map(|m| m.digest)
                .collect()
        })
        .unwrap_or_default()
}

/// The layers of a manifest in the content store, as cache layers.
fn content_layers(
    address: &str,
    namespace: &str,
    manifest_digest: &str,
    timeout: std::time::Duration,
) -> Result<Vec<Layer>, OfflineError> {
    #[derive(Deserialize)]
    struct M {
        layers: Vec<D>,
    }
    #[derive(Deserialize)]
    struct D {
        #[serde(rename = "mediaType")]
        media_type: String,
        digest: String,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let raw =
        containerd::read_content(address, namespace, &[manifest_digest.to_string()], timeout)?
            .remove(0);
    let m: M = serde_json::from_slice(&raw).map_err(|e| {
        OfflineError::Usage(format!("manifest {manifest_digest} in containerd: {e}"))
    })?;
    // Only the newest cache::MAX_LAYERS layers are examined (a `.sig` gains one per signing).
    let skipped = cache::newest_layers(&m.layers).1;
    let mut m = m;
    m.layers.drain(..skipped);
    let digests: Vec<String> = m.layers.iter().map(|l| l.digest.clone()).collect();
    let blobs = containerd::read_content(address, namespace, &digests, timeout)?;
    Ok(m.layers
        .into_iter()
        .zip(blobs)
        .map(|(d, b)| Layer::new(&d.media_type, d.annotations, &b))
        .collect())
}
