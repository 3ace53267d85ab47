//! Re-verification: each image's cached documents checked again *from the
//! pack alone*, with the code the gate uses ([`crate::verify`]), as of the
//! recorded decision time and against the recorded trust root.

use std::path::{Path, PathBuf};

use crate::cache::Entry;
use crate::policy::{Policy, Rule, Signer};

use super::model::{CheckResult, ImageEvidence, Pack, Reverification, VerdictRecord};

// ------------------------------------------------------------------ re-verification

/// Re-verify an image's documents from the pack alone: the rule of the
/// recorded policy version (its key and CA paths mapped to the pack's
/// copies), the trust root of the recorded digest, the cache documents, as
/// of the recorded decision time.
pub fn reverify(dir: &Path, pack: &Pack, image: &ImageEvidence) -> Option<Reverification> {
    reverify_full(dir, pack, image).map(|(r, _)| r)
}

/// [`reverify`], with the verified in-toto statement when provenance passed.
///
/// The steps: the rule from the pack's copy of the recorded policy version
/// (`pack_rule`), the recorded trust root (`pack_root`), the cache
/// documents (`pack_entries`), then the signature check and the provenance
/// check (`signature_result`, `provenance_result`). A step that cannot
/// be taken fails both checks with its reason.
pub fn reverify_full(
    dir: &Path,
    pack: &Pack,
    image: &ImageEvidence,
) -> Option<(Reverification, Option<serde_json::Value>)> {
    let rec = image.records.iter().rev().find(|r| r.kind == "verified")?;
    let policy_digest = rec.policy_digest.clone().unwrap_or_default();
    let mut out = Reverification {
        as_of: rec.time,
        policy_digest: policy_digest.clone(),
        rule: rec.rule.clone(),
        trust_root_digest: rec.trust_root_digest.clone(),
        signature: CheckResult::fail("not checked"),
        provenance: CheckResult::fail("not checked"),
    };
    let fail_both = |mut o: Reverification, why: String| {
        o.signature = CheckResult::fail(why.clone());
        o.provenance = CheckResult::fail(why);
        Some((o, None))
    };
    if image.documents.is_empty() {
        let why = "no signature document for this digest is in the pack (the node's signature cache did not hold it when the pack was made, or the pack was built without the node's state directory): not re-verifiable here";
        out.signature = CheckResult::unavailable(why);
        out.provenance = CheckResult::unavailable(why);
        return Some((out, None));
    }
    let rule = match pack_rule(dir, pack, rec, &policy_digest) {
        Ok(r) => r,
        Err(e) => return fail_both(out, e),
    };
    let root = pack_root(dir, pack, rec);
    let mut digests: Vec<&str> = vec![image.digest.as_str()];
    if let Some(p) = rec.platform_digest.as_deref() {
        digests.push(p);
    }
    let entries = match pack_entries(dir, image, &digests) {
        Ok(e) => e,
        Err(e) => return fail_both(out, e),
    };
    let terms = match crate::verify::rule::Terms::load(&rule.signers, rule.provenance.as_ref()) {
        Ok(t) => t,
        Err(e) => return fail_both(out, format!("rule \"{}\": {e}", rule.name)),
    };
    out.signature = signature_result(rec, &rule, &entries, &digests, &terms, &root);
    let (provenance, statement) = provenance_result(rec, &rule, &entries, &digests, &terms, &root);
    out.provenance = provenance;
    Some((out, statement))
}

/// The recorded rule, read from the pack's copy of the recorded policy
/// version (checked against its digest), with every key and CA path mapped
/// to the pack's copy of that file.
fn pack_rule(
    dir: &Path,
    pack: &Pack,
    rec: &VerdictRecord,
    policy_digest: &str,
) -> Result<Rule, String> {
    let Some(pfile) = pack
        .policies
        .iter()
        .find(|p| p.digest == policy_digest)
        .and_then(|p| p.file.clone())
    else {
        return Err(format!(
            "the text of policy {policy_digest} is not in the pack; cannot know the rule's signers"
        ));
    };
    let text = std::fs::read_to_string(dir.join(&pfile)).map_err(|e| format!("{pfile}: {e}"))?;
    if crate::digest::sha256_prefixed(text.as_bytes()) != policy_digest {
        return Err(format!("{pfile} does not have the digest {policy_digest}"));
    }
    let path = pack
        .policies
        .iter()
        .find(|p| p.digest == policy_digest)
        .and_then(|p| p.paths.first().cloned())
        .unwrap_or_else(|| "/etc/portcullis/policy.toml".into());
    let policy = Policy::parse(&text, Path::new(&path))
        .map_err(|e| format!("policy {policy_digest}: {e}"))?;
    let Some(mut rule) = policy.rules().iter().find(|r| r.name == rec.rule).cloned() else {
        return Err(format!(
            "policy {policy_digest} has no rule \"{}\"",
            rec.rule
        ));
    };
    let map = |p: &Path| -> Result<PathBuf, String> {
        let shown = p.display().to_string();
        pack.keys
            .iter()
            .find(|k| k.original == shown)
            .and_then(|k| k.file.as_ref())
            .map(|f| dir.join(f))
            .ok_or_else(|| {
                format!(
                    "{shown} (named by rule \"{}\") is not in the pack",
                    rec.rule
                )
            })
    };
    let remap = |signers: &mut Vec<Signer>| -> Result<(), String> {
        for s in signers.iter_mut() {
            match s {
                Signer::Key { path, .. } => *path = map(path)?,
                Signer::Keyless(k) => {
                    if let Some(ca) = &k.ca {
                        k.ca = Some(map(ca)?);
                    }
                }
            }
        }
        Ok(())
    };
    remap(&mut rule.signers)?;
    if let Some(pp) = rule.provenance.as_mut() {
        remap(&mut pp.signers)?;
    }
    Ok(rule)
}

/// The pack's copy of the recorded trust root, loaded when a check needs it
/// (a missing one fails that check with its reason).
fn pack_root(dir: &Path, pack: &Pack, rec: &VerdictRecord) -> crate::verify::rule::LazyTrustRoot {
    let root_file = rec.trust_root_digest.as_ref().and_then(|d| {
        pack.trust_roots
            .iter()
            .find(|t| &t.digest == d)
            .and_then(|t| t.file.as_ref())
            .map(|f| dir.join(f))
    });
    crate::verify::rule::LazyTrustRoot::pack(root_file.ok_or_else(|| {
        format!(
            "the trust root {} is not in the pack",
            rec.trust_root_digest
                .as_deref()
                .unwrap_or("(none recorded)")
        )
    }))
}

/// The image's cache documents from the pack, each for the subject it is
/// listed under and one of `digests`.
fn pack_entries(dir: &Path, image: &ImageEvidence, digests: &[&str]) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = Vec::new();
    for d in &image.documents {
        let p = dir.join(&d.file);
        match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|e| e.to_string()))
        {
            Ok(e) if e.subject == d.subject && digests.contains(&e.subject.as_str()) => {
                entries.push(e)
            }
            Ok(e) => {
                return Err(format!(
                    "{}: holds {} instead of {}",
                    d.file, e.subject, d.subject
                ))
            }
            Err(e) => return Err(format!("{}: {e}", d.file)),
        }
    }
    Ok(entries)
}

/// The signature check, as the gate makes it, compared with what the verdict
/// recorded.
fn signature_result(
    rec: &VerdictRecord,
    rule: &Rule,
    entries: &[Entry],
    digests: &[&str],
    terms: &crate::verify::rule::Terms,
    root: &crate::verify::rule::LazyTrustRoot,
) -> CheckResult {
    match crate::verify::rule::check_signatures(entries, digests, terms, root) {
        Ok(None) => {
            CheckResult::not_required(format!("rule \"{}\" requires provenance alone", rule.name))
        }
        Ok(Some(v)) => {
            if rec.signed_digest.as_deref().is_some_and(|s| s != v.digest) {
                CheckResult::fail(format!(
                    "a signature verifies over {}, but the verdict recorded {}",
                    v.digest,
                    rec.signed_digest.as_deref().unwrap_or("")
                ))
            } else {
                CheckResult::pass(format!("signature by {} over {}", v.signer, v.digest))
            }
        }
        Err(crate::verify::Rejection::NothingCached) => {
            CheckResult::fail("no signature document in the pack".to_string())
        }
        Err(crate::verify::Rejection::NoValidSignature { reason, examined }) => {
            CheckResult::fail(format!("{reason} ({examined} signature(s) examined)"))
        }
    }
}

/// The provenance check the rule requires, as of the decision time, compared
/// with what the verdict recorded; with the verified statement when it passed.
fn provenance_result(
    rec: &VerdictRecord,
    rule: &Rule,
    entries: &[Entry],
    digests: &[&str],
    terms: &crate::verify::rule::Terms,
    root: &crate::verify::rule::LazyTrustRoot,
) -> (CheckResult, Option<serde_json::Value>) {
    let mut statement = None;
    let result =
        match crate::verify::rule::check_provenance(entries, digests, terms, root, rec.time) {
            Ok(None) => {
                CheckResult::not_required(format!("rule \"{}\" requires no provenance", rule.name))
            }
            Ok(Some(v))
                if rec
                    .provenance_digest
                    .as_deref()
                    .is_some_and(|d| d != v.statement_digest) =>
            {
                CheckResult::fail(format!(
                    "a provenance verifies ({}) but the verdict recorded {}",
                    v.statement_digest,
                    rec.provenance_digest.as_deref().unwrap_or("")
                ))
            }
            Ok(Some(v)) => CheckResult::pass({
                statement = Some(v.statement.clone());
                format!(
                    "{} by {} from {}, signed by {}, statement {}",
                    v.provenance.predicate_type,
                    v.provenance.builder_id,
                    v.provenance
                        .source_uri
                        .as_deref()
                        .unwrap_or("an unnamed source"),
                    v.signer,
                    v.statement_digest
                )
            }),
            Err(crate::attestation::ProvenanceRejection::NothingCached) => {
                CheckResult::fail("no provenance attestation in the pack".to_string())
            }
            Err(crate::attestation::ProvenanceRejection::NoneAcceptable { reason, examined }) => {
                CheckResult::fail(format!("{reason} ({examined} attestation(s) examined)"))
            }
        };
    (result, statement)
}
