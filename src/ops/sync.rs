//! `portcullis sync`: cache the signatures of every image containerd pulls,
//! before a container of it starts.
//!
//! This module owns the subscription to containerd's event stream (the
//! events service's `Subscribe`, filtered to `topic~="/images/"`), decoding
//! the `ImageCreate` / `ImageUpdate` payloads (protobuf `Any`s), and the
//! retry discipline around [`crate::fetch::fetch`]: exponential backoff with a
//! bounded number of attempts per image, then one structured journal record
//! ([`message_id::FETCH_FAILED`], `SYSLOG_IDENTIFIER=portcullis-sync`) so the
//! operator sees which image will be refused at start and why. A lost
//! connection to containerd is retried forever, with the same backoff capped.
//!
//! It also observes container starts for the audit trail: `/containers/create`
//! and `/tasks/start` events become one journal record per task start
//! ([`crate::journal::message_id::TASK_STARTED`]) with the container, its
//! image and runtime, so [`crate::evidence`] can find containers that ran
//! without going through the gate even when their records are gone
//! (`ctr run --rm`). Each subscription begins and ends with an
//! [`crate::journal::message_id::OBSERVER`] record, so the periods in which
//! starts were not observed are known.
//!
//! It also watches for snapshots squatted under a chain ID (threat T33):
//! every `/snapshot/commit` event whose name is a chain ID, and at each
//! subscription's start every committed snapshot so named, is checked for the
//! traces an image unpack leaves ([`crate::containerd::commits`]); one that
//! lacks them becomes a [`message_id::SNAPSHOT_SQUAT`] record naming the
//! snapshot, its chain ID and why. This detects, it does not prevent: the
//! snapshot exists when the event arrives, and a client holding containerd's
//! socket can fake both traces.
//!
//! Two threads: the subscriber runs the gRPC stream on its own small async
//! runtime and hands image names over a channel; the caller's thread fetches
//! them one at a time ([`crate::fetch::fetch`] runs its own runtime).

use std::sync::mpsc;
use std::time::Duration;

use containerd_client::services::v1::{ImageCreate, ImageUpdate, SubscribeRequest};
use containerd_client::types::Envelope;

use crate::containerd::method;
use crate::containerd::wire::Conn;
use prost::Message;

use crate::cache::StateDir;
use crate::fetch::{FetchOptions, FetchReport};
use crate::journal::{Record, Sink};

pub use crate::journal::SYNC_IDENTIFIER as IDENTIFIER;

/// The event filter subscribed to (containerd's filter syntax).
pub const IMAGE_FILTER: &str = "topic~=\"/images/\"";

/// The container-start events subscribed to (containerd's filter syntax;
/// filters in a list are alternatives).
pub const START_FILTERS: [&str; 2] = ["topic==\"/containers/create\"", "topic==\"/tasks/start\""];

/// The snapshot commits subscribed to (T33).
pub const COMMIT_FILTER: &str = "topic==\"/snapshot/commit\"";

/// The snapshotters whose committed snapshots are scanned when a
/// subscription starts (containerd's default on Linux); commits of any
/// snapshotter are checked as their events arrive.
pub const SCAN_SNAPSHOTTERS: [&str; 1] = ["overlayfs"];

/// How long after a commit event its check is repeated before a missing
/// trace is reported: an unpack labels the layer blob just after the commit.
pub const COMMIT_RECHECKS_MS: [u64; 6] = [0, 250, 500, 1000, 2000, 4000];

/// `MESSAGE_ID`s of `portcullis sync` (catalog entries depend on them).
pub mod message_id {
    /// Every attempt to cache an image's signatures failed.
    pub const FETCH_FAILED: &str = "4e7b1c9d2a6f48e3b0d5c8a1f3e6b9d2";
    /// A snapshot committed under a chain ID lacks the traces of an unpack (T33).
    pub const SNAPSHOT_SQUAT: &str = "0b5e8d3f7a2c4e619d4f8a7c2e5b1d93";
}

/// Errors of `portcullis sync` that stop it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The event subscriber thread could not be started.
    #[error("cannot start the event subscriber: {0}")]
    Thread(std::io::Error),
    /// The subscriber ended (its runtime could not start).
    #[error("the containerd event subscriber stopped: {0}; restart `portcullis sync`")]
    Subscriber(String),
}

/// What happened to an image, as containerd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A new image record (a pull, a tag, an import).
    Create,
    /// An image record changed (a re-pull that moved the tag).
    Update,
}

/// One image event worth a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEvent {
    /// containerd namespace.
    pub namespace: String,
    /// The image name as containerd records it.
    pub name: String,
    /// Create or update.
    pub kind: EventKind,
}

/// Decode an event envelope. `Ok(None)` for events that need no fetch (any
/// other topic, deletes, CRI's `sha256:<id>` image-ID records); an error
/// for an image event whose payload does not decode.
pub fn decode(envelope: &Envelope) -> Result<Option<ImageEvent>, String> {
    let kind = match envelope.topic.as_str() {
        "/images/create" => EventKind::Create,
        "/images/update" => EventKind::Update,
        _ => return Ok(None),
    };
    let any = envelope
        .event
        .as_ref()
        .ok_or_else(|| format!("event {} has no payload", envelope.topic))?;
    // containerd names the type without the leading `/` an `Any` should
    // have, and the package differs across versions
    // (`containerd.services.images.v1.ImageCreate`, `containerd.events.ImageCreate`):
    // match the message name only.
    let type_name = any.type_url.rsplit(['/', '.']).next().unwrap_or_default();
    let name = match (&kind, type_name) {
        (EventKind::Create, "ImageCreate") => ImageCreate::decode(any.value.as_slice())
            .map(|e| e.name)
            .map_err(|e| e.to_string()),
        (EventKind::Update, "ImageUpdate") => ImageUpdate::decode(any.value.as_slice())
            .map(|e| e.name)
            .map_err(|e| e.to_string()),
        _ => Err(format!("unexpected payload type {:?}", any.type_url)),
    }
    .map_err(|e| format!("event {}: {e}", envelope.topic))?;
    if name.is_empty() || name.starts_with("sha256:") {
        return Ok(None);
    }
    Ok(Some(ImageEvent {
        namespace: envelope.namespace.clone(),
        name,
        kind,
    }))
}

/// A container event worth recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEvent {
    /// A container record was created.
    Created {
        /// containerd namespace.
        namespace: String,
        /// Container ID.
        id: String,
        /// The image it was created from.
        image: String,
        /// Its runtime (`io.containerd.runc.v2`, `io.containerd.portcullis.v2`, …).
        runtime: String,
    },
    /// A task started.
    TaskStarted {
        /// containerd namespace.
        namespace: String,
        /// Container ID.
        container_id: String,
        /// The task's pid.
        pid: u32,
    },
}

/// Decode a `/containers/create` or `/tasks/start` envelope; `Ok(None)` for other topics.
pub fn decode_container(envelope: &Envelope) -> Result<Option<ContainerEvent>, String> {
    use containerd_client::events::{ContainerCreate, TaskStart};
    let topic = envelope.topic.as_str();
    if topic != "/containers/create" && topic != "/tasks/start" {
        return Ok(None);
    }
    let any = envelope
        .event
        .as_ref()
        .ok_or_else(|| format!("event {topic} has no payload"))?;
    let type_name = any.type_url.rsplit(['/', '.']).next().unwrap_or_default();
    let namespace = envelope.namespace.clone();
    match (topic, type_name) {
        ("/containers/create", "ContainerCreate") => {
            let e = ContainerCreate::decode(any.value.as_slice())
                .map_err(|e| format!("event {topic}: {e}"))?;
            Ok(Some(ContainerEvent::Created {
                namespace,
                id: e.id,
                image: e.image,
                runtime: e.runtime.map(|r| r.name).unwrap_or_default(),
            }))
        }
        ("/tasks/start", "TaskStart") => {
            let e = TaskStart::decode(any.value.as_slice())
                .map_err(|e| format!("event {topic}: {e}"))?;
            Ok(Some(ContainerEvent::TaskStarted {
                namespace,
                container_id: e.container_id,
                pid: e.pid,
            }))
        }
        _ => Err(format!(
            "event {topic}: unexpected payload type {:?}",
            any.type_url
        )),
    }
}

/// A `/snapshot/commit` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEvent {
    /// containerd namespace.
    pub namespace: String,
    /// The snapshotter.
    pub snapshotter: String,
    /// The active key it was committed from.
    pub key: String,
    /// The committed name.
    pub name: String,
}

/// Decode a `/snapshot/commit` envelope; `Ok(None)` for other topics.
pub fn decode_commit(envelope: &Envelope) -> Result<Option<CommitEvent>, String> {
    use containerd_client::events::SnapshotCommit;
    if envelope.topic != "/snapshot/commit" {
        return Ok(None);
    }
    let any = envelope
        .event
        .as_ref()
        .ok_or("event /snapshot/commit has no payload")?;
    let type_name = any.type_url.rsplit(['/', '.']).next().unwrap_or_default();
    if type_name != "SnapshotCommit" {
        return Err(format!(
            "event /snapshot/commit: unexpected payload type {:?}",
            any.type_url
        ));
    }
    let e = SnapshotCommit::decode(any.value.as_slice())
        .map_err(|e| format!("event /snapshot/commit: {e}"))?;
    Ok(Some(CommitEvent {
        namespace: envelope.namespace.clone(),
        snapshotter: e.snapshotter,
        key: e.key,
        name: e.name,
    }))
}

/// A committed snapshot named by a chain ID that lacks an unpack's traces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Squat {
    /// containerd namespace.
    pub namespace: String,
    /// The snapshotter.
    pub snapshotter: String,
    /// The snapshot's name (a chain ID).
    pub name: String,
    /// Its parent (empty: none).
    pub parent: String,
    /// The key it was committed from (unknown for a scan).
    pub key: Option<String>,
    /// What is missing.
    pub reasons: Vec<String>,
    /// `commit-event` or `start-up-scan`.
    pub source: String,
    /// containerd's socket.
    pub address: String,
}

/// The journal record of a suspicious commit.
pub fn squat_record(s: &Squat) -> Record {
    let reason = s.reasons.join("; ");
    let mut fields = vec![
        (
            "MESSAGE_ID".to_string(),
            message_id::SNAPSHOT_SQUAT.to_string(),
        ),
        ("SYSLOG_IDENTIFIER".into(), IDENTIFIER.into()),
        ("PORTCULLIS_KIND".into(), "snapshot-squat".into()),
        ("PORTCULLIS_NAMESPACE".into(), s.namespace.clone()),
        ("PORTCULLIS_SNAPSHOTTER".into(), s.snapshotter.clone()),
        ("PORTCULLIS_SNAPSHOT_NAME".into(), s.name.clone()),
        ("PORTCULLIS_CHAIN_ID".into(), s.name.clone()),
        ("PORTCULLIS_SNAPSHOT_PARENT".into(), s.parent.clone()),
        (
            "PORTCULLIS_SNAPSHOT_KEY".into(),
            s.key.clone().unwrap_or_default(),
        ),
        ("PORTCULLIS_REASON".into(), reason.clone()),
        ("PORTCULLIS_SOURCE".into(), s.source.clone()),
        ("PORTCULLIS_CONTAINERD_ADDRESS".into(), s.address.clone()),
        (
            "PORTCULLIS_VERSION".into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
    ];
    fields.retain(|(_, v)| !v.is_empty());
    Record {
        message: format!(
            "portcullis-sync: snapshot {} ({}/{}) is named by a chain ID but no image unpack made it: {reason}; an image whose layers fold to this chain ID would run its files: remove it (`ctr -n {} snapshots rm {}`) and pull again",
            s.name, s.namespace, s.snapshotter, s.namespace, s.name
        ),
        priority: 3,
        fields,
    }
}

/// Check one committed snapshot, repeating per [`COMMIT_RECHECKS_MS`] while
/// a trace is missing; `Ok(None)` when it is an unpack's (or gone).
async fn check_commit(
    channel: Conn,
    c: &CommitEvent,
    address: &str,
) -> Result<Option<Squat>, String> {
    use crate::containerd::commits;
    let mut last = Vec::new();
    let mut parent = String::new();
    for delay in COMMIT_RECHECKS_MS {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        parent = match commits::parent(channel.clone(), &c.namespace, &c.snapshotter, &c.name).await
        {
            Ok(p) => p,
            // Removed already (an unpack that lost a race aborts its own).
            Err(e) if e.to_string().contains("not found") => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let diff_ids = commits::verified_diff_ids(channel.clone(), &c.namespace)
            .await
            .map_err(|e| e.to_string())?;
        last = commits::reasons(&c.name, &parent, Some(&c.key), &diff_ids);
        if last.is_empty() {
            return Ok(None);
        }
    }
    Ok(Some(Squat {
        namespace: c.namespace.clone(),
        snapshotter: c.snapshotter.clone(),
        name: c.name.clone(),
        parent,
        key: Some(c.key.clone()),
        reasons: last,
        source: "commit-event".into(),
        address: address.to_string(),
    }))
}

/// Scan the committed snapshots of [`SCAN_SNAPSHOTTERS`] in `namespace` (or
/// every namespace) for chain-ID names without an unpack's traces.
async fn scan_commits(
    channel: Conn,
    namespace: Option<&str>,
    address: &str,
) -> Result<Vec<Squat>, String> {
    use crate::containerd::commits;
    use containerd_client::services::v1::{ListNamespacesRequest, ListNamespacesResponse};
    let namespaces = match namespace {
        Some(ns) => vec![ns.to_string()],
        None => channel
            .unary::<_, ListNamespacesResponse>(
                method::NAMESPACES_LIST,
                "",
                &ListNamespacesRequest {
                    filter: String::new(),
                },
            )
            .await
            .map_err(|e| format!("namespaces.List: {e}"))?
            .namespaces
            .into_iter()
            .map(|n| n.name)
            .collect(),
    };
    let mut out = Vec::new();
    for ns in namespaces {
        let diff_ids = commits::verified_diff_ids(channel.clone(), &ns)
            .await
            .map_err(|e| format!("namespace {ns}: {e}"))?;
        for sn in SCAN_SNAPSHOTTERS {
            let found = commits::committed_chain_ids(channel.clone(), &ns, sn)
                .await
                .map_err(|e| format!("namespace {ns}, snapshotter {sn}: {e}"))?;
            for (name, parent) in found {
                let reasons = commits::reasons(&name, &parent, None, &diff_ids);
                if !reasons.is_empty() {
                    out.push(Squat {
                        namespace: ns.clone(),
                        snapshotter: sn.to_string(),
                        name,
                        parent,
                        key: None,
                        reasons,
                        source: "start-up-scan".into(),
                        address: address.to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// What is known about a started task's container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartedTask {
    /// containerd namespace.
    pub namespace: String,
    /// Container ID.
    pub container_id: String,
    /// The task's pid.
    pub pid: u32,
    /// The image, if known.
    pub image: Option<String>,
    /// The image's target digest in containerd's image store, if known.
    pub image_digest: Option<String>,
    /// The runtime, if known.
    pub runtime: Option<String>,
    /// Where image and runtime came from (`create-event`, `container-record`, or why unknown).
    pub source: String,
    /// containerd's socket.
    pub address: String,
}

/// The journal record of a task start.
pub fn task_record(t: &StartedTask) -> Record {
    let runtime = t.runtime.as_deref().unwrap_or("unknown");
    let gated = runtime == crate::base::names::RUNTIME_TYPE;
    let mut fields = vec![
        (
            "MESSAGE_ID".to_string(),
            crate::journal::message_id::TASK_STARTED.to_string(),
        ),
        ("SYSLOG_IDENTIFIER".into(), IDENTIFIER.into()),
        ("PORTCULLIS_KIND".into(), "task-start".into()),
        ("PORTCULLIS_CONTAINER_ID".into(), t.container_id.clone()),
        ("PORTCULLIS_NAMESPACE".into(), t.namespace.clone()),
        ("PORTCULLIS_PID".into(), t.pid.to_string()),
        (
            "PORTCULLIS_IMAGE_REF".into(),
            t.image.clone().unwrap_or_default(),
        ),
        (
            "PORTCULLIS_IMAGE_DIGEST".into(),
            t.image_digest.clone().unwrap_or_default(),
        ),
        ("PORTCULLIS_RUNTIME".into(), runtime.to_string()),
        ("PORTCULLIS_GATED".into(), gated.to_string()),
        ("PORTCULLIS_SOURCE".into(), t.source.clone()),
        ("PORTCULLIS_CONTAINERD_ADDRESS".into(), t.address.clone()),
        (
            "PORTCULLIS_VERSION".into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
    ];
    fields.retain(|(_, v)| !v.is_empty());
    Record {
        message: format!(
            "portcullis-sync: task started: container {}/{} image {} runtime {runtime}{}",
            t.namespace,
            t.container_id,
            t.image.as_deref().unwrap_or("unknown"),
            if gated {
                ""
            } else {
                " (not through the Portcullis gate)"
            }
        ),
        priority: if gated { 6 } else { 4 },
        fields,
    }
}

/// The journal record of a subscription starting (`start`) or ending (`stop`).
pub fn observer_record(what: &str, address: &str, detail: &str) -> Record {
    let mut fields = vec![
        (
            "MESSAGE_ID".to_string(),
            crate::journal::message_id::OBSERVER.to_string(),
        ),
        ("SYSLOG_IDENTIFIER".into(), IDENTIFIER.into()),
        ("PORTCULLIS_KIND".into(), "observer".into()),
        ("PORTCULLIS_OBSERVER".into(), what.into()),
        ("PORTCULLIS_CONTAINERD_ADDRESS".into(), address.into()),
        ("PORTCULLIS_REASON".into(), detail.into()),
        (
            "PORTCULLIS_VERSION".into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
    ];
    fields.retain(|(_, v)| !v.is_empty());
    Record {
        message: format!(
            "portcullis-sync: observing containerd {address}: {what}{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        ),
        priority: if what == "start" { 6 } else { 4 },
        fields,
    }
}

/// Exponential backoff: `initial`, doubled per attempt, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Options of `portcullis sync`.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// containerd's gRPC socket.
    pub address: String,
    /// Only this namespace's images (default: all namespaces).
    pub namespace: Option<String>,
    /// How the registry is reached.
    pub fetch: FetchOptions,
    /// Attempts per image before the failure is recorded.
    pub max_attempts: u32,
    /// Delays between attempts (and between reconnections to containerd).
    pub backoff: Backoff,
    /// The policy to decide ahead under after each fetch (`portcullis check`
    /// of the pulled image, see [`decide_ahead`]); `None`: do not.
    pub decide_ahead: Option<std::path::PathBuf>,
}

/// The subscription's filters.
pub fn filters(namespace: Option<&str>) -> Vec<String> {
    std::iter::once(IMAGE_FILTER)
        .chain(START_FILTERS)
        .chain(std::iter::once(COMMIT_FILTER))
        .map(|f| match namespace {
            Some(ns) => format!("{f},namespace=={ns:?}"),
            None => f.to_string(),
        })
        .collect()
}

/// Run until the subscriber stops: fetch the signatures of every image
/// containerd creates or updates. `log` receives one line per step.
pub fn run(
    opts: &SyncOptions,
    state: &StateDir,
    sink: &dyn Sink,
    log: &mut dyn FnMut(&str),
) -> Result<(), SyncError> {
    let (tx, rx) = mpsc::channel();
    let sub_opts = opts.clone();
    let subscriber = std::thread::Builder::new()
        .name("containerd-events".into())
        .spawn(move || subscribe(&sub_opts, &tx))
        .map_err(SyncError::Thread)?;
    for msg in rx {
        match msg {
            Feed::Log(line) => log(&line),
            Feed::Record(r) => {
                if let Err(e) =
                    crate::journal::record(sink, &crate::journal::Spool::new(state.spool_dir()), &r)
                {
                    log(&format!("cannot record {:?}: {e}", r.message));
                }
            }
            Feed::Image(ev) => {
                let fetched = sync_one(&ev, opts, log, sink, &mut |image| {
                    crate::fetch::fetch(image, state, &opts.fetch, &mut |_| {})
                        .map_err(|e| e.to_string())
                });
                if let (true, Some(policy)) = (fetched, &opts.decide_ahead) {
                    log(&decide_ahead(&ev, &opts.address, policy, state));
                }
            }
        }
    }
    match subscriber.join() {
        Ok(Err(e)) => Err(SyncError::Subscriber(e)),
        Ok(Ok(())) => Ok(()),
        Err(_) => Err(SyncError::Subscriber("it panicked".into())),
    }
}

/// Decide ahead for a pulled image (issue 15): `portcullis check` of it as
/// containerd records it, so the first start of the image is a verdict-cache
/// hit. A child process, because this one is threaded and verification is
/// only ever done in the sandbox, forked from a single-threaded process;
/// `check` runs the start's decision ([`crate::gate::decide`]) and stores
/// its pass under the key the start computes. Returns the line to log.
pub fn decide_ahead(
    ev: &ImageEvent,
    address: &str,
    policy: &std::path::Path,
    state: &StateDir,
) -> String {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            return format!(
                "{}: not decided ahead: cannot find this program: {e}",
                ev.name
            )
        }
    };
    let out = std::process::Command::new(exe)
        .arg("check")
        .arg("--json")
        .args(["--address", address, "--namespace", &ev.namespace])
        .arg("--policy")
        .arg(policy)
        .arg("--state-dir")
        .arg(state.root())
        .arg(&ev.name)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let d: serde_json::Value = match out {
        Ok(o) => serde_json::from_slice(&o.stdout).unwrap_or_default(),
        Err(e) => return format!("{}: not decided ahead: {e}", ev.name),
    };
    let field = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
    match (field("outcome").as_str(), field("verdict_cache").as_str()) {
        ("pass", "hit" | "miss") => format!(
            "{} ({}): decided ahead: its start will find its pass in the verdict cache (rule \"{}\")",
            ev.name,
            ev.namespace,
            field("rule")
        ),
        _ => format!(
            "{} ({}): not decided ahead (the start will decide): {}",
            ev.name,
            ev.namespace,
            field("reason")
        ),
    }
}

/// What the subscriber thread sends.
enum Feed {
    Log(String),
    Image(ImageEvent),
    Record(Record),
}

/// Fetch one image's signatures, retrying with backoff; record the failure
/// in the journal when every attempt failed. Returns whether it succeeded.
pub fn sync_one(
    ev: &ImageEvent,
    opts: &SyncOptions,
    log: &mut dyn FnMut(&str),
    sink: &dyn Sink,
    fetch: &mut dyn FnMut(&str) -> Result<FetchReport, String>,
) -> bool {
    let attempts = opts.max_attempts.max(1);
    let mut last = String::new();
    for n in 1..=attempts {
        match fetch(&ev.name) {
            Ok(r) => {
                let total: usize = r
                    .subjects
                    .iter()
                    .map(|s| s.signatures + s.attestations + s.bundles)
                    .sum();
                log(&format!(
                    "{} ({}): {}@{}: {total} signature(s) cached",
                    ev.name, ev.namespace, r.image, r.digest
                ));
                return true;
            }
            Err(e) => {
                last = e;
                if n < attempts {
                    let d = opts.backoff.delay(n);
                    log(&format!(
                        "{}: attempt {n}/{attempts} failed: {last}; retrying in {}s",
                        ev.name,
                        d.as_secs_f32()
                    ));
                    std::thread::sleep(d);
                }
            }
        }
    }
    log(&format!(
        "{}: giving up after {attempts} attempt(s): {last}",
        ev.name
    ));
    let record = failure_record(ev, attempts, &last);
    if let Err(e) = sink.send(&record) {
        log(&format!("cannot record the failure in the journal: {e}"));
    }
    false
}

/// The journal record of an image whose signatures could not be cached.
pub fn failure_record(ev: &ImageEvent, attempts: u32, reason: &str) -> Record {
    Record {
        message: format!(
            "portcullis-sync: cannot cache the signatures of {}: {reason}; starts of it will be refused in enforce mode until `portcullis fetch {}` succeeds",
            ev.name, ev.name
        ),
        priority: 3,
        fields: vec![
            ("MESSAGE_ID".into(), message_id::FETCH_FAILED.into()),
            ("SYSLOG_IDENTIFIER".into(), IDENTIFIER.into()),
            ("PORTCULLIS_IMAGE_REF".into(), ev.name.clone()),
            ("PORTCULLIS_NAMESPACE".into(), ev.namespace.clone()),
            ("PORTCULLIS_REASON".into(), reason.to_string()),
            ("PORTCULLIS_ATTEMPTS".into(), attempts.to_string()),
            (
                "PORTCULLIS_VERSION".into(),
                env!("CARGO_PKG_VERSION").into(),
            ),
        ],
    }
}

/// The subscriber thread: (re)connect forever, forwarding image events.
/// Returns only when the receiver is gone or no runtime can be built.
fn subscribe(opts: &SyncOptions, tx: &mpsc::Sender<Feed>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    rt.block_on(async {
        let mut failures = 0u32;
        loop {
            let said = |line: String| tx.send(Feed::Log(line)).is_ok();
            match stream_once(opts, tx, &mut failures).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    failures += 1;
                    let d = opts.backoff.delay(failures);
                    if !said(format!(
                        "containerd at {}: {e}; reconnecting in {}s",
                        opts.address,
                        d.as_secs_f32()
                    )) {
                        return Ok(());
                    }
                    tokio::time::sleep(d).await;
                }
            }
        }
    })
}

/// One subscription; `Ok` when the receiver is gone, `Err` when the stream
/// failed or ended (containerd restarted).
async fn stream_once(
    opts: &SyncOptions,
    tx: &mpsc::Sender<Feed>,
    failures: &mut u32,
) -> Result<(), String> {
    let channel = crate::containerd::wire::connect_tokio(&opts.address)
        .await
        .map_err(|e| match e {
            crate::containerd::wire::DriveError::Unreachable { why, .. } => {
                format!("unreachable: {why}")
            }
            other => other.to_string(),
        })?;
    *failures = 0;
    let ns = opts.namespace.as_deref().unwrap_or("all namespaces");
    // containerd registers the subscriber when the request arrives but may
    // answer only with the first event: say so now, not after that event.
    if tx
        .send(Feed::Log(format!(
            "subscribing to image events of containerd at {} ({ns})",
            opts.address
        )))
        .is_err()
    {
        return Ok(());
    }
    // containerd registers the subscriber when the request below arrives but
    // may answer only with the first event: task starts are observed from
    // now on (this record is a few milliseconds early, never late).
    if tx
        .send(Feed::Record(observer_record("start", &opts.address, ns)))
        .is_err()
    {
        return Ok(());
    }
    // T33: snapshots committed before this subscription are scanned once,
    // beside the stream (commits from now on arrive as events); spawned
    // before `Subscribe`, which may answer only with the first event.
    {
        let (channel, tx, ns, address) = (
            channel.clone(),
            tx.clone(),
            opts.namespace.clone(),
            opts.address.clone(),
        );
        tokio::spawn(async move {
            let msgs = match scan_commits(channel, ns.as_deref(), &address).await {
                Ok(found) => {
                    let mut m = vec![Feed::Log(format!(
                        "start-up scan of committed snapshots: {} named by a chain ID without an unpack's traces",
                        found.len()
                    ))];
                    m.extend(found.iter().map(|s| Feed::Record(squat_record(s))));
                    m
                }
                Err(e) => vec![Feed::Log(format!(
                    "start-up scan of committed snapshots failed: {e}"
                ))],
            };
            for m in msgs {
                let _ = tx.send(m);
            }
        });
    }
    let request = SubscribeRequest {
        filters: filters(opts.namespace.as_deref()),
    };
    let mut stream = channel
        .stream(method::EVENTS_SUBSCRIBE, "", &request)
        .await
        .map_err(|e| format!("events.Subscribe failed: {e}"))?;
    let mut created: std::collections::HashMap<(String, String), (String, String)> =
        std::collections::HashMap::new();
    loop {
        let envelope = match stream.next::<Envelope>().await {
            Ok(Some(e)) => e,
            Ok(None) => {
                let _ = tx.send(Feed::Record(observer_record(
                    "stop",
                    &opts.address,
                    "event stream ended",
                )));
                return Err("event stream ended".into());
            }
            Err(e) => {
                let why = format!("event stream failed: {e}");
                let _ = tx.send(Feed::Record(observer_record("stop", &opts.address, &why)));
                return Err(why);
            }
        };
        match decode_commit(&envelope) {
            Ok(Some(mut c)) => {
                // containerd 1.6's event does not name the snapshotter
                // (field 5 came later): take the default one.
                if c.snapshotter.is_empty() {
                    c.snapshotter = SCAN_SNAPSHOTTERS[0].to_string();
                }
                if crate::containerd::commits::is_chain_id(&c.name) {
                    let (channel, tx, address) =
                        (channel.clone(), tx.clone(), opts.address.clone());
                    tokio::spawn(async move {
                        let msg = match check_commit(channel, &c, &address).await {
                            Ok(Some(s)) => Feed::Record(squat_record(&s)),
                            Ok(None) => return,
                            Err(e) => Feed::Log(format!(
                                "cannot check the commit of snapshot {} ({}): {e}",
                                c.name, c.namespace
                            )),
                        };
                        let _ = tx.send(msg);
                    });
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                if tx
                    .send(Feed::Log(format!("ignoring an undecodable event: {e}")))
                    .is_err()
                {
                    return Ok(());
                }
                continue;
            }
        }
        let msg = match decode_container(&envelope) {
            Ok(Some(ContainerEvent::Created {
                namespace,
                id,
                image,
                runtime,
            })) => {
                if created.len() > 10_000 {
                    created.clear();
                }
                created.insert((namespace, id), (image, runtime));
                continue;
            }
            Ok(Some(ContainerEvent::TaskStarted {
                namespace,
                container_id,
                pid,
            })) => {
                let key = (namespace.clone(), container_id.clone());
                let mut t = StartedTask {
                    namespace,
                    container_id,
                    pid,
                    address: opts.address.clone(),
                    ..Default::default()
                };
                match created.remove(&key) {
                    Some((image, runtime)) => {
                        t.image = Some(image).filter(|s| !s.is_empty());
                        t.runtime = Some(runtime);
                        t.source = "create-event".into();
                    }
                    None => match container_record(channel.clone(), &t.namespace, &t.container_id)
                        .await
                    {
                        Ok((image, runtime)) => {
                            t.image = Some(image).filter(|s| !s.is_empty());
                            t.runtime = Some(runtime);
                            t.source = "container-record".into();
                        }
                        Err(e) => t.source = format!("unknown: {e}"),
                    },
                }
                // A gap must name what ran, not only a (mutable) reference.
                if let Some(image) = &t.image {
                    t.image_digest =
                        crate::containerd::resolve_image(channel.clone(), &t.namespace, image)
                            .await
                            .ok()
                            .map(|i| i.target_digest);
                }
                Feed::Record(task_record(&t))
            }
            Ok(None) => match decode(&envelope) {
                Ok(Some(ev)) => Feed::Image(ev),
                Ok(None) => continue,
                Err(e) => Feed::Log(format!("ignoring an undecodable event: {e}")),
            },
            Err(e) => Feed::Log(format!("ignoring an undecodable event: {e}")),
        };
        if tx.send(msg).is_err() {
            return Ok(());
        }
    }
}

/// A container's image and runtime from its containerd record.
async fn container_record(
    channel: Conn,
    namespace: &str,
    id: &str,
) -> Result<(String, String), String> {
    use containerd_client::services::v1::{GetContainerRequest, GetContainerResponse};
    let c = channel
        .unary::<_, GetContainerResponse>(
            method::CONTAINERS_GET,
            namespace,
            &GetContainerRequest { id: id.to_string() },
        )
        .await
        .map_err(|e| format!("containers.Get: {e}"))?
        .container
        .ok_or("no container record")?;
    Ok((c.image, c.runtime.map(|r| r.name).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// The integration suites query the journal by the IDs of
    /// integration/message-ids.sh: each must be the code's.
    #[test]
    fn the_suites_message_ids_are_the_codes() {
        use crate::gate::journal::message_id as j;
        let file = include_str!("../../integration/message-ids.sh");
        let defined: std::collections::BTreeMap<&str, &str> = file
            .lines()
            .filter_map(|l| l.strip_prefix("PC_MID_")?.split_once('='))
            .collect();
        let code = [
            ("VERIFIED", j::VERIFIED),
            ("EXEMPT", j::EXEMPT),
            ("DENIED", j::DENIED),
            ("WARNED", j::WARNED),
            ("AUDITED", j::AUDITED),
            ("HEARTBEAT", j::HEARTBEAT),
            ("TASK_STARTED", j::TASK_STARTED),
            ("OBSERVER", j::OBSERVER),
            ("REVOKED", j::REVOKED),
            ("REVOKED_STOPPED", j::REVOKED_STOPPED),
            ("POLICY_INSTALLED", j::POLICY_INSTALLED),
            ("POLICY_REFUSED", j::POLICY_REFUSED),
            ("POLICY_UNREACHABLE", j::POLICY_UNREACHABLE),
            ("FETCH_FAILED", message_id::FETCH_FAILED),
            ("SNAPSHOT_SQUAT", message_id::SNAPSHOT_SQUAT),
        ];
        for (name, id) in code {
            assert_eq!(defined.get(name), Some(&id), "PC_MID_{name}");
        }
        assert_eq!(defined.len(), code.len(), "an ID the code does not have");
    }

    fn envelope(topic: &str, type_url: &str, value: Vec<u8>) -> Envelope {
        let mut e = Envelope {
            timestamp: None,
            namespace: "k8s.io".into(),
            topic: topic.into(),
            event: Some(Default::default()),
        };
        if let Some(any) = e.event.as_mut() {
            any.type_url = type_url.into();
            any.value = value;
        }
        e
    }

    fn create(name: &str) -> Vec<u8> {
        ImageCreate {
            name: name.into(),
            labels: Default::default(),
        }
        .encode_to_vec()
    }

    #[test]
    fn decodes_create_and_update_in_either_package() {
        let e = envelope(
            "/images/create",
            "containerd.services.images.v1.ImageCreate",
            create("registry.example/app:1"),
        );
        assert_eq!(
            decode(&e).unwrap(),
            Some(ImageEvent {
                namespace: "k8s.io".into(),
                name: "registry.example/app:1".into(),
                kind: EventKind::Create
            })
        );
        let upd = ImageUpdate {
            name: "registry.example/app:2".into(),
            labels: [("a".to_string(), "b".to_string())].into(),
        }
        .encode_to_vec();
        let e = envelope("/images/update", "/containerd.events.ImageUpdate", upd);
        let ev = decode(&e).unwrap().unwrap();
        assert_eq!(ev.kind, EventKind::Update);
        assert_eq!(ev.name, "registry.example/app:2");
    }

    #[test]
    fn ignores_other_topics_deletes_and_image_ids() {
        let e = envelope(
            "/images/delete",
            "containerd.services.images.v1.ImageDelete",
            vec![],
        );
        assert_eq!(decode(&e).unwrap(), None);
        let e = envelope("/tasks/start", "containerd.events.TaskStart", vec![]);
        assert_eq!(decode(&e).unwrap(), None);
        let e = envelope(
            "/images/create",
            "containerd.services.images.v1.ImageCreate",
            create(&format!("sha256:{}", "a".repeat(64))),
        );
        assert_eq!(decode(&e).unwrap(), None);
    }

    #[test]
    fn refuses_mismatched_or_garbled_payloads() {
        let e = envelope("/images/create", "containerd.events.TaskStart", vec![]);
        assert!(decode(&e).unwrap_err().contains("unexpected payload type"));
        let e = envelope(
            "/images/create",
            "containerd.services.images.v1.ImageCreate",
            vec![0x0a, 0x05, b'a'],
        );
        assert!(decode(&e).is_err());
        let mut e = envelope("/images/create", "x", vec![]);
        e.event = None;
        assert!(decode(&e).unwrap_err().contains("no payload"));
    }

    #[test]
    fn decodes_container_create_and_task_start() {
        use containerd_client::events::{container_create::Runtime, ContainerCreate, TaskStart};
        let c = ContainerCreate {
            id: "c1".into(),
            image: "r.io/a:1".into(),
            runtime: Some(Runtime {
                name: "io.containerd.runc.v2".into(),
                options: None,
            }),
        }
        .encode_to_vec();
        let e = envelope("/containers/create", "containerd.events.ContainerCreate", c);
        assert_eq!(
            decode_container(&e).unwrap(),
            Some(ContainerEvent::Created {
                namespace: "k8s.io".into(),
                id: "c1".into(),
                image: "r.io/a:1".into(),
                runtime: "io.containerd.runc.v2".into()
            })
        );
        let t = TaskStart {
            container_id: "c1".into(),
            pid: 42,
        }
        .encode_to_vec();
        let e = envelope("/tasks/start", "containerd.events.TaskStart", t);
        assert!(matches!(
            decode_container(&e).unwrap(),
            Some(ContainerEvent::TaskStarted { pid: 42, .. })
        ));
        let e = envelope("/tasks/start", "containerd.events.TaskExit", vec![]);
        assert!(decode_container(&e).is_err());
        let e = envelope("/images/create", "x", vec![]);
        assert_eq!(decode_container(&e).unwrap(), None);
    }

    #[test]
    fn task_record_flags_ungated_runtimes() {
        let t = StartedTask {
            namespace: "default".into(),
            container_id: "c1".into(),
            pid: 7,
            image: Some("r.io/a:1".into()),
            image_digest: Some("sha256:ab".into()),
            runtime: Some("io.containerd.runc.v2".into()),
            source: "create-event".into(),
            address: "/run/containerd/containerd.sock".into(),
        };
        let r = task_record(&t);
        assert_eq!(r.field("PORTCULLIS_GATED"), Some("false"));
        assert_eq!(r.field("PORTCULLIS_IMAGE_DIGEST"), Some("sha256:ab"));
        assert_eq!(
            r.field("MESSAGE_ID"),
            Some(crate::journal::message_id::TASK_STARTED)
        );
        assert!(r.message.contains("not through the Portcullis gate"));
        let r = task_record(&StartedTask {
            runtime: Some(crate::base::names::RUNTIME_TYPE.into()),
            ..t
        });
        assert_eq!(r.field("PORTCULLIS_GATED"), Some("true"));
        assert_eq!(
            observer_record("start", "/s", "").field("PORTCULLIS_OBSERVER"),
            Some("start")
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(5),
        };
        let d: Vec<_> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, [500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(b.delay(200), Duration::from_secs(5));
    }

    #[test]
    fn namespace_filter_is_anded() {
        assert_eq!(
            filters(None),
            [
                "topic~=\"/images/\"",
                "topic==\"/containers/create\"",
                "topic==\"/tasks/start\"",
                "topic==\"/snapshot/commit\""
            ]
        );
        assert_eq!(
            filters(Some("k8s.io"))[2],
            "topic==\"/tasks/start\",namespace==\"k8s.io\""
        );
    }

    struct Recorder(RefCell<Vec<Record>>);
    impl Sink for Recorder {
        fn send(&self, r: &Record) -> Result<(), String> {
            self.0.borrow_mut().push(r.clone());
            Ok(())
        }
    }

    fn opts(max_attempts: u32) -> SyncOptions {
        SyncOptions {
            address: "/nonexistent".into(),
            namespace: None,
            fetch: FetchOptions::default(),
            max_attempts,
            backoff: Backoff {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(2),
            },
            decide_ahead: None,
        }
    }

    fn ev() -> ImageEvent {
        ImageEvent {
            namespace: "default".into(),
            name: "registry.example/app:1".into(),
            kind: EventKind::Create,
        }
    }

    #[test]
    fn retries_then_records_one_failure() {
        let sink = Recorder(RefCell::new(vec![]));
        let mut calls = 0;
        let ok = sync_one(&ev(), &opts(3), &mut |_| {}, &sink, &mut |_| {
            calls += 1;
            Err("registry down".into())
        });
        assert!(!ok);
        assert_eq!(calls, 3);
        let got = sink.0.borrow();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field("MESSAGE_ID"), Some(message_id::FETCH_FAILED));
        assert_eq!(got[0].field("SYSLOG_IDENTIFIER"), Some(IDENTIFIER));
        assert_eq!(got[0].field("PORTCULLIS_ATTEMPTS"), Some("3"));
        assert_eq!(got[0].field("PORTCULLIS_REASON"), Some("registry down"));
    }

    #[test]
    fn success_after_a_failure_records_nothing() {
        let sink = Recorder(RefCell::new(vec![]));
        let mut calls = 0;
        let ok = sync_one(&ev(), &opts(5), &mut |_| {}, &sink, &mut |_| {
            calls += 1;
            if calls == 1 {
                return Err("timeout".into());
            }
            Ok(FetchReport {
                image: "registry.example/app:1".into(),
                digest: format!("sha256:{}", "b".repeat(64)),
                platform_digest: None,
                subjects: vec![],
            })
        });
        assert!(ok);
        assert_eq!(calls, 2);
        assert!(sink.0.borrow().is_empty());
    }

    #[test]
    fn catalog_has_the_sync_message_ids() {
        let catalog = include_str!("../../systemd/portcullis.catalog");
        assert!(catalog.contains(&format!("-- {}\n", message_id::FETCH_FAILED)));
        assert!(catalog.contains(&format!("-- {}\n", message_id::SNAPSHOT_SQUAT)));
    }

    #[test]
    fn decodes_snapshot_commits() {
        use containerd_client::events::SnapshotCommit;
        let v = SnapshotCommit {
            key: "squat".into(),
            name: format!("sha256:{}", "c".repeat(64)),
            snapshotter: "overlayfs".into(),
        }
        .encode_to_vec();
        let e = envelope("/snapshot/commit", "containerd.events.SnapshotCommit", v);
        let c = decode_commit(&e).unwrap().unwrap();
        assert_eq!(
            (c.key.as_str(), c.snapshotter.as_str()),
            ("squat", "overlayfs")
        );
        assert_eq!(c.namespace, "k8s.io");
        let e = envelope(
            "/snapshot/commit",
            "containerd.events.SnapshotPrepare",
            vec![],
        );
        assert!(decode_commit(&e)
            .unwrap_err()
            .contains("unexpected payload type"));
        let e = envelope("/tasks/start", "containerd.events.TaskStart", vec![]);
        assert_eq!(decode_commit(&e).unwrap(), None);
        assert!(filters(None).contains(&COMMIT_FILTER.to_string()));
    }

    #[test]
    fn squat_record_names_the_snapshot_and_why() {
        let name = format!("sha256:{}", "d".repeat(64));
        let r = squat_record(&Squat {
            namespace: "default".into(),
            snapshotter: "overlayfs".into(),
            name: name.clone(),
            parent: String::new(),
            key: Some("squat".into()),
            reasons: vec!["a".into(), "b".into()],
            source: "commit-event".into(),
            address: "/s".into(),
        });
        assert_eq!(r.field("MESSAGE_ID"), Some(message_id::SNAPSHOT_SQUAT));
        assert_eq!(r.field("PORTCULLIS_CHAIN_ID"), Some(name.as_str()));
        assert_eq!(r.field("PORTCULLIS_SNAPSHOT_KEY"), Some("squat"));
        assert_eq!(r.field("PORTCULLIS_REASON"), Some("a; b"));
        assert_eq!(r.field("PORTCULLIS_SNAPSHOT_PARENT"), None);
        assert!(r.message.contains("snapshots rm"));
    }
}
