//! The fleet view, `portcullis evidence merge`: node packs copied side by
//! side with one fleet-level summary and report.

use std::path::{Path, PathBuf};

use super::check::{load_json, verify};
use super::collect::prepare_out;
use super::error::{rerr, werr, EvidenceError};
use super::fleet::fleet_of;
use super::manifest::{write_file, write_manifest};
use super::model::{Fleet, FleetNode, Pack, EVIDENCE_JSON, FORMAT, REPORT_HTML};

// ------------------------------------------------------------------ merge

fn copy_tree(from: &Path, to: &Path) -> Result<(), EvidenceError> {
    std::fs::create_dir_all(to).map_err(werr(to))?;
    for e in std::fs::read_dir(from).map_err(rerr(from))? {
        let e = e.map_err(rerr(from))?;
        let p = e.path();
        let t = to.join(e.file_name());
        if e.file_type().map_err(rerr(&p))?.is_dir() {
            copy_tree(&p, &t)?;
        } else {
            std::fs::copy(&p, &t).map_err(werr(&t))?;
        }
    }
    Ok(())
}

/// Combine node packs into a fleet pack at `out`; each input is verified first.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Fleet, EvidenceError> {
    if dirs.is_empty() {
        return Err(EvidenceError::Usage(
            "name at least one evidence pack to merge".into(),
        ));
    }
    let mut packs = Vec::new();
    for d in dirs {
        let r = verify(d)?;
        if !r.ok {
            return Err(EvidenceError::Usage(format!(
                "{} does not verify ({}); merge only intact packs",
                d.display(),
                r.problems.first().cloned().unwrap_or_default()
            )));
        }
        if r.format != FORMAT {
            return Err(EvidenceError::Usage(format!(
                "{} is a fleet pack; merge node packs",
                d.display()
            )));
        }
        let pack: Pack =
            serde_json::from_value(load_json(d)?).map_err(|e| EvidenceError::NotAPack {
                path: d.clone(),
                why: e.to_string(),
            })?;
        packs.push((d, pack));
    }
    prepare_out(out)?;
    let mut nodes = Vec::new();
    for (n, (d, p)) in packs.iter().enumerate() {
        let safe: String = p
            .node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let rel = format!("nodes/{:02}-{}", n + 1, safe.trim_start_matches('.'));
        copy_tree(d, &out.join(&rel))?;
        nodes.push(FleetNode {
            node: p.node.clone(),
            dir: rel,
            period: p.period,
            summary: p.summary.clone(),
            steps: p.steps.clone(),
            collected: None,
        });
    }
    let packs: Vec<&Pack> = packs.iter().map(|(_, p)| p).collect();
    let fleet = fleet_of(nodes, &packs, None, Vec::new());
    write_file(
        out,
        EVIDENCE_JSON,
        &serde_json::to_vec_pretty(&fleet).unwrap_or_default(),
    )?;
    write_file(
        out,
        REPORT_HTML,
        super::html::render_fleet(&fleet).as_bytes(),
    )?;
    write_manifest(out)?;
    Ok(fleet)
}
