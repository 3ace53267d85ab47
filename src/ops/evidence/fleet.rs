//! What a fleet pack states that follows from its node packs: the steps
//! across the nodes and every node's revoked containers. Computed when a
//! fleet pack is made (`evidence merge`, `evidence --fleet`) and again by
//! `evidence verify`.

use super::model::{
    CollectorSource, Fleet, FleetNode, FleetRevoked, FleetStep, Pack, FLEET_FORMAT,
};

/// A fleet pack's document: its steps and revoked list follow from the
/// nodes and their packs, its result from the steps.
pub fn fleet_of(
    nodes: Vec<FleetNode>,
    packs: &[&Pack],
    collector: Option<CollectorSource>,
    heartbeat_stopped: Vec<String>,
) -> Fleet {
    let steps = fleet_steps(&nodes);
    Fleet {
        format: FLEET_FORMAT.into(),
        generated_at: jiff::Timestamp::now(),
        portcullis_version: env!("CARGO_PKG_VERSION").into(),
        result: if steps.iter().all(|s| s.status == "pass") {
            "pass"
        } else {
            "fail"
        }
        .into(),
        steps,
        revoked: fleet_revoked(packs),
        nodes,
        collector,
        heartbeat_stopped,
    }
}

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
