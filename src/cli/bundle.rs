//! `portcullis bundle export|import`: offline bundles ([`crate::ops::offline`]).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::cache::StateDir;
use crate::containerd;
use crate::policy::Policy;

use super::args::{lookup_image, ContainerdArgs, JsonArg, PolicyArg, StateDirArg};
use super::error::{CliError, EXIT_NO};

/// `portcullis bundle …` (see [`crate::offline`] for the file format).
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write everything this node has to verify IMAGEs (signatures, attestations, certificates, the index; optionally the trust root) to one file.
    Export {
        /// Images as containerd knows them (`ctr images ls`), or NAME@sha256:… for a digest not pulled.
        #[arg(required = true)]
        images: Vec<String>,
        /// The bundle file to write (replaced atomically).
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Also carry the trust root(s) the images' rules use (the importer must accept it by digest).
        #[arg(long)]
        with_trust_root: bool,
        // The containerd connection (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        containerd: ContainerdArgs,
        // The policy file (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        policy: PolicyArg,
        // The state directory (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateDirArg,
        // `--json` (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        print: JsonArg,
    },
    /// Load a bundle file (or, with --from-containerd, signature images in containerd's content store) into the cache; every item is verified against the policy; exits 1 if any item was refused.
    Import {
        /// The bundle file.
        #[arg(required_unless_present = "from_containerd")]
        file: Option<PathBuf>,
        /// Instead of a file: take IMAGEs' signatures from containerd's content store, as `ctr images import --no-unpack --base-name REPO` of an OCI layout holding the `sha256-<hex>.sig`/`.att` tags put them there (no network).
        #[arg(long, num_args = 1.., value_name = "IMAGE", conflicts_with = "file")]
        from_containerd: Vec<String>,
        /// Install the bundled trust root whose digest this is (sha256:…, as `bundle export` printed it); without it a bundled root is never installed.
        #[arg(long, value_name = "SHA256")]
        accept_trust_root: Option<String>,
        // The containerd connection (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        containerd: ContainerdArgs,
        // The policy file (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        policy: PolicyArg,
        // The state directory (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        state: StateDirArg,
        // `--json` (a plain comment: clap reads doc comments).
        #[allow(missing_docs)]
        #[command(flatten)]
        print: JsonArg,
    },
}

pub(super) fn run(command: BundleCommand) -> Result<u8, CliError> {
    use crate::offline::{self, OfflineError};
    let mut out = std::io::stdout().lock();
    match command {
        BundleCommand::Export {
            images,
            output,
            with_trust_root,
            containerd,
            policy: PolicyArg { path: policy },
            state: StateDirArg { dir: state_dir },
            print: JsonArg { json },
        } => {
            let state = StateDir::new(state_dir);
            let timeout = crate::containerd::lookup_timeout();
            let mut progress = |line: &str| eprintln!("portcullis: {line}");
            let mut list = Vec::new();
            for image in &images {
                let target = lookup_image(&containerd, image, timeout).map_err(|e| {
                    CliError::Failed(format!("cannot resolve {image} through containerd: {e}"))
                })?;
                let index = if target.platform_digest.is_some() {
                    Some(
                        containerd::read_content(
                            &containerd.socket.address,
                            &containerd.namespace,
                            std::slice::from_ref(&target.target_digest),
                            timeout,
                        )
                        .map_err(OfflineError::from)?
                        .remove(0),
                    )
                } else {
                    None
                };
                list.push(offline::ExportImage { target, index });
            }
            let roots = if with_trust_root {
                let p = Policy::load(&policy).map_err(|e| {
                    CliError::Failed(format!("--with-trust-root needs the policy: {e}"))
                })?;
                offline::trust_roots_for(&p, &list, &state, &mut progress)
            } else {
                Vec::new()
            };
            let contents = match offline::collect(&list, &state, &roots, &mut progress) {
                Ok(c) => c,
                Err(e @ OfflineError::NothingCached { .. }) => {
                    return Err(CliError::No(e.to_string()))
                }
                Err(e) => return Err(e.into()),
            };
            let report = offline::write(&contents, &output)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{}: {} image(s), {} item(s), {} bytes, {}",
                    report.file,
                    report.images.len(),
                    report.items.len(),
                    report.bytes,
                    report.sha256
                )?;
                for i in report
                    .items
                    .iter()
                    .filter(|i| i.kind == offline::item_kind::TRUST_ROOT)
                {
                    writeln!(
                        out,
                        "trust root \"{}\": {} (the importer passes --accept-trust-root {})",
                        i.name.as_deref().unwrap_or(""),
                        i.sha256,
                        i.sha256
                    )?;
                }
            }
            Ok(0)
        }
        BundleCommand::Import {
            file,
            from_containerd,
            accept_trust_root,
            containerd,
            policy: PolicyArg { path: policy },
            state: StateDirArg { dir: state_dir },
            print: JsonArg { json },
        } => {
            // Verification parses bundle bytes: only ever in the sandbox.
            crate::sandbox::require();
            let state = StateDir::new(state_dir);
            let policy = Policy::load(&policy).map_err(|e| {
                CliError::Failed(format!("cannot verify a bundle without the policy: {e}"))
            })?;
            let opts = offline::ImportOptions { accept_trust_root };
            let mut progress = |line: &str| {
                if !json {
                    eprintln!("portcullis: {line}");
                }
            };
            let result = match &file {
                Some(f) => offline::import_file(f, &state, &policy, &opts, &mut progress),
                None => offline::from_containerd(
                    &containerd.socket.address,
                    &containerd.namespace,
                    &from_containerd,
                    crate::containerd::lookup_timeout(),
                    &mut progress,
                )
                .and_then(|c| offline::import(&c, &state, &policy, &opts, &mut progress)),
            };
            let report = match result {
                Ok(r) => r,
                Err(e @ OfflineError::BadBundle { .. }) => return Err(CliError::No(e.to_string())),
                Err(e) => return Err(e.into()),
            };
            if json {
                serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
                writeln!(out)?;
            } else {
                for i in &report.items {
                    for r in &i.refusals {
                        writeln!(out, "refused  {r}")?;
                    }
                    if let Some(n) = &i.note {
                        if i.status == offline::Status::Skipped {
                            writeln!(out, "skipped  {}: {n}", i.path)?;
                        }
                    }
                }
                writeln!(
                    out,
                    "{}: {} stored, {} unchanged, {} refused, {} skipped",
                    report.source, report.stored, report.unchanged, report.refused, report.skipped
                )?;
            }
            Ok(if report.all_accepted() { 0 } else { EXIT_NO })
        }
    }
}
