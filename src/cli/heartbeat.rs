//! `portcullis heartbeat`: record the gate's mode, policy digest and
//! trust-root digests in the journal.

use std::io::Write;

use clap::Args;

use crate::cache::StateDir;

use super::args::{JsonArg, PolicyArg, StateDirArg};
use super::error::{CliError, EXIT_ERROR, EXIT_NO};

/// `portcullis heartbeat`.
#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    // The policy file (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub policy: PolicyArg,
    // The state directory (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub state: StateDirArg,
    // `--json` (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub output: JsonArg,
}

pub(super) fn run(a: HeartbeatArgs) -> Result<u8, CliError> {
    let state = StateDir::new(&a.state.dir);
    let gs = crate::heartbeat::GateState::observe(&a.policy.path, &state);
    let archived = crate::heartbeat::archive(&gs, &state);
    let delivery = crate::journal::record(
        &crate::journal::DeadlineJournald::from_env(),
        &crate::journal::Spool::new(state.spool_dir()),
        &gs.record(),
    )?;
    let mut out = std::io::stdout().lock();
    if a.output.json {
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
