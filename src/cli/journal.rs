//! `portcullis journal replay`: send spooled verdict records to journald.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::cache::StateDir;

use super::args::{JsonArg, StateDirArg};
use super::error::{CliError, EXIT_NO};

/// `portcullis journal …`.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Send spooled verdict records to journald, oldest first.
    Replay {
        // The state directory (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateDirArg,
        // `--json` (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        output: JsonArg,
    },
}

pub(super) fn replay(state_dir: PathBuf, json: bool) -> Result<u8, CliError> {
    let state = StateDir::new(state_dir);
    let spool = crate::journal::Spool::new(state.spool_dir());
    let (sent, remaining) = spool.replay(&crate::journal::DeadlineJournald::from_env())?;
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
