//! `portcullis audit`: read verdicts back from the journal.

use std::io::Write;

use clap::Args;

use super::args::JsonArg;
use super::error::CliError;

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
    // `--json` (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub output: JsonArg,
}

pub(super) fn run(a: AuditArgs) -> Result<u8, CliError> {
    let q = crate::audit::Query {
        since: a.since,
        until: a.until,
        verdict: a.verdict,
        container: a.container,
        directory: a.directory,
        node: a.node,
    };
    let stale = crate::policy::parse_duration(&a.stale_after)
        .map_err(|e| CliError::Usage(format!("--stale-after: {e}")))?;
    let entries = crate::audit::query(&q)?;
    let now = jiff::Timestamp::now().as_microsecond();
    let stale_us = i64::try_from(stale.as_micros()).unwrap_or(i64::MAX);
    let nodes = crate::audit::fleet(&entries, &crate::audit::heartbeats(&q)?, now, stale_us);
    let mut out = std::io::stdout().lock();
    match (a.output.json, a.nodes) {
        (true, false) => serde_json::to_writer_pretty(&mut out, &entries),
        (true, true) => serde_json::to_writer_pretty(&mut out, &nodes),
        (false, false) => {
            crate::audit::write_table(&mut out, &entries)?;
            crate::audit::write_nodes(&mut out, &nodes, &a.stale_after)?;
            return Ok(0);
        }
        (false, true) => {
            crate::audit::write_nodes(&mut out, &nodes, &a.stale_after)?;
            return Ok(0);
        }
    }
    .map_err(std::io::Error::other)?;
    writeln!(out)?;
    Ok(0)
}
