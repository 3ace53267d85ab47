//! `portcullis provenance`: print the verified SLSA provenance cached for an
//! image (the check itself is [`crate::ops::provenance`]).

use std::io::Write;

use crate::cache::StateDir;
use crate::policy::Policy;

use super::check::{lookup_target, CheckArgs};
use super::error::CliError;

pub(super) fn run(a: CheckArgs) -> Result<u8, CliError> {
    let policy = Policy::load(&a.policy.path).map_err(|e| CliError::Failed(e.to_string()))?;
    let state = StateDir::new(&a.state.dir);
    let target = lookup_target(&a).map_err(|e| CliError::Failed(e.to_string()))?;
    let checked = crate::ops::provenance::check_cached(
        &policy,
        &a.policy.path,
        &state,
        &target,
        jiff::Timestamp::now(),
    )
    .map_err(|e| CliError::Failed(e.to_string()))?;
    let (image, rule) = (&checked.image, &checked.rule);
    let digests = target.digests();
    let mut out = std::io::stdout().lock();
    match checked.outcome {
        Ok(v) => {
            if a.output.json {
                serde_json::to_writer_pretty(&mut out, &v).map_err(std::io::Error::other)?;
            } else {
                let p = &v.provenance;
                writeln!(out, "image:      {image}")?;
                writeln!(out, "rule:       {rule}")?;
                writeln!(out, "signer:     {}", v.signer)?;
                writeln!(out, "predicate:  {}", p.predicate_type)?;
                writeln!(out, "builder:    {}", p.builder_id)?;
                writeln!(out, "build type: {}", p.build_type)?;
                writeln!(
                    out,
                    "source:     {}",
                    p.source_uri.as_deref().unwrap_or("-")
                )?;
                writeln!(
                    out,
                    "ref:        {}",
                    p.source_ref.as_deref().unwrap_or("-")
                )?;
                writeln!(out, "statement:  {}", v.statement_digest)?;
                serde_json::to_writer_pretty(&mut out, &v.statement)
                    .map_err(std::io::Error::other)?;
            }
            writeln!(out)?;
            Ok(0)
        }
        Err(crate::attestation::ProvenanceRejection::NothingCached) => Err(CliError::No(format!(
            "no provenance attestation cached for {}; run `portcullis fetch {}`",
            digests.join(" or "),
            image.pinned(&target.target_digest)
        ))),
        Err(crate::attestation::ProvenanceRejection::NoneAcceptable { reason, .. }) => {
            Err(CliError::No(reason.to_string()))
        }
    }
}
