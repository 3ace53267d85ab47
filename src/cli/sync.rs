//! `portcullis sync`: cache the signatures of every image containerd pulls.

use clap::Args;

use crate::cache::StateDir;

use super::args::{AddressArg, PolicyArg, StateDirArg};
use super::error::CliError;

/// `portcullis sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    // containerd's socket (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub containerd: AddressArg,
    /// Only images of this containerd namespace (default: every namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Use HTTP, not HTTPS, to reach registries (loopback test registries only).
    #[arg(long)]
    pub plain_http: bool,
    /// Attempts per image before the failure is recorded in the journal (1-20).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    // The policy each pulled image is decided ahead under, after its fetch
    // (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub policy: PolicyArg,
    // The state directory (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub state: StateDirArg,
}

pub(super) fn run(a: SyncArgs) -> Result<u8, CliError> {
    let opts = crate::sync::SyncOptions {
        address: a.containerd.address,
        namespace: a.namespace,
        fetch: crate::fetch::FetchOptions {
            plain_http: a.plain_http,
        },
        max_attempts: a.max_attempts,
        backoff: crate::sync::Backoff::default(),
        decide_ahead: Some(a.policy.path),
    };
    let state = StateDir::new(a.state.dir);
    let mut log = |line: &str| eprintln!("portcullis-sync: {line}");
    crate::sync::run(
        &opts,
        &state,
        &crate::journal::DeadlineJournald::from_env(),
        &mut log,
    )?;
    Ok(0)
}
