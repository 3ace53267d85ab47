//! The `portcullis` command line: definitions (also used to generate man
//! pages and completions) and the commands, each a thin door onto the same
//! modules the shim uses. One file per command; the arguments several
//! commands share ([`args`]) are defined once and flattened into each.
//!
//! Exit codes scripts can rely on: 0 success (for `check`: the start would
//! be allowed), 1 a negative answer (denied, invalid policy, records left in
//! the spool), 2 usage error, 3 an operational error (registry, journal);
//! `policy pull` adds 4: the registry is unreachable, the last good policy stays.
//!
//! A command that ends in an error, or in a negative answer with no report
//! of its own, says so in one line on stderr (`portcullis: error: …`, or
//! `portcullis: …` for a negative answer); under `--json` instead one object
//! on stdout, `{"ok": false, "exit": CODE, "error": "…"}` ([`run`]), the
//! shape `policy pull` uses for its failures.

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

pub use error::{CliError, EXIT_ERROR, EXIT_NO, EXIT_USAGE};

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

impl Command {
    /// Whether the command was asked for `--json`.
    fn json(&self) -> bool {
        match self {
            Command::Check(a) | Command::Provenance(a) => a.output.json,
            Command::Fetch(a) => a.output.json,
            Command::Policy(policy::PolicyCommand::Check { output, .. }) => output.json,
            Command::Policy(policy::PolicyCommand::Publish(a)) => a.output.json,
            Command::Policy(policy::PolicyCommand::Pull(a)) => a.output.json,
            Command::Audit(a) => a.output.json,
            Command::Man { .. } | Command::Completions { .. } | Command::Sync(_) => false,
            Command::Journal(journal::JournalCommand::Replay { output, .. }) => output.json,
            Command::VerifyBundle(a) => a.output.json,
            Command::Trust(
                trust::TrustCommand::Update { output, .. }
                | trust::TrustCommand::Import { output, .. }
                | trust::TrustCommand::Show { output, .. },
            ) => output.json,
            Command::Doctor(a) => a.output.json,
            Command::Heartbeat(a) => a.output.json,
            Command::Evidence(a) => match &a.command {
                Some(
                    evidence::EvidenceCommand::Verify { output, .. }
                    | evidence::EvidenceCommand::Merge { output, .. },
                ) => output.json,
                None => a.output.json,
            },
            Command::Bundle(
                bundle::BundleCommand::Export { print, .. }
                | bundle::BundleCommand::Import { print, .. },
            ) => print.json,
            Command::Reverify(a) => a.output.json,
        }
    }
}

/// Run a parsed command; returns the exit code. An error is reported here,
/// for every command alike (see the module's documentation), and becomes
/// its exit code ([`CliError::exit_code`]): what is returned is always `Ok`.
pub fn run(cli: Cli) -> Result<u8, CliError> {
    let json = cli.command.json();
    Ok(dispatch(cli.command).unwrap_or_else(|e| report(&e, json)))
}

/// Say what went wrong: one line on stderr, or under `--json` one object on
/// stdout (and the line on stderr if stdout cannot take it).
fn report(e: &CliError, json: bool) -> u8 {
    use std::io::Write;
    let code = e.exit_code();
    if json {
        let v = serde_json::json!({"ok": false, "exit": code, "error": e.to_string()});
        let mut out = std::io::stdout().lock();
        let written = serde_json::to_writer_pretty(&mut out, &v)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out));
        if written.is_ok() {
            return code;
        }
    }
    match e {
        CliError::No(why) => eprintln!("portcullis: {why}"),
        _ => eprintln!("portcullis: error: {e}"),
    }
    code
}

fn dispatch(command: Command) -> Result<u8, CliError> {
    match command {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_exit_by_kind_and_json_is_seen_on_every_command() {
        assert_eq!(CliError::No("x".into()).exit_code(), EXIT_NO);
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(CliError::Failed("x".into()).exit_code(), EXIT_ERROR);
        let json = |args: &[&str]| {
            Cli::try_parse_from([&["portcullis"], args].concat())
                .unwrap()
                .command
                .json()
        };
        assert!(json(&["evidence", "verify", "--json", "d"]));
        assert!(json(&["evidence", "--json", "--since", "1h"]));
        assert!(json(&["trust", "show", "--json"]));
        assert!(json(&["bundle", "import", "--json", "f"]));
        assert!(json(&["policy", "pull", "--json"]));
        assert!(!json(&[
            "verify-bundle",
            "--bundle",
            "b",
            "--key",
            "k",
            "f"
        ]));
    }
}
