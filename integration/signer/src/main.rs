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
//! ```text
//! portcullis-testsign keygen --scheme ecdsa-p256|ed25519|rsa-2048 --private K.key --public K.pub
//! portcullis-testsign sign --key K.key [--plain-http] [--digest sha256:HEX] REGISTRY/REPO:TAG
//! portcullis-testsign digest [--plain-http] REGISTRY/REPO:TAG
//! ```

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
use oci_client::manifest::{OciImageManifest, OciManifest, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;
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

#[derive(Parser)]
#[command(
    name = "portcullis-testsign",
    about = "Test-only: sign images in cosign's legacy .sig format"
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

    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: protocol(plain_http).into(),
        ..Default::default()
    });
    let target: Reference = sig_tag
        .whole()
        .parse()
        .with_context(|| format!("invalid signature reference {sig_tag}"))?;
    let mut layers = existing_layers(&client, &target).await?;
    // An identical payload and signature (deterministic schemes) is not repeated.
    if !layers.contains(&new_layer) {
        layers.push(new_layer);
    }

    // Same manifest shape as sigstore-rs's push_signature: OCI image
    // manifest, empty JSON config.
    let config = Config::oci_v1(b"{}".to_vec(), None);
    let mut manifest = OciImageManifest::build(&layers, &config, None);
    manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_string());
    client
        .push(
            &target,
            &layers,
            config,
            &RegistryAuth::Anonymous,
            Some(manifest),
        )
        .await
        .with_context(|| format!("pushing {target}"))?;
    println!("signed {repo}@{digest}");
    Ok(())
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
