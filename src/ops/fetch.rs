//! `portcullis fetch`: copy an image's signature artifacts from its registry
//! into the node's cache, so that the shim never needs the network.
//!
//! This module owns the registry side (`oci-client`): resolve the image to
//! its digest (and this platform's manifest when it is an index), then for
//! each digest find cosign's signature image (`sha256-<hex>.sig`), cosign's
//! attestation image (`sha256-<hex>.att`), and Sigstore bundles attached as
//! OCI 1.1 referrers (through the referrers API, or the referrers tag schema
//! `sha256-<hex>` where the registry lacks the API), download their layers
//! (bounded in number and size, digests checked by the client and again by
//! the cache), and hand one complete entry per digest to [`crate::cache`],
//! which writes it atomically. A failure part-way leaves the previous entry
//! untouched. The shim binary never links this module.

use std::collections::BTreeMap;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Serialize;

use crate::cache::{kind, Artifact, Entry, Layer, StateDir, ENTRY_FORMAT};
use crate::containerd::{INDEX_TYPES, MANIFEST_TYPES};
use crate::cosign;
use crate::reference::ImageRef;

/// Largest signature layer downloaded, in bytes.
pub const MAX_LAYER_BYTES: i64 = cosign::MAX_PAYLOAD_BYTES as i64;
/// Largest attestation or bundle layer downloaded, in bytes.
pub const MAX_ATTESTATION_BYTES: i64 = 4 * 1024 * 1024;
/// Longest wait to connect to the registry.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest wait for the next bytes of a registry response.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest a whole fetch may take (every request of it together): a
/// registry that trickles bytes slower than [`READ_TIMEOUT`] cannot hold a
/// fetch (or `portcullis sync`) forever.
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

pub use crate::formats::referrers::{BUNDLE_MEDIA_TYPES, MAX_REFERRERS};

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
    /// The whole fetch took longer than [`FETCH_TIMEOUT`].
    #[error("fetching {image} took longer than {secs} s; the cache is unchanged; check the registry and retry")]
    Timeout {
        /// The image.
        image: String,
        /// The deadline, seconds.
        secs: u64,
    },
}

/// What one fetch did, per subject digest.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectReport {
    /// The digest.
    pub digest: String,
    /// The signature tag looked up.
    pub tag: String,
    /// cosign signature layers cached.
    pub signatures: usize,
    /// cosign attestation layers cached.
    pub attestations: usize,
    /// Sigstore bundles (referrers) cached.
    pub bundles: usize,
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
    rt.block_on(async {
        tokio::time::timeout(FETCH_TIMEOUT, fetch_async(image, state, opts, progress))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Timeout {
                    image: image.to_string(),
                    secs: FETCH_TIMEOUT.as_secs(),
                })
            })
    })
}

fn registry_err(
    r: &Reference,
    what: impl Into<String>,
) -> impl FnOnce(OciDistributionError) -> FetchError {
    let registry = r.registry().to_string();
    let what = what.into();
    move |e| FetchError::Registry {
        why: registry_why(&e, &registry, "--plain-http"),
        registry,
        what,
    }
}

/// A registry client's error as one line for the operator: its whole
/// source chain ([`error_chain`]), and the hint of [`scheme_hint`] when the
/// scheme is the cause. `switch` is how the operator turns plain HTTP on
/// (`--plain-http`, or a policy source file's `plain_http = true`).
pub fn registry_why(e: &OciDistributionError, registry: &str, switch: &str) -> String {
    let line = error_chain(e);
    match scheme_hint(e, &line, registry, switch) {
        Some(hint) => format!("{line} {hint}"),
        None => line,
    }
}

/// An error and its sources on one line, joined with ": " (a source whose
/// text the line already holds is skipped): "error sending request for url
/// (…)" alone does not say that the connection was refused.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !text.trim().is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = s.source();
    }
    crate::base::text::one_line(&line)
}

/// The fix when a request failed because of its scheme, `None` otherwise:
/// TLS spoken to a registry without it, plain HTTP to a registry that speaks
/// TLS, or HTTPS refused on a loopback registry named without a port (plain
/// HTTP would have gone to port 80). `line` is the error's [`error_chain`].
fn scheme_hint(
    e: &OciDistributionError,
    line: &str,
    registry: &str,
    switch: &str,
) -> Option<String> {
    let (url, refused) = match e {
        OciDistributionError::RequestError(r) => {
            let mut refused = false;
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(r);
            while let Some(s) = next {
                refused |= s
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
                next = s.source();
            }
            (r.url()?.clone(), refused)
        }
        OciDistributionError::ServerError { url, code, message } => {
            // A Go TLS server's answer to plain HTTP.
            let plain_to_tls = *code == 400 && message.contains("HTTP request to an HTTPS server");
            return (plain_to_tls && url.starts_with("http://"))
                .then(|| format!("(the registry speaks TLS: drop {switch})"));
        }
        _ => return None,
    };
    let https = url.scheme() == "https";
    if https && line.contains("InvalidContentType") {
        // rustls read a record that is not TLS: most likely an HTTP answer.
        return Some(format!("(a registry without TLS needs {switch})"));
    }
    if !https && (line.contains("invalid HTTP version") || line.contains("HTTPS server")) {
        return Some(format!("(the registry speaks TLS: drop {switch})"));
    }
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    let port_named = registry
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.ends_with('[') && port.parse::<u16>().is_ok());
    (https && refused && loopback && !port_named).then(|| {
        format!("(nothing listens on port 443 there; a registry without TLS, on port 80, needs {switch})")
    })
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
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
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
        // The manifest containerd would take (crate::containerd::platform), reading
        // nested indexes from the registry as the model asks for them.
        let mut nested = std::collections::HashMap::new();
        let sel = loop {
            match crate::containerd::platform::select(
                &served,
                &raw,
                crate::containerd::node_platform(),
                &nested,
            ) {
                Err(crate::containerd::platform::PlatformError::NeedBlob(d))
                    if nested.len() < crate::containerd::platform::MAX_INDEXES =>
                {
                    let at = Reference::with_digest(
                        reference.registry().to_string(),
                        reference.repository().to_string(),
                        d.clone(),
                    );
                    let (inner, _) = client
                        .pull_manifest_raw(&at, &auth, INDEX_TYPES)
                        .await
                        .map_err(registry_err(&at, format!("nested index {d}")))?;
                    let got = crate::digest::sha256_prefixed(&inner);
                    if got != d {
                        return Err(FetchError::Malformed(format!(
                            "nested index {d} hashes to {got}"
                        )));
                    }
                    nested.insert(d, inner.to_vec());
                }
                other => break other.map_err(|e| FetchError::Malformed(e.to_string()))?,
            }
        };
        if let Some(why) = sel.ambiguity(&served) {
            progress(&format!("note: {why}"));
        }
        Some(sel.chosen)
    } else {
        None
    };
    let mut subjects = Vec::new();
    for subject in std::iter::once(&served).chain(platform_digest.as_ref()) {
        let tag =
            cosign::signature_tag(subject).map_err(|e| FetchError::Malformed(e.to_string()))?;
        let hex = &tag["sha256-".len()..tag.len() - ".sig".len()];
        let att_tag = format!("sha256-{hex}.att");
        let with_tag = |t: &str| {
            Reference::with_tag(
                reference.registry().to_string(),
                reference.repository().to_string(),
                t.to_string(),
            )
        };
        let mut artifacts = Vec::new();
        progress(&format!("looking for signatures of {subject} at tag {tag}"));
        let sig = fetch_cosign_image(
            &client,
            &auth,
            &with_tag(&tag),
            &tag,
            kind::COSIGN_SIGNATURE,
            MAX_LAYER_BYTES,
        )
        .await?;
        let signatures = sig.as_ref().map_or(0, |a| a.layers.len());
        artifacts.extend(sig);
        progress(&format!(
            "looking for attestations of {subject} at tag {att_tag}"
        ));
        let att = fetch_cosign_image(
            &client,
            &auth,
            &with_tag(&att_tag),
            &att_tag,
            kind::COSIGN_ATTESTATION,
            MAX_ATTESTATION_BYTES,
        )
        .await?;
        let attestations = att.as_ref().map_or(0, |a| a.layers.len());
        artifacts.extend(att);
        progress(&format!(
            "looking for Sigstore bundles referring to {subject}"
        ));
        let subject_ref = Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            subject.clone(),
        );
        let bundles = fetch_referrer_bundles(&client, &auth, &subject_ref).await?;
        let n_bundles = bundles.len();
        artifacts.extend(bundles);
        progress(&format!(
            "{subject}: {signatures} signature(s), {attestations} attestation(s), {n_bundles} bundle(s)"
        ));
        let cache_file = if artifacts.is_empty() {
            None
        } else {
            let entry = Entry {
                format: ENTRY_FORMAT,
                subject: subject.clone(),
                repository: ours.repository_name().to_string(),
                fetched_at: jiff::Timestamp::now().to_string(),
                artifacts,
            };
            let path = state.write(&entry)?;
            progress(&format!("cached in {}", path.display()));
            Some(path.display().to_string())
        };
        subjects.push(SubjectReport {
            digest: subject.clone(),
            tag,
            signatures,
            attestations,
            bundles: n_bundles,
            cache_file,
        });
    }
    Ok(FetchReport {
        image: ours.normalized().to_string(),
        digest: served,
        platform_digest,
        subjects,
    })
}

async fn fetch_cosign_image(
    client: &Client,
    auth: &RegistryAuth,
    sig_ref: &Reference,
    tag: &str,
    artifact_kind: &str,
    max_layer: i64,
) -> Result<Option<Artifact>, FetchError> {
    let (raw, manifest_digest) = match client
        .pull_manifest_raw(sig_ref, auth, MANIFEST_TYPES)
        .await
    {
        Ok(x) => x,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(registry_err(sig_ref, format!("manifest {tag}"))(e)),
    };
    let (layers, skipped) = fetch_layers(client, sig_ref, &raw, tag, max_layer).await?;
    let mut source = format!("{}/{}:{tag}", sig_ref.registry(), sig_ref.repository());
    if skipped > 0 {
        source += &format!(
            " (newest {} of {} layers; the {skipped} older not examined)",
            layers.len(),
            layers.len() + skipped
        );
    }
    Ok(Some(Artifact {
        kind: artifact_kind.into(),
        source,
        manifest_digest,
        layers,
    }))
}

/// Sigstore bundles among the subject's referrers (API or tag schema).
async fn fetch_referrer_bundles(
    client: &Client,
    auth: &RegistryAuth,
    subject: &Reference,
) -> Result<Vec<Artifact>, FetchError> {
    client
        .store_auth_if_needed(subject.resolve_registry(), auth)
        .await;
    let index = client
        .pull_referrers(subject, None)
        .await
        .map_err(registry_err(subject, "referrers"))?;
    let mut out = Vec::new();
    for m in index.manifests.iter().take(MAX_REFERRERS) {
        let is_bundle = m
            .artifact_type
            .as_deref()
            .is_some_and(|t| BUNDLE_MEDIA_TYPES.contains(&t));
        if !is_bundle {
            continue;
        }
        let r = Reference::with_digest(
            subject.registry().to_string(),
            subject.repository().to_string(),
            m.digest.clone(),
        );
        let (raw, digest) = client
            .pull_manifest_raw(&r, auth, MANIFEST_TYPES)
            .await
            .map_err(registry_err(&r, format!("referrer {}", m.digest)))?;
        if digest != m.digest {
            return Err(FetchError::Malformed(format!(
                "referrer {} was served as {digest}",
                m.digest
            )));
        }
        let (layers, _) = fetch_layers(client, &r, &raw, &m.digest, MAX_ATTESTATION_BYTES).await?;
        out.push(Artifact {
            kind: kind::SIGSTORE_BUNDLE.into(),
            source: format!("{}/{}@{}", r.registry(), r.repository(), m.digest),
            manifest_digest: digest,
            layers,
        });
    }
    Ok(out)
}

async fn fetch_layers(
    client: &Client,
    at: &Reference,
    manifest_raw: &[u8],
    what: &str,
    max_layer: i64,
) -> Result<(Vec<Layer>, usize), FetchError> {
    let manifest: OciImageManifest = serde_json::from_slice(manifest_raw)
        .map_err(|e| FetchError::Malformed(format!("manifest {what}: {e}")))?;
    // A `.sig` re-signed often has many layers: examine the newest
    // MAX_LAYERS, each bounded by `max_layer` bytes, and say so.
    let (newest, skipped) = crate::cache::newest_layers(&manifest.layers);
    let mut layers = Vec::new();
    for desc in newest {
        if desc.size < 0 || desc.size > max_layer {
            return Err(FetchError::Malformed(format!(
                "layer {} of {what} is {} bytes, over the {max_layer}-byte limit",
                desc.digest, desc.size
            )));
        }
        let mut blob: Vec<u8> = Vec::with_capacity(desc.size as usize);
        client
            .pull_blob(at, desc, &mut blob)
            .await
            .map_err(registry_err(at, format!("layer {} of {what}", desc.digest)))?;
        let layer = Layer::new(
            &desc.media_type,
            desc.annotations.clone().unwrap_or_else(BTreeMap::new),
            &blob,
        );
        if layer.digest != desc.digest {
            return Err(FetchError::Malformed(format!(
                "layer of {what} hashes to {}, not {}",
                layer.digest, desc.digest
            )));
        }
        layers.push(layer);
    }
    Ok((layers, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Wrap(&'static str, #[source] Option<Box<Wrap>>);

    #[test]
    fn the_error_chain_is_one_line_without_repeats() {
        let inner = Wrap("Connection refused (os error 111)", None);
        let mid = Wrap("tcp connect error", Some(Box::new(inner)));
        let echo = Wrap("tcp connect error", Some(Box::new(mid)));
        let top = Wrap(
            "error sending request\nfor url (https://127.0.0.1:1/v2/)",
            Some(Box::new(echo)),
        );
        assert_eq!(
            error_chain(&top),
            "error sending request for url (https://127.0.0.1:1/v2/): tcp connect error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn plain_http_to_a_tls_registry_says_so_and_nothing_else_does() {
        let server = |url: &str, code: u16, message: &str| OciDistributionError::ServerError {
            url: url.into(),
            code,
            message: message.into(),
        };
        let go = "Client sent an HTTP request to an HTTPS server.";
        let e = server("http://127.0.0.1:5000/v2/x/manifests/y", 400, go);
        assert_eq!(
            registry_why(&e, "127.0.0.1:5000", "--plain-http"),
            format!("{} (the registry speaks TLS: drop --plain-http)", e)
        );
        for e in [
            server("https://127.0.0.1:5000/v2/x/manifests/y", 400, go),
            server("http://127.0.0.1:5000/v2/x/manifests/y", 404, "not found"),
        ] {
            assert_eq!(
                registry_why(&e, "127.0.0.1:5000", "--plain-http"),
                e.to_string()
            );
        }
    }
}
