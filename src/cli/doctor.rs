//! `portcullis doctor`: check this node's set-up.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::args::{AddressArg, JsonArg, PolicyArg, StateDirArg};
use super::error::{CliError, EXIT_NO};

/// `portcullis doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    // containerd's socket (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub containerd: AddressArg,
    /// containerd's configuration file (default: containerd's own default).
    #[arg(long)]
    pub containerd_config: Option<PathBuf>,
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

pub(super) fn run(a: DoctorArgs) -> Result<u8, CliError> {
    let report = crate::doctor::run(&crate::doctor::DoctorOptions {
        address: a.containerd.address,
        containerd_config: a.containerd_config,
        policy: a.policy.path,
        state_dir: a.state.dir,
        timeout: crate::containerd::lookup_timeout(),
    });
    let mut out = std::io::stdout().lock();
    if a.output.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        for c in &report.checks {
            writeln!(out, "{:<8} {:<13} {}", c.status.as_str(), c.name, c.detail)?;
            if let Some(fix) = c
                .fix
                .as_ref()
                .filter(|_| c.status != crate::doctor::Status::Ok)
            {
                writeln!(out, "{:<8} {:<13} fix: {fix}", "", "")?;
            }
        }
        let failed = report
            .checks
            .iter()
            .filter(|c| c.status == crate::doctor::Status::Fail)
            .count();
        writeln!(out, "{failed} check(s) failed")?;
    }
    Ok(if report.ok { 0 } else { EXIT_NO })
}
