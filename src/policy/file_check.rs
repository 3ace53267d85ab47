//! `portcullis policy check`: every problem of a policy file with its line
//! and column, the rules' key files included (a key that is missing or does
//! not parse fails every start under its rule).

use std::path::Path;

use super::{check, Problem, Severity, Signer};

/// Every problem of the policy file at `file`: its syntax and rules
/// ([`check`]), then each key signer's key loaded as the gate loads it.
/// Errors only when the file cannot be read.
pub fn check_file(file: &Path) -> Result<Vec<Problem>, std::io::Error> {
    let text = std::fs::read(file)?;
    Ok(match String::from_utf8(text) {
        Ok(t) => {
            let (policy, mut problems) = check(&t, file);
            if let Some(p) = &policy {
                // Keys must exist and parse, or every start under the rule fails.
                for r in p.rules() {
                    let prov = r.provenance.iter().flat_map(|p| p.signers.iter());
                    for s in r.signers.iter().chain(prov) {
                        if !matches!(s, Signer::Key { .. }) {
                            continue;
                        }
                        if let Err(e) = crate::verify::LoadedSigner::load(s) {
                            problems.push(Problem {
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
        Err(_) => vec![Problem {
            line: 1,
            column: 1,
            message: "the file is not UTF-8 text".into(),
            severity: Severity::Error,
        }],
    })
}
