//! `portcullis trust update|import|show`: the node's Sigstore trust roots.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::cache::StateDir;

use super::args::{JsonArg, StateDirArg};
use super::error::CliError;

/// `portcullis trust …`. A refused root (an invalid file to import, an
/// invalid root delivered by TUF, none cached, a cached one unusable) exits
/// 1; a TUF update that fails (rollback, expiry, signatures, network,
/// timeout) exits 3. The cached root is never replaced by a refused one.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Refresh a trust root through TUF, verifying the chain (rollback-protected by trust/tuf/NAME/).
    Update {
        /// The root: public-good, staging, or an operator name ([a-z0-9-]); default: the root rules use when they name none.
        #[arg(long, default_value = crate::trust::DEFAULT)]
        name: crate::trust::RootName,
        /// A private TUF repository's URL (https://, or http:// on loopback only).
        #[arg(long, requires = "root", conflicts_with = "staging")]
        mirror: Option<String>,
        /// The private repository's TUF root.json, pinned by the operator.
        #[arg(long, requires = "mirror")]
        root: Option<PathBuf>,
        /// Use Sigstore's staging repository.
        #[arg(long)]
        staging: bool,
        // The state directory (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateDirArg,
        // `--json` (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        output: JsonArg,
    },
    /// Install a trust root from a trusted_root.json file (nodes without network).
    Import {
        /// The root to write (see `update --name`).
        #[arg(long, default_value = crate::trust::DEFAULT)]
        name: crate::trust::RootName,
        /// The trusted_root.json file.
        file: PathBuf,
        // The state directory (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateDirArg,
        // `--json` (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        output: JsonArg,
    },
    /// List a cached root's certificate authorities, logs and timestamp authorities, with validity and age.
    Show {
        /// The root (see `update --name`).
        #[arg(long, default_value = crate::trust::DEFAULT)]
        name: crate::trust::RootName,
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

pub(super) fn run(command: TrustCommand) -> Result<u8, CliError> {
    use crate::trust::{self, Source};
    let (result, json) = match command {
        TrustCommand::Update {
            name,
            mirror,
            root,
            staging,
            state: StateDirArg { dir: state_dir },
            output: JsonArg { json },
        } => {
            let source = match (mirror, root) {
                (Some(url), Some(root)) => Source::Mirror { url, root },
                _ if staging => Source::Staging,
                _ => Source::for_name(&name)?,
            };
            let mut progress = |line: &str| {
                if !json {
                    eprintln!("portcullis: {line}");
                }
            };
            let state = StateDir::new(state_dir);
            let r = trust::update(&state, &name, &source, &mut progress);
            (r.map(TrustOutput::Installed), json)
        }
        TrustCommand::Import {
            name,
            file,
            state: StateDirArg { dir: state_dir },
            output: JsonArg { json },
        } => (
            trust::import(&StateDir::new(state_dir), &name, &file).map(TrustOutput::Installed),
            json,
        ),
        TrustCommand::Show {
            name,
            state: StateDirArg { dir: state_dir },
            output: JsonArg { json },
        } => (
            trust::show(&StateDir::new(state_dir), &name).map(TrustOutput::Summary),
            json,
        ),
    };
    let output = match result {
        Ok(o) => o,
        Err(e) if e.is_refusal() => return Err(CliError::No(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    if json {
        match &output {
            TrustOutput::Installed(i) => serde_json::to_writer_pretty(&mut out, i),
            TrustOutput::Summary(s) => serde_json::to_writer_pretty(&mut out, s),
        }
        .map_err(std::io::Error::other)?;
        writeln!(out)?;
        return Ok(0);
    }
    match output {
        TrustOutput::Installed(i) => {
            let c = i.counts;
            writeln!(
                out,
                "trust root {}: {} {} from {}",
                i.name,
                i.path.display(),
                if i.changed { "written" } else { "unchanged" },
                i.source
            )?;
            writeln!(
                out,
                "{} certificate authorities, {} transparency logs, {} CT logs, {} timestamp authorities; {}",
                c.certificate_authorities, c.tlogs, c.ctlogs, c.timestamp_authorities, i.sha256
            )?;
        }
        TrustOutput::Summary(s) => {
            let time = |t: Option<jiff::Timestamp>| t.map_or("-".to_string(), |t| t.to_string());
            writeln!(out, "trust root: {} ({})", s.name, s.path.display())?;
            writeln!(out, "media type: {}", s.media_type)?;
            writeln!(out, "sha256:     {}", s.sha256)?;
            writeln!(
                out,
                "written:    {} ({}h{:02}m ago)",
                time(s.written_at),
                s.age_seconds / 3600,
                s.age_seconds % 3600 / 60
            )?;
            let groups = [
                ("certificate authorities", &s.certificate_authorities),
                ("timestamp authorities", &s.timestamp_authorities),
            ];
            for (title, list) in groups {
                writeln!(out, "{title} ({}):", list.len())?;
                for a in list {
                    writeln!(
                        out,
                        "  {:<8} {}  {}  {} .. {}",
                        a.status.as_str(),
                        a.subject,
                        a.uri.as_deref().unwrap_or("-"),
                        time(a.valid_from),
                        time(a.valid_until)
                    )?;
                }
            }
            for (title, list) in [("transparency logs", &s.tlogs), ("CT logs", &s.ctlogs)] {
                writeln!(out, "{title} ({}):", list.len())?;
                for l in list {
                    writeln!(
                        out,
                        "  {:<8} {}  {}  {} .. {}",
                        l.status.as_str(),
                        l.base_url,
                        l.log_id,
                        time(l.valid_from),
                        time(l.valid_until)
                    )?;
                }
            }
        }
    }
    Ok(0)
}

enum TrustOutput {
    Installed(crate::trust::Installed),
    Summary(crate::trust::Summary),
}
