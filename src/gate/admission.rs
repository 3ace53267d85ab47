//! One gated start, whichever wrapper saw it: policy, containerd lookup,
//! decision, journal record.
//!
//! This module owns the sequence both gates run (the shim wrapper at shim
//! `start`, the runc gate at `runc create`): load the policy, look the
//! container up in containerd, [`gate::decide`], apply the caller's binding
//! checks (what the runc gate sees of the task that the record does not
//! say), write the verdict with [`journal::record`] tagged with the gate that
//! took it (`PORTCULLIS_GATE`), and turn the result into an allow (with the
//! inner shim the policy names) or the one denial line.

use std::time::Instant;

use crate::containerd::{self, ImageTarget};
use crate::gate::journal::{self, DeadlineJournald, Record, Spool};
use crate::gate::{self, Decision, Kind, Outcome, Subject, Verdict};
use crate::policy::{Mode, Policy};
use crate::state::cache::StateDir;
use crate::state::chains;

/// Which wrapper took a decision (the journal's `PORTCULLIS_GATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// `containerd-shim-portcullis-v2 … start`.
    Shim,
    /// `portcullis-runc … create|run|restore`.
    Runc,
}

impl GateKind {
    /// The journal value.
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::Shim => "shim",
            GateKind::Runc => "runc",
        }
    }

    /// What a start request lacks and how containerd supplies it: the
    /// refusal's fix when the lookup cannot even be asked.
    pub fn missing_request_hint(self, req: &StartRequest) -> String {
        let mut missing = Vec::new();
        let (ns, id, addr) = match self {
            GateKind::Shim => ("-namespace", "-id", "-address"),
            GateKind::Runc => (
                "the namespace (bundle path or --root)",
                "the container ID",
                "containerd's socket (GRPC_ADDRESS/CONTAINERD_ADDRESS)",
            ),
        };
        if req.namespace.is_none() {
            missing.push(ns);
        }
        if req.id.is_none() {
            missing.push(id);
        }
        if req.address.is_none() {
            missing.push(addr);
        }
        match self {
            GateKind::Shim => format!(
                "the shim gate was started without {} (containerd passes -namespace, -id and -address; start it only through containerd)",
                missing.join(", ")
            ),
            GateKind::Runc => format!(
                "the runc gate could not tell {} (containerd's runc shim supplies them; run portcullis-runc only as containerd's runc)",
                missing.join(", ")
            ),
        }
    }
}

/// The start to decide.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// containerd namespace.
    pub namespace: Option<String>,
    /// Container ID.
    pub id: Option<String>,
    /// containerd's gRPC socket.
    pub address: Option<String>,
}

/// Where a gated start's time went, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Reading and parsing the policy.
    pub policy_us: u64,
    /// The containerd lookup (connect, container, image, manifest, snapshot).
    pub lookup_us: u64,
    /// The decision's phases (verdict-cache key, cache read, verification).
    pub phases: gate::Phases,
    /// The whole decision.
    pub decide_us: u64,
    /// Writing the journal record.
    pub journal_us: u64,
    /// From the start of the admission to the hand-over.
    pub total_us: u64,
}

/// The outcome of an admission.
#[derive(Debug)]
pub enum Admission {
    /// Proceed; the inner shim the policy names (the shim wrapper's target).
    Allow {
        /// The policy's inner shim.
        shim: String,
    },
    /// Refuse with this one line.
    Refuse(String),
}

/// A check of what will actually run against the looked-up record, given
/// the snapshot's mounts the lookup fetched with it (`None` when the record
/// has no snapshot); `Err` is the reason the start does not run what was
/// verified.
pub type Binding<'a> = &'a dyn Fn(&ImageTarget, Option<MountsFound>) -> Result<(), String>;

/// The snapshot's mounts as the lookup found them, or why it could not.
pub type MountsFound = Result<Vec<containerd::SnapshotMount>, containerd::LookupError>;

/// Decide one start: the sequence both wrappers share. `binding` runs on a
/// successful lookup; its failure fails the decision (deny in enforce mode,
/// warn/audit as the policy's mode says), keeping the image's name and digest
/// in the denial line.
pub fn admit(
    req: &StartRequest,
    gate_kind: GateKind,
    binding: Option<Binding<'_>>,
) -> (Admission, Timings) {
    let t0 = Instant::now();
    let state = StateDir::from_env();
    let policy = Policy::load_for_start(&Policy::default_path(), &state);
    // Verification parses registry bytes: only ever in the sandbox.
    crate::gate::sandbox::require();
    let mut tm = Timings {
        policy_us: t0.elapsed().as_micros() as u64,
        ..Timings::default()
    };
    let started = Instant::now();
    if let Ok(p) = &policy {
        keep_policy(p, &state);
    }
    let subject = Subject {
        namespace: req.namespace.clone().unwrap_or_default(),
        container_id: req.id.clone(),
    };
    // One connection: the snapshot's mounts (for a binding check) in the
    // same round trip as its record, and the image's chain ID from the
    // state directory once it is known (crate::state::chains).
    let found = match (&req.namespace, &req.id, &req.address) {
        (Some(ns), Some(id), Some(addr)) => containerd::start::lookup(
            addr,
            ns,
            id,
            containerd::lookup_timeout(),
            &|manifest| chains::get(&state, manifest),
            binding.is_some(),
        ),
        _ => Err(containerd::LookupError::Incomplete(
            gate_kind.missing_request_hint(req),
        )),
    };
    let (lookup, mounts) = match found {
        Ok(f) => {
            if let Some((manifest, chain)) = &f.computed_chain {
                chains::put(&state, manifest, chain);
            }
            (Ok(f.target), f.mounts)
        }
        Err(e) => (Err(e), None),
    };
    let binding_failure = match (&lookup, binding) {
        (Ok(t), Some(check)) => check(t, mounts).err(),
        _ => None,
    };
    let t_decide = Instant::now();
    tm.lookup_us = (t_decide - started).as_micros() as u64;
    let mut decision = gate::decide(&policy, lookup, &state, &subject, started);
    if let Some(reason) = binding_failure {
        fail_binding(&mut decision, reason);
    }
    let t_journal = Instant::now();
    tm.decide_us = (t_journal - t_decide).as_micros() as u64;
    tm.phases = decision.phases;
    let mut record = Record::from_decision(&decision);
    record
        .fields
        .push(("PORTCULLIS_GATE".into(), gate_kind.as_str().into()));
    let spool = Spool::new(state.spool_dir());
    // Bounded: a frozen journald spools the record instead of holding the start.
    let sink = DeadlineJournald::from_env();
    if let Err(e) = journal::record(&sink, &spool, &record) {
        // The verdict cannot be recorded anywhere: an unrecorded start is
        // not allowed in enforce mode.
        if decision.allows() && decision.mode == Mode::Enforce {
            let image = decision.subject();
            // A full spool names its own fix (journald, then a replay).
            let line = match e {
                journal::JournalError::SpoolFull { .. } => {
                    format!("portcullis: denied {image}: {e}")
                }
                _ => format!(
                    "portcullis: denied {image}: {e}; free or fix the state directory {}",
                    state.root().display()
                ),
            };
            return (Admission::Refuse(line), tm);
        }
        warn(gate_kind, &format!("portcullis: warning: {e}"));
    }
    tm.journal_us = t_journal.elapsed().as_micros() as u64;
    tm.total_us = t0.elapsed().as_micros() as u64;
    let admission = if decision.allows() {
        Admission::Allow {
            shim: decision.shim,
        }
    } else {
        Admission::Refuse(decision.denial_line())
    };
    (admission, tm)
}

/// Keep a content-addressed copy of the policy this start is decided under
/// (`policies/sha256-<hex>.toml` in the state directory, the heartbeat's
/// archive), so an evidence pack never lacks the text of a policy that was
/// in force. One `stat` when the copy exists; the file is re-read and stored
/// only when its bytes still hash to the digest decided under. Best effort:
/// a failure leaves the copy to the next start or heartbeat.
pub fn keep_policy(policy: &Policy, state: &StateDir) {
    use crate::state::archive::{archived, store, POLICY_ARCHIVE};
    let Some(copy) = archived(state, POLICY_ARCHIVE, &policy.digest, "toml") else {
        return;
    };
    if copy.exists() {
        return;
    }
    let Ok(Some(bytes)) =
        crate::base::fsio::read_bounded(&policy.path, crate::policy::MAX_POLICY_BYTES)
    else {
        return;
    };
    if crate::digest::sha256_prefixed(&bytes) == policy.digest {
        if let Some(dir) = copy.parent() {
            let _ = store(dir, &bytes, "toml");
        }
    }
}

/// A warning: to stderr for the shim (containerd logs it); never for the
/// runc gate, whose streams are the container's.
fn warn(gate_kind: GateKind, line: &str) {
    if gate_kind == GateKind::Shim {
        eprintln!("{line}");
    }
}

/// Turn a decision into a failure for `reason` under the decision's mode.
fn fail_binding(d: &mut Decision, reason: String) {
    d.outcome = Outcome::Fail;
    d.reason = reason;
    d.rejection = Some(crate::verify::rejection::Class::Rootfs);
    let (verdict, kind) = match d.mode {
        Mode::Enforce => (Verdict::Deny, Kind::Denied),
        Mode::Warn => (Verdict::Warn, Kind::Warned),
        Mode::Audit => (Verdict::Allow, Kind::Audited),
    };
    d.verdict = verdict;
    d.kind = kind;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_decided_under_is_kept_by_digest() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("policy.toml");
        std::fs::write(&path, "mode = \"audit\"\ndefault = \"allow\"\n").unwrap();
        let policy = Policy::load(&path).unwrap();
        let state = StateDir::new(d.path().join("state"));
        let copy = crate::state::archive::archived(
            &state,
            crate::state::archive::POLICY_ARCHIVE,
            &policy.digest,
            "toml",
        )
        .unwrap();
        keep_policy(&policy, &state);
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&path).unwrap());
        // changed on disk since it was decided under: nothing stored under the old digest
        std::fs::remove_file(&copy).unwrap();
        std::fs::write(&path, "mode = \"enforce\"\ndefault = \"deny\"\n").unwrap();
        keep_policy(&policy, &state);
        assert!(!copy.exists());
    }

    /// A rootfs the runtime is given that is not the one containerd
    /// prepared fails the decision with its own class, whatever it said.
    #[test]
    fn a_rootfs_binding_failure_is_classed_rootfs() {
        let d = tempfile::tempdir().unwrap();
        let policy = Policy::parse(
            "mode = \"warn\"\ndefault = \"allow\"\n",
            &d.path().join("policy.toml"),
        );
        let subject = Subject {
            namespace: "ns".into(),
            container_id: Some("c1".into()),
        };
        let state = StateDir::new(d.path().join("state"));
        let lookup = Err(containerd::LookupError::Incomplete("test".into()));
        let mut decision = gate::decide(&policy, lookup, &state, &subject, Instant::now());
        assert_eq!(
            decision.rejection,
            Some(crate::verify::rejection::Class::Lookup)
        );
        fail_binding(&mut decision, "rootfs is not the prepared one".into());
        assert_eq!(
            (decision.verdict, decision.outcome, decision.rejection),
            (
                Verdict::Warn,
                Outcome::Fail,
                Some(crate::verify::rejection::Class::Rootfs)
            )
        );
    }

    #[test]
    fn gate_names() {
        assert_eq!(GateKind::Shim.as_str(), "shim");
        assert_eq!(GateKind::Runc.as_str(), "runc");
    }

    #[test]
    fn missing_arguments_are_named_with_the_fix() {
        let none = StartRequest::default();
        let shim = GateKind::Shim.missing_request_hint(&none);
        assert!(shim.contains("without -namespace, -id, -address"), "{shim}");
        assert!(shim.contains("-namespace, -id and -address"), "{shim}");
        let only_addr = StartRequest {
            namespace: Some("default".into()),
            id: Some("web".into()),
            address: None,
        };
        let runc = GateKind::Runc.missing_request_hint(&only_addr);
        assert!(
            runc.contains("could not tell containerd's socket"),
            "{runc}"
        );
        assert!(!runc.contains("container ID"), "{runc}");
    }
}
