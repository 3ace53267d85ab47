//! `portcullis policy publish` and `portcullis policy pull`: thin doors onto
//! [`crate::ops::policy_dist`].

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::cache::StateDir;
use crate::ops::policy_dist::{publish, pull, Source, DEFAULT_SOURCE};

use super::args::{JsonArg, StateDirArg};
use super::error::CliError;

/// `portcullis policy publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The policy file; it and every file it refers to (keys, CA bundles, trust roots) are packed.
    pub policy: PathBuf,
    /// Push to this reference (REGISTRY/REPO:TAG).
    #[arg(long = "ref", value_name = "REF")]
    pub reference: Option<String>,
    /// The serial: nodes refuse a serial lower than the one they have, and the same serial with other contents.
    #[arg(long)]
    pub serial: u64,
    /// How long nodes accept it (e.g. 30d, 12h); past it they refuse it.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub expires: std::time::Duration,
    /// Sign with this unencrypted PKCS#8 PEM ECDSA P-256 private key (cosign's .sig format).
    #[arg(long, value_name = "KEY.pem", required_unless_present = "no_sign")]
    pub key: Option<PathBuf>,
    /// Do not sign; sign the printed digest with `cosign sign --key KEY REF@DIGEST` (encrypted or keyless signing).
    #[arg(long, conflicts_with = "key")]
    pub no_sign: bool,
    /// Also write the artifact and its signature as an OCI image layout tar (air-gapped sites: `policy pull --from-file`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Use HTTP, not HTTPS, to reach the registry (loopback test registries only).
    #[arg(long)]
    pub plain_http: bool,
    // The state directory (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub state: StateDirArg,
    // `--json` (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub output: JsonArg,
}

/// The long help of `policy pull` (its man page's description).
pub(super) const PULL_ABOUT: &str = "Fetch the signed policy artifact the source file names, verify its \
signature against the source file's signer (the check images get), refuse a rollback, the same serial \
with other contents, an expired or a tampered artifact, and install it atomically under \
STATE_DIR/policy/: releases/<serial>-<digest>/, swapped in by renaming the `current` symlink. Point \
the gate at STATE_DIR/policy/current/policy.toml (e.g. a symlink from /etc/portcullis/policy.toml).

The source file (TOML):
  reference = \"REGISTRY/REPO:TAG\"
  keep = 5   # releases kept
  [signer]
  key = \"/etc/portcullis/policy-publisher.pub\"
  # or a keyless identity: issuer = \"...\", subject = \"...\", trust_root = \"public-good\"";

/// `portcullis policy pull`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 installed, or already in force; 1 refused (rollback, same serial \
with other contents, expired, unsigned or wrong signer, tampered, invalid): the policy in force is \
unchanged; 3 could not run (source file, state directory, signer key); 4 registry unreachable: \
the last good policy stays in force."
)]
pub struct PullArgs {
    /// The source file: the artifact's reference and the signer it must be signed by.
    #[arg(long, value_name = "FILE", env = "PORTCULLIS_POLICY_SOURCE", default_value = DEFAULT_SOURCE)]
    pub source: PathBuf,
    /// Read the artifact from an OCI image layout tar (`policy publish --out`) instead of the registry.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    // The state directory (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub state: StateDirArg,
    // `--json` (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub output: JsonArg,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::policy::parse_duration(s)
}

pub(super) fn run_publish(a: PublishArgs) -> Result<u8, CliError> {
    let report = publish::publish(&publish::PublishOptions {
        policy: a.policy,
        reference: a.reference,
        serial: a.serial,
        expires_in: a.expires,
        key: a.key,
        out: a.out,
        plain_http: a.plain_http,
        state: StateDir::new(&a.state.dir),
    })
    .map_err(|e| CliError::Failed(format!("policy publish: {e}")))?;
    let mut out = std::io::stdout().lock();
    if a.output.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
        return Ok(0);
    }
    let m = &report.metadata;
    let target = match (&report.reference, &report.out) {
        (Some(r), Some(f)) => format!("{r} and {}", f.display()),
        (Some(r), None) => r.clone(),
        (None, Some(f)) => f.display().to_string(),
        (None, None) => String::new(),
    };
    writeln!(
        out,
        "published policy serial {} ({} file(s) packed) to {target}: {}, expires {}",
        m.serial,
        report.files.len(),
        report.digest,
        m.expires
    )?;
    match (&report.signed_by, &report.reference) {
        (Some(k), _) => writeln!(out, "signed with key {k} ({})", report.signature_tag)?,
        (None, Some(r)) => writeln!(
            out,
            "NOT signed: nodes refuse it until you run `cosign sign --key KEY {}@{}`",
            r.rsplit_once(':').map(|(a, _)| a).unwrap_or(r),
            report.digest
        )?,
        (None, None) => writeln!(out, "NOT signed: nodes refuse it")?,
    }
    Ok(0)
}

pub(super) fn run_pull(a: PullArgs) -> Result<u8, CliError> {
    let (result, journal_note) = match Source::load(&a.source) {
        Ok(source) => pull_and_record(&source, a.from_file, StateDir::new(&a.state.dir)),
        // Reported as the pull's other failures are (exit 3); without a
        // source there is nothing a journal record could name.
        Err(e) => (Err(pull::PullError::Failed(e.to_string())), None),
    };
    let code = match &result {
        Ok(_) => pull::exit::OK,
        Err(e) => e.exit_code(),
    };
    let mut out = std::io::stdout().lock();
    if a.output.json {
        let v = match &result {
            Ok(r) => serde_json::json!({"ok": true, "exit": code, "report": r}),
            Err(e) => serde_json::json!({
                "ok": false,
                "exit": code,
                "refusal": match e { pull::PullError::Refused { kind, .. } => Some(kind.as_str()), _ => None },
                "error": e.to_string(),
            }),
        };
        serde_json::to_writer_pretty(&mut out, &v).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        match &result {
            Ok(r) => writeln!(out, "{}", pull::installed_line(r))?,
            Err(e) => eprintln!("portcullis: policy pull: {e}"),
        }
    }
    if let Some(n) = journal_note {
        eprintln!("{n}");
    }
    Ok(code)
}

/// Pull under `source` and record the outcome in the journal; the second
/// value is the line to print when the record could not be written.
fn pull_and_record(
    source: &Source,
    from_file: Option<PathBuf>,
    state: StateDir,
) -> (Result<pull::PullReport, pull::PullError>, Option<String>) {
    let result = pull::pull(&pull::PullOptions {
        source: source.clone(),
        from_file,
        state: state.clone(),
        now: jiff::Timestamp::now(),
    });
    let journal_note = pull::record(source, &result).and_then(|rec| {
        crate::journal::record(
            &crate::journal::DeadlineJournald::from_env(),
            &crate::journal::Spool::new(state.spool_dir()),
            &rec,
        )
        .err()
        .map(|e| format!("portcullis: policy pull: not recorded in the journal: {e}"))
    });
    (result, journal_note)
}
