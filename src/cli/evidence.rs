//! `portcullis evidence`, `evidence verify` and `evidence merge`: audit
//! evidence packs ([`crate::ops::evidence`]).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cache::StateDir;
use crate::policy;

use super::args::{JsonArg, PolicyArg, StateDirArg};
use super::error::{CliError, EXIT_NO};

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
    // The policy file (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub policy: PolicyArg,
    // The state directory (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub state: StateDirArg,
    /// Read a journal directory instead of the system journal.
    #[arg(long)]
    pub directory: Option<String>,
    /// The heartbeat timer's interval; a period longer than twice this without a heartbeat counts as enforcement not shown.
    #[arg(long, default_value = "5m")]
    pub heartbeat_interval: String,
    /// The node's name in the pack (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// One fleet pack from a collector's journal (--directory): one node pack per _MACHINE_ID under nodes/, copies of a record counted once.
    #[arg(long, requires = "directory")]
    pub fleet: bool,
    /// With --fleet: NODE=DIR, a node's state directory (or an exported copy) for its documents and archived policies; NODE is its host name or machine ID. Repeatable.
    #[arg(long = "node-state", value_name = "NODE=DIR", requires = "fleet", value_parser = crate::evidence::parse_node_state)]
    pub node_states: Vec<(String, PathBuf)>,
    /// Only records of gates that use the --policy file, and task starts observed on --address (for a node running several gates, as test machines do).
    #[arg(long)]
    pub this_policy_only: bool,
    // `--json` (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub output: JsonArg,
}

/// `portcullis evidence verify|merge`.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Check a pack offline: every file against MANIFEST.sha256, every signature and attestation re-verified from the pack alone.
    Verify {
        /// The pack directory.
        dir: PathBuf,
        // `--json` (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        output: JsonArg,
    },
    /// Combine node packs (each verified first) into one fleet pack and report.
    Merge {
        /// The node packs.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output directory (created; must be new or empty).
        #[arg(short = 'o', long)]
        out: PathBuf,
        // `--json` (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        output: JsonArg,
    },
}

pub(super) fn run(a: EvidenceArgs) -> Result<u8, CliError> {
    use crate::evidence;
    let mut out = std::io::stdout().lock();
    match a.command {
        Some(EvidenceCommand::Verify {
            dir,
            output: JsonArg { json },
        }) => {
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
            output: JsonArg { json },
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
                    from: evidence::parse_time(f).map_err(usage("--from"))?,
                    to: evidence::parse_time(t).map_err(usage("--to"))?,
                },
                (s, _, _) => {
                    let d = policy::parse_duration(s.as_deref().unwrap_or("24h"))
                        .map_err(usage("--since"))?;
                    evidence::Period::since(d).map_err(usage("--since"))?
                }
            };
            let interval = policy::parse_duration(&a.heartbeat_interval)
                .map_err(usage("--heartbeat-interval"))?;
            if a.fleet {
                return fleet_pack(
                    &evidence::CollectorOptions {
                        period,
                        out: dir.clone(),
                        directory: a.directory.unwrap_or_default(),
                        policy: a.policy.path,
                        address: a.address,
                        state: StateDir::new(&a.state.dir),
                        node_states: a.node_states,
                        heartbeat_interval: interval,
                        this_policy_only: a.this_policy_only,
                    },
                    a.output.json,
                );
            }
            let p = evidence::generate(&evidence::GenerateOptions {
                period,
                out: dir.clone(),
                state: StateDir::new(&a.state.dir),
                policy: a.policy.path,
                address: a.address,
                journal_directory: a.directory,
                heartbeat_interval: interval,
                node: a.node.unwrap_or_else(evidence::hostname),
                this_policy_only: a.this_policy_only,
            })?;
            if a.output.json {
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

/// A usage error in the value of `flag`.
fn usage(flag: &'static str) -> impl Fn(String) -> CliError {
    move |e| CliError::Usage(format!("{flag}: {e}"))
}

/// `portcullis evidence --directory DIR --fleet`: print the node lines.
fn fleet_pack(o: &crate::evidence::CollectorOptions, json: bool) -> Result<u8, CliError> {
    let f = crate::evidence::generate_fleet(o)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &f).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        let c = f.collector.as_ref();
        writeln!(
            out,
            "fleet evidence pack {} from {}: {} node(s), {} record(s) read, {} copy(ies) dropped; result {}",
            o.out.display(),
            o.directory,
            f.nodes.len(),
            c.map_or(0, |c| c.records_read),
            c.map_or(0, |c| c.duplicates_dropped),
            f.result
        )?;
        for n in &f.nodes {
            let k = n.collected.as_ref();
            writeln!(
                out,
                "  node {} ({}): {} verdict(s), {} denial(s), {} revoked still running, last heartbeat {}{}; {}",
                n.node,
                n.dir,
                n.summary.verdict_records,
                n.summary.denials,
                n.summary.revoked_running,
                k.and_then(|k| k.last_heartbeat)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "none".into()),
                if k.is_some_and(|k| k.heartbeat_stopped) {
                    " (HEARTBEAT STOPPED)"
                } else {
                    ""
                },
                n.summary.result
            )?;
        }
        for s in &f.steps {
            writeln!(out, "  {:<5} {}", s.status, s.title)?;
        }
        writeln!(
            out,
            "open {}/report.html; check the pack with `portcullis evidence verify {}`",
            o.out.display(),
            o.out.display()
        )?;
    }
    Ok(if f.result == "pass" { 0 } else { EXIT_NO })
}
