//! What the gate enforces now, as observed from the policy file and the trust
//! roots its rules name: the state `portcullis heartbeat` records and
//! `portcullis doctor` checks.

use std::path::Path;

use serde::Serialize;

use crate::policy::{Action, Policy};
use crate::state::cache::StateDir;

/// One rule's enforcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleState {
    /// The rule's name.
    pub name: String,
    /// verify, allow or deny.
    pub action: String,
    /// The mode that applies to it (its own or the policy's).
    pub mode: String,
}

/// A trust root a rule uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustRootState {
    /// The file.
    pub path: String,
    /// `sha256:` of its bytes, `None` when it cannot be read.
    pub digest: Option<String>,
    /// The rules that use it.
    pub rules: Vec<String>,
}

/// What the gate enforces now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateState {
    /// The global mode (`enforce` also when the policy is unusable: every start is refused).
    pub mode: String,
    /// The policy file.
    pub policy_path: String,
    /// `sha256:` of the policy file, when it could be read.
    pub policy_digest: Option<String>,
    /// Why the policy is unusable, if it is.
    pub policy_error: Option<String>,
    /// Each rule.
    pub rules: Vec<RuleState>,
    /// The trust roots of `verify` rules.
    pub trust_roots: Vec<TrustRootState>,
    /// The pulled policy artifact in force (`portcullis policy pull`), when
    /// the policy file belongs to one.
    pub policy_artifact: Option<crate::state::policy_store::Release>,
    /// This version of Portcullis.
    pub version: String,
}

impl GateState {
    /// Observe the gate's configuration: the policy at `policy_path`, the
    /// trust roots its rules name under `state`.
    pub fn observe(policy_path: &Path, state: &StateDir) -> GateState {
        match Policy::load(policy_path) {
            Ok(p) => Self::of(&p, state),
            Err(e) => GateState {
                mode: "enforce".into(),
                policy_path: policy_path.display().to_string(),
                policy_digest: std::fs::read(policy_path)
                    .ok()
                    .map(|b| crate::digest::sha256_prefixed(&b)),
                policy_error: Some(e.to_string()),
                rules: Vec::new(),
                trust_roots: Vec::new(),
                policy_artifact: crate::state::policy_store::release_of(policy_path),
                version: env!("CARGO_PKG_VERSION").into(),
            },
        }
    }

    /// The state of a loaded policy.
    pub fn of(p: &Policy, state: &StateDir) -> GateState {
        let mut rules = Vec::new();
        let mut roots: Vec<TrustRootState> = Vec::new();
        for r in &p.rules {
            let action = match r.action {
                Action::Verify => "verify",
                Action::Allow => "allow",
                Action::Deny => "deny",
            };
            rules.push(RuleState {
                name: r.name.clone(),
                action: action.into(),
                mode: r.mode.unwrap_or(p.mode).as_str().into(),
            });
            if r.action != Action::Verify {
                continue;
            }
            let path = crate::state::trust_names::trust_root_path(state, r.trust_root.as_deref());
            let shown = path.display().to_string();
            match roots.iter_mut().find(|t| t.path == shown) {
                Some(t) => t.rules.push(r.name.clone()),
                None => roots.push(TrustRootState {
                    digest: std::fs::read(&path)
                        .ok()
                        .map(|b| crate::digest::sha256_prefixed(&b)),
                    path: shown,
                    rules: vec![r.name.clone()],
                }),
            }
        }
        GateState {
            mode: p.mode.as_str().into(),
            policy_path: p.path.display().to_string(),
            policy_digest: Some(p.digest.clone()),
            policy_error: None,
            rules,
            trust_roots: roots,
            policy_artifact: crate::state::policy_store::release_of(&p.path)
                .filter(|r| r.policy_digest == p.digest),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// Is every start subject to enforcement (global and every rule's mode enforce)?
    pub fn enforcing(&self) -> bool {
        self.mode == "enforce" && self.rules.iter().all(|r| r.mode == "enforce")
    }

    /// `name=mode` for each rule, comma-separated.
    pub fn rule_modes(&self) -> String {
        self.rules
            .iter()
            .map(|r| format!("{}={}", r.name, r.mode))
            .collect::<Vec<_>>()
            .join(",")
    }
}
