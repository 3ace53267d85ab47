//! `portcullis reverify`: its arguments, its output and its exit code; the
//! work is [`crate::ops::reverify`].

use std::io::Write;

use clap::Args;

use super::args::{AddressArg, JsonArg, PolicyArg, StateDirArg};
use super::{CliError, EXIT_ERROR, EXIT_NO};
use crate::ops::reverify::{self, Options};
use crate::policy;

/// `portcullis reverify`. Exit 0: every running container's verdict still
/// holds; 1: some would now be refused (reported, or stopped under
/// `revoked = "stop"`); 3: containerd could not be asked, a stop failed or a
/// record could not be written. Deciding ahead for the images on the node
/// reports, and never changes the exit status.
#[derive(Debug, Args)]
pub struct ReverifyArgs {
    // containerd's socket (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub containerd: AddressArg,
    /// Only this containerd namespace (default: every namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The policy in force (its `revoked` = "report" | "stop" says what
    /// happens to a container that would now be refused).
    #[command(flatten)]
    pub policy: PolicyArg,
    /// The state directory.
    #[command(flatten)]
    pub state: StateDirArg,
    /// Under revoked = "stop": time between SIGTERM and SIGKILL (`10s`, `1m`).
    #[arg(long, default_value = "10s")]
    pub grace: String,
    /// Read the gate's start records from this journal directory instead of the system journal.
    #[arg(long)]
    pub directory: Option<String>,
    /// Do not decide ahead for the images on the node (by default each image
    /// record is decided under the policy and trust root in force, and its
    /// pass stored for its next start).
    #[arg(long)]
    pub no_decide_ahead: bool,
    /// Output format.
    #[command(flatten)]
    pub output: JsonArg,
}

/// Run `portcullis reverify`.
pub fn run(a: ReverifyArgs) -> Result<u8, CliError> {
    let grace =
        policy::parse_duration(&a.grace).map_err(|e| CliError::Usage(format!("--grace: {e}")))?;
    let report = reverify::run(&Options {
        address: a.containerd.address,
        namespace: a.namespace,
        policy: a.policy.path,
        state_dir: a.state.dir,
        grace,
        journal_directory: a.directory,
        decide_ahead: !a.no_decide_ahead,
    })
    .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    if a.output.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        for f in &report.containers {
            writeln!(out, "{}", f.line())?;
        }
        if let Some(e) = &report.policy_error {
            writeln!(out, "policy unusable (nothing stopped): {e}")?;
        }
        if let Some(e) = &report.journal_error {
            writeln!(
                out,
                "gate records unreadable, digests taken from containerd: {e}"
            )?;
        }
        let held = report
            .containers
            .iter()
            .filter(|f| f.status == reverify::Status::Ok)
            .count();
        writeln!(
            out,
            "{} running container(s) in {} namespace(s): {held} hold, {} no longer hold (revoked = \"{}\"), {} ms",
            report.containers.len(),
            report.namespaces.len(),
            report.containers.len() - held,
            report.revoked.as_str(),
            report.elapsed_ms
        )?;
        if let Some(ahead) = &report.ahead {
            for i in ahead.images.iter().filter(|i| !i.status.ready()) {
                writeln!(out, "{}", i.line())?;
            }
            for e in &ahead.errors {
                writeln!(out, "images not listed, not decided ahead: {e}")?;
            }
            writeln!(out, "{}", ahead.summary())?;
        }
    }
    Ok(if report.has_failures() {
        EXIT_ERROR
    } else if report.all_hold() {
        0
    } else {
        EXIT_NO
    })
}
