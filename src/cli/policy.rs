//! `portcullis policy check`: validate a policy file (the checks are
//! [`crate::policy::check_file`]).

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
}

pub(super) fn check(file: &PathBuf, json: bool) -> Result<u8, CliError> {
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
