//! `portcullis fetch`: copy an image's signatures from its registry into the
//! node's cache.

use std::io::Write;

use clap::Args;

use crate::cache::StateDir;

use super::args::{JsonArg, StateDirArg};
use super::error::{CliError, EXIT_NO};

/// `portcullis fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The image (`registry/repo:tag` or `registry/repo@sha256:…`).
    pub image: String,
    /// Use HTTP, not HTTPS, to reach the registry (loopback test registries only).
    #[arg(long)]
    pub plain_http: bool,
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
