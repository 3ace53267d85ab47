//! Judgement: the audit steps a pack answers (each pass or fail with its
//! detail and the files that show it), the rejection tally and the summary.

use std::collections::BTreeMap;

use super::model::{ImageEvidence, Pack, Reverification, Step, Summary, VerdictRecord};

// ------------------------------------------------------------------ steps

pub(super) fn step(id: &str, title: &str, ok: bool, detail: String, evidence: &[&str]) -> Step {
    Step {
        id: id.into(),
        title: title.into(),
        status: if ok { "pass" } else { "fail" }.into(),
        detail,
        evidence: evidence.iter().map(|s| s.to_string()).collect(),
    }
}

/// The audit procedure's steps, judged from the pack's contents.
pub fn judge(p: &Pack) -> Vec<Step> {
    let mut steps = Vec::new();
    // 1. signatures present
    let unsigned: Vec<&ImageEvidence> = p.images.iter().filter(|i| !i.all_verified).collect();
    let nodocs: Vec<&ImageEvidence> = p
        .images
        .iter()
        .filter(|i| i.all_verified && i.documents.is_empty())
        .collect();
    steps.push(step(
        "signatures-present",
        "Every image started carries a signature verified at start, and the signature is in the pack",
        !p.images.is_empty() && unsigned.is_empty() && nodocs.is_empty(),
        if p.images.is_empty() {
            "no image was started in the period: nothing to sample".into()
        } else if unsigned.is_empty() && nodocs.is_empty() {
            format!("{} image digest(s) started, each with a verified signature whose document is in the pack", p.images.len())
        } else {
            format!(
                "{} of {} image digest(s) started without a verified signature (exemption, warn or audit mode){}",
                unsigned.len(),
                p.images.len(),
                if nodocs.is_empty() { String::new() } else { format!("; {} verified digest(s) have no document left in the node's cache", nodocs.len()) }
            )
        },
        &["images", "unverified-allows", "exemptions"],
    ));
    // 2. provenance present and schema-valid
    let verified: Vec<&ImageEvidence> = p.images.iter().filter(|i| i.all_verified).collect();
    let without_prov: Vec<&&ImageEvidence> = verified
        .iter()
        .filter(|i| {
            !i.records
                .iter()
                .filter(|r| r.kind == "verified")
                .all(|r| r.provenance_digest.is_some())
        })
        .collect();
    steps.push(step(
        "provenance-present",
        "Every image started carries SLSA provenance that conforms to the schema",
        !p.images.is_empty() && unsigned.is_empty() && without_prov.is_empty(),
        if p.images.is_empty() {
            "no image was started in the period".into()
        } else if unsigned.is_empty() && without_prov.is_empty() {
            format!("{} image digest(s) started, each with SLSA provenance parsed and checked against the rule at start", verified.len())
        } else {
            format!(
                "{} image digest(s) started without verified provenance ({} without any verification, {} under rules that require none)",
                unsigned.len() + without_prov.len(),
                unsigned.len(),
                without_prov.len()
            )
        },
        &["images"],
    ));
    // 3. re-verification
    let re: Vec<&Reverification> = p
        .images
        .iter()
        .filter_map(|i| i.reverification.as_ref())
        .collect();
    let bad = re.iter().filter(|r| !r.passed()).count();
    steps.push(step(
        "signatures-reverified",
        "Signatures and provenance signatures verify again, offline, against the recorded trust root",
        !re.is_empty() && bad == 0,
        if re.is_empty() {
            "no verified start in the period: nothing to re-verify".into()
        } else {
            format!("{} of {} image digest(s) re-verified from the pack's documents", re.len() - bad, re.len())
        },
        &["images", "trust-roots", "policies"],
    ));
    // 4. enforcement configured before execution
    let nonenforce = p
        .images
        .iter()
        .flat_map(|i| &i.records)
        .filter(|r| r.mode != "enforce")
        .count()
        + p.denials.iter().filter(|r| r.mode != "enforce").count();
    steps.push(step(
        "enforcement-configured",
        "Deployment enforces verification before execution throughout the period",
        p.inactive_periods.is_empty() && nonenforce == 0,
        if p.inactive_periods.is_empty() && nonenforce == 0 {
            format!("{} heartbeat(s) state mode enforce for every rule over the whole period; every verdict was in enforce mode", p.heartbeats.len())
        } else {
            format!(
                "{} period(s) without shown enforcement; {} verdict(s) in warn or audit mode",
                p.inactive_periods.len(),
                nonenforce
            )
        },
        &["enforcement", "heartbeats", "policies"],
    ));
    // 5. logs show verification occurred
    let integrity_bad =
        p.journal_integrity.sealing == "enabled" && p.journal_integrity.exit_code != Some(0);
    let containerd_blind = p.observation.containers_examined.is_none();
    let ok5 = p.gaps.is_empty()
        && p.observation.unobserved.is_empty()
        && !integrity_bad
        && !containerd_blind;
    let mut why = Vec::new();
    if !p.gaps.is_empty() {
        why.push(format!(
            "{} container(s) ran without a verdict",
            p.gaps.len()
        ));
    }
    if !p.observation.unobserved.is_empty() {
        why.push(format!(
            "{} period(s) in which task starts were not observed",
            p.observation.unobserved.len()
        ));
    }
    if containerd_blind {
        why.push("containerd's container records could not be read".into());
    }
    if integrity_bad {
        why.push("journalctl --verify reports a problem with the sealed journal".into());
    }
    steps.push(step(
        "verification-logged",
        "The logs show verification occurred for every container started",
        ok5,
        if ok5 {
            format!(
                "{} task start(s) observed and {} container record(s) examined: each start has a verdict record",
                p.observation.task_starts,
                p.observation.containers_examined.unwrap_or(0)
            )
        } else {
            why.join("; ")
        },
        &["gaps", "observation", "journal-integrity"],
    ));
    // 6. nothing unsigned ran
    let blind = !p.observation.unobserved.is_empty() || containerd_blind;
    let ok6 = unsigned.is_empty() && p.gaps.is_empty() && !blind;
    let mut why6 = Vec::new();
    if !unsigned.is_empty() || !p.gaps.is_empty() {
        why6.push(format!(
            "{} start(s) allowed without verification ({} exemption(s), {} warn/audit allow(s)); {} container(s) bypassed the gate",
            p.exemptions.len() + p.unverified_allows.len(),
            p.exemptions.len(),
            p.unverified_allows.len(),
            p.gaps.len()
        ));
    }
    if blind {
        why6.push(
            "cannot be shown for the whole period: task starts were not observed throughout, or containerd's records could not be read"
                .into(),
        );
    }
    steps.push(step(
        "no-unsigned-deployed",
        "No unsigned or unverified artifact was deployed",
        ok6,
        if ok6 {
            "every start was verified; no container bypassed the gate".into()
        } else {
            why6.join("; ")
        },
        &[
            "exemptions",
            "unverified-allows",
            "gaps",
            "observation",
            "denials",
        ],
    ));
    // 7. revoked verdicts acted on
    let running: Vec<&super::model::RevokedContainer> =
        p.revoked.iter().filter(|c| c.state != "stopped").collect();
    steps.push(step(
        "revoked-stopped",
        "No container ran on after its verdict stopped holding",
        running.is_empty() && !p.heartbeats.is_empty(),
        if p.heartbeats.is_empty() {
            "no heartbeat: nothing shows a gate ran on this node in the period, so the absence of reverify records shows nothing".into()
        } else if p.revoked.is_empty() {
            "no reverify record in the period finds a running container whose verdict no longer holds".into()
        } else if running.is_empty() {
            format!(
                "{} container(s) found no longer holding, each stopped (see the list)",
                p.revoked.len()
            )
        } else {
            format!(
                "{} of {} container(s) whose verdict stopped holding ran on without a recorded stop: {}",
                running.len(),
                p.revoked.len(),
                running
                    .iter()
                    .map(|c| format!("{}/{}", c.namespace, c.container_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        &["revoked"],
    ));
    steps
}

/// Count denials by rejection class.
pub fn rejection_tally(denials: &[VerdictRecord]) -> BTreeMap<String, usize> {
    let mut tally = BTreeMap::new();
    for d in denials {
        let class = d.rejection.as_deref().unwrap_or("unclassified");
        *tally.entry(class.to_string()).or_insert(0) += 1;
    }
    tally
}

pub(super) fn summarize(p: &Pack) -> Summary {
    let passed = p.steps.iter().filter(|s| s.status == "pass").count();
    let re: Vec<&Reverification> = p
        .images
        .iter()
        .filter_map(|i| i.reverification.as_ref())
        .collect();
    Summary {
        result: if passed == p.steps.len() {
            "pass"
        } else {
            "fail"
        }
        .into(),
        steps_passed: passed,
        steps_failed: p.steps.len() - passed,
        images_started: p.images.len(),
        verdict_records: p.images.iter().map(|i| i.records.len()).sum::<usize>()
            + p.denials
                .iter()
                .filter(|d| {
                    !p.images
                        .iter()
                        .any(|i| Some(&i.digest) == d.image_digest.as_ref())
                })
                .count(),
        denials: p.denials.len(),
        rejections: rejection_tally(&p.denials),
        unverified_allows: p.unverified_allows.len(),
        exemptions: p.exemptions.len(),
        gaps: p.gaps.len(),
        inactive_periods: p.inactive_periods.len(),
        reverified: re.len(),
        reverified_ok: re.iter().filter(|r| r.passed()).count(),
        revoked: p.revoked.len(),
        revoked_running: p.revoked.iter().filter(|c| c.state != "stopped").count(),
    }
}
