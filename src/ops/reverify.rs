//! Revocation for running containers (`portcullis reverify`).
//!
//! This module owns deciding again, under the policy and trust root in force
//! now, for every task running on the node: it lists the running tasks
//! ([`crate::containerd::tasks`]), takes for each the digest its start was
//! allowed for (the gate's journal record; containerd's image record when
//! there is none), and runs the gate's own decision ([`gate::redecide`]: the
//! one verification path, with the verdict cache bypassed) over the cached
//! signatures and attestations. A container that would now be refused is
//! recorded in the journal under its own `MESSAGE_ID`
//! ([`message_id::REVOKED`]); under `revoked = "stop"` its task is then
//! stopped (SIGTERM, SIGKILL after a grace period) and that is recorded too
//! ([`message_id::REVOKED_STOPPED`]). Then, unless told not to, it decides
//! ahead for every image on the node ([`images`]), so that the next start of
//! each finds its pass in the verdict cache under the policy and trust root
//! that changed.

pub mod images;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::containerd::tasks::{self, RunningTask};
use crate::containerd::{self, ImageTarget, LookupError};
use crate::gate::journal::{self, message_id, DeadlineJournald, Record, Sink, Spool};
use crate::gate::{self, Decision, Outcome, Subject, Verdict};
use crate::policy::{Policy, PolicyError, Revoked};
use crate::reference::ImageRef;
use crate::state::cache::StateDir;
use crate::verify::rejection::Class;

/// Errors that stop `portcullis reverify` before it can decide anything.
#[derive(Debug, thiserror::Error)]
pub enum ReverifyError {
    /// containerd could not list the namespaces or tasks.
    #[error("cannot list the running tasks: {0}; check that containerd runs and --address names its socket")]
    Containerd(#[from] LookupError),
}

/// What to re-decide and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// containerd's gRPC socket.
    pub address: String,
    /// One namespace, or every namespace containerd knows.
    pub namespace: Option<String>,
    /// The policy in force.
    pub policy: PathBuf,
    /// The state directory (signature cache, trust roots, spool).
    pub state_dir: PathBuf,
    /// How long a stopped task has between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Read the gate's records from this journal directory instead of the
    /// system journal.
    pub journal_directory: Option<String>,
    /// Also decide ahead for every image record of the namespaces
    /// ([`images::decide_all`]).
    pub decide_ahead: bool,
}

/// Where the digest decided for came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestSource {
    /// The gate's journal record of the container's start (the digest it allowed).
    Journal,
    /// containerd's image record (its current target): no gate record found.
    Containerd,
}

impl DigestSource {
    /// The output and journal spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestSource::Journal => "journal",
            DigestSource::Containerd => "containerd",
        }
    }
}

/// What became of one running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Its verdict still holds.
    Ok,
    /// Its start would now be refused; it keeps running (`revoked = "report"`,
    /// or a failure of this node rather than of the image).
    WouldRefuse,
    /// Its requirements fail now, but the mode (warn or audit) would let it
    /// start: recorded, never stopped.
    NoLongerHolds,
    /// Its start would now be refused and its task was stopped.
    Stopped,
    /// Its start would now be refused and stopping its task failed.
    StopFailed,
}

impl Status {
    /// The output and journal spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::WouldRefuse => "would refuse",
            Status::NoLongerHolds => "no longer holds",
            Status::Stopped => "stopped",
            Status::StopFailed => "stop failed",
        }
    }

    fn journal(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::WouldRefuse => "would-refuse",
            Status::NoLongerHolds => "no-longer-holds",
            Status::Stopped => "stopped",
            Status::StopFailed => "stop-failed",
        }
    }
}

/// One running container, decided again.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// containerd namespace.
    pub namespace: String,
    /// Container ID.
    pub container_id: String,
    /// What became of it.
    pub status: Status,
    /// Where the digest came from.
    pub digest_source: DigestSource,
    /// The decision now (verdict, rule, reason, rejection class, signer…).
    pub decision: Decision,
    /// Why a container that would be refused was not stopped, or how the
    /// stop went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The journal record could not be written (nor spooled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_error: Option<String>,
}

impl Finding {
    /// The output line: status, container, image and why.
    pub fn line(&self) -> String {
        let d = &self.decision;
        let image = match (&d.image_ref, &d.image_digest) {
            (Some(r), Some(g)) => format!("{r}@{g}"),
            (Some(r), None) => r.clone(),
            _ => "unknown image".into(),
        };
        let mut line = format!(
            "{}: {}/{} {image} (digest from {}, rule {}): {}",
            self.status.as_str(),
            self.namespace,
            self.container_id,
            self.digest_source.as_str(),
            d.rule,
            crate::bundle::one_line(&d.reason)
        );
        if let Some(n) = &self.note {
            line.push_str(&format!(" [{n}]"));
        }
        if let Some(e) = &self.record_error {
            line.push_str(&format!(" [not recorded: {e}]"));
        }
        line
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The policy file decided under.
    pub policy_path: String,
    /// Its digest, when it was readable and valid.
    pub policy_digest: Option<String>,
    /// Why the policy is unusable, when it is (every container then would be
    /// refused, and none is stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_error: Option<String>,
    /// The policy's `revoked` action.
    pub revoked: Revoked,
    /// The namespaces looked at.
    pub namespaces: Vec<String>,
    /// Why the gate's records could not be read (every digest then comes
    /// from containerd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_error: Option<String>,
    /// One per running container.
    pub containers: Vec<Finding>,
    /// Every image on the node, decided ahead of its next start (absent
    /// under `--no-decide-ahead`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<images::AheadReport>,
    /// Wall time of the whole run, in milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    /// Does every running container's verdict still hold?
    pub fn all_hold(&self) -> bool {
        self.containers.iter().all(|f| f.status == Status::Ok)
    }

    /// Did a stop or a record fail?
    pub fn has_failures(&self) -> bool {
        self.containers
            .iter()
            .any(|f| f.status == Status::StopFailed || f.record_error.is_some())
    }
}

/// The gate's record of a container's start, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    image_ref: String,
    image_digest: String,
    platform_digest: Option<String>,
}

/// Decide again for every running task.
pub fn run(o: &Options) -> Result<Report, ReverifyError> {
    let started = Instant::now();
    let timeout = containerd::lookup_timeout();
    let namespaces = match &o.namespace {
        Some(n) => vec![n.clone()],
        None => tasks::namespaces(&o.address, timeout)?,
    };
    let mut running = Vec::new();
    for ns in &namespaces {
        running.extend(tasks::running_tasks(&o.address, ns, timeout)?);
    }
    let state = StateDir::new(&o.state_dir);
    // Read once, as a start reads it (its compiled form stored for the next
    // start): the containers' decisions, those made ahead and the report's
    // digest are then of the same bytes, even if the file is replaced
    // meanwhile.
    let policy = Policy::load_for_start(&o.policy, &state);
    // Verification parses registry bytes: only ever in the sandbox.
    crate::gate::sandbox::require();
    let (recorded, journal_error) = match recorded_starts(&running, o.journal_directory.as_deref())
    {
        Ok(r) => (r, None),
        Err(e) => (HashMap::new(), Some(e)),
    };
    let revoked = policy
        .as_ref()
        .map(|p| p.revoked)
        .unwrap_or(Revoked::Report);
    let spool = Spool::new(state.spool_dir());
    let sink = DeadlineJournald::from_env();
    let containers = running
        .iter()
        .map(|task| {
            let key = (task.namespace.clone(), task.container_id.clone());
            reverify_one(o, &policy, &state, task, recorded.get(&key), &sink, &spool)
        })
        .collect();
    let ahead = o
        .decide_ahead
        .then(|| images::decide_all(&o.address, &namespaces, &policy, &state, timeout));
    let (policy_path, policy_digest, policy_error) = match &policy {
        Ok(p) => (p.path.display().to_string(), Some(p.digest.clone()), None),
        Err(e) => (o.policy.display().to_string(), None, Some(e.to_string())),
    };
    Ok(Report {
        policy_path,
        policy_digest,
        policy_error,
        revoked,
        namespaces,
        journal_error,
        containers,
        ahead,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

fn reverify_one(
    o: &Options,
    policy: &Result<Policy, PolicyError>,
    state: &StateDir,
    task: &RunningTask,
    recorded: Option<&Recorded>,
    sink: &dyn Sink,
    spool: &Spool,
) -> Finding {
    let lookup = containerd::lookup_container(
        &o.address,
        &task.namespace,
        &task.container_id,
        containerd::lookup_timeout(),
    );
    let (lookup, digest_source) = with_recorded_digest(lookup, recorded);
    let subject = Subject {
        namespace: task.namespace.clone(),
        container_id: Some(task.container_id.clone()),
    };
    let decision = gate::redecide(policy, lookup, state, &subject, Instant::now());
    let mut f = Finding {
        namespace: task.namespace.clone(),
        container_id: task.container_id.clone(),
        status: status_of(&decision),
        digest_source,
        decision,
        note: None,
        record_error: None,
    };
    if f.status == Status::Ok {
        return f;
    }
    let revoked = policy.as_ref().map(|p| p.revoked).unwrap_or_default();
    let stop = f.status == Status::WouldRefuse && revoked == Revoked::Stop;
    let stop = stop && {
        match node_failure(f.decision.rejection) {
            Some(why) => {
                f.note = Some(format!("not stopped: {why}"));
                false
            }
            None => true,
        }
    };
    let action = if stop { Revoked::Stop } else { Revoked::Report };
    let rec = revoked_record(&f, action);
    if let Err(e) = journal::record(sink, spool, &rec) {
        f.record_error = Some(e.to_string());
    }
    if !stop {
        return f;
    }
    let outcome = tasks::stop_task(
        &o.address,
        &task.namespace,
        &task.container_id,
        o.grace,
        containerd::lookup_timeout(),
    );
    match &outcome {
        Ok(how) => {
            f.status = Status::Stopped;
            f.note = Some(format!("stopped by {}", how.signal()));
        }
        Err(e) => {
            f.status = Status::StopFailed;
            f.note = Some(format!(
                "stop failed: {e}; stop it by hand: ctr -n {} task kill -s KILL {}",
                task.namespace, task.container_id
            ));
        }
    }
    let rec = stopped_record(
        &f,
        outcome
            .as_ref()
            .map(|s| s.signal())
            .map_err(|e| e.to_string()),
    );
    if let Err(e) = journal::record(sink, spool, &rec) {
        f.record_error = Some(e.to_string());
    }
    f
}

/// What a decision means for a running container.
fn status_of(d: &Decision) -> Status {
    match (d.outcome, d.verdict) {
        (Outcome::Pass, _) => Status::Ok,
        (Outcome::Fail, Verdict::Deny) => Status::WouldRefuse,
        (Outcome::Fail, _) => Status::NoLongerHolds,
    }
}

/// A refusal that says something about this node (its policy file, its
/// containerd, its cache, its sandbox), not about the image: reported, never
/// a reason to stop a running container. `Some(why)` for those.
fn node_failure(class: Option<Class>) -> Option<&'static str> {
    match class? {
        Class::Policy => Some("the policy file is unusable (fix it: `portcullis policy check`)"),
        Class::Lookup => Some("containerd could not describe the container"),
        Class::Cache => Some("the signature cache is unreadable"),
        Class::Sandbox => Some("verification could not run in its sandbox"),
        _ => None,
    }
}

/// The lookup to decide on: containerd's, with the digest the gate recorded
/// for the container's start when there is one for the same image name
/// (the tag may have moved since). Without a usable containerd record the
/// gate's record alone names the image.
fn with_recorded_digest(
    lookup: Result<ImageTarget, LookupError>,
    recorded: Option<&Recorded>,
) -> (Result<ImageTarget, LookupError>, DigestSource) {
    let Some(r) = recorded else {
        return (lookup, DigestSource::Containerd);
    };
    match lookup {
        Ok(mut t) => {
            let same_image = ImageRef::parse(&t.name)
                .map(|n| n.normalized().to_string())
                .unwrap_or_else(|_| t.name.clone())
                == r.image_ref;
            if !same_image {
                // A record of an earlier container of the same ID.
                return (Ok(t), DigestSource::Containerd);
            }
            if t.target_digest != r.image_digest {
                // The image record moved on since the start: the lineage
                // and platform facts read now are the new image's; the
                // gate checked the started one's at its start.
                t.target_digest = r.image_digest.clone();
                t.platform_digest = r.platform_digest.clone();
                t.platform_ambiguity = None;
                t.snapshot_key = None;
                t.snapshot_parent = None;
                t.chain_id = None;
            }
            (Ok(t), DigestSource::Journal)
        }
        Err(e)
            if matches!(
                e.cause(),
                LookupError::Api { .. } | LookupError::Incomplete(_)
            ) =>
        {
            (
                Ok(ImageTarget {
                    name: r.image_ref.clone(),
                    target_digest: r.image_digest.clone(),
                    target_media_type: String::new(),
                    platform_digest: r.platform_digest.clone(),
                    platform_ambiguity: None,
                    snapshot_key: None,
                    snapshotter: None,
                    chain_id: None,
                    snapshot_parent: None,
                }),
                DigestSource::Journal,
            )
        }
        Err(e) => (Err(e), DigestSource::Containerd),
    }
}

/// The gate's latest allowing record of each running container's start,
/// read in one `journalctl` query.
fn recorded_starts(
    running: &[RunningTask],
    directory: Option<&str>,
) -> Result<HashMap<(String, String), Recorded>, String> {
    if running.is_empty() {
        return Ok(HashMap::new());
    }
    let mut cmd = Command::new("journalctl");
    cmd.args(["-o", "json", "--no-pager", "-q"]);
    if let Some(d) = directory {
        cmd.arg(format!("--directory={d}"));
    }
    cmd.arg(format!("SYSLOG_IDENTIFIER={}", journal::IDENTIFIER));
    // Only records written by root (the gates) count.
    cmd.arg("_UID=0");
    for t in running {
        cmd.arg(format!("PORTCULLIS_CONTAINER_ID={}", t.container_id));
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run journalctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "journalctl failed: {}",
            crate::base::text::last_line(&out.stderr)
        ));
    }
    Ok(latest_allowed(&crate::ops::audit::parse_lines(&out.stdout)))
}

/// Per (namespace, container), the last record that let the start proceed.
fn latest_allowed(
    entries: &[crate::ops::audit::AuditEntry],
) -> HashMap<(String, String), Recorded> {
    let mut m = HashMap::new();
    for e in entries {
        if e.get("verdict") == Verdict::Deny.as_str() || e.get("image_digest").is_empty() {
            continue;
        }
        m.insert(
            (
                e.get("namespace").to_string(),
                e.get("container_id").to_string(),
            ),
            Recorded {
                image_ref: e.get("image_ref").to_string(),
                image_digest: e.get("image_digest").to_string(),
                platform_digest: Some(e.get("platform_digest").to_string())
                    .filter(|s| !s.is_empty()),
            },
        );
    }
    m
}

/// The journal record of a container whose verdict no longer holds: the
/// decision's fields, under `portcullis-reverify` and [`message_id::REVOKED`].
pub fn revoked_record(f: &Finding, action: Revoked) -> Record {
    let d = &f.decision;
    let mut r = Record::from_decision(d);
    set(&mut r, "SYSLOG_IDENTIFIER", journal::REVERIFY_IDENTIFIER);
    set(&mut r, "MESSAGE_ID", message_id::REVOKED);
    r.priority = 3;
    r.message = format!(
        "verdict no longer holds for running container {}/{} ({}): {} under the policy in force: {}",
        f.namespace,
        f.container_id,
        subject(d),
        f.status.as_str(),
        crate::bundle::one_line(&d.reason)
    );
    r.fields.extend([
        (
            "PORTCULLIS_REVERIFY".to_string(),
            f.status.journal().to_string(),
        ),
        (
            "PORTCULLIS_DIGEST_SOURCE".into(),
            f.digest_source.as_str().into(),
        ),
        ("PORTCULLIS_REVOKED_ACTION".into(), action.as_str().into()),
    ]);
    if let Some(n) = &f.note {
        r.fields.push(("PORTCULLIS_NOTE".into(), n.clone()));
    }
    r
}

/// The journal record of a stop (`Ok(signal)`) or of a failed one.
pub fn stopped_record(f: &Finding, outcome: Result<&str, String>) -> Record {
    let d = &f.decision;
    let mut fields = vec![
        (
            "SYSLOG_IDENTIFIER".to_string(),
            journal::REVERIFY_IDENTIFIER.to_string(),
        ),
        ("MESSAGE_ID".into(), message_id::REVOKED_STOPPED.into()),
        ("PORTCULLIS_NAMESPACE".into(), f.namespace.clone()),
        ("PORTCULLIS_CONTAINER_ID".into(), f.container_id.clone()),
        (
            "PORTCULLIS_IMAGE_REF".into(),
            d.image_ref.clone().unwrap_or_default(),
        ),
        (
            "PORTCULLIS_IMAGE_DIGEST".into(),
            d.image_digest.clone().unwrap_or_default(),
        ),
        ("PORTCULLIS_RULE".into(), d.rule.clone()),
        ("PORTCULLIS_REASON".into(), d.reason.clone()),
        (
            "PORTCULLIS_REJECTION".into(),
            d.rejection.map(|c| c.as_str()).unwrap_or_default().into(),
        ),
        ("PORTCULLIS_POLICY_PATH".into(), d.policy_path.clone()),
        (
            "PORTCULLIS_REVOKED_ACTION".into(),
            Revoked::Stop.as_str().into(),
        ),
        (
            "PORTCULLIS_VERSION".into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
    ];
    let (priority, message) = match &outcome {
        Ok(signal) => {
            fields.push(("PORTCULLIS_REVERIFY".into(), "stopped".into()));
            fields.push(("PORTCULLIS_STOP_SIGNAL".into(), signal.to_string()));
            (
                5,
                format!(
                    "stopped running container {}/{} ({}) by {signal}: its verdict no longer holds",
                    f.namespace,
                    f.container_id,
                    subject(d)
                ),
            )
        }
        Err(e) => {
            fields.push(("PORTCULLIS_REVERIFY".into(), "stop-failed".into()));
            fields.push(("PORTCULLIS_STOP_ERROR".into(), e.clone()));
            (
                3,
                format!(
                    "could not stop running container {}/{} ({}) whose verdict no longer holds: {e}",
                    f.namespace,
                    f.container_id,
                    subject(d)
                ),
            )
        }
    };
    fields.retain(|(_, v)| !v.is_empty());
    Record {
        message,
        priority,
        fields,
    }
}

fn subject(d: &Decision) -> String {
    match (&d.image_ref, &d.image_digest) {
        (Some(r), Some(g)) => format!("{r}@{g}"),
        (Some(r), None) => r.clone(),
        _ => "unknown image".into(),
    }
}

fn set(r: &mut Record, key: &str, value: &str) {
    match r.fields.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.to_string(),
        None => r.fields.push((key.to_string(), value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::digest as d;
    use std::path::Path;

    fn target(name: &str, digest: String) -> ImageTarget {
        ImageTarget {
            name: name.into(),
            target_digest: digest,
            target_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            platform_digest: None,
            platform_ambiguity: None,
            snapshot_key: Some("c1".into()),
            snapshotter: Some("overlayfs".into()),
            chain_id: Some(d(7)),
            snapshot_parent: Some(d(7)),
        }
    }

    fn decision(policy: &str, t: ImageTarget) -> Decision {
        let dir = tempfile::tempdir().unwrap();
        let p = Policy::parse(policy, Path::new("/etc/portcullis/policy.toml"));
        gate::redecide(
            &p,
            Ok(t),
            &StateDir::new(dir.path()),
            &Subject {
                namespace: "prod".into(),
                container_id: Some("web".into()),
            },
            Instant::now(),
        )
    }

    const KEY_RULE: &str = "mode = \"enforce\"\ndefault = \"deny\"\nrevoked = \"stop\"\n[[rule]]\nname = \"demo\"\nimages = [\"127.0.0.1:5000/demo/*\"]\n[[rule.signer]]\nkey = \"/nonexistent/release.pub\"\n";

    #[test]
    fn the_revoked_record_carries_its_own_id_and_the_decision() {
        let dec = decision(KEY_RULE, target("127.0.0.1:5000/demo/a:1", d(1)));
        assert_eq!(status_of(&dec), Status::WouldRefuse);
        let f = Finding {
            namespace: "prod".into(),
            container_id: "web".into(),
            status: status_of(&dec),
            digest_source: DigestSource::Journal,
            decision: dec,
            note: None,
            record_error: None,
        };
        let r = revoked_record(&f, Revoked::Stop);
        assert_eq!(r.field("MESSAGE_ID"), Some(message_id::REVOKED));
        assert_eq!(r.field("SYSLOG_IDENTIFIER"), Some("portcullis-reverify"));
        assert_eq!(
            r.fields.iter().filter(|(k, _)| k == "MESSAGE_ID").count(),
            1
        );
        assert_eq!(r.field("PORTCULLIS_NAMESPACE"), Some("prod"));
        assert_eq!(r.field("PORTCULLIS_CONTAINER_ID"), Some("web"));
        assert_eq!(
            r.field("PORTCULLIS_IMAGE_REF"),
            Some("127.0.0.1:5000/demo/a:1")
        );
        assert_eq!(r.field("PORTCULLIS_IMAGE_DIGEST"), Some(d(1).as_str()));
        assert_eq!(r.field("PORTCULLIS_RULE"), Some("demo"));
        assert_eq!(r.field("PORTCULLIS_REJECTION"), Some("signers"));
        assert!(r
            .field("PORTCULLIS_REASON")
            .is_some_and(|x| x.contains("cannot read signer key")));
        assert_eq!(r.field("PORTCULLIS_REVERIFY"), Some("would-refuse"));
        assert_eq!(r.field("PORTCULLIS_DIGEST_SOURCE"), Some("journal"));
        assert_eq!(r.field("PORTCULLIS_REVOKED_ACTION"), Some("stop"));
        assert_eq!(r.field("PORTCULLIS_VERDICT_CACHE"), None);
        assert!(r.message.contains("prod/web"), "{}", r.message);
        assert_eq!(r.priority, 3);

        let s = stopped_record(&f, Ok("SIGTERM"));
        assert_eq!(s.field("MESSAGE_ID"), Some(message_id::REVOKED_STOPPED));
        assert_eq!(s.field("PORTCULLIS_REVERIFY"), Some("stopped"));
        assert_eq!(s.field("PORTCULLIS_STOP_SIGNAL"), Some("SIGTERM"));
        assert_eq!(s.field("PORTCULLIS_CONTAINER_ID"), Some("web"));
        assert_eq!(s.field("PORTCULLIS_REJECTION"), Some("signers"));
        let s = stopped_record(&f, Err("tasks.Kill failed".into()));
        assert_eq!(s.field("PORTCULLIS_REVERIFY"), Some("stop-failed"));
        assert_eq!(s.field("PORTCULLIS_STOP_ERROR"), Some("tasks.Kill failed"));
        assert_eq!(s.priority, 3);
    }

    #[test]
    fn status_follows_outcome_and_mode() {
        let allow = decision(
            "mode = \"enforce\"\ndefault = \"allow\"\n",
            target("x.io/a:1", d(1)),
        );
        assert_eq!(status_of(&allow), Status::Ok);
        let warn = decision(
            &KEY_RULE.replace("\"enforce\"", "\"warn\""),
            target("127.0.0.1:5000/demo/a:1", d(1)),
        );
        assert_eq!(status_of(&warn), Status::NoLongerHolds);
    }

    #[test]
    fn node_failures_are_reported_never_stopped() {
        for c in [Class::Policy, Class::Lookup, Class::Cache, Class::Sandbox] {
            assert!(node_failure(Some(c)).is_some(), "{c}");
        }
        for c in [
            Class::NotTheSigner,
            Class::NoTrustRoot,
            Class::ProvenanceUnmet,
            Class::Signers,
            Class::NoRule,
        ] {
            assert!(node_failure(Some(c)).is_none(), "{c}");
        }
    }

    #[test]
    fn the_recorded_digest_wins_over_a_moved_tag() {
        let rec = Recorded {
            image_ref: "127.0.0.1:5000/demo/a:1".into(),
            image_digest: d(1),
            platform_digest: None,
        };
        // The tag now points elsewhere: decide for what was started.
        let (t, src) =
            with_recorded_digest(Ok(target("127.0.0.1:5000/demo/a:1", d(2))), Some(&rec));
        let t = t.unwrap();
        assert_eq!(
            (t.target_digest.as_str(), src),
            (d(1).as_str(), DigestSource::Journal)
        );
        assert_eq!(t.chain_id, None);
        // Same digest: containerd's lineage facts are kept.
        let (t, _) = with_recorded_digest(Ok(target("127.0.0.1:5000/demo/a:1", d(1))), Some(&rec));
        assert_eq!(t.unwrap().chain_id, Some(d(7)));
        // A record of another image under the same container ID is ignored.
        let (t, src) = with_recorded_digest(Ok(target("x.io/other:1", d(3))), Some(&rec));
        assert_eq!(
            (t.unwrap().target_digest, src),
            (d(3), DigestSource::Containerd)
        );
        // No record: containerd's.
        let (_, src) = with_recorded_digest(Ok(target("x.io/other:1", d(3))), None);
        assert_eq!(src, DigestSource::Containerd);
        // The image record is gone: the gate's record names the image.
        let (t, src) = with_recorded_digest(
            Err(LookupError::Api {
                call: "images.Get",
                status: "NotFound".into(),
            }),
            Some(&rec),
        );
        assert_eq!(
            (t.unwrap().target_digest, src),
            (d(1), DigestSource::Journal)
        );
    }

    #[test]
    fn the_latest_allowing_record_is_the_one_used() {
        let line = |verdict: &str, ns: &str, digest: &str| {
            format!(
                "{{\"PORTCULLIS_VERDICT\":\"{verdict}\",\"PORTCULLIS_NAMESPACE\":\"{ns}\",\"PORTCULLIS_CONTAINER_ID\":\"web\",\"PORTCULLIS_IMAGE_REF\":\"x.io/a:1\",\"PORTCULLIS_IMAGE_DIGEST\":\"{digest}\"}}\n"
            )
        };
        let out = [
            line("allow", "prod", &d(1)),
            line("allow", "prod", &d(2)),
            line("deny", "prod", &d(3)),
            line("warn", "dev", &d(4)),
        ]
        .concat();
        let m = latest_allowed(&crate::ops::audit::parse_lines(out.as_bytes()));
        assert_eq!(m[&("prod".into(), "web".into())].image_digest, d(2));
        assert_eq!(m[&("dev".into(), "web".into())].image_digest, d(4));
        assert_eq!(m.len(), 2);
    }
}
