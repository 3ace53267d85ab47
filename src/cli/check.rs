//! `portcullis check`: decide as the shim would for an image or container,
//! without starting anything.

use std::io::Write;
use std::time::Instant;

use clap::Args;

use crate::cache::StateDir;
use crate::containerd;
use crate::gate::{self, Subject};
use crate::policy::Policy;

use super::args::{lookup_image, ContainerdArgs, JsonArg, PolicyArg, StateDirArg};
use super::error::{CliError, EXIT_NO};

/// `portcullis check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The image name as containerd knows it (`ctr images ls`), or NAME@sha256:… for a digest not yet pulled.
    #[arg(required_unless_present = "container")]
    pub image: Option<String>,
    /// Decide for an existing container instead, exactly as its start would be.
    #[arg(long, conflicts_with = "image")]
    pub container: Option<String>,
    // The containerd connection (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub containerd: ContainerdArgs,
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

pub(super) fn run(a: CheckArgs) -> Result<u8, CliError> {
    // Verification parses registry bytes: only ever in the sandbox.
    crate::sandbox::require();
    let started = Instant::now();
    // The start's own loader: the compiled form when there is one (and
    // written for the next start when not).
    let state = StateDir::new(&a.state.dir);
    let policy = Policy::load_for_start(&a.policy.path, &state);
    let lookup = lookup_target(&a);
    let subject = Subject {
        namespace: a.containerd.namespace.clone(),
        container_id: a.container.clone(),
    };
    let d = gate::decide(&policy, lookup, &state, &subject, started);
    let mut out = std::io::stdout().lock();
    if a.output.json {
        serde_json::to_writer_pretty(&mut out, &d).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        let image = d.image_ref.as_deref().unwrap_or("-");
        writeln!(out, "verdict:  {}", d.verdict.as_str())?;
        writeln!(out, "image:    {image}")?;
        writeln!(
            out,
            "digest:   {}",
            d.image_digest.as_deref().unwrap_or("-")
        )?;
        if let Some(p) = &d.platform_digest {
            writeln!(out, "platform: {p}")?;
        }
        writeln!(out, "rule:     {} (mode {})", d.rule, d.mode.as_str())?;
        writeln!(out, "signer:   {}", d.signer.as_deref().unwrap_or("-"))?;
        if let Some(p) = &d.provenance {
            writeln!(
                out,
                "provenance: builder {} source {}{} ({}), signed by {}",
                p.builder,
                p.source.as_deref().unwrap_or("-"),
                p.source_ref
                    .as_deref()
                    .map(|r| format!(" ref {r}"))
                    .unwrap_or_default(),
                p.predicate_type,
                p.signer
            )?;
        }
        writeln!(out, "reason:   {}", d.reason)?;
        writeln!(out, "shim:     {}", d.shim)?;
    }
    Ok(if d.allows() { 0 } else { EXIT_NO })
}

/// What `check` and `provenance` look at: the `--container`'s image, or the
/// image named on the command line.
pub fn lookup_target(a: &CheckArgs) -> Result<containerd::ImageTarget, containerd::LookupError> {
    let timeout = crate::containerd::lookup_timeout();
    match (&a.container, &a.image) {
        (Some(id), _) => containerd::lookup_container(
            &a.containerd.socket.address,
            &a.containerd.namespace,
            id,
            timeout,
        ),
        (None, Some(image)) => lookup_image(&a.containerd, image, timeout),
        (None, None) => unreachable!("clap requires one"),
    }
}
