//! The `portcullis` command line: definitions (also used to generate man
//! pages and completions) and the commands, each a thin door onto the same
//! modules the shim uses.
//!
//! Exit codes scripts can rely on: 0 success (for `check`: the start would
//! be allowed), 1 a negative answer (denied, invalid policy, records left in
//! the spool), 2 usage error, 3 an operational error (registry, journal).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::cache::StateDir;
use crate::containerd;
use crate::gate::{self, Subject};
use crate::policy::{self, Policy, Severity};

mod reverify;

/// Exit code: the answer is no.
pub const EXIT_NO: u8 = 1;
/// Exit code: something failed before an answer could be given.
pub const EXIT_ERROR: u8 = 3;

/// Verify container images before containerd starts them.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide as the shim would for an image or container, without starting anything.
    Check(CheckArgs),
    /// Print the verified SLSA provenance cached for an image.
    Provenance(CheckArgs),
    /// Copy an image's signatures from its registry into the node's cache.
    Fetch(FetchArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Read verdicts back from the journal.
    Audit(AuditArgs),
    /// Write man pages for portcullis and every subcommand into a directory.
    Man {
        /// Output directory (created if missing).
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Manage verdict records that journald could not take.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Verify a Sigstore bundle for a file or digest, offline (sigstore-conformance client protocol).
    VerifyBundle(VerifyBundleArgs),
    /// Manage the node's Sigstore trust roots (`trusted_root.json`): TUF update, offline import, show.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Cache the signatures of every image containerd pulls, as it pulls them (runs until stopped).
    Sync(SyncArgs),
    /// Check this node's set-up (containerd, runtime, shim, policy, trust root, journald, state, sync); exits 1 if a check fails.
    Doctor(DoctorArgs),
    /// Record the gate's mode, policy digest and trust-root digests in the journal (run by portcullis-heartbeat.timer).
    Heartbeat(HeartbeatArgs),
    /// Write an audit evidence pack for a period; `evidence verify DIR` checks one offline, `evidence merge` combines nodes.
    Evidence(EvidenceArgs),
    /// Offline nodes: export a bundle file of images' signatures, or import one (or what `ctr images import` brought in), verifying every item.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Decide again for every running container under the policy and trust root in force; exits 1 if some would now be refused (stopped under revoked = "stop"), 3 on an error.
    Reverify(reverify::ReverifyArgs),
}

/// Where containerd is.
#[derive(Debug, Args)]
pub struct ContainerdArgs {
    /// containerd's gRPC socket.
    #[arg(
        long,
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub address: String,
    /// containerd namespace.
    #[arg(
        long,
        short = 'n',
        env = "CONTAINERD_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
}

/// `portcullis check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The image name as containerd knows it (`ctr images ls`), or NAME@sha256:… for a digest not yet pulled.
    #[arg(required_unless_present = "container")]
    pub image: Option<String>,
    /// Decide for an existing container instead, exactly as its start would be.
    #[arg(long, conflicts_with = "image")]
    pub container: Option<String>,
    // The containerd connection (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub containerd: ContainerdArgs,
    /// Policy file.
    #[arg(long, env = "PORTCULLIS_POLICY", default_value = policy::DEFAULT_POLICY_PATH)]
    pub policy: PathBuf,
    /// State directory.
    #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `portcullis fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The image (`registry/repo:tag` or `registry/repo@sha256:…`).
    pub image: String,
    /// Use HTTP, not HTTPS, to reach the registry (loopback test registries only).
    #[arg(long)]
    pub plain_http: bool,
    /// State directory.
    #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `portcullis policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file: every error and warning with its line and column.
    Check {
        /// The file.
        file: PathBuf,
        /// Print problems as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `portcullis audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only verdicts since this time (journalctl syntax: `-1h`, `today`, `2026-11-25 10:00`).
    #[arg(long, allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only verdicts until this time.
    #[arg(long, allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only this verdict.
    #[arg(long, value_parser = ["allow", "deny", "warn"])]
    pub verdict: Option<String>,
    /// Only this container.
    #[arg(long)]
    pub container: Option<String>,
    /// Read a journal directory instead of the system journal (a collector's `/var/log/journal/remote`).
    #[arg(long)]
    pub directory: Option<String>,
    /// Only records from this node (`_HOSTNAME`).
    #[arg(long)]
    pub node: Option<String>,
    /// A node whose newest heartbeat is older than this counts as stopped (3x the 5m heartbeat timer).
    #[arg(long, default_value = "15m")]
    pub stale_after: String,
    /// Print the per-node summary (verdicts, denials, heartbeat) instead of the verdicts.
    #[arg(long)]
    pub nodes: bool,
    /// Print JSON (one array).
    #[arg(long)]
    pub json: bool,
}

/// `portcullis journal …`.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Send spooled verdict records to journald, oldest first.
    Replay {
        /// State directory.
        #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `portcullis trust …`. A refused root (invalid file, not cached) exits 1;
/// a TUF update that fails or is refused (rollback, expiry, signatures,
/// network) exits 3. The cached root is never replaced by a refused one.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Refresh a trust root through TUF, verifying the chain (rollback-protected by trust/tuf/NAME/).
    Update {
        /// The root: public-good, staging, or an operator name ([a-z0-9-]); default: the root rules use when they name none.
        #[arg(long, default_value = crate::trust::DEFAULT)]
        name: crate::trust::RootName,
        /// A private TUF repository's URL (https://, or http:// on loopback only).
        #[arg(long, requires = "root", conflicts_with = "staging")]
        mirror: Option<String>,
        /// The private repository's TUF root.json, pinned by the operator.
        #[arg(long, requires = "mirror")]
        root: Option<PathBuf>,
        /// Use Sigstore's staging repository.
        #[arg(long)]
        staging: bool,
        /// State directory.
        #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a trust root from a trusted_root.json file (nodes without network).
    Import {
        /// The root to write (see `update --name`).
        #[arg(long, default_value = crate::trust::DEFAULT)]
        name: crate::trust::RootName,
        /// The trusted_root.json file.
        file: PathBuf,
        /// State directory.
        #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a cached root's certificate authorities, logs and timestamp authorities, with validity and age.
    Show {
        /// The root (see `update --name`).
        #[arg(long, default_value = crate::trust::DEFAULT)]
        name: crate::trust::RootName,
        /// State directory.
        #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Print the root's summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

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
    /// State directory.
    #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Print what was verified as JSON.
    #[arg(long)]
    pub json: bool,
    /// The artifact, or its digest (`sha256:` and 64 lowercase hex characters, when no such file exists).
    #[arg(value_name = "FILE_OR_DIGEST")]
    pub file_or_digest: PathBuf,
}

/// `portcullis sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// containerd's gRPC socket.
    #[arg(
        long,
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub address: String,
    /// Only images of this containerd namespace (default: every namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Use HTTP, not HTTPS, to reach registries (loopback test registries only).
    #[arg(long)]
    pub plain_http: bool,
    /// Attempts per image before the failure is recorded in the journal (1-20).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// State directory.
    #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// `portcullis doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// containerd's gRPC socket.
    #[arg(
        long,
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub address: String,
    /// containerd's configuration file (default: containerd's own default).
    #[arg(long)]
    pub containerd_config: Option<PathBuf>,
    /// Policy file.
    #[arg(long, env = "PORTCULLIS_POLICY", default_value = policy::DEFAULT_POLICY_PATH)]
    pub policy: PathBuf,
    /// State directory.
    #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Print the checks as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Errors the CLI reports (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A fetch failed.
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    /// Reading the journal failed.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The spool could not be replayed.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A trust root could not be updated or read.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// Output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// `portcullis sync` stopped.
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    /// An evidence pack could not be made, checked or merged.
    #[error(transparent)]
    Evidence(#[from] crate::evidence::EvidenceError),
    /// `portcullis doctor` could not run.
    #[error(transparent)]
    Doctor(#[from] crate::doctor::DoctorError),
    /// A bundle could not be exported or imported.
    #[error(transparent)]
    Offline(#[from] crate::offline::OfflineError),
    /// A precondition of the command failed; the message says which.
    #[error("{0}")]
    Usage(String),
}

/// Run a parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Check(a) => check(a),
        Command::Man { out_dir } => man(&out_dir),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "portcullis", &mut std::io::stdout());
            Ok(0)
        }
        Command::Provenance(a) => provenance(a),
        Command::Fetch(a) => fetch(a),
        Command::Policy(PolicyCommand::Check { file, json }) => policy_check(&file, json),
        Command::Heartbeat(a) => heartbeat(a),
        Command::Evidence(a) => evidence(a),
        Command::Audit(a) => audit(a),
        Command::Journal(JournalCommand::Replay { state_dir, json }) => replay(state_dir, json),
        Command::VerifyBundle(a) => verify_bundle(a),
        Command::Trust(t) => trust(t),
        Command::Sync(a) => sync(a),
        Command::Doctor(a) => doctor(a),
        Command::Bundle(b) => bundle(b),
        Command::Reverify(a) => reverify::reverify(a),
    }
}

fn sync(a: SyncArgs) -> Result<u8, CliError> {
    let opts = crate::sync::SyncOptions {
        address: a.address,
        namespace: a.namespace,
        fetch: crate::fetch::FetchOptions {
            plain_http: a.plain_http,
        },
        max_attempts: a.max_attempts,
        backoff: crate::sync::Backoff::default(),
    };
    let state = StateDir::new(a.state_dir);
    let mut log = |line: &str| eprintln!("portcullis-sync: {line}");
    crate::sync::run(&opts, &state, &crate::journal::Journald, &mut log)?;
    Ok(0)
}

fn doctor(a: DoctorArgs) -> Result<u8, CliError> {
    let report = crate::doctor::run(&crate::doctor::DoctorOptions {
        address: a.address,
        containerd_config: a.containerd_config,
        policy: a.policy,
        state_dir: a.state_dir,
        timeout: crate::containerd::lookup_timeout(),
    })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        for c in &report.checks {
            writeln!(out, "{:<8} {:<13} {}", c.status.as_str(), c.name, c.detail)?;
            if let Some(fix) = c
                .fix
                .as_ref()
                .filter(|_| c.status != crate::doctor::Status::Ok)
            {
                writeln!(out, "{:<8} {:<13} fix: {fix}", "", "")?;
            }
        }
        let failed = report
            .checks
            .iter()
            .filter(|c| c.status == crate::doctor::Status::Fail)
            .count();
        writeln!(out, "{failed} check(s) failed")?;
    }
    Ok(if report.ok { 0 } else { EXIT_NO })
}

fn man(out_dir: &std::path::Path) -> Result<u8, CliError> {
    fn write_all(
        cmd: &clap::Command,
        name: &str,
        dir: &std::path::Path,
        n: &mut usize,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .title(name.to_ascii_uppercase())
            .render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.1")), buf)?;
        *n += 1;
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            write_all(sub, &format!("{name}-{}", sub.get_name()), dir, n)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(out_dir)?;
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let mut n = 0;
    write_all(&cmd, "portcullis", out_dir, &mut n)?;
    eprintln!("portcullis: wrote {n} man pages to {}", out_dir.display());
    Ok(0)
}

fn check(a: CheckArgs) -> Result<u8, CliError> {
    // Verification parses registry bytes: only ever in the sandbox.
    crate::sandbox::require();
    let started = Instant::now();
    let policy = Policy::load(&a.policy);
    let state = StateDir::new(&a.state_dir);
    let lookup = lookup_target(&a);
    let subject = Subject {
        namespace: a.containerd.namespace.clone(),
        container_id: a.container.clone(),
    };
    let d = gate::decide(&policy, lookup, &state, &subject, started);
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &d).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        let image = d.image_ref.as_deref().unwrap_or("-");
        writeln!(out, "verdict:  {}", d.verdict.as_str())?;
        writeln!(out, "image:    {image}")?;
        writeln!(
            out,
            "digest:   {}",
            d.image_digest.as_deref().unwrap_or("-")
        )?;
        if let Some(p) = &d.platform_digest {
            writeln!(out, "platform: {p}")?;
        }
        writeln!(out, "rule:     {} (mode {})", d.rule, d.mode.as_str())?;
        writeln!(out, "signer:   {}", d.signer.as_deref().unwrap_or("-"))?;
        if let Some(p) = &d.provenance {
            writeln!(
                out,
                "provenance: builder {} source {}{} ({}), signed by {}",
                p.builder,
                p.source.as_deref().unwrap_or("-"),
                p.source_ref
                    .as_deref()
                    .map(|r| format!(" ref {r}"))
                    .unwrap_or_default(),
                p.predicate_type,
                p.signer
            )?;
        }
        writeln!(out, "reason:   {}", d.reason)?;
        writeln!(out, "shim:     {}", d.shim)?;
    }
    Ok(if d.allows() { 0 } else { EXIT_NO })
}

fn provenance(a: CheckArgs) -> Result<u8, CliError> {
    let policy = Policy::load(&a.policy).map_err(|e| CliError::Usage(e.to_string()))?;
    let state = StateDir::new(&a.state_dir);
    let target = lookup_target(&a).map_err(|e| CliError::Usage(e.to_string()))?;
    let image = crate::reference::ImageRef::parse(&target.name)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let policy::Selection::Rule(rule) = policy.select(&image) else {
        return Err(CliError::Usage(format!(
            "no rule of {} applies to {image}: nothing says who may sign its provenance",
            a.policy.display()
        )));
    };
    // The same terms and check as `bundle import` (verify::rule): keyless
    // identities are checked as the gate checks them, not refused.
    let (signers, req) =
        crate::verify::rule::provenance_terms(&rule.signers, rule.provenance.as_ref())
            .map_err(CliError::Usage)?;
    let root = crate::verify::rule::LazyTrustRoot::new(crate::gate::trust_root_path(
        &state,
        rule.trust_root.as_deref(),
    ));
    let digests = target.digests();
    let entries = crate::verify::read_entries(&state, &digests)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    match crate::verify::rule::check_provenance(
        &entries,
        &digests,
        &signers,
        &req,
        &root,
        jiff::Timestamp::now(),
    ) {
        Ok(v) => {
            if a.json {
                serde_json::to_writer_pretty(&mut out, &v).map_err(std::io::Error::other)?;
            } else {
                let p = &v.provenance;
                writeln!(out, "image:      {image}")?;
                writeln!(out, "rule:       {}", rule.name)?;
                writeln!(out, "signer:     {}", v.signer)?;
                writeln!(out, "predicate:  {}", p.predicate_type)?;
                writeln!(out, "builder:    {}", p.builder_id)?;
                writeln!(out, "build type: {}", p.build_type)?;
                writeln!(
                    out,
                    "source:     {}",
                    p.source_uri.as_deref().unwrap_or("-")
                )?;
                writeln!(
                    out,
                    "ref:        {}",
                    p.source_ref.as_deref().unwrap_or("-")
                )?;
                writeln!(out, "statement:  {}", v.statement_digest)?;
                serde_json::to_writer_pretty(&mut out, &v.statement)
                    .map_err(std::io::Error::other)?;
            }
            writeln!(out)?;
            Ok(0)
        }
        Err(crate::attestation::ProvenanceRejection::NothingCached) => {
            eprintln!(
                "portcullis: no provenance attestation cached for {}; run `portcullis fetch {}`",
                digests.join(" or "),
                image.pinned(&target.target_digest)
            );
            Ok(EXIT_NO)
        }
        Err(crate::attestation::ProvenanceRejection::NoneAcceptable { reason, .. }) => {
            eprintln!("portcullis: {reason}");
            Ok(EXIT_NO)
        }
    }
}

/// What `check` and `provenance` look at: the `--container`'s image, or the
/// image named on the command line.
fn lookup_target(a: &CheckArgs) -> Result<containerd::ImageTarget, containerd::LookupError> {
    let timeout = crate::containerd::lookup_timeout();
    match (&a.container, &a.image) {
        (Some(id), _) => containerd::lookup_container(
            &a.containerd.address,
            &a.containerd.namespace,
            id,
            timeout,
        ),
        (None, Some(image)) => lookup_image(&a.containerd, image, timeout),
        (None, None) => unreachable!("clap requires one"),
    }
}

/// Find an image in containerd under the name given or its normalized form;
/// a pinned digest not in containerd is checked as is.
fn lookup_image(
    c: &ContainerdArgs,
    image: &str,
    timeout: std::time::Duration,
) -> Result<containerd::ImageTarget, containerd::LookupError> {
    let first = containerd::lookup_image(&c.address, &c.namespace, image, timeout);
    let normalized = crate::reference::ImageRef::parse(image).ok();
    match first {
        Err(containerd::LookupError::Api { .. }) => {
            if let Some(r) = &normalized {
                if r.normalized() != image {
                    if let Ok(t) =
                        containerd::lookup_image(&c.address, &c.namespace, r.normalized(), timeout)
                    {
                        return Ok(t);
                    }
                }
                if let Some(d) = r.digest() {
                    return Ok(containerd::ImageTarget {
                        name: image.to_string(),
                        target_digest: d.to_string(),
                        target_media_type: String::new(),
                        platform_digest: None,
                        platform_ambiguity: None,
                        snapshot_key: None,
                        snapshotter: None,
                        chain_id: None,
                        snapshot_parent: None,
                    });
                }
            }
            first
        }
        other => other,
    }
}

fn fetch(a: FetchArgs) -> Result<u8, CliError> {
    let state = StateDir::new(&a.state_dir);
    let json = a.json;
    let mut progress = |line: &str| {
        if !json {
            eprintln!("portcullis: {line}");
        }
    };
    let report = crate::fetch::fetch(
        &a.image,
        &state,
        &crate::fetch::FetchOptions {
            plain_http: a.plain_http,
        },
        &mut progress,
    )?;
    let total: usize = report
        .subjects
        .iter()
        .map(|s| s.signatures + s.attestations + s.bundles)
        .sum();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}@{}: {total} signature(s) cached",
            report.image, report.digest
        )?;
    }
    Ok(if total == 0 { EXIT_NO } else { 0 })
}

fn policy_check(file: &PathBuf, json: bool) -> Result<u8, CliError> {
    let text = std::fs::read(file).map_err(|source| CliError::Read {
        path: file.clone(),
        source,
    })?;
    let problems = match String::from_utf8(text) {
        Ok(t) => {
            let (policy, mut problems) = policy::check(&t, file);
            if let Some(p) = &policy {
                // Keys must exist and parse, or every start under the rule fails.
                for r in &p.rules {
                    let prov = r.provenance.iter().flat_map(|p| p.signers.iter());
                    for s in r.signers.iter().chain(prov) {
                        if !matches!(s, policy::Signer::Key { .. }) {
                            continue;
                        }
                        if let Err(e) = crate::verify::LoadedSigner::load(s) {
                            problems.push(policy::Problem {
                                line: r.line,
                                column: 1,
                                message: format!("rule \"{}\": {e}", r.name),
                                severity: Severity::Error,
                            });
                        }
                    }
                }
            }
            problems
        }
        Err(_) => vec![policy::Problem {
            line: 1,
            column: 1,
            message: "the file is not UTF-8 text".into(),
            severity: Severity::Error,
        }],
    };
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "file": file,
            "valid": errors == 0,
            "problems": problems,
        });
        serde_json::to_writer_pretty(&mut out, &v).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        for p in &problems {
            writeln!(out, "{}:{p}", file.display())?;
        }
        if errors == 0 {
            writeln!(
                out,
                "{}: valid ({} warning(s))",
                file.display(),
                problems.len()
            )?;
        } else {
            writeln!(out, "{}: {errors} error(s)", file.display())?;
        }
    }
    Ok(if errors == 0 { 0 } else { EXIT_NO })
}

fn audit(a: AuditArgs) -> Result<u8, CliError> {
    let q = crate::audit::Query {
        since: a.since,
        until: a.until,
        verdict: a.verdict,
        container: a.container,
        directory: a.directory,
        node: a.node,
    };
    let entries = crate::audit::query(&q)?;
    let stale = policy::parse_duration(&a.stale_after).map_err(CliError::Usage)?;
    let now = jiff::Timestamp::now().as_microsecond();
    let stale_us = i64::try_from(stale.as_micros()).unwrap_or(i64::MAX);
    let nodes = crate::audit::fleet(&entries, &crate::audit::heartbeats(&q)?, now, stale_us);
    let mut out = std::io::stdout().lock();
    match (a.json, a.nodes) {
        (true, false) => serde_json::to_writer_pretty(&mut out, &entries),
        (true, true) => serde_json::to_writer_pretty(&mut out, &nodes),
        (false, false) => {
            crate::audit::write_table(&mut out, &entries)?;
            return Ok(crate::audit::write_nodes(&mut out, &nodes, &a.stale_after).map(|_| 0)?);
        }
        (false, true) => {
            return Ok(crate::audit::write_nodes(&mut out, &nodes, &a.stale_after).map(|_| 0)?)
        }
    }
    .map_err(std::io::Error::other)?;
    writeln!(out)?;
    Ok(0)
}

fn replay(state_dir: PathBuf, json: bool) -> Result<u8, CliError> {
    let state = StateDir::new(state_dir);
    let spool = crate::journal::Spool::new(state.spool_dir());
    let (sent, remaining) = spool.replay(&crate::journal::Journald)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"sent": sent, "remaining": remaining})
        )?;
    } else {
        writeln!(
            out,
            "{sent} record(s) sent to journald, {remaining} still spooled"
        )?;
    }
    Ok(if remaining == 0 { 0 } else { EXIT_NO })
}

fn verify_bundle(a: VerifyBundleArgs) -> Result<u8, CliError> {
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
        None => TrustRoot::load_cached(&a.state_dir),
    }
    .and_then(|root| {
        let json = bundle::read_bundle_file(&a.bundle)?;
        bundle::verify_bundle(&json, artifact, &expectation, &root)
    });
    let v = match verified {
        Ok(v) => v,
        Err(e) => {
            eprintln!("portcullis: not verified: {e}");
            return Ok(EXIT_NO);
        }
    };
    let mut out = std::io::stdout().lock();
    if a.json {
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

fn trust(command: TrustCommand) -> Result<u8, CliError> {
    use crate::trust::{self, Source};
    let (result, json) = match command {
        TrustCommand::Update {
            name,
            mirror,
            root,
            staging,
            state_dir,
            json,
        } => {
            let source = match (mirror, root) {
                (Some(url), Some(root)) => Source::Mirror { url, root },
                _ if staging => Source::Staging,
                _ => Source::for_name(&name)?,
            };
            let mut progress = |line: &str| {
                if !json {
                    eprintln!("portcullis: {line}");
                }
            };
            let state = StateDir::new(state_dir);
            let r = trust::update(&state, &name, &source, &mut progress);
            (r.map(TrustOutput::Installed), json)
        }
        TrustCommand::Import {
            name,
            file,
            state_dir,
            json,
        } => (
            trust::import(&StateDir::new(state_dir), &name, &file).map(TrustOutput::Installed),
            json,
        ),
        TrustCommand::Show {
            name,
            state_dir,
            json,
        } => (
            trust::show(&StateDir::new(state_dir), &name).map(TrustOutput::Summary),
            json,
        ),
    };
    let output = match result {
        Ok(o) => o,
        Err(e) if e.is_refusal() => {
            eprintln!("portcullis: {e}");
            return Ok(EXIT_NO);
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    if json {
        match &output {
            TrustOutput::Installed(i) => serde_json::to_writer_pretty(&mut out, i),
            TrustOutput::Summary(s) => serde_json::to_writer_pretty(&mut out, s),
        }
        .map_err(std::io::Error::other)?;
        writeln!(out)?;
        return Ok(0);
    }
    match output {
        TrustOutput::Installed(i) => {
            let c = i.counts;
            writeln!(
                out,
                "trust root {}: {} {} from {}",
                i.name,
                i.path.display(),
                if i.changed { "written" } else { "unchanged" },
                i.source
            )?;
            writeln!(
                out,
                "{} certificate authorities, {} transparency logs, {} CT logs, {} timestamp authorities; {}",
                c.certificate_authorities, c.tlogs, c.ctlogs, c.timestamp_authorities, i.sha256
            )?;
        }
        TrustOutput::Summary(s) => {
            let time = |t: Option<jiff::Timestamp>| t.map_or("-".to_string(), |t| t.to_string());
            writeln!(out, "trust root: {} ({})", s.name, s.path.display())?;
            writeln!(out, "media type: {}", s.media_type)?;
            writeln!(out, "sha256:     {}", s.sha256)?;
            writeln!(
                out,
                "written:    {} ({}h{:02}m ago)",
                time(s.written_at),
                s.age_seconds / 3600,
                s.age_seconds % 3600 / 60
            )?;
            let groups = [
                ("certificate authorities", &s.certificate_authorities),
                ("timestamp authorities", &s.timestamp_authorities),
            ];
            for (title, list) in groups {
                writeln!(out, "{title} ({}):", list.len())?;
                for a in list {
                    writeln!(
                        out,
                        "  {:<8} {}  {}  {} .. {}",
                        a.status.as_str(),
                        a.subject,
                        a.uri.as_deref().unwrap_or("-"),
                        time(a.valid_from),
                        time(a.valid_until)
                    )?;
                }
            }
            for (title, list) in [("transparency logs", &s.tlogs), ("CT logs", &s.ctlogs)] {
                writeln!(out, "{title} ({}):", list.len())?;
                for l in list {
                    writeln!(
                        out,
                        "  {:<8} {}  {}  {} .. {}",
                        l.status.as_str(),
                        l.base_url,
                        l.log_id,
                        time(l.valid_from),
                        time(l.valid_until)
                    )?;
                }
            }
        }
    }
    Ok(0)
}

enum TrustOutput {
    Installed(crate::trust::Installed),
    Summary(crate::trust::Summary),
}

/// `portcullis bundle …` (see [`crate::offline`] for the file format).
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write everything this node has to verify IMAGEs (signatures, attestations, certificates, the index; optionally the trust root) to one file.
    Export {
        /// Images as containerd knows them (`ctr images ls`), or NAME@sha256:… for a digest not pulled.
        #[arg(required = true)]
        images: Vec<String>,
        /// The bundle file to write (replaced atomically).
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Also carry the trust root(s) the images' rules use (the importer must accept it by digest).
        #[arg(long)]
        with_trust_root: bool,
        // The containerd connection (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        containerd: ContainerdArgs,
        /// Policy file (selects the rules whose trust roots --with-trust-root carries).
        #[arg(long, env = "PORTCULLIS_POLICY", default_value = policy::DEFAULT_POLICY_PATH)]
        policy: PathBuf,
        /// State directory.
        #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load a bundle file (or, with --from-containerd, signature images in containerd's content store) into the cache; every item is verified against the policy; exits 1 if any item was refused.
    Import {
        /// The bundle file.
        #[arg(required_unless_present = "from_containerd")]
        file: Option<PathBuf>,
        /// Instead of a file: take IMAGEs' signatures from containerd's content store, as `ctr images import --no-unpack --base-name REPO` of an OCI layout holding the `sha256-<hex>.sig`/`.att` tags put them there (no network).
        #[arg(long, num_args = 1.., value_name = "IMAGE", conflicts_with = "file")]
        from_containerd: Vec<String>,
        /// Install the bundled trust root whose digest this is (sha256:…, as `bundle export` printed it); without it a bundled root is never installed.
        #[arg(long, value_name = "SHA256")]
        accept_trust_root: Option<String>,
        // The containerd connection (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        containerd: ContainerdArgs,
        /// Policy file (its rules' signers verify every item).
        #[arg(long, env = "PORTCULLIS_POLICY", default_value = policy::DEFAULT_POLICY_PATH)]
        policy: PathBuf,
        /// State directory.
        #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn bundle(command: BundleCommand) -> Result<u8, CliError> {
    use crate::offline::{self, OfflineError};
    let mut out = std::io::stdout().lock();
    match command {
        BundleCommand::Export {
            images,
            output,
            with_trust_root,
            containerd,
            policy,
            state_dir,
            json,
        } => {
            let state = StateDir::new(state_dir);
            let timeout = crate::containerd::lookup_timeout();
            let mut progress = |line: &str| eprintln!("portcullis: {line}");
            let mut list = Vec::new();
            for image in &images {
                let target = lookup_image(&containerd, image, timeout).map_err(|e| {
                    CliError::Usage(format!("cannot resolve {image} through containerd: {e}"))
                })?;
                let index = if target.platform_digest.is_some() {
                    Some(
                        containerd::read_content(
                            &containerd.address,
                            &containerd.namespace,
                            std::slice::from_ref(&target.target_digest),
                            timeout,
                        )
                        .map_err(OfflineError::from)?
                        .remove(0),
                    )
                } else {
                    None
                };
                list.push(offline::ExportImage { target, index });
            }
            let roots = if with_trust_root {
                let p = Policy::load(&policy).map_err(|e| {
                    CliError::Usage(format!("--with-trust-root needs the policy: {e}"))
                })?;
                offline::trust_roots_for(&p, &list, &state, &mut progress)
            } else {
                Vec::new()
            };
            let contents = match offline::collect(&list, &state, &roots, &mut progress) {
                Ok(c) => c,
                Err(e @ OfflineError::NothingCached { .. }) => {
                    eprintln!("portcullis: {e}");
                    return Ok(EXIT_NO);
                }
                Err(e) => return Err(e.into()),
            };
            let report = offline::write(&contents, &output)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{}: {} image(s), {} item(s), {} bytes, {}",
                    report.file,
                    report.images.len(),
                    report.items.len(),
                    report.bytes,
                    report.sha256
                )?;
                for i in report
                    .items
                    .iter()
                    .filter(|i| i.kind == offline::item_kind::TRUST_ROOT)
                {
                    writeln!(
                        out,
                        "trust root \"{}\": {} (the importer passes --accept-trust-root {})",
                        i.name.as_deref().unwrap_or(""),
                        i.sha256,
                        i.sha256
                    )?;
                }
            }
            Ok(0)
        }
        BundleCommand::Import {
            file,
            from_containerd,
            accept_trust_root,
            containerd,
            policy,
            state_dir,
            json,
        } => {
            // Verification parses bundle bytes: only ever in the sandbox.
            crate::sandbox::require();
            let state = StateDir::new(state_dir);
            let policy = Policy::load(&policy).map_err(|e| {
                CliError::Usage(format!("cannot verify a bundle without the policy: {e}"))
            })?;
            let opts = offline::ImportOptions { accept_trust_root };
            let mut progress = |line: &str| {
                if !json {
                    eprintln!("portcullis: {line}");
                }
            };
            let result = match &file {
                Some(f) => offline::import_file(f, &state, &policy, &opts, &mut progress),
                None => offline::from_containerd(
                    &containerd.address,
                    &containerd.namespace,
                    &from_containerd,
                    crate::containerd::lookup_timeout(),
                    &mut progress,
                )
                .and_then(|c| offline::import(&c, &state, &policy, &opts, &mut progress)),
            };
            let report = match result {
                Ok(r) => r,
                Err(e @ OfflineError::BadBundle { .. }) => {
                    eprintln!("portcullis: {e}");
                    return Ok(EXIT_NO);
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
                writeln!(out)?;
            } else {
                for i in &report.items {
                    for r in &i.refusals {
                        writeln!(out, "refused  {r}")?;
                    }
                    if let Some(n) = &i.note {
                        if i.status == offline::Status::Skipped {
                            writeln!(out, "skipped  {}: {n}", i.path)?;
                        }
                    }
                }
                writeln!(
                    out,
                    "{}: {} stored, {} unchanged, {} refused, {} skipped",
                    report.source, report.stored, report.unchanged, report.refused, report.skipped
                )?;
            }
            Ok(if report.all_accepted() { 0 } else { EXIT_NO })
        }
    }
}

/// `portcullis heartbeat`.
#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    /// Policy file.
    #[arg(long, env = "PORTCULLIS_POLICY", default_value = policy::DEFAULT_POLICY_PATH)]
    pub policy: PathBuf,
    /// State directory (policies and trust roots are archived under it).
    #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Print the recorded state as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `portcullis evidence`. Exit 0: the pack is written and every audit step
/// passes; 1: written, some step fails (or `verify` found a problem); 3: no pack.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvidenceArgs {
    /// verify or merge (without one: write a pack).
    #[command(subcommand)]
    pub command: Option<EvidenceCommand>,
    /// The period: this long until now (`24h`, `7d`, `90m`).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub since: Option<String>,
    /// The period's start: RFC 3339 (`2026-11-25T10:00:00Z`) or `@<unix seconds>`.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// The period's end (RFC 3339, `@<unix seconds>` or `now`).
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Output directory for the pack (created; must be new or empty).
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
    /// containerd's gRPC socket (its container records are compared with the journal).
    #[arg(
        long,
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub address: String,
    /// Policy file.
    #[arg(long, env = "PORTCULLIS_POLICY", default_value = policy::DEFAULT_POLICY_PATH)]
    pub policy: PathBuf,
    /// State directory.
    #[arg(long, env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Read a journal directory instead of the system journal.
    #[arg(long)]
    pub directory: Option<String>,
    /// The heartbeat timer's interval; a period longer than twice this without a heartbeat counts as enforcement not shown.
    #[arg(long, default_value = "5m")]
    pub heartbeat_interval: String,
    /// The node's name in the pack (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// Only records of gates that use the --policy file, and task starts observed on --address (for a node running several gates, as test machines do).
    #[arg(long)]
    pub this_policy_only: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `portcullis evidence verify|merge`.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Check a pack offline: every file against MANIFEST.sha256, every signature and attestation re-verified from the pack alone.
    Verify {
        /// The pack directory.
        dir: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Combine node packs (each verified first) into one fleet pack and report.
    Merge {
        /// The node packs.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output directory (created; must be new or empty).
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn heartbeat(a: HeartbeatArgs) -> Result<u8, CliError> {
    let state = StateDir::new(&a.state_dir);
    let gs = crate::heartbeat::GateState::observe(&a.policy, &state);
    let archived = crate::heartbeat::archive(&gs, &state);
    let delivery = crate::journal::record(
        &crate::journal::Journald,
        &crate::journal::Spool::new(state.spool_dir()),
        &gs.record(),
    )?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &gs).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", gs.record().message)?;
        writeln!(
            out,
            "rules: {}",
            if gs.rules.is_empty() {
                "none".into()
            } else {
                gs.rule_modes()
            }
        )?;
        for t in &gs.trust_roots {
            writeln!(
                out,
                "trust root: {} {}",
                t.path,
                t.digest.as_deref().unwrap_or("(unreadable)")
            )?;
        }
        if delivery == crate::journal::Delivery::Spooled {
            writeln!(
                out,
                "journald unavailable: the record is spooled for `portcullis journal replay`"
            )?;
        }
    }
    if let Err(e) = archived {
        eprintln!("portcullis: {e}");
        return Ok(EXIT_ERROR);
    }
    Ok(if gs.policy_error.is_some() {
        EXIT_NO
    } else {
        0
    })
}

fn evidence(a: EvidenceArgs) -> Result<u8, CliError> {
    use crate::evidence;
    let mut out = std::io::stdout().lock();
    match a.command {
        Some(EvidenceCommand::Verify { dir, json }) => {
            let r = evidence::verify(&dir)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &r).map_err(std::io::Error::other)?;
                writeln!(out)?;
            } else {
                for p in &r.problems {
                    writeln!(out, "problem: {p}")?;
                }
                writeln!(
                    out,
                    "{}: {} ({} file(s) match the manifest, {} image(s) re-verified offline, {} node(s))",
                    dir.display(),
                    if r.ok { "intact" } else { "NOT intact" },
                    r.files_checked,
                    r.images_reverified,
                    r.nodes
                )?;
            }
            Ok(if r.ok { 0 } else { EXIT_NO })
        }
        Some(EvidenceCommand::Merge {
            dirs,
            out: to,
            json,
        }) => {
            let f = evidence::merge(&dirs, &to)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &f).map_err(std::io::Error::other)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "fleet pack {}: {} node(s), result {}",
                    to.display(),
                    f.nodes.len(),
                    f.result
                )?;
                for s in &f.steps {
                    writeln!(out, "  {:<5} {}", s.status, s.title)?;
                }
            }
            Ok(if f.result == "pass" { 0 } else { EXIT_NO })
        }
        None => {
            let Some(dir) = a.out else {
                return Err(CliError::Usage(
                    "name the pack's directory with -o DIR".into(),
                ));
            };
            let period = match (&a.since, &a.from, &a.to) {
                (_, Some(f), Some(t)) => evidence::Period {
                    from: evidence::parse_time(f).map_err(CliError::Usage)?,
                    to: evidence::parse_time(t).map_err(CliError::Usage)?,
                },
                (s, _, _) => {
                    let d = policy::parse_duration(s.as_deref().unwrap_or("24h"))
                        .map_err(CliError::Usage)?;
                    evidence::Period::since(d).map_err(CliError::Usage)?
                }
            };
            let interval =
                policy::parse_duration(&a.heartbeat_interval).map_err(CliError::Usage)?;
            let p = evidence::generate(&evidence::GenerateOptions {
                period,
                out: dir.clone(),
                state: StateDir::new(&a.state_dir),
                policy: a.policy,
                address: a.address,
                journal_directory: a.directory,
                heartbeat_interval: interval,
                node: a.node.unwrap_or_else(evidence::hostname),
                this_policy_only: a.this_policy_only,
            })?;
            if a.json {
                serde_json::to_writer_pretty(&mut out, &p.summary)
                    .map_err(std::io::Error::other)?;
                writeln!(out)?;
            } else {
                let s = &p.summary;
                writeln!(
                    out,
                    "evidence pack {} for {} .. {}: {} image(s), {} denial(s), {} warn/audit allow(s), {} exemption(s), {} gap(s), {} inactive period(s); result {}",
                    dir.display(),
                    p.period.from,
                    p.period.to,
                    s.images_started,
                    s.denials,
                    s.unverified_allows,
                    s.exemptions,
                    s.gaps,
                    s.inactive_periods,
                    s.result
                )?;
                for st in &p.steps {
                    writeln!(out, "  {:<5} {}: {}", st.status, st.title, st.detail)?;
                }
                writeln!(
                    out,
                    "open {}/report.html; check the pack with `portcullis evidence verify {}`",
                    dir.display(),
                    dir.display()
                )?;
            }
            Ok(if p.summary.result == "pass" {
                0
            } else {
                EXIT_NO
            })
        }
    }
}
