//! The evidence pack's `report.html`: one self-contained file (inline CSS, no
//! scripts, no external URL) with a summary, the audit procedure as a pass /
//! fail table whose rows link to their evidence, and every evidence section.

use std::fmt::Write;

use super::model::{
    Fleet, Interval, Pack, RevokedContainer, VerdictRecord, MANIFEST, RECORDS_JSON,
};

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#1b1f24;line-height:1.4}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}th,td{border:1px solid #d0d7de;padding:.35em .5em;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}\
.pass .status{background:#dafbe1;color:#116329;font-weight:bold}.fail .status{background:#ffebe9;color:#a40e26;font-weight:bold}\
.badge{display:inline-block;padding:.15em .6em;border-radius:1em;font-weight:bold}.badge.pass{background:#dafbe1;color:#116329}.badge.fail{background:#ffebe9;color:#a40e26}\
.muted{color:#57606a}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:.5em}.card{border:1px solid #d0d7de;border-radius:6px;padding:.5em .7em}\
.card b{display:block;font-size:1.4em}details{margin:.3em 0}pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:.85em}";

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    );
}

fn opt(v: &Option<String>) -> String {
    v.as_deref()
        .map(esc)
        .unwrap_or_else(|| "<span class=\"muted\">—</span>".into())
}

fn records_table(out: &mut String, id: &str, title: &str, intro: &str, rs: &[VerdictRecord]) {
    let _ = write!(
        out,
        "<h2 id=\"{id}\">{} ({})</h2><p>{}</p>",
        esc(title),
        rs.len(),
        esc(intro)
    );
    if rs.is_empty() {
        out.push_str("<p class=\"muted\">None in the period.</p>");
        return;
    }
    out.push_str("<table><tr><th>time</th><th>container</th><th>image</th><th>rule / mode</th><th>verdict</th><th>reason</th></tr>");
    for r in rs {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}/{}</td><td class=\"mono\">{}<br>{}</td><td>{} / {}</td><td>{} ({})</td><td>{}</td></tr>",
            r.time,
            esc(&r.namespace),
            opt(&r.container_id),
            opt(&r.image_ref),
            opt(&r.image_digest),
            esc(&r.rule),
            esc(&r.mode),
            esc(&r.verdict),
            esc(&r.kind),
            esc(&r.reason)
        );
    }
    out.push_str("</table>");
}

fn intervals(out: &mut String, rs: &[Interval], none: &str) {
    if rs.is_empty() {
        let _ = write!(out, "<p class=\"muted\">{}</p>", esc(none));
        return;
    }
    out.push_str("<table><tr><th>from</th><th>to</th><th>why</th></tr>");
    for i in rs {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            i.from,
            i.to,
            esc(&i.reason)
        );
    }
    out.push_str("</table>");
}

/// The table of containers that ran on after their verdict stopped holding
/// (`node`: the node column of a fleet report).
fn revoked_table(out: &mut String, rows: &[(Option<&str>, &RevokedContainer)]) {
    let _ = write!(
        out,
        "<h2 id=\"revoked\">Containers that ran on after their verdict stopped holding ({})</h2><p>From <code>portcullis reverify</code>'s records: when the verdict was first found no longer holding, why, and whether the container was stopped.</p>",
        rows.len()
    );
    if rows.is_empty() {
        out.push_str("<p class=\"muted\">None in the period.</p>");
        return;
    }
    let node_col = rows.iter().any(|(n, _)| n.is_some());
    out.push_str("<table><tr>");
    if node_col {
        out.push_str("<th>node</th>");
    }
    out.push_str("<th>container</th><th>image</th><th>no longer holds since</th><th>reason</th><th>state</th><th>ran until</th></tr>");
    for (n, c) in rows {
        let _ = write!(out, "<tr class=\"revoked {}\">", esc(&c.state));
        if node_col {
            let _ = write!(out, "<td>{}</td>", esc(n.unwrap_or("")));
        }
        let _ = write!(
            out,
            "<td class=\"mono\">{}/{}</td><td class=\"mono\">{}@{}</td><td class=\"mono\">{}</td><td>{}{}</td><td><b>{}</b>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&c.namespace),
            esc(&c.container_id),
            opt(&c.image_ref),
            opt(&c.image_digest),
            c.since,
            esc(&c.reason),
            c.rejection
                .as_deref()
                .map(|r| format!(" <span class=\"muted\">({})</span>", esc(r)))
                .unwrap_or_default(),
            esc(&c.state),
            c.stop
                .as_deref()
                .map(|x| format!(" ({})", esc(x)))
                .unwrap_or_default(),
            c.ran_until
        );
    }
    out.push_str("</table>");
}

fn anchor(digest: &str) -> String {
    format!(
        "image-{}",
        digest
            .trim_start_matches("sha256:")
            .chars()
            .take(16)
            .collect::<String>()
    )
}

/// The node report.
pub fn render(p: &Pack) -> String {
    let mut o = String::new();
    head(&mut o, &format!("Portcullis evidence: {}", p.node));
    let _ = write!(
        o,
        "<h1>Portcullis audit evidence — {}</h1><p>Period <code>{}</code> to <code>{}</code>; generated <code>{}</code> by Portcullis {}. Result: <span id=\"result\" class=\"badge {}\">{}</span> ({} of {} steps pass).</p>",
        esc(&p.node),
        p.period.from,
        p.period.to,
        p.generated_at,
        esc(&p.portcullis_version),
        esc(&p.summary.result),
        esc(&p.summary.result.to_uppercase()),
        p.summary.steps_passed,
        p.steps.len()
    );
    let s = &p.summary;
    let _ = write!(
        o,
        "<h2 id=\"summary\">Summary</h2><div class=\"grid\">\
<div class=\"card\"><b>{}</b>image digests started</div><div class=\"card\"><b>{}</b>verdict records</div>\
<div class=\"card\"><b>{}</b>denials</div><div class=\"card\"><b>{}</b>warn/audit allows</div>\
<div class=\"card\"><b>{}</b>exemptions</div><div class=\"card\"><b>{}</b>gaps (bypassed the gate)</div>\
<div class=\"card\"><b>{}</b>periods without enforcement shown</div><div class=\"card\"><b>{}/{}</b>re-verified now</div></div>",
        s.images_started,
        s.verdict_records,
        s.denials,
        s.unverified_allows,
        s.exemptions,
        s.gaps,
        s.inactive_periods,
        s.reverified_ok,
        s.reverified
    );
    o.push_str("<h2 id=\"steps\">Audit procedure</h2><table><tr><th>step</th><th>result</th><th>finding</th><th>evidence</th></tr>");
    for st in &p.steps {
        let links = st
            .evidence
            .iter()
            .map(|a| format!("<a href=\"#{}\">{}</a>", esc(a), esc(a)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            o,
            "<tr id=\"step-{}\" class=\"step {}\"><td>{}</td><td class=\"status\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&st.id),
            esc(&st.status),
            esc(&st.title),
            esc(&st.status.to_uppercase()),
            esc(&st.detail),
            links
        );
    }
    o.push_str("</table>");

    // policies and trust
    let _ = write!(o, "<h2 id=\"policies\">Policy versions in force ({})</h2><table><tr><th>digest</th><th>first seen</th><th>last seen</th><th>path</th><th>records</th><th>text</th></tr>", p.policies.len());
    for v in &p.policies {
        let trusted = if v.trusted.is_empty() {
            String::new()
        } else {
            format!(
                "<ul>{}</ul>",
                v.trusted
                    .iter()
                    .map(|t| format!("<li>{}</li>", esc(t)))
                    .collect::<String>()
            )
        };
        let text = match (&v.file, &v.missing) {
            (Some(f), _) => format!("<a href=\"{}\">{}</a>{trusted}", esc(f), esc(f)),
            (None, Some(m)) => format!("<b>missing</b>: {}", esc(m)),
            _ => "—".into(),
        };
        let _ = write!(
            o,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&v.digest),
            v.first_seen,
            v.last_seen,
            esc(&v.paths.join(", ")),
            v.records,
            text
        );
    }
    o.push_str("</table>");
    let _ = write!(o, "<h2 id=\"trust-roots\">Trust roots and keys</h2><table><tr><th>trust root digest</th><th>file</th></tr>");
    for t in &p.trust_roots {
        let f = match (&t.file, &t.missing) {
            (Some(f), _) => format!("<a href=\"{}\">{}</a>", esc(f), esc(f)),
            (None, Some(m)) => format!("<b>missing</b>: {}", esc(m)),
            _ => "—".into(),
        };
        let _ = write!(
            o,
            "<tr><td class=\"mono\">{}</td><td>{f}</td></tr>",
            esc(&t.digest)
        );
    }
    if p.trust_roots.is_empty() {
        o.push_str("<tr><td colspan=\"2\" class=\"muted\">No trust root recorded (key signers only).</td></tr>");
    }
    o.push_str("</table><table><tr><th>key or CA file named by a policy</th><th>copy in the pack</th><th>sha256</th></tr>");
    for k in &p.keys {
        let f = match (&k.file, &k.missing) {
            (Some(f), _) => format!("<a href=\"{}\">{}</a>", esc(f), esc(f)),
            (None, Some(m)) => format!("<b>missing</b>: {}", esc(m)),
            _ => "—".into(),
        };
        let _ = write!(
            o,
            "<tr><td class=\"mono\">{}</td><td>{f}</td><td class=\"mono\">{}</td></tr>",
            esc(&k.original),
            opt(&k.sha256)
        );
    }
    o.push_str("</table>");

    // enforcement
    let _ = write!(o, "<h2 id=\"enforcement\">Periods in which enforcement was not shown active ({})</h2><p>A heartbeat covers twice the timer's interval after it; a heartbeat whose mode is not enforce for every rule does not count.</p>", p.inactive_periods.len());
    intervals(
        &mut o,
        &p.inactive_periods,
        "None: enforcing heartbeats cover the whole period.",
    );
    let _ = write!(
        o,
        "<h2 id=\"heartbeats\">Heartbeats ({})</h2>",
        p.heartbeats.len()
    );
    if !p.heartbeats.is_empty() {
        o.push_str("<details><summary>every heartbeat</summary><table><tr><th>time</th><th>mode</th><th>rules</th><th>enforcing</th><th>policy</th><th>trust roots</th></tr>");
        for h in &p.heartbeats {
            let _ = write!(
                o,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                h.time,
                esc(&h.mode),
                esc(&h.rule_modes),
                h.enforcing,
                opt(&h.policy_digest),
                esc(&h.trust_roots)
            );
        }
        o.push_str("</table></details>");
    }

    // images
    let _ = write!(
        o,
        "<h2 id=\"images\">Images started ({})</h2>",
        p.images.len()
    );
    for i in &p.images {
        let re = match &i.reverification {
            Some(r) => format!(
                "<p>Re-verified from the pack as of <code>{}</code> (policy <code>{}</code>, rule <b>{}</b>, trust root <code>{}</code>):</p><ul><li class=\"{}\">signature: <b>{}</b> — {}</li><li class=\"{}\">provenance: <b>{}</b> — {}</li></ul>",
                r.as_of,
                esc(&r.policy_digest),
                esc(&r.rule),
                r.trust_root_digest.as_deref().map(esc).unwrap_or_else(|| "none recorded".into()),
                esc(&r.signature.status),
                esc(&r.signature.status),
                esc(&r.signature.detail),
                esc(&r.provenance.status),
                esc(&r.provenance.status),
                esc(&r.provenance.detail)
            ),
            None => "<p><b>Not verified at start</b> (exemption, warn or audit mode): nothing to re-verify.</p>".into(),
        };
        let docs = i
            .documents
            .iter()
            .map(|d| {
                format!(
                    "<li><a href=\"{}\">{}</a> for <code>{}</code> ({})</li>",
                    esc(&d.file),
                    esc(&d.file),
                    esc(&d.subject),
                    esc(&d
                        .artifacts
                        .iter()
                        .map(|(k, n)| format!("{n} {k}"))
                        .collect::<Vec<_>>()
                        .join(", "))
                )
            })
            .collect::<String>();
        let _ = write!(
            o,
            "<h3 id=\"{}\" class=\"mono\">{}</h3><p>{} — {} start(s), {}</p>{re}<p>Documents:</p><ul>{}{}</ul>",
            anchor(&i.digest),
            esc(&i.digest),
            esc(&i.refs.join(", ")),
            i.starts,
            if i.all_verified { "every start verified" } else { "<b>not every start verified</b>" },
            if docs.is_empty() { "<li class=\"muted\">none</li>".into() } else { docs },
            i.provenance_statement
                .as_ref()
                .map(|f| format!("<li><a href=\"{}\">{}</a>: the verified SLSA provenance statement, decoded</li>", esc(f), esc(f)))
                .unwrap_or_default()
        );
        o.push_str("<table><tr><th>time</th><th>container</th><th>verdict</th><th>rule / mode</th><th>signer</th><th>Rekor index</th><th>provenance builder / source</th></tr>");
        for r in &i.records {
            let _ = write!(
                o,
                "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{} ({})</td><td>{} / {}</td><td class=\"mono\">{}{}</td><td>{}</td><td class=\"mono\">{}<br>{}</td></tr>",
                r.time,
                opt(&r.container_id),
                esc(&r.verdict),
                esc(&r.kind),
                esc(&r.rule),
                esc(&r.mode),
                opt(&r.signer),
                r.signer_subject.as_deref().map(|s| format!("<br>{}", esc(s))).unwrap_or_default(),
                opt(&r.rekor_log_index),
                opt(&r.provenance_builder),
                opt(&r.provenance_source)
            );
        }
        o.push_str("</table>");
    }
    if p.images.is_empty() {
        o.push_str("<p class=\"muted\">No image was started in the period.</p>");
    }
    records_table(
        &mut o,
        "denials",
        "Denials",
        "Starts the gate refused.",
        &p.denials,
    );
    records_table(
        &mut o,
        "unverified-allows",
        "Warn and audit-mode allows",
        "Starts that failed verification and ran because the rule's mode is warn or audit.",
        &p.unverified_allows,
    );
    records_table(
        &mut o,
        "exemptions",
        "Exemptions",
        "Starts allowed without verification by an allow rule or default allow.",
        &p.exemptions,
    );

    // gaps
    let _ = write!(
        o,
        "<h2 id=\"gaps\">Gaps: containers that ran without the gate ({})</h2>",
        p.gaps.len()
    );
    if p.gaps.is_empty() {
        o.push_str("<p class=\"muted\">None found (see the limits below).</p>");
    } else {
        o.push_str("<table><tr><th>time</th><th>container</th><th>image</th><th>runtime</th><th>found by</th><th>detail</th></tr>");
        for g in &p.gaps {
            let _ = write!(
                o,
                "<tr class=\"gap\"><td class=\"mono\">{}</td><td class=\"mono\">{}/{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                g.time,
                esc(&g.namespace),
                esc(&g.container_id),
                opt(&g.image),
                opt(&g.runtime),
                esc(&g.found_by),
                esc(&g.detail)
            );
        }
        o.push_str("</table>");
    }
    let rows: Vec<(Option<&str>, &RevokedContainer)> =
        p.revoked.iter().map(|c| (None, c)).collect();
    revoked_table(&mut o, &rows);
    let ob = &p.observation;
    let _ = write!(
        o,
        "<h2 id=\"observation\">How starts were observed</h2><p>{} task-start record(s) read; containerd at <code>{}</code>: {}.</p><h3>Observed</h3>",
        ob.task_starts,
        esc(&ob.containerd_address),
        match (&ob.containers_examined, &ob.containerd_error) {
            (Some(n), _) => format!("{n} container record(s) examined"),
            (None, Some(e)) => format!("<b>not readable</b>: {}", esc(e)),
            _ => "not asked".into(),
        }
    );
    intervals(
        &mut o,
        &ob.observed,
        "Never: no event observer was subscribed.",
    );
    o.push_str("<h3>Unobserved</h3>");
    intervals(&mut o, &ob.unobserved, "None.");
    o.push_str("<h3>Limits of this detection</h3><ul>");
    for l in &ob.limits {
        let _ = write!(o, "<li>{}</li>", esc(l));
    }
    o.push_str("</ul>");
    let ji = &p.journal_integrity;
    let _ = write!(
        o,
        "<h2 id=\"journal-integrity\">Journal integrity</h2><p>Forward Secure Sealing: <b>{}</b>. <code>{}</code> exited {}.</p><details><summary>output</summary><pre>{}</pre></details>",
        esc(&ji.sealing),
        esc(&ji.command),
        ji.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "(did not run)".into()),
        esc(&ji.output)
    );
    let _ = writeln!(
        o,
        "<h2 id=\"integrity\">Pack integrity</h2><p>Every file of this pack is listed with its SHA-256 in <a href=\"{m}\">{m}</a>. Check it with <code>sha256sum -c {m}</code>, and re-verify every signature and attestation offline, and derive the verdicts, gaps and periods again from the journal records the pack was built from (<a href=\"{r}\">{r}</a>), with <code>portcullis evidence verify DIR</code>.</p></body></html>",
        m = MANIFEST,
        r = RECORDS_JSON
    );
    o
}

/// The fleet report.
pub fn render_fleet(f: &Fleet) -> String {
    let mut o = String::new();
    head(&mut o, "Portcullis fleet evidence");
    let _ = write!(
        o,
        "<h1>Portcullis audit evidence — fleet of {} node(s)</h1><p>Merged <code>{}</code> by Portcullis {}. Result: <span id=\"result\" class=\"badge {}\">{}</span>.</p>",
        f.nodes.len(),
        f.generated_at,
        esc(&f.portcullis_version),
        esc(&f.result),
        esc(&f.result.to_uppercase())
    );
    o.push_str("<h2 id=\"steps\">Audit procedure across the fleet</h2><table><tr><th>step</th><th>result</th><th>failing nodes</th></tr>");
    for s in &f.steps {
        let _ = write!(
            o,
            "<tr id=\"step-{}\" class=\"step {}\"><td>{}</td><td class=\"status\">{}</td><td>{}</td></tr>",
            esc(&s.id),
            esc(&s.status),
            esc(&s.title),
            esc(&s.status.to_uppercase()),
            esc(&s.failing_nodes.join(", "))
        );
    }
    o.push_str("</table>");
    if let Some(c) = &f.collector {
        let _ = write!(
            o,
            "<h2 id=\"nodes\">Nodes</h2><p>Built from the collector's journal <code>{}</code> for <code>{}</code> to <code>{}</code>: {} record(s) read, {} copy(ies) of a record held twice dropped ({}).</p><table><tr><th>node</th><th>machine ID</th><th>verdicts</th><th>denials</th><th>records read</th><th>copies dropped</th><th>last heartbeat</th><th>heartbeat</th><th>documents from</th></tr>",
            esc(&c.directory),
            c.period.from,
            c.period.to,
            c.records_read,
            c.duplicates_dropped,
            esc(&c.dedup_rule)
        );
        for n in &f.nodes {
            let Some(k) = &n.collected else { continue };
            let _ = write!(
                o,
                "<tr class=\"node {}\"><td><a href=\"#node-{}\">{}</a></td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"status\">{}</td><td>{}</td></tr>",
                if k.heartbeat_stopped { "fail" } else { "pass" },
                esc(&n.dir.replace('/', "-")),
                esc(&n.node),
                esc(&k.machine_id),
                n.summary.verdict_records,
                n.summary.denials,
                k.records_read,
                k.duplicates_dropped,
                k.last_heartbeat.map(|t| t.to_string()).unwrap_or_else(|| "none".into()),
                if k.heartbeat_stopped { "STOPPED" } else { "live" },
                esc(&k.documents_from)
            );
        }
        o.push_str("</table>");
    }
    let rows: Vec<(Option<&str>, &RevokedContainer)> = f
        .revoked
        .iter()
        .map(|r| (Some(r.node.as_str()), &r.container))
        .collect();
    revoked_table(&mut o, &rows);
    for n in &f.nodes {
        let _ = write!(
            o,
            "<h2 id=\"node-{}\">{} <span class=\"badge {}\">{}</span></h2><p>Period <code>{}</code> to <code>{}</code>; {} image(s), {} denial(s), {} gap(s). Full report: <a href=\"{}/report.html\">{}/report.html</a>.</p><table><tr><th>step</th><th>result</th><th>finding</th></tr>",
            esc(&n.dir.replace('/', "-")),
            esc(&n.node),
            esc(&n.summary.result),
            esc(&n.summary.result.to_uppercase()),
            n.period.from,
            n.period.to,
            n.summary.images_started,
            n.summary.denials,
            n.summary.gaps,
            esc(&n.dir),
            esc(&n.dir)
        );
        for s in &n.steps {
            let _ = write!(
                o,
                "<tr class=\"{}\"><td>{}</td><td class=\"status\">{}</td><td>{}</td></tr>",
                esc(&s.status),
                esc(&s.title),
                esc(&s.status.to_uppercase()),
                esc(&s.detail)
            );
        }
        o.push_str("</table>");
    }
    let _ = writeln!(o, "<p>Every file, node packs included, is listed in <a href=\"{m}\">{m}</a>; <code>portcullis evidence verify DIR</code> checks it and each node pack.</p></body></html>", m = MANIFEST);
    o
}
