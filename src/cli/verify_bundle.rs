//! `portcullis verify-bundle`: verify a Sigstore bundle for a file or digest,
//! offline (the sigstore-conformance client protocol).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::args::{JsonArg, StateDirArg};
use super::error::CliError;

/// `portcullis verify-bundle`.
#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// The Sigstore bundle (`*.sigstore.json`).
    #[arg(long)]
    pub bundle: PathBuf,
    /// The signing certificate's identity (subject alternative name), matched exactly.
    #[arg(
        long,
        requires = "certificate_oidc_issuer",
        required_unless_present = "key"
    )]
    pub certificate_identity: Option<String>,
    /// The signing certificate's OIDC issuer, matched exactly.
    #[arg(long, requires = "certificate_identity")]
    pub certificate_oidc_issuer: Option<String>,
    /// A PEM public key: verify a managed-key bundle instead of a certificate identity.
    #[arg(long, conflicts_with_all = ["certificate_identity", "certificate_oidc_issuer"])]
    pub key: Option<PathBuf>,
    /// The trusted root (`trusted_root.json`); default: the state directory's trust/trusted_root.json.
    #[arg(long)]
    pub trusted_root: Option<PathBuf>,
    // The state directory (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub state: StateDirArg,
    // `--json` (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub output: JsonArg,
    /// The artifact, or its digest (`sha256:` and 64 lowercase hex characters, when no such file exists).
    #[arg(value_name = "FILE_OR_DIGEST")]
    pub file_or_digest: PathBuf,
}

pub(super) fn run(a: VerifyBundleArgs) -> Result<u8, CliError> {
    use crate::bundle::{self, Artifact, Expectation, TrustRoot};
    let digest = a
        .file_or_digest
        .to_str()
        .filter(|d| crate::digest::sha256_hex_of(d).is_ok())
        .filter(|_| !a.file_or_digest.try_exists().unwrap_or(true));
    let bytes = match digest {
        Some(_) => Vec::new(),
        None => std::fs::read(&a.file_or_digest).map_err(|source| CliError::Read {
            path: a.file_or_digest.clone(),
            source,
        })?,
    };
    let artifact = digest.map_or(Artifact::Bytes(&bytes), Artifact::Digest);
    let expectation = match (a.key, a.certificate_identity, a.certificate_oidc_issuer) {
        (Some(pem_path), _, _) => Expectation::Key { pem_path },
        (None, Some(subject), Some(issuer)) => Expectation::Identity { subject, issuer },
        _ => unreachable!("clap requires a key or an identity and issuer"),
    };
    let verified = match &a.trusted_root {
        Some(p) => TrustRoot::load(p),
        None => TrustRoot::load_cached(&a.state.dir),
    }
    .and_then(|root| {
        let json = bundle::read_bundle_file(&a.bundle)?;
        bundle::verify_bundle(&json, artifact, &expectation, &root)
    });
    let v = verified.map_err(|e| CliError::No(format!("not verified: {e}")))?;
    let mut out = std::io::stdout().lock();
    if a.output.json {
        serde_json::to_writer_pretty(&mut out, &v).map_err(std::io::Error::other)?;
        writeln!(out)?;
        return Ok(0);
    }
    let signer = match &v.signer {
        bundle::SignerInfo::Certificate { subject, issuer } => {
            format!("{subject} (issuer {issuer})")
        }
        bundle::SignerInfo::Key { fingerprint } => format!("key {fingerprint}"),
    };
    writeln!(out, "verified: {}", a.bundle.display())?;
    writeln!(out, "signer:   {signer}")?;
    for e in &v.log_entries {
        writeln!(
            out,
            "log:      {} index {} ({})",
            e.log_id, e.log_index, e.kind
        )?;
    }
    for t in &v.timestamps {
        writeln!(out, "time:     {} ({})", t.time, t.source.as_str())?;
    }
    Ok(0)
}
