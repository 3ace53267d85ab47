//! `portcullis fetch`: copy an image's signatures from its registry into the
//! node's cache.

use std::io::Write;

use clap::Args;

use crate::cache::StateDir;

use super::args::{JsonArg, PolicyArg, StateDirArg};
use super::error::{CliError, EXIT_NO};

/// `portcullis fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The image (`registry/repo:tag` or `registry/repo@sha256:…`).
    pub image: String,
    /// Use HTTP, not HTTPS, to reach the registry (loopback test registries only).
    #[arg(long)]
    pub plain_http: bool,
    // The policy a start will decide under: the fetch decides ahead under it
    // (a plain comment: clap reads doc comments).
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

pub(super) fn run(a: FetchArgs) -> Result<u8, CliError> {
    let state = StateDir::new(&a.state.dir);
    let json = a.output.json;
    let mut progress = |line: &str| {
        if !json {
            eprintln!("portcullis: {line}");
        }
    };
    let report = crate::fetch::fetch(
        &a.image,
        &state,
        &crate::fetch::FetchOptions {
            plain_http: a.plain_http,
        },
        &mut progress,
    )?;
    let total: usize = report
        .subjects
        .iter()
        .map(|s| s.signatures + s.attestations + s.bundles)
        .sum();
    // Decide ahead (crate::gate::ahead): a start of this digest then finds
    // its pass in the verdict cache. Verification parses registry bytes:
    // only ever in the sandbox (this process is single-threaded again now
    // that the fetch's runtime is gone).
    if total > 0 {
        crate::sandbox::require();
        // Compiled here too, so the first start reads the compiled form.
        let policy = crate::policy::Policy::load_for_start(&a.policy.path, &state);
        let target = crate::gate::ahead::target(
            &report.image,
            &report.digest,
            report.platform_digest.as_deref(),
        );
        let d = crate::gate::ahead::decide_ahead(&policy, target, &state);
        progress(&crate::gate::ahead::summary(&d));
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}@{}: {total} signature(s) cached",
            report.image, report.digest
        )?;
    }
    Ok(if total == 0 { EXIT_NO } else { 0 })
}
