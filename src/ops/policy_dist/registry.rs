//! The registry side of policy distribution (`oci-client`): push the
//! artifact and its `.sig` image, and read them back, bounded in size and
//! time, each blob checked against its digest.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::cache::{Artifact, Layer};
use crate::formats::policy_artifact::{self as art, MANIFEST_MEDIA_TYPE};

/// Longest wait to connect to the registry.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest wait for the next bytes of a registry response.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Largest Sigstore bundle layer read, in bytes.
pub const MAX_BUNDLE_BYTES: i64 = 4 * 1024 * 1024;
/// Longest a whole push or pull may take.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What went wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or did not answer in time.
    #[error("registry {registry} unreachable: {why}")]
    Unreachable {
        /// Which registry.
        registry: String,
        /// Why.
        why: String,
    },
    /// The registry answered, but refused or does not hold the artifact.
    #[error("registry {registry}: {what}: {why}")]
    Refused {
        /// Which registry.
        registry: String,
        /// What we asked.
        what: String,
        /// Its answer.
        why: String,
    },
    /// A blob did not hash to its digest.
    #[error("{what} from {registry} does not match its digest: {why}")]
    Digest {
        /// Which registry.
        registry: String,
        /// Which blob.
        what: String,
        /// The client's report.
        why: String,
    },
    /// Not a reference, or a runtime failure.
    #[error("{0}")]
    Other(String),
}

/// Registry credentials from `PORTCULLIS_REGISTRY_USERNAME` and
/// `PORTCULLIS_REGISTRY_PASSWORD`, else anonymous.
pub fn auth_from_env() -> RegistryAuth {
    match (
        std::env::var("PORTCULLIS_REGISTRY_USERNAME"),
        std::env::var("PORTCULLIS_REGISTRY_PASSWORD"),
    ) {
        (Ok(u), Ok(p)) if !u.is_empty() => RegistryAuth::Basic(u, p),
        _ => RegistryAuth::Anonymous,
    }
}

fn not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                oci_client::errors::OciErrorCode::ManifestUnknown
                    | oci_client::errors::OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// A client and the parsed reference.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    /// How the operator turns plain HTTP on, named in scheme hints.
    plain_http_switch: &'static str,
    /// The artifact's reference.
    pub reference: Reference,
}

/// `switch`: how the operator turns plain HTTP on, for the hint when the
/// scheme is the cause ([`crate::fetch::registry_why`]).
fn classify(
    r: &Reference,
    what: &str,
    switch: &'static str,
) -> impl FnOnce(OciDistributionError) -> RegistryError {
    let registry = r.registry().to_string();
    let what = what.to_string();
    move |e| {
        let why = crate::fetch::registry_why(&e, &registry, switch);
        match e {
            OciDistributionError::RequestError(_) => RegistryError::Unreachable { registry, why },
            OciDistributionError::DigestError(_) => RegistryError::Digest {
                registry,
                what,
                why,
            },
            OciDistributionError::ServerError { code, .. } if code >= 500 => {
                RegistryError::Unreachable { registry, why }
            }
            _ => RegistryError::Refused {
                registry,
                what,
                why,
            },
        }
    }
}

impl Registry {
    /// A client for `reference` (normalized like an image reference).
    pub fn new(reference: &str, plain_http: bool) -> Result<Registry, RegistryError> {
        let ours = crate::reference::ImageRef::parse(reference)
            .map_err(|e| RegistryError::Other(e.to_string()))?;
        let reference: Reference = ours
            .normalized()
            .parse()
            .map_err(|e| RegistryError::Other(format!("{reference}: {e}")))?;
        let client = Client::new(ClientConfig {
            protocol: if plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..Default::default()
        });
        Ok(Registry {
            client,
            auth: auth_from_env(),
            plain_http_switch: "--plain-http",
            reference,
        })
    }

    /// Name `switch` as the way to turn plain HTTP on in scheme hints
    /// (default: `--plain-http`).
    pub fn with_plain_http_switch(mut self, switch: &'static str) -> Registry {
        self.plain_http_switch = switch;
        self
    }

    /// [`classify`] naming this registry's plain-HTTP switch.
    fn classify(
        &self,
        r: &Reference,
        what: &str,
    ) -> impl FnOnce(OciDistributionError) -> RegistryError {
        classify(r, what, self.plain_http_switch)
    }

    /// `registry/repository`, as cosign names it in a signature payload.
    pub fn repository(&self) -> String {
        format!(
            "{}/{}",
            self.reference.registry(),
            self.reference.repository()
        )
    }

    fn at_tag(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            tag.to_string(),
        )
    }

    /// One layer of a manifest at `at`, its digest checked (`what` names it
    /// in errors: "signature layer", "bundle layer").
    async fn pull_layer(
        &self,
        at: &Reference,
        d: &OciDescriptor,
        what: &str,
    ) -> Result<Layer, RegistryError> {
        let mut blob = Vec::with_capacity(d.size.max(0) as usize);
        self.client
            .pull_blob(at, d, &mut blob)
            .await
            .map_err(self.classify(at, &format!("{what} {}", d.digest)))?;
        let layer = Layer::new(
            &d.media_type,
            d.annotations.clone().unwrap_or_default(),
            &blob,
        );
        if layer.digest != d.digest {
            return Err(RegistryError::Digest {
                registry: self.reference.registry().into(),
                what: format!("{what} {}", d.digest),
                why: format!("hashes to {}", layer.digest),
            });
        }
        Ok(layer)
    }

    fn at_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    /// Push blobs, then `manifest` under `tag` (the reference's own tag when `None`).
    pub async fn push(
        &self,
        blobs: &[&[u8]],
        manifest: &[u8],
        tag: Option<&str>,
    ) -> Result<String, RegistryError> {
        let r = &self.reference;
        self.client
            .auth(r, &self.auth, RegistryOperation::Push)
            .await
            .map_err(self.classify(r, "authenticate for push"))?;
        for b in blobs {
            let d = crate::digest::sha256_prefixed(b);
            self.client
                .push_blob(r, b.to_vec(), &d)
                .await
                .map_err(self.classify(r, &format!("push blob {d}")))?;
        }
        let target = match tag {
            Some(t) => self.at_tag(t),
            None => r.clone(),
        };
        let content_type = MANIFEST_MEDIA_TYPE
            .parse()
            .map_err(|_| RegistryError::Other("bad content type".into()))?;
        self.client
            .push_manifest_raw(&target, manifest.to_vec(), content_type)
            .await
            .map_err(self.classify(r, "push manifest"))?;
        Ok(crate::digest::sha256_prefixed(manifest))
    }

    /// The artifact manifest at the reference: raw bytes and digest (checked).
    pub async fn manifest(&self) -> Result<(Vec<u8>, String), RegistryError> {
        let r = &self.reference;
        let (raw, digest) = self
            .client
            .pull_manifest_raw(r, &self.auth, &[MANIFEST_MEDIA_TYPE])
            .await
            .map_err(self.classify(r, "artifact manifest"))?;
        if raw.len() > art::MAX_MANIFEST_BYTES {
            return Err(RegistryError::Refused {
                registry: r.registry().into(),
                what: "artifact manifest".into(),
                why: format!("{} bytes, over the limit", raw.len()),
            });
        }
        let served = crate::digest::sha256_prefixed(&raw);
        if served != digest {
            return Err(RegistryError::Digest {
                registry: r.registry().into(),
                what: "artifact manifest".into(),
                why: format!("reported {digest}, hashes to {served}"),
            });
        }
        if let Some(pinned) = r.digest() {
            if pinned != served {
                return Err(RegistryError::Digest {
                    registry: r.registry().into(),
                    what: "artifact manifest".into(),
                    why: format!("the reference pins {pinned}, the registry served {served}"),
                });
            }
        }
        Ok((raw.to_vec(), served))
    }

    /// The `.sig` image of `digest` as a cache artifact, or `None` when unsigned.
    pub async fn signatures(&self, digest: &str) -> Result<Option<Artifact>, RegistryError> {
        let tag = crate::cosign::signature_tag(digest)
            .map_err(|e| RegistryError::Other(e.to_string()))?;
        let at = self.at_tag(&tag);
        let refused = |why: String| RegistryError::Refused {
            registry: self.reference.registry().into(),
            what: format!("signatures at {tag}"),
            why,
        };
        let (raw, manifest_digest) = match self
            .client
            .pull_manifest_raw(&at, &self.auth, &[MANIFEST_MEDIA_TYPE])
            .await
        {
            Ok(x) => x,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(self.classify(&at, &format!("signatures at {tag}"))(e)),
        };
        let m: OciImageManifest =
            serde_json::from_slice(&raw).map_err(|e| refused(e.to_string()))?;
        // A `.sig` re-signed often has many layers: the newest are examined.
        let (newest, _) = crate::cache::newest_layers(&m.layers);
        let mut layers = Vec::new();
        for d in newest {
            if d.size < 0 || d.size as usize > crate::cosign::MAX_PAYLOAD_BYTES {
                return Err(refused(format!("layer {} is {} bytes", d.digest, d.size)));
            }
            layers.push(self.pull_layer(&at, d, "signature layer").await?);
        }
        Ok(Some(Artifact {
            kind: crate::cache::kind::COSIGN_SIGNATURE.into(),
            source: format!("{}:{tag}", self.repository()),
            manifest_digest,
            layers,
        }))
    }

    /// Sigstore bundles attached to `digest` as OCI 1.1 referrers (the
    /// referrers API, or the tag schema `sha256-<hex>` where the registry
    /// lacks it), as cache artifacts: how `cosign sign` with the new bundle
    /// format, or a keyless signer, attaches its signature.
    pub async fn bundles(&self, digest: &str) -> Result<Vec<Artifact>, RegistryError> {
        let subject = self.at_digest(digest);
        self.client
            .store_auth_if_needed(subject.resolve_registry(), &self.auth)
            .await;
        let index = self
            .client
            .pull_referrers(&subject, None)
            .await
            .map_err(self.classify(&subject, "referrers"))?;
        let mut out = Vec::new();
        for m in index
            .manifests
            .iter()
            .take(crate::formats::referrers::MAX_REFERRERS)
        {
            let is_bundle = m
                .artifact_type
                .as_deref()
                .is_some_and(|t| crate::formats::referrers::BUNDLE_MEDIA_TYPES.contains(&t));
            if !is_bundle {
                continue;
            }
            let at = self.at_digest(&m.digest);
            let (raw, got) = self
                .client
                .pull_manifest_raw(&at, &self.auth, &[MANIFEST_MEDIA_TYPE])
                .await
                .map_err(self.classify(&at, &format!("referrer {}", m.digest)))?;
            if crate::digest::sha256_prefixed(&raw) != m.digest || got != m.digest {
                return Err(RegistryError::Digest {
                    registry: self.reference.registry().into(),
                    what: format!("referrer {}", m.digest),
                    why: format!("served as {got}"),
                });
            }
            let man: OciImageManifest =
                serde_json::from_slice(&raw).map_err(|e| RegistryError::Refused {
                    registry: self.reference.registry().into(),
                    what: format!("referrer {}", m.digest),
                    why: e.to_string(),
                })?;
            let mut layers = Vec::new();
            for d in man.layers.iter().take(crate::cache::MAX_LAYERS) {
                if d.size < 0 || d.size > MAX_BUNDLE_BYTES {
                    return Err(RegistryError::Refused {
                        registry: self.reference.registry().into(),
                        what: format!("bundle layer {}", d.digest),
                        why: format!("{} bytes, over the {MAX_BUNDLE_BYTES}-byte limit", d.size),
                    });
                }
                layers.push(self.pull_layer(&at, d, "bundle layer").await?);
            }
            out.push(Artifact {
                kind: crate::cache::kind::SIGSTORE_BUNDLE.into(),
                source: format!("{}@{}", self.repository(), m.digest),
                manifest_digest: m.digest.clone(),
                layers,
            });
        }
        Ok(out)
    }

    /// The layer named by `digest` and `size` (checked by the client, and
    /// again by the caller).
    pub async fn layer(&self, digest: &str, size: u64) -> Result<Vec<u8>, RegistryError> {
        let at = self.at_digest(digest);
        let desc = OciDescriptor {
            media_type: art::LAYER_MEDIA_TYPE.into(),
            digest: digest.into(),
            size: size as i64,
            ..Default::default()
        };
        let mut out = Vec::with_capacity(size as usize);
        self.client
            .pull_blob(&at, &desc, &mut out)
            .await
            .map_err(self.classify(&at, &format!("layer {digest}")))?;
        Ok(out)
    }
}

/// Run `f` on a current-thread runtime, bounded by [`TIMEOUT`].
pub fn block_on<T>(
    registry: &str,
    f: impl std::future::Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Other(format!("cannot start the I/O runtime: {e}")))?;
    rt.block_on(async {
        tokio::time::timeout(TIMEOUT, f).await.unwrap_or_else(|_| {
            Err(RegistryError::Unreachable {
                registry: registry.to_string(),
                why: format!("no complete answer within {} s", TIMEOUT.as_secs()),
            })
        })
    })
}
