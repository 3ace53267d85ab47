//! `portcullis policy check`: validate a policy file (the checks are
//! [`crate::policy::file_check`]).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::policy::{self, Severity};

use super::args::JsonArg;
use super::error::{CliError, EXIT_NO};

/// `portcullis policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file: every error and warning with its line and column.
    Check {
        /// The file.
        file: PathBuf,
        // `--json` (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        output: JsonArg,
    },
    /// Pack a policy and every file it refers to into a signed OCI artifact; push it and/or write it to a file.
    Publish(super::policy_dist::PublishArgs),
    /// Fetch the signed policy artifact the source file names, verify it and install it atomically.
    #[command(long_about = super::policy_dist::PULL_ABOUT)]
    Pull(super::policy_dist::PullArgs),
}

pub(super) fn run(c: PolicyCommand) -> Result<u8, CliError> {
    match c {
        PolicyCommand::Check { file, output } => check(&file, output.json),
        PolicyCommand::Publish(a) => super::policy_dist::run_publish(a),
        PolicyCommand::Pull(a) => super::policy_dist::run_pull(a),
    }
}

pub(super) fn check(file: &PathBuf, json: bool) -> Result<u8, CliError> {
    let problems = policy::file_check::check_file(file).map_err(|source| CliError::Read {
        path: file.clone(),
        source,
    })?;
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
