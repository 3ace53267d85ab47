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
    /// Read a journal directory instead of the system journal.
    #[arg(long)]
    pub directory: Option<String>,
    // `--json` (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub output: JsonArg,
}

pub(super) fn run(a: AuditArgs) -> Result<u8, CliError> {
    let entries = crate::audit::query(&crate::audit::Query {
        since: a.since,
        until: a.until,
        verdict: a.verdict,
        container: a.container,
        directory: a.directory,
    })?;
    let mut out = std::io::stdout().lock();
    if a.output.json {
        serde_json::to_writer_pretty(&mut out, &entries).map_err(std::io::Error::other)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{:<20}  {:<7}  {:<8}  {:<14}  {:<12}  {:<40}  REASON",
        "TIME", "VERDICT", "MODE", "RULE", "CONTAINER", "IMAGE"
    )?;
    for e in &entries {
        let time = e.time.get(..19).unwrap_or(&e.time);
        writeln!(
            out,
            "{:<20}  {:<7}  {:<8}  {:<14}  {:<12}  {:<40}  {}",
            time,
            e.get("verdict"),
            e.get("mode"),
            e.get("rule"),
            e.get("container_id"),
            e.get("image_ref"),
            e.get("reason")
        )?;
    }
    writeln!(out, "{} verdict(s)", entries.len())?;
    Ok(0)
}
