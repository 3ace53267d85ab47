//! `portcullis-testsign`: a test-only signer for Portcullis's integration tests.
//!
//! It signs images the way `cosign sign --key` does in cosign's legacy
//! registry format: a simple-signing payload stored as a layer of the image
//! tagged `sha256-<hex>.sig` in the same repository, with the base64
//! signature in the layer annotation `dev.cosignproject.cosign/signature`.
//!
//! sigstore-rs does the cosign parts: it resolves the digest and the
//! signature tag (`triangulate`), builds the payload
//! (`SignatureLayer::new_unsigned`), and signs it (`PrivateKeySigner`).
//! The push goes through oci-client directly, because sigstore-rs's
//! `push_signature` replaces whatever the tag held and re-serialises
//! payloads, while cosign appends. Here the layers already at the tag are
//! kept byte for byte and the new one is added after them.
//!
//! Two more subcommands only move attestations made elsewhere (they sign
//! nothing):
//!
//! * `attach-attestation` appends a DSSE envelope file as a layer of media
//!   type `application/vnd.dsse.envelope.v1+json` to cosign's attestation
//!   image at tag `sha256-<hex>.att`, like `cosign attest` does, with the
//!   layer annotation `predicateType` when given.
//! * `attach-bundle` attaches a Sigstore bundle file as an OCI 1.1 referrer
//!   of the image: an artifact manifest (empty config, one layer, both typed
//!   by the bundle's own `mediaType`, `subject` = the image) pushed by
//!   digest, and also listed in the referrers tag schema's index at tag
//!   `sha256-<hex>`, for registries without the referrers API (Debian's
//!   docker-registry 2.8).
//!
//! ```text
//! portcullis-testsign keygen --scheme ecdsa-p256|ed25519|rsa-2048 --private K.key --public K.pub
//! portcullis-testsign sign --key K.key [--plain-http] [--digest sha256:HEX] REGISTRY/REPO:TAG
//! portcullis-testsign digest [--plain-http] REGISTRY/REPO:TAG
//! portcullis-testsign attach-attestation [--plain-http] --envelope FILE [--predicate-type URI] IMAGE
//! portcullis-testsign attach-bundle [--plain-http] --bundle FILE IMAGE
//! ```
//!
//! IMAGE is `REGISTRY/REPO@sha256:HEX` or `REGISTRY/REPO:TAG` (resolved to
//! the digest the registry serves).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use oci_client::client::{Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    OciDescriptor, OciImageManifest, OciManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;
use serde_json::{json, Value};
use sigstore::cosign::constraint::{Constraint, PrivateKeySigner};
use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::crypto::signing_key::ecdsa::ECDSAKeys;
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::SigningScheme;
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use zeroize::Zeroizing;

/// Layer media type of a cosign simple-signing signature (private in sigstore-rs).
const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature (private in sigstore-rs).
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Layer media type of a cosign attestation (a DSSE envelope).
const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Layer annotation cosign writes on attestation layers.
const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// The OCI 1.1 empty descriptor's media type and content.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";
/// Manifest media types accepted when resolving an image.
const MANIFEST_MEDIA_TYPES: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

#[derive(Parser)]
#[command(
    name = "portcullis-testsign",
    about = "Test-only: sign images in cosign's legacy .sig format, attach attestations and bundles"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a key pair: PKCS#8 PEM private key, SPKI PEM public key.
    Keygen {
        #[arg(long, value_enum)]
        scheme: Scheme,
        #[arg(long)]
        private: PathBuf,
        #[arg(long)]
        public: PathBuf,
    },
    /// Sign IMAGE's manifest digest and append the signature to its .sig tag.
    Sign {
        /// Unencrypted PEM private key (ECDSA P-256, Ed25519 or RSA).
        #[arg(long)]
        key: PathBuf,
        /// Talk to the registry over plain HTTP.
        #[arg(long)]
        plain_http: bool,
        /// Sign this manifest digest (sha256:HEX) in IMAGE's repository
        /// instead of the one IMAGE resolves to.
        #[arg(long)]
        digest: Option<String>,
        /// Image reference, e.g. 127.0.0.1:5000/demo/signed:v1
        image: String,
    },
    /// Print the manifest digest the registry serves for IMAGE.
    Digest {
        #[arg(long)]
        plain_http: bool,
        image: String,
    },
    /// Append a DSSE envelope file to IMAGE's cosign attestation tag
    /// (sha256-<hex>.att). Signs nothing.
    AttachAttestation {
        #[arg(long)]
        plain_http: bool,
        /// The DSSE envelope (JSON), attached byte for byte.
        #[arg(long)]
        envelope: PathBuf,
        /// Value of the layer annotation `predicateType`.
        #[arg(long)]
        predicate_type: Option<String>,
        /// Image reference, REGISTRY/REPO@sha256:HEX or REGISTRY/REPO:TAG.
        image: String,
    },
    /// Attach a Sigstore bundle file as an OCI 1.1 referrer of IMAGE, and
    /// list it in the referrers tag schema's index (sha256-<hex>).
    AttachBundle {
        #[arg(long)]
        plain_http: bool,
        /// The Sigstore bundle (JSON), attached byte for byte; its
        /// `mediaType` becomes the artifact type.
        #[arg(long)]
        bundle: PathBuf,
        /// Image reference, REGISTRY/REPO@sha256:HEX or REGISTRY/REPO:TAG.
        image: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Scheme {
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    #[value(name = "ed25519")]
    Ed25519,
    #[value(name = "rsa-2048")]
    Rsa2048,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Keygen {
            scheme,
            private,
            public,
        } => keygen(scheme, &private, &public),
        Command::Sign {
            key,
            plain_http,
            digest,
            image,
        } => sign(&key, plain_http, digest.as_deref(), &image).await,
        Command::Digest { plain_http, image } => {
            resolve(plain_http, &image, None).await.map(|(_, digest)| {
                println!("{digest}");
            })
        }
        Command::AttachAttestation {
            plain_http,
            envelope,
            predicate_type,
            image,
        } => attach_attestation(plain_http, &envelope, predicate_type, &image).await,
        Command::AttachBundle {
            plain_http,
            bundle,
            image,
        } => attach_bundle(plain_http, &bundle, &image).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let msg = format!("{err:#}").replace('\n', " ");
            eprintln!("portcullis-testsign: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(scheme: Scheme, private: &Path, public: &Path) -> Result<()> {
    let scheme = match scheme {
        Scheme::EcdsaP256 => SigningScheme::ECDSA_P256_SHA256_ASN1,
        Scheme::Ed25519 => SigningScheme::ED25519,
        Scheme::Rsa2048 => SigningScheme::RSA_PKCS1_SHA256(2048),
    };
    let keys = scheme.create_signer()?.to_sigstore_keypair()?;
    let private_pem = keys.private_key_to_pem()?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(private)
        .and_then(|mut f| f.write_all(private_pem.as_bytes()))
        .with_context(|| format!("writing {}", private.display()))?;
    fs::write(public, keys.public_key_to_pem()?)
        .with_context(|| format!("writing {}", public.display()))?;
    Ok(())
}

/// The scheme cosign uses for a key of this type.
fn scheme_for(keys: &SigStoreKeyPair) -> Result<SigningScheme> {
    Ok(match keys {
        SigStoreKeyPair::ECDSA(ECDSAKeys::P256(_)) => SigningScheme::ECDSA_P256_SHA256_ASN1,
        SigStoreKeyPair::ECDSA(other) => bail!("unsupported key {other}: only P-256 EC keys"),
        SigStoreKeyPair::ED25519(_) => SigningScheme::ED25519,
        // The size is only used when generating keys.
        SigStoreKeyPair::RSA(_) => SigningScheme::RSA_PKCS1_SHA256(0),
    })
}

/// Resolves IMAGE (or `digest` in IMAGE's repository) with sigstore's cosign
/// triangulation: returns the signature tag reference and the manifest digest.
async fn resolve(
    plain_http: bool,
    image: &str,
    digest: Option<&str>,
) -> Result<(OciReference, String)> {
    let mut image: OciReference = image
        .parse()
        .with_context(|| format!("invalid image reference {image:?}"))?;
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            bail!("invalid --digest {digest:?}: expected sha256:<64 lowercase hex>");
        }
        image = OciReference::with_digest(
            image.registry().to_string(),
            image.repository().to_string(),
            digest.to_string(),
        );
    }
    let config = ClientConfig {
        protocol: protocol(plain_http),
        ..Default::default()
    };
    let mut client = ClientBuilder::default()
        .with_oci_client_config(config)
        .build()?;
    // The error already names the reference.
    Ok(client.triangulate(&image, &Auth::Anonymous).await?)
}

fn protocol(plain_http: bool) -> ClientProtocol {
    if plain_http {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    }
}

async fn sign(key_path: &Path, plain_http: bool, digest: Option<&str>, image: &str) -> Result<()> {
    let pem = Zeroizing::new(
        fs::read(key_path).with_context(|| format!("reading {}", key_path.display()))?,
    );
    let keys = SigStoreKeyPair::from_pem(&pem)
        .with_context(|| format!("loading private key {}", key_path.display()))?;
    let signer = PrivateKeySigner::new_with_signer(keys.to_sigstore_signer(&scheme_for(&keys)?)?);

    let (sig_tag, digest) = resolve(plain_http, image, digest).await?;
    let repo = format!("{}/{}", sig_tag.registry(), sig_tag.repository());

    let signed = OciReference::with_digest(
        sig_tag.registry().to_string(),
        sig_tag.repository().to_string(),
        digest.clone(),
    );
    let mut layer = SignatureLayer::new_unsigned(&signed, &digest)?;
    // new_unsigned records the whole reference (repo@digest here) as the
    // docker-reference; cosign records just the repository.
    layer.simple_signing.critical.identity.docker_reference = repo.clone();
    // Serialises the payload into raw_data and signs exactly those bytes.
    signer.add_constraint(&mut layer)?;
    let signature = layer.signature.context("sigstore produced no signature")?;
    let new_layer = ImageLayer::new(
        layer.raw_data,
        SIMPLE_SIGNING_MEDIA_TYPE.to_string(),
        Some(BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_string(),
            signature,
        )])),
    );

    let client = registry_client(plain_http);
    let target: Reference = sig_tag
        .whole()
        .parse()
        .with_context(|| format!("invalid signature reference {sig_tag}"))?;
    append_layer(&client, &target, new_layer).await?;
    println!("signed {repo}@{digest}");
    Ok(())
}

fn registry_client(plain_http: bool) -> oci_client::Client {
    oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: protocol(plain_http).into(),
        ..Default::default()
    })
}

/// Pushes the cosign-style manifest at `target` with its existing layers
/// (byte for byte) followed by `new_layer`.
async fn append_layer(
    client: &oci_client::Client,
    target: &Reference,
    new_layer: ImageLayer,
) -> Result<()> {
    let mut layers = existing_layers(client, target).await?;
    // An identical layer (same bytes and annotations) is not repeated.
    if !layers.contains(&new_layer) {
        layers.push(new_layer);
    }

    // Same manifest shape as sigstore-rs's push_signature: OCI image
    // manifest, empty JSON config.
    let config = Config::oci_v1(EMPTY_JSON.to_vec(), None);
    let mut manifest = OciImageManifest::build(&layers, &config, None);
    manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_string());
    client
        .push(
            target,
            &layers,
            config,
            &RegistryAuth::Anonymous,
            Some(manifest),
        )
        .await
        .with_context(|| format!("pushing {target}"))?;
    Ok(())
}

/// `sha256:<hex>` of `data`.
fn sha256_digest(data: &[u8]) -> String {
    // oci-client's own helper, reached through a throw-away layer.
    ImageLayer::new(data.to_vec(), String::new(), None).sha256_digest()
}

/// Resolves IMAGE to the manifest the registry serves for it: returns
/// `REGISTRY/REPO@DIGEST` and the manifest's descriptor (media type, digest,
/// size).
async fn subject(client: &oci_client::Client, image: &str) -> Result<(Reference, OciDescriptor)> {
    let reference: Reference = image
        .parse()
        .with_context(|| format!("invalid image reference {image:?}"))?;
    let (body, digest) = client
        .pull_manifest_raw(&reference, &RegistryAuth::Anonymous, MANIFEST_MEDIA_TYPES)
        .await
        .with_context(|| format!("resolving {image}"))?;
    let manifest: Value = serde_json::from_slice(&body)
        .with_context(|| format!("manifest of {image} is not JSON"))?;
    let media_type = match manifest.get("mediaType").and_then(Value::as_str) {
        Some(media_type) => media_type.to_string(),
        // mediaType is optional in OCI manifests and indexes.
        None if manifest.get("manifests").is_some() => OCI_IMAGE_INDEX_MEDIA_TYPE.to_string(),
        None if manifest.get("config").is_some() => OCI_IMAGE_MEDIA_TYPE.to_string(),
        None => bail!("cannot tell the media type of the manifest of {image}"),
    };
    let descriptor = OciDescriptor {
        media_type,
        digest: digest.clone(),
        size: i64::try_from(body.len())?,
        ..Default::default()
    };
    let pinned = Reference::with_digest(
        reference.registry().to_string(),
        reference.repository().to_string(),
        digest,
    );
    Ok((pinned, descriptor))
}

/// The tag derived from a digest: `sha256:HEX` -> `sha256-HEX`.
fn digest_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

fn repo_name(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

async fn attach_attestation(
    plain_http: bool,
    envelope_path: &Path,
    predicate_type: Option<String>,
    image: &str,
) -> Result<()> {
    // Attached as is: tests also attach deliberately broken envelopes.
    let envelope =
        fs::read(envelope_path).with_context(|| format!("reading {}", envelope_path.display()))?;
    let client = registry_client(plain_http);
    let (pinned, descriptor) = subject(&client, image).await?;
    let target = Reference::with_tag(
        pinned.registry().to_string(),
        pinned.repository().to_string(),
        format!("{}.att", digest_tag(&descriptor.digest)),
    );
    let annotations =
        predicate_type.map(|uri| BTreeMap::from([(PREDICATE_TYPE_ANNOTATION.to_string(), uri)]));
    let layer = ImageLayer::new(envelope, DSSE_MEDIA_TYPE.to_string(), annotations);
    append_layer(&client, &target, layer).await?;
    println!("attached {}@{}", repo_name(&pinned), descriptor.digest);
    Ok(())
}

async fn attach_bundle(plain_http: bool, bundle_path: &Path, image: &str) -> Result<()> {
    let bundle =
        fs::read(bundle_path).with_context(|| format!("reading {}", bundle_path.display()))?;
    let bundle_json: Value = serde_json::from_slice(&bundle)
        .with_context(|| format!("{} is not JSON", bundle_path.display()))?;
    let bundle_type = bundle_json
        .get("mediaType")
        .and_then(Value::as_str)
        .with_context(|| format!("{} has no string mediaType", bundle_path.display()))?
        .to_string();

    let client = registry_client(plain_http);
    let (pinned, subject) = subject(&client, image).await?;
    let subject_digest = subject.digest.clone();

    let empty_digest = sha256_digest(EMPTY_JSON);
    let bundle_digest = sha256_digest(&bundle);
    for (data, digest) in [
        (EMPTY_JSON.to_vec(), &empty_digest),
        (bundle.clone(), &bundle_digest),
    ] {
        client
            .push_blob(&pinned, data, digest)
            .await
            .with_context(|| format!("pushing blob {digest} to {}", repo_name(&pinned)))?;
    }

    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        artifact_type: Some(bundle_type.clone()),
        config: OciDescriptor {
            media_type: EMPTY_MEDIA_TYPE.to_string(),
            digest: empty_digest,
            size: i64::try_from(EMPTY_JSON.len())?,
            ..Default::default()
        },
        layers: vec![OciDescriptor {
            media_type: bundle_type.clone(),
            digest: bundle_digest,
            size: i64::try_from(bundle.len())?,
            ..Default::default()
        }],
        subject: Some(subject),
        annotations: None,
    };
    let manifest_body = serde_json::to_vec(&manifest)?;
    let manifest_digest = sha256_digest(&manifest_body);
    let manifest_ref = pinned.clone_with_digest(manifest_digest.clone());
    client
        .push_manifest_raw(
            &manifest_ref,
            manifest_body.clone(),
            OCI_IMAGE_MEDIA_TYPE.parse()?,
        )
        .await
        .with_context(|| format!("pushing {manifest_ref}"))?;

    // The referrers tag schema (OCI distribution spec 1.1), for registries
    // without the referrers API. Maintained always: harmless where the API
    // exists.
    let index_ref = Reference::with_tag(
        pinned.registry().to_string(),
        pinned.repository().to_string(),
        digest_tag(&subject_digest),
    );
    let mut index = referrers_index(&client, &index_ref).await?;
    let entries = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .with_context(|| format!("{index_ref} is an image index without a manifests list"))?;
    if !entries
        .iter()
        .any(|e| e.get("digest").and_then(Value::as_str) == Some(manifest_digest.as_str()))
    {
        entries.push(json!({
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest_body.len(),
            "artifactType": bundle_type,
        }));
        client
            .push_manifest_raw(
                &index_ref,
                serde_json::to_vec(&index)?,
                OCI_IMAGE_INDEX_MEDIA_TYPE.parse()?,
            )
            .await
            .with_context(|| format!("pushing {index_ref}"))?;
    }
    println!(
        "attached {manifest_digest} to {}@{subject_digest}",
        repo_name(&pinned)
    );
    Ok(())
}

/// The referrers index at `index_ref` (kept as JSON, so fields this tool does
/// not know survive), or a new empty one if the tag does not exist.
async fn referrers_index(client: &oci_client::Client, index_ref: &Reference) -> Result<Value> {
    match client
        .pull_manifest_raw(index_ref, &RegistryAuth::Anonymous, MANIFEST_MEDIA_TYPES)
        .await
    {
        Ok((body, _)) => {
            let index: Value = serde_json::from_slice(&body)
                .with_context(|| format!("{index_ref} is not JSON"))?;
            let media_type = index.get("mediaType").and_then(Value::as_str);
            if media_type != Some(OCI_IMAGE_INDEX_MEDIA_TYPE) {
                bail!("{index_ref} is not an OCI image index (mediaType {media_type:?})");
            }
            Ok(index)
        }
        Err(err) if is_not_found(&err) => Ok(json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
            "manifests": [],
        })),
        Err(err) => Err(err).with_context(|| format!("reading {index_ref}")),
    }
}

/// The layers at the signature tag, or none if the tag does not exist yet.
async fn existing_layers(
    client: &oci_client::Client,
    target: &Reference,
) -> Result<Vec<ImageLayer>> {
    let manifest = match client.pull_manifest(target, &RegistryAuth::Anonymous).await {
        Ok((OciManifest::Image(manifest), _)) => manifest,
        Ok((OciManifest::ImageIndex(_), _)) => {
            bail!("{target} is an image index, not a cosign signature manifest")
        }
        Err(err) if is_not_found(&err) => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {target}")),
    };
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for descriptor in &manifest.layers {
        let mut data = Vec::new();
        client
            .pull_blob(target, descriptor, &mut data)
            .await
            .with_context(|| format!("pulling {} from {target}", descriptor.digest))?;
        layers.push(ImageLayer::new(
            data,
            descriptor.media_type.clone(),
            descriptor.annotations.clone(),
        ));
    }
    Ok(layers)
}

fn is_not_found(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NotFound | OciErrorCode::NameUnknown
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}
