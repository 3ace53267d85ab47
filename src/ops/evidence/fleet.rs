//! What a fleet pack states that follows from its node packs: the steps
//! across the nodes and every node's revoked containers. Computed when a
//! fleet pack is made (`evidence merge`, `evidence --fleet`) and again by
//! `evidence verify`.

use super::model::{FleetNode, FleetRevoked, FleetStep, Pack};

/// Per step, across the nodes: pass when every node passes it, with the
/// nodes that fail it.
pub fn fleet_steps(nodes: &[FleetNode]) -> Vec<FleetStep> {
    let mut steps: Vec<FleetStep> = Vec::new();
    for n in nodes {
        for s in &n.steps {
            let fs = match steps.iter_mut().find(|f| f.id == s.id) {
                Some(f) => f,
                None => {
                    steps.push(FleetStep {
                        id: s.id.clone(),
                        title: s.title.clone(),
                        status: "pass".into(),
                        failing_nodes: Vec::new(),
                    });
                    steps.last_mut().expect("just pushed")
                }
            };
            if s.status != "pass" {
                fs.status = "fail".into();
                fs.failing_nodes.push(format!("{} ({})", n.node, n.dir));
            }
        }
    }
    steps
}

/// Every node pack's revoked containers, with the node.
pub fn fleet_revoked(packs: &[&Pack]) -> Vec<FleetRevoked> {
    packs
        .iter()
        .flat_map(|p| {
            p.revoked.iter().map(|c| FleetRevoked {
                node: p.node.clone(),
                container: c.clone(),
            })
        })
        .collect()
}
