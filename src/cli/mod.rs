//! The `portcullis` command line: definitions (also used to generate man
//! pages and completions) and the commands, each a thin door onto the same
//! modules the shim uses. One file per command; the arguments several
//! commands share ([`args`]) are defined once and flattened into each.
//!
//! Exit codes scripts can rely on: 0 success (for `check`: the start would
//! be allowed), 1 a negative answer (denied, invalid policy, records left in
//! the spool), 2 usage error, 3 an operational error (registry, journal);
//! `policy pull` adds 4: the registry is unreachable, the last good policy stays.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod args;
pub mod audit;
pub mod bundle;
pub mod check;
pub mod doctor;
pub mod error;
pub mod evidence;
pub mod fetch;
pub mod heartbeat;
pub mod journal;
pub mod man;
pub mod policy;
pub mod policy_dist;
pub mod provenance;
pub mod reverify;
pub mod sync;
pub mod trust;
pub mod verify_bundle;

pub use error::{CliError, EXIT_ERROR, EXIT_NO};

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
    Check(check::CheckArgs),
    /// Print the verified SLSA provenance cached for an image.
    Provenance(check::CheckArgs),
    /// Copy an image's signatures from its registry into the node's cache.
    Fetch(fetch::FetchArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Read verdicts back from the journal.
    Audit(audit::AuditArgs),
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
    Journal(journal::JournalCommand),
    /// Verify a Sigstore bundle for a file or digest, offline (sigstore-conformance client protocol).
    VerifyBundle(verify_bundle::VerifyBundleArgs),
    /// Manage the node's Sigstore trust roots (`trusted_root.json`): TUF update, offline import, show.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Cache the signatures of every image containerd pulls, as it pulls them (runs until stopped).
    Sync(sync::SyncArgs),
    /// Check this node's set-up (containerd, runtime, shim, policy, trust root, journald, state, sync); exits 1 if a check fails.
    Doctor(doctor::DoctorArgs),
    /// Record the gate's mode, policy digest and trust-root digests in the journal (run by portcullis-heartbeat.timer).
    Heartbeat(heartbeat::HeartbeatArgs),
    /// Write an audit evidence pack for a period; `evidence verify DIR` checks one offline, `evidence merge` combines nodes.
    Evidence(evidence::EvidenceArgs),
    /// Offline nodes: export a bundle file of images' signatures, or import one (or what `ctr images import` brought in), verifying every item.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Decide again for every running container under the policy and trust root in force; exits 1 if some would now be refused (stopped under revoked = "stop"), 3 on an error.
    Reverify(reverify::ReverifyArgs),
}

/// Run a parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Check(a) => check::run(a),
        Command::Man { out_dir } => man::man(&out_dir, <Cli as clap::CommandFactory>::command()),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "portcullis", &mut std::io::stdout());
            Ok(0)
        }
        Command::Provenance(a) => provenance::run(a),
        Command::Fetch(a) => fetch::run(a),
        Command::Policy(p) => policy::run(p),
        Command::Heartbeat(a) => heartbeat::run(a),
        Command::Evidence(a) => evidence::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Journal(journal::JournalCommand::Replay { state, output }) => {
            journal::replay(state.dir, output.json)
        }
        Command::VerifyBundle(a) => verify_bundle::run(a),
        Command::Trust(t) => trust::run(t),
        Command::Sync(a) => sync::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Bundle(b) => bundle::run(b),
        Command::Reverify(a) => reverify::run(a),
    }
}
