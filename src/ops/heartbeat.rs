//! The gate's presence, stated: what it enforces right now (`portcullis heartbeat`).
//!
//! This module owns the [`GateState`] (the global mode, each rule's mode and
//! action, the policy file and its digest, the trust roots the rules use and
//! their digests), its journal record ([`message_id::HEARTBEAT`]) written
//! periodically by `portcullis-heartbeat.timer` and read back by
//! [`crate::evidence`], and the archive of what the digests name:
//! content-addressed copies of each policy (`policies/sha256-<hex>.toml`) and
//! trust root (`trust-roots/sha256-<hex>.json`) in the state directory,
//! written once, atomically, so an evidence pack can include the text of
//! every version the journal mentions.
//!
//! [`message_id::HEARTBEAT`]: crate::journal::message_id::HEARTBEAT

use std::path::{Path, PathBuf};

use crate::cache::StateDir;
use crate::journal::{message_id, Record, IDENTIFIER};

/// Errors archiving what the gate uses.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// A copy could not be written.
    #[error(
        "cannot archive {what} in {dir}: {source}; check that the state directory is writable"
    )]
    Archive {
        /// What was archived.
        what: String,
        /// The archive directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

pub use crate::policy::summary::{GateState, RuleState, TrustRootState};
pub use crate::state::archive::{archived, store, POLICY_ARCHIVE, TRUST_ARCHIVE};

impl GateState {
    /// The heartbeat record.
    pub fn record(&self) -> Record {
        let digest = self.policy_digest.as_deref().unwrap_or("unreadable");
        let message = match &self.policy_error {
            Some(e) => format!(
                "heartbeat: policy {} unusable, every start is refused: {e}",
                self.policy_path
            ),
            None => {
                format!(
                    "heartbeat: mode {}{} policy {} ({digest}), {} trust root(s)",
                    self.mode,
                    if self.enforcing() {
                        ""
                    } else {
                        " (not every rule enforces)"
                    },
                    self.policy_path,
                    self.trust_roots.len()
                ) + &self
                    .policy_artifact
                    .as_ref()
                    .map(|a| format!(", pulled policy serial {} ({})", a.serial, a.digest))
                    .unwrap_or_default()
            }
        };
        let roots = self
            .trust_roots
            .iter()
            .map(|t| format!("{}={}", t.path, t.digest.as_deref().unwrap_or("unreadable")))
            .collect::<Vec<_>>()
            .join(";");
        let root_digests = self
            .trust_roots
            .iter()
            .filter_map(|t| t.digest.clone())
            .collect::<Vec<_>>()
            .join(",");
        let mut fields = vec![
            ("SYSLOG_IDENTIFIER".to_string(), IDENTIFIER.to_string()),
            ("MESSAGE_ID".into(), message_id::HEARTBEAT.into()),
            ("PORTCULLIS_KIND".into(), "heartbeat".into()),
            ("PORTCULLIS_MODE".into(), self.mode.clone()),
            ("PORTCULLIS_RULE_MODES".into(), self.rule_modes()),
            ("PORTCULLIS_ENFORCING".into(), self.enforcing().to_string()),
            ("PORTCULLIS_POLICY_PATH".into(), self.policy_path.clone()),
            (
                "PORTCULLIS_POLICY_DIGEST".into(),
                self.policy_digest.clone().unwrap_or_default(),
            ),
            (
                "PORTCULLIS_POLICY_ERROR".into(),
                self.policy_error.clone().unwrap_or_default(),
            ),
            ("PORTCULLIS_TRUST_ROOTS".into(), roots),
            ("PORTCULLIS_TRUST_ROOT_DIGEST".into(), root_digests),
            ("PORTCULLIS_VERSION".into(), self.version.clone()),
        ];
        if let Some(a) = &self.policy_artifact {
            fields.extend([
                ("PORTCULLIS_POLICY_SERIAL".to_string(), a.serial.to_string()),
                ("PORTCULLIS_POLICY_ARTIFACT".into(), a.digest.clone()),
                ("PORTCULLIS_POLICY_SOURCE".into(), a.source.clone()),
            ]);
        }
        fields.retain(|(_, v)| !v.is_empty());
        Record {
            message,
            priority: if self.policy_error.is_some() { 3 } else { 6 },
            fields,
        }
    }
}

/// Archive the policy file and the trust roots `gs` names (content-addressed,
/// written once). Files whose bytes changed since `gs` was observed are
/// archived under their new digest, never under the old one.
pub fn archive(gs: &GateState, state: &StateDir) -> Result<Vec<PathBuf>, HeartbeatError> {
    let mut written = Vec::new();
    let mut one = |src: &Path, dir: &str, ext: &str| -> Result<(), HeartbeatError> {
        let Ok(bytes) = std::fs::read(src) else {
            return Ok(());
        };
        let dir = state.root().join(dir);
        if let Some(p) = store(&dir, &bytes, ext).map_err(|source| HeartbeatError::Archive {
            what: src.display().to_string(),
            dir: dir.clone(),
            source,
        })? {
            written.push(p);
        }
        Ok(())
    };
    if gs.policy_digest.is_some() {
        one(Path::new(&gs.policy_path), POLICY_ARCHIVE, "toml")?;
    }
    for t in &gs.trust_roots {
        one(Path::new(&t.path), TRUST_ARCHIVE, "json")?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn policy(text: &str, dir: &Path) -> Policy {
        Policy::parse(text, &dir.join("policy.toml")).unwrap()
    }

    #[test]
    fn states_modes_digests_and_roots() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let root = dir.path().join("root.json");
        std::fs::write(&root, b"{}").unwrap();
        let text = format!(
            "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"a\"\nimages = [\"x.io/*\"]\ntrust_root = \"{}\"\n[[rule.signer]]\nissuer = \"https://i\"\nsubject = \"s\"\n[[rule]]\nname = \"w\"\nimages = [\"y.io/*\"]\nmode = \"warn\"\naction = \"allow\"\n",
            root.display()
        );
        let p = policy(&text, dir.path());
        let gs = GateState::of(&p, &state);
        assert_eq!(gs.mode, "enforce");
        assert_eq!(gs.rule_modes(), "a=enforce,w=warn");
        assert!(!gs.enforcing());
        assert_eq!(gs.trust_roots.len(), 1);
        assert_eq!(
            gs.trust_roots[0].digest.as_deref(),
            Some(crate::digest::sha256_prefixed(b"{}").as_str())
        );
        let r = gs.record();
        assert_eq!(r.field("MESSAGE_ID"), Some(message_id::HEARTBEAT));
        assert_eq!(r.field("PORTCULLIS_POLICY_DIGEST"), Some(p.digest.as_str()));
        assert_eq!(r.field("PORTCULLIS_ENFORCING"), Some("false"));
        assert!(r
            .field("PORTCULLIS_TRUST_ROOTS")
            .unwrap()
            .contains("root.json=sha256:"));
    }

    #[test]
    fn unusable_policy_is_stated_as_refusing_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "mode = 3\n").unwrap();
        let gs = GateState::observe(&path, &StateDir::new(dir.path()));
        assert!(gs.policy_error.is_some());
        let r = gs.record();
        assert_eq!(r.priority, 3);
        assert!(
            r.message.contains("every start is refused"),
            "{}",
            r.message
        );
        assert!(r.field("PORTCULLIS_POLICY_DIGEST").is_some());
    }

    #[test]
    fn archives_once_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "mode = \"audit\"\ndefault = \"allow\"\n").unwrap();
        let gs = GateState::observe(&path, &state);
        assert_eq!(archive(&gs, &state).unwrap().len(), 1);
        assert_eq!(archive(&gs, &state).unwrap().len(), 0);
        let copy = archived(
            &state,
            POLICY_ARCHIVE,
            gs.policy_digest.as_deref().unwrap(),
            "toml",
        )
        .unwrap();
        assert_eq!(std::fs::read(copy).unwrap(), std::fs::read(&path).unwrap());
    }
}
