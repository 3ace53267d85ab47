//! `portcullis fetch`: copy an image's signature artifacts from its registry
//! into the node's cache, so that the shim never needs the network.
//!
//! This module owns the registry side (`oci-client`): resolve the image to
//! its digest (and this platform's manifest when it is an index), find the
//! cosign signature image at `sha256-<hex>.sig` for each, download its
//! layers (bounded in number and size, digests checked by the client and
//! again by the cache), and hand a complete entry to [`crate::cache`], which
//! writes it atomically. The shim binary never links this module.

use std::collections::BTreeMap;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Serialize;

use crate::cache::{Artifact, Entry, Layer, StateDir, ENTRY_FORMAT, MAX_LAYERS};
use crate::cosign;
use crate::reference::ImageRef;
use crate::verify::ARTIFACT_KIND;

/// Largest signature layer downloaded, in bytes.
pub const MAX_LAYER_BYTES: i64 = cosign::MAX_PAYLOAD_BYTES as i64;

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Errors fetching.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The image name is not a reference.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// The registry refused or failed.
    #[error("registry {registry}: {what}: {why}")]
    Registry {
        /// Which registry.
        registry: String,
        /// What we asked.
        what: String,
        /// Its answer.
        why: String,
    },
    /// The registry served a digest other than the one pinned.
    #[error("registry served {served} for {image}, which pins {pinned}")]
    DigestMismatch {
        /// The reference.
        image: String,
        /// Pinned digest.
        pinned: String,
        /// Served digest.
        served: String,
    },
    /// A manifest or layer is unusable.
    #[error("{0}")]
    Malformed(String),
    /// Writing the cache failed (the previous entry is intact).
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// The async runtime could not start.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(String),
}

/// What one fetch did, per subject digest.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectReport {
    /// The digest.
    pub digest: String,
    /// The signature tag looked up.
    pub tag: String,
    /// Signature layers cached (0: none at the registry, nothing written).
    pub signatures: usize,
    /// The cache file written, if any.
    pub cache_file: Option<String>,
}

/// The result of `portcullis fetch`.
#[derive(Debug, Clone, Serialize)]
pub struct FetchReport {
    /// The image as normalized.
    pub image: String,
    /// The digest the registry serves for it.
    pub digest: String,
    /// This platform's manifest digest, if the image is an index.
    pub platform_digest: Option<String>,
    /// Per-digest results.
    pub subjects: Vec<SubjectReport>,
}

/// Options of a fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Talk HTTP instead of HTTPS (loopback test registries).
    pub plain_http: bool,
}

/// Fetch and cache the signatures of `image`; `progress` receives one line
/// per step.
pub fn fetch(
    image: &str,
    state: &StateDir,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<FetchReport, FetchError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| FetchError::Runtime(e.to_string()))?;
    rt.block_on(fetch_async(image, state, opts, progress))
}

fn registry_err(
    r: &Reference,
    what: impl Into<String>,
) -> impl FnOnce(OciDistributionError) -> FetchError {
    let registry = r.registry().to_string();
    let what = what.into();
    move |e| FetchError::Registry {
        registry,
        what,
        why: e.to_string(),
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

async fn fetch_async(
    image: &str,
    state: &StateDir,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<FetchReport, FetchError> {
    let ours = ImageRef::parse(image)?;
    let reference: Reference = ours
        .normalized()
        .parse()
        .map_err(|e| FetchError::Malformed(format!("{image}: {e}")))?;
    let client = Client::new(ClientConfig {
        protocol: if opts.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..Default::default()
    });
    let auth = RegistryAuth::Anonymous;
    progress(&format!("resolving {}", ours.normalized()));
    let mut accepted: Vec<&str> = MANIFEST_TYPES.to_vec();
    accepted.extend_from_slice(INDEX_TYPES);
    let (raw, digest) = client
        .pull_manifest_raw(&reference, &auth, &accepted)
        .await
        .map_err(registry_err(
            &reference,
            format!("manifest of {}", ours.normalized()),
        ))?;
    let served = crate::digest::sha256_prefixed(&raw);
    if served != digest {
        return Err(FetchError::Malformed(format!(
            "registry reported digest {digest} for a manifest that hashes to {served}"
        )));
    }
    if let Some(pinned) = ours.digest() {
        if pinned != served {
            return Err(FetchError::DigestMismatch {
                image: ours.normalized().into(),
                pinned: pinned.into(),
                served,
            });
        }
    }
    let media_type = serde_json::from_slice::<serde_json::Value>(&raw)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(String::from)
        })
        .unwrap_or_default();
    let platform_digest = if INDEX_TYPES.contains(&media_type.as_str()) {
        Some(
            crate::containerd::select_platform(&served, &raw, crate::containerd::node_platform())
                .map_err(|e| FetchError::Malformed(e.to_string()))?,
        )
    } else {
        None
    };
    let mut subjects = Vec::new();
    for subject in std::iter::once(&served).chain(platform_digest.as_ref()) {
        let tag =
            cosign::signature_tag(subject).map_err(|e| FetchError::Malformed(e.to_string()))?;
        progress(&format!("looking for signatures of {subject} at tag {tag}"));
        let sig_ref = Reference::with_tag(
            reference.registry().to_string(),
            reference.repository().to_string(),
            tag.clone(),
        );
        let artifact = match fetch_signature_image(&client, &auth, &sig_ref, &tag).await? {
            Some(a) => a,
            None => {
                progress(&format!("no signatures at {tag}"));
                subjects.push(SubjectReport {
                    digest: subject.clone(),
                    tag,
                    signatures: 0,
                    cache_file: None,
                });
                continue;
            }
        };
        let n = artifact.layers.len();
        let entry = Entry {
            format: ENTRY_FORMAT,
            subject: subject.clone(),
            repository: ours.repository_name().to_string(),
            fetched_at: jiff::Timestamp::now().to_string(),
            artifacts: vec![artifact],
        };
        let path = state.write(&entry)?;
        progress(&format!(
            "cached {n} signature layer(s) in {}",
            path.display()
        ));
        subjects.push(SubjectReport {
            digest: subject.clone(),
            tag,
            signatures: n,
            cache_file: Some(path.display().to_string()),
        });
    }
    Ok(FetchReport {
        image: ours.normalized().to_string(),
        digest: served,
        platform_digest,
        subjects,
    })
}

async fn fetch_signature_image(
    client: &Client,
    auth: &RegistryAuth,
    sig_ref: &Reference,
    tag: &str,
) -> Result<Option<Artifact>, FetchError> {
    let (raw, manifest_digest) = match client
        .pull_manifest_raw(sig_ref, auth, MANIFEST_TYPES)
        .await
    {
        Ok(x) => x,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(registry_err(sig_ref, format!("signature manifest {tag}"))(
                e,
            ))
        }
    };
    let manifest: OciImageManifest = serde_json::from_slice(&raw)
        .map_err(|e| FetchError::Malformed(format!("signature manifest {tag}: {e}")))?;
    if manifest.layers.len() > MAX_LAYERS {
        return Err(FetchError::Malformed(format!(
            "signature manifest {tag} has {} layers, over the limit of {MAX_LAYERS}",
            manifest.layers.len()
        )));
    }
    let mut layers = Vec::new();
    for desc in &manifest.layers {
        if desc.size < 0 || desc.size > MAX_LAYER_BYTES {
            return Err(FetchError::Malformed(format!(
                "signature layer {} is {} bytes, over the {MAX_LAYER_BYTES}-byte limit",
                desc.digest, desc.size
            )));
        }
        let mut blob: Vec<u8> = Vec::with_capacity(desc.size as usize);
        client
            .pull_blob(sig_ref, desc, &mut blob)
            .await
            .map_err(registry_err(
                sig_ref,
                format!("signature layer {}", desc.digest),
            ))?;
        let layer = Layer::new(
            &desc.media_type,
            desc.annotations.clone().unwrap_or_else(BTreeMap::new),
            &blob,
        );
        if layer.digest != desc.digest {
            return Err(FetchError::Malformed(format!(
                "signature layer hashes to {}, not {}",
                layer.digest, desc.digest
            )));
        }
        layers.push(layer);
    }
    Ok(Some(Artifact {
        kind: ARTIFACT_KIND.into(),
        source: format!("{}/{}:{tag}", sig_ref.registry(), sig_ref.repository()),
        manifest_digest,
        layers,
    }))
}
