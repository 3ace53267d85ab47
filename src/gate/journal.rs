//! The verdict record: one structured journald entry per decision, never lost.
//!
//! This module owns the record's fields (`PORTCULLIS_*`, `MESSAGE_ID`,
//! priority), sending it over journald's native protocol (`libsystemd`), and
//! the spool: when journald cannot take a record, it is appended (fsynced,
//! under a lock) to `spool/journal.jsonl` in the state directory and
//! replayed, in order, at the next successful send or by
//! `portcullis journal replay`. The spool holds at most [`MAX_SPOOL_BYTES`]:
//! a node whose journald stays down cannot fill its disk with it. A record
//! that can be neither sent nor spooled (the spool full, the disk full, the
//! state directory unwritable) is reported to the caller, which refuses the
//! start in enforce mode; nothing already spooled is dropped.

use std::fs;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use libsystemd::logging::Priority;
use serde::{Deserialize, Serialize};

use crate::gate::{Decision, Kind};

/// `SYSLOG_IDENTIFIER` of every record.
pub const IDENTIFIER: &str = "portcullis";
/// `SYSLOG_IDENTIFIER` of the records of `portcullis sync`.
pub const SYNC_IDENTIFIER: &str = "portcullis-sync";
/// `SYSLOG_IDENTIFIER` of the records of `portcullis reverify`.
pub const REVERIFY_IDENTIFIER: &str = "portcullis-reverify";

/// `MESSAGE_ID`s, one per kind of verdict (stable: catalog entries and
/// queries depend on them).
pub mod message_id {
    /// A signature verified; the start proceeds.
    pub const VERIFIED: &str = "5df00955c1994ba5be84b8b6def67e0d";
    /// Allowed without verification by an exemption rule or default allow.
    pub const EXEMPT: &str = "8f3c2a1e6b7d4c0f9a5e2d1b3c4f6a70";
    /// The start was refused.
    pub const DENIED: &str = "c7a4e0b2d9f14e6a8b3c5d7e9f102a4b";
    /// Requirements failed in warn mode; the start proceeds with a warning.
    pub const WARNED: &str = "2b9d6f0e4a8c41d7b5e3f1a9c7d5e3b1";
    /// Requirements failed in audit mode; the start proceeds, recorded.
    pub const AUDITED: &str = "9e1f3a5c7b9d4e2f8a6c4e2a0b8d6f4c";
    /// The gate's periodic statement of what it enforces (`portcullis heartbeat`).
    pub const HEARTBEAT: &str = "43854a3b0232701f13a057de7bb8bcd5";
    /// containerd started a task (`portcullis sync` observed `/tasks/start`).
    pub const TASK_STARTED: &str = "8318d2f6b992168aab5504b031ff237c";
    /// `portcullis sync` began or stopped observing containerd's events.
    pub const OBSERVER: &str = "726a6dbc984c74fd633242c1b58a00c0";
    /// A running container's verdict no longer holds (`portcullis reverify`).
    pub const REVOKED: &str = "12549d0d798943839163463d23f4104f";
    /// `portcullis reverify` stopped (or failed to stop) such a container.
    pub const REVOKED_STOPPED: &str = "fb2c85036a494dc59b8b2d51d032c356";
    /// `portcullis policy pull` installed a signed policy artifact.
    pub const POLICY_INSTALLED: &str = "c2038a3cc8564ecfad1d389e5d29488e";
    /// `portcullis policy pull` refused an artifact (rollback, expired,
    /// signature, tampered, invalid); the policy in force is unchanged.
    pub const POLICY_REFUSED: &str = "981466927d7f42fe9cc109b54f838001";
    /// `portcullis policy pull` could not reach the registry; the last good
    /// policy stays in force.
    pub const POLICY_UNREACHABLE: &str = "6a307f9343344c26a68137fbe3d4a202";
}
/// `SYSLOG_IDENTIFIER` of the records of `portcullis policy pull`.
pub const POLICY_PULL_IDENTIFIER: &str = "portcullis-policy-pull";

/// The largest the spool grows: 64 MiB, about 27,000 verdict records of
/// 2.4 KB. A record that would take it past this is refused, not spooled,
/// and nothing already spooled is dropped to make room.
pub const MAX_SPOOL_BYTES: u64 = 64 * 1024 * 1024;

/// Errors recording a verdict.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// journald refused the record and the spool is at its size limit.
    #[error(
        "cannot record the verdict: journald: {journald}; the spool {path} is full ({size} bytes, at most {max}): start systemd-journald, then run `portcullis journal replay`"
    )]
    SpoolFull {
        /// journald's error.
        journald: String,
        /// The spool file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// Its limit.
        max: u64,
    },
    /// journald refused the record and the spool could not take it either.
    #[error("cannot record the verdict: journald: {journald}; spool {path}: {spool}")]
    Lost {
        /// journald's error.
        journald: String,
        /// The spool file.
        path: PathBuf,
        /// The spool's error.
        spool: std::io::Error,
    },
    /// I/O on the spool.
    #[error("spool {path}: {source}")]
    Spool {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One journal record: message, priority and fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `MESSAGE`.
    pub message: String,
    /// syslog priority (3 err, 4 warning, 5 notice, 6 info).
    pub priority: u8,
    /// All other fields, in order.
    pub fields: Vec<(String, String)>,
}

impl Record {
    /// The record for a decision.
    pub fn from_decision(d: &Decision) -> Record {
        let (priority, id) = match d.kind {
            Kind::Verified => (6, message_id::VERIFIED),
            Kind::Exempt => (5, message_id::EXEMPT),
            Kind::Denied => (3, message_id::DENIED),
            Kind::Warned => (4, message_id::WARNED),
            Kind::Audited => (5, message_id::AUDITED),
        };
        let subject = match (&d.image_ref, &d.image_digest) {
            (Some(r), Some(g)) => format!("{r}@{g}"),
            (Some(r), None) => r.clone(),
            _ => "unknown image".into(),
        };
        let message = format!(
            "{} {subject} container {}/{}: {}",
            d.verdict.as_str(),
            d.namespace,
            d.container_id.as_deref().unwrap_or("-"),
            d.reason
        );
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut fields = vec![
            ("SYSLOG_IDENTIFIER".to_string(), IDENTIFIER.to_string()),
            ("MESSAGE_ID".into(), id.into()),
            ("PORTCULLIS_VERDICT".into(), d.verdict.as_str().into()),
            (
                "PORTCULLIS_OUTCOME".into(),
                match d.outcome {
                    crate::gate::Outcome::Pass => "pass".into(),
                    crate::gate::Outcome::Fail => "fail".into(),
                },
            ),
            ("PORTCULLIS_CONTAINER_ID".into(), opt(&d.container_id)),
            ("PORTCULLIS_NAMESPACE".into(), d.namespace.clone()),
            ("PORTCULLIS_IMAGE_REF".into(), opt(&d.image_ref)),
            ("PORTCULLIS_IMAGE_DIGEST".into(), opt(&d.image_digest)),
            ("PORTCULLIS_PLATFORM_DIGEST".into(), opt(&d.platform_digest)),
            ("PORTCULLIS_RULE".into(), d.rule.clone()),
            ("PORTCULLIS_MODE".into(), d.mode.as_str().into()),
            ("PORTCULLIS_REASON".into(), d.reason.clone()),
            (
                "PORTCULLIS_REJECTION".into(),
                d.rejection.map(|c| c.as_str()).unwrap_or_default().into(),
            ),
            ("PORTCULLIS_SIGNER".into(), opt(&d.signer)),
            ("PORTCULLIS_SIGNED_DIGEST".into(), opt(&d.signed_digest)),
            ("PORTCULLIS_POLICY_DIGEST".into(), opt(&d.policy_digest)),
            (
                "PORTCULLIS_TRUST_ROOT_DIGEST".into(),
                opt(&d.trust_root_digest),
            ),
            ("PORTCULLIS_POLICY_PATH".into(), d.policy_path.clone()),
            ("PORTCULLIS_SHIM".into(), d.shim.clone()),
            ("PORTCULLIS_DURATION_US".into(), d.duration_us.to_string()),
            (
                "PORTCULLIS_VERDICT_CACHE".into(),
                d.verdict_cache.unwrap_or_default().to_string(),
            ),
            (
                "PORTCULLIS_DECIDED_AT".into(),
                jiff::Timestamp::now().to_string(),
            ),
            (
                "PORTCULLIS_VERSION".into(),
                env!("CARGO_PKG_VERSION").into(),
            ),
        ];
        if let Some(f) = &d.sigstore {
            let o = |v: &Option<String>| v.clone().unwrap_or_default();
            fields.extend([
                ("PORTCULLIS_SIGNER_SUBJECT".to_string(), o(&f.subject)),
                ("PORTCULLIS_SIGNER_ISSUER".into(), o(&f.issuer)),
                ("PORTCULLIS_REKOR_LOG_ID".into(), o(&f.log_id)),
                (
                    "PORTCULLIS_REKOR_LOG_INDEX".into(),
                    f.log_index.map(|i| i.to_string()).unwrap_or_default(),
                ),
                ("PORTCULLIS_TIMESTAMP_SOURCE".into(), o(&f.time_source)),
                ("PORTCULLIS_SIGNED_AT".into(), o(&f.signed_at)),
            ]);
        }
        if let Some(p) = &d.provenance {
            fields.extend([
                (
                    "PORTCULLIS_PROVENANCE_BUILDER".to_string(),
                    p.builder.clone(),
                ),
                (
                    "PORTCULLIS_PROVENANCE_SOURCE".into(),
                    p.source.clone().unwrap_or_default(),
                ),
                (
                    "PORTCULLIS_PROVENANCE_SOURCE_REF".into(),
                    p.source_ref.clone().unwrap_or_default(),
                ),
                (
                    "PORTCULLIS_PROVENANCE_BUILD_TYPE".into(),
                    p.build_type.clone(),
                ),
                (
                    "PORTCULLIS_PROVENANCE_PREDICATE_TYPE".into(),
                    p.predicate_type.clone(),
                ),
                (
                    "PORTCULLIS_PROVENANCE_DIGEST".into(),
                    p.statement_digest.clone(),
                ),
                ("PORTCULLIS_PROVENANCE_SIGNER".into(), p.signer.clone()),
            ]);
        }
        fields.retain(|(_, v)| !v.is_empty());
        Record {
            message,
            priority,
            fields,
        }
    }

    /// A field's value.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Where records go; journald in production.
pub trait Sink {
    /// Deliver one record.
    fn send(&self, record: &Record) -> Result<(), String>;
}

/// journald over its native protocol socket.
#[derive(Debug, Default, Clone, Copy)]
pub struct Journald;

impl Sink for Journald {
    fn send(&self, r: &Record) -> Result<(), String> {
        let priority = match r.priority {
            0 => Priority::Emergency,
            1 => Priority::Alert,
            2 => Priority::Critical,
            3 => Priority::Error,
            4 => Priority::Warning,
            5 => Priority::Notice,
            6 => Priority::Info,
            _ => Priority::Debug,
        };
        libsystemd::logging::journal_send(
            priority,
            &r.message,
            r.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| e.to_string())
    }
}

/// How long a gate or a tool waits for journald to take one record, unless
/// `PORTCULLIS_JOURNALD_TIMEOUT_MS` says otherwise.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// The deadline for one journald send: `PORTCULLIS_JOURNALD_TIMEOUT_MS`,
/// else [`DEFAULT_SEND_TIMEOUT`].
pub fn send_timeout() -> Duration {
    crate::base::deadline::from_env("PORTCULLIS_JOURNALD_TIMEOUT_MS", DEFAULT_SEND_TIMEOUT)
}

/// journald with a deadline on each send ([`crate::base::deadline`]): the
/// sink of the gates and of the operator tools. A journald that is frozen
/// (stopped, not dead) with its socket's queue full blocks libsystemd's send
/// for as long as it stays frozen; with the deadline the send fails instead,
/// the record is spooled like any record journald did not take, and the
/// container's start (or the tool) goes on. The deadline's signal goes to
/// the sending thread only, so a threaded tool is bounded too.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineJournald {
    /// How long one send may block.
    pub deadline: Duration,
}

impl DeadlineJournald {
    /// With the deadline of [`send_timeout`].
    pub fn from_env() -> Self {
        DeadlineJournald {
            deadline: send_timeout(),
        }
    }
}

impl Sink for DeadlineJournald {
    fn send(&self, r: &Record) -> Result<(), String> {
        match crate::base::deadline::within(self.deadline, || Journald.send(r)) {
            Ok((Ok(()), _)) => Ok(()),
            Ok((Err(e), true)) => Err(format!(
                "journald did not take the record within {} ms (is it stopped with its queue full?): {e}",
                self.deadline.as_millis()
            )),
            Ok((Err(e), false)) => Err(e),
            // Never sent without a deadline: spooled instead.
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The spool in a state directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
}

/// An append refused because the spool is at its limit (carried inside the
/// `io::Error` of [`Spool::append`]).
#[derive(Debug, thiserror::Error)]
#[error("the spool is full ({size} bytes, at most {max})")]
pub struct SpoolFull {
    /// The spool's size.
    pub size: u64,
    /// Its limit.
    pub max: u64,
}

/// How a record was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Straight to the sink.
    Sent,
    /// To the spool, for later replay.
    Spooled,
}

impl Spool {
    /// The spool under `dir`, at most [`MAX_SPOOL_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_max(dir, MAX_SPOOL_BYTES)
    }

    /// The spool under `dir`, at most `max_bytes`.
    pub fn with_max(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            max_bytes,
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    /// The spool's lock, waited for at most [`SPOOL_LOCK_WAIT`]: a holder
    /// that is frozen (a stopped `journal replay`, an `fsync` stuck on a
    /// hung disk) makes a record fail, never a start wait for ever.
    fn lock(&self) -> std::io::Result<fs::File> {
        fs::create_dir_all(&self.dir)?;
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock"))?;
        let until = std::time::Instant::now() + SPOOL_LOCK_WAIT;
        loop {
            match f.try_lock() {
                Ok(()) => return Ok(f),
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < until => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "{} is held by another process for more than {} ms",
                            self.dir.join("lock").display(),
                            SPOOL_LOCK_WAIT.as_millis()
                        ),
                    ))
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    /// Append one record durably. A spool whose last line was torn (a crash
    /// mid-append) first gets the newline it lacks, so the torn line stays
    /// one bad line and never swallows this record. A record that would take
    /// the spool past its limit is refused with a [`SpoolFull`] inside the
    /// error, and the spool is left as it was.
    pub fn append(&self, r: &Record) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let _guard = self.lock()?;
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(self.file())?;
        let mut line = Vec::new();
        let len = f.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            f.read_exact_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                line.push(b'\n');
            }
        }
        serde_json::to_writer(&mut line, r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if len.saturating_add(line.len() as u64) > self.max_bytes {
            return Err(std::io::Error::other(SpoolFull {
                size: len,
                max: self.max_bytes,
            }));
        }
        (&f).write_all(&line)?;
        f.sync_all()
    }

    /// Records waiting (cheap check: the file exists and is not empty).
    pub fn is_pending(&self) -> bool {
        fs::metadata(self.file())
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    }

    /// Send every spooled record, oldest first; stop at the first failure and
    /// keep the rest. Returns (sent, remaining). Lines that are not records
    /// (a torn line after a crash, bytes that are not UTF-8) are kept aside
    /// in `journal.bad`, never dropped silently, and never block the records
    /// behind them.
    ///
    /// While journald is down, every start comes here: the first record
    /// fails to send, the records behind it are neither read nor parsed,
    /// and the spool, unchanged, is not rewritten. Before, each such start
    /// read and rewrote (with an `fsync`) the whole spool, a cost that grew
    /// with every start journald missed.
    pub fn replay(&self, sink: &dyn Sink) -> Result<(usize, usize), JournalError> {
        self.replay_counted(sink, true, usize::MAX)
    }

    /// [`Spool::replay`]; with `count` false, a spool left as it was reports
    /// 1 remaining (at least one) instead of reading the rest to count it:
    /// a start only needs to know whether any record stays, and the count
    /// measured 3 ms at 1,000 spooled records (`journal_down` bench).
    /// At most `limit` records are sent; the rest stay, as after a failure.
    fn replay_counted(
        &self,
        sink: &dyn Sink,
        count: bool,
        limit: usize,
    ) -> Result<(usize, usize), JournalError> {
        use std::io::Read;
        let spool_err = |source| JournalError::Spool {
            path: self.file(),
            source,
        };
        let _guard = self.lock().map_err(spool_err)?;
        let f = match fs::File::open(self.file()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(spool_err(e)),
        };
        let blank = |l: &[u8]| l.iter().all(u8::is_ascii_whitespace);
        let mut reader = std::io::BufReader::new(f);
        let mut sent = 0;
        let mut bad: Vec<Vec<u8>> = Vec::new();
        // The first record that could not be sent: it and everything after
        // it stay in the spool.
        let mut held: Option<Vec<u8>> = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(spool_err)? == 0 {
                break;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if blank(text) {
                continue;
            }
            let parsed = std::str::from_utf8(text)
                .ok()
                .and_then(|t| serde_json::from_str::<Record>(t).ok());
            match parsed {
                Some(_) if sent == limit => {
                    held = Some(text.to_vec());
                    break;
                }
                Some(mut r) => {
                    r.fields.push(("PORTCULLIS_SPOOLED".into(), "1".into()));
                    if sink.send(&r).is_ok() {
                        sent += 1;
                    } else {
                        held = Some(text.to_vec());
                        break;
                    }
                }
                None => bad.push(text.to_vec()),
            }
        }
        let untouched = held.is_some() && sent == 0 && bad.is_empty();
        if untouched && !count {
            return Ok((0, 1));
        }
        let mut rest = Vec::new();
        let mut remaining = 0;
        if held.is_some() {
            reader.read_to_end(&mut rest).map_err(spool_err)?;
            remaining = 1 + rest.split(|&b| b == b'\n').filter(|l| !blank(l)).count();
        }
        if !bad.is_empty() {
            let mut b = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("journal.bad"))
                .map_err(spool_err)?;
            for l in &bad {
                b.write_all(l).map_err(spool_err)?;
                b.write_all(b"\n").map_err(spool_err)?;
            }
            b.sync_all().map_err(spool_err)?;
        }
        if untouched {
            // Nothing left the spool: it is as it was.
            return Ok((0, remaining));
        }
        let mut text = Vec::new();
        if let Some(h) = held {
            text.extend_from_slice(&h);
            text.push(b'\n');
            text.extend_from_slice(&rest);
        }
        // Durable as before: the file is fsynced before the rename.
        crate::base::fsio::write_atomic(
            &self.file(),
            &text,
            crate::base::fsio::Durability::Durable,
        )
        .map_err(spool_err)?;
        Ok((sent, remaining))
    }
}

/// How long a record waits for the spool's lock.
pub const SPOOL_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How many spooled records one record replays before its own is sent: a
/// start after a long journald outage sends a bounded share of the backlog
/// (and holds the lock for that long), the next starts and `portcullis
/// journal replay` the rest.
pub const REPLAY_PER_RECORD: usize = 256;

/// Record a verdict: send it, or spool it. Pending spooled records are
/// replayed first (at most [`REPLAY_PER_RECORD`]) so the journal keeps their
/// order; while some stay, this one is spooled behind them.
pub fn record(sink: &dyn Sink, spool: &Spool, r: &Record) -> Result<Delivery, JournalError> {
    if spool.is_pending() {
        // Best effort: if replay fails, this record goes behind the others.
        if let Ok((_, 0)) = spool.replay_counted(sink, false, REPLAY_PER_RECORD) {
        } else {
            return spool_it(spool, r, "earlier records are still spooled".into());
        }
    }
    match sink.send(r) {
        Ok(()) => Ok(Delivery::Sent),
        Err(e) => spool_it(spool, r, e),
    }
}

fn spool_it(spool: &Spool, r: &Record, journald: String) -> Result<Delivery, JournalError> {
    // Why it waited, replayed with it (journald down, or past the gate's send
    // deadline): auditors see a late record's reason, not only its lateness.
    let mut late = r.clone();
    late.fields.push((
        "PORTCULLIS_SPOOL_REASON".into(),
        crate::base::text::one_line(&journald),
    ));
    spool
        .append(&late)
        .map(|()| Delivery::Spooled)
        .map_err(
            |e| match e.get_ref().and_then(|i| i.downcast_ref::<SpoolFull>()) {
                Some(full) => JournalError::SpoolFull {
                    journald,
                    path: spool.file(),
                    size: full.size,
                    max: full.max,
                },
                None => JournalError::Lost {
                    journald,
                    path: spool.file(),
                    spool: e,
                },
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Fake {
        up: RefCell<bool>,
        got: RefCell<Vec<Record>>,
    }

    impl Fake {
        /// A journald that is up or down, having received nothing.
        fn new(up: bool) -> Fake {
            Fake {
                up: RefCell::new(up),
                got: RefCell::new(vec![]),
            }
        }
    }

    impl Sink for Fake {
        fn send(&self, r: &Record) -> Result<(), String> {
            if *self.up.borrow() {
                self.got.borrow_mut().push(r.clone());
                Ok(())
            } else {
                Err("connection refused".into())
            }
        }
    }

    fn rec(n: usize) -> Record {
        Record {
            message: format!("m{n}"),
            priority: 6,
            fields: vec![("PORTCULLIS_CONTAINER_ID".into(), format!("c{n}"))],
        }
    }

    #[test]
    fn spools_while_down_and_replays_in_order_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"));
        let sink = Fake::new(false);
        for i in 0..5 {
            assert_eq!(record(&sink, &spool, &rec(i)).unwrap(), Delivery::Spooled);
        }
        assert!(spool.is_pending());
        *sink.up.borrow_mut() = true;
        assert_eq!(record(&sink, &spool, &rec(5)).unwrap(), Delivery::Sent);
        let got = sink.got.borrow();
        let ids: Vec<_> = got
            .iter()
            .map(|r| r.field("PORTCULLIS_CONTAINER_ID").unwrap().to_string())
            .collect();
        assert_eq!(ids, ["c0", "c1", "c2", "c3", "c4", "c5"]);
        assert_eq!(got[0].field("PORTCULLIS_SPOOLED"), Some("1"));
        assert_eq!(got[5].field("PORTCULLIS_SPOOLED"), None);
        // Each spooled record says why it waited; a sent one says nothing.
        assert_eq!(
            got[0].field("PORTCULLIS_SPOOL_REASON"),
            Some("connection refused")
        );
        assert_eq!(
            got[1].field("PORTCULLIS_SPOOL_REASON"),
            Some("earlier records are still spooled")
        );
        assert_eq!(got[5].field("PORTCULLIS_SPOOL_REASON"), None);
        assert!(!spool.is_pending());
    }

    /// After a long outage a record replays a bounded share of the
    /// backlog, keeps the rest in order and goes behind it; a later replay
    /// sends the rest.
    #[test]
    fn a_record_replays_a_bounded_share_of_the_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        let n = REPLAY_PER_RECORD + 10;
        for i in 0..n {
            spool.append(&rec(i)).unwrap();
        }
        let sink = Fake::new(true);
        assert_eq!(record(&sink, &spool, &rec(n)).unwrap(), Delivery::Spooled);
        assert_eq!(sink.got.borrow().len(), REPLAY_PER_RECORD);
        assert_eq!(spool.replay(&sink).unwrap(), (11, 0));
        let ids: Vec<String> = sink
            .got
            .borrow()
            .iter()
            .map(|r| r.field("PORTCULLIS_CONTAINER_ID").unwrap().to_string())
            .collect();
        let want: Vec<String> = (0..=n).map(|i| format!("c{i}")).collect();
        assert_eq!(ids, want);
    }

    /// A lock held for longer than [`SPOOL_LOCK_WAIT`] fails the record
    /// (the gate then refuses in enforce mode), never holds it for ever.
    #[test]
    fn a_held_spool_lock_fails_the_record_in_bounded_time() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        spool.append(&rec(0)).unwrap();
        let holder = spool.lock().unwrap();
        let sink = Fake::new(false);
        let t = std::time::Instant::now();
        let e = record(&sink, &spool, &rec(1)).unwrap_err().to_string();
        assert!(t.elapsed() < SPOOL_LOCK_WAIT * 3, "{:?}", t.elapsed());
        assert!(e.contains("held by another process"), "{e}");
        drop(holder);
        // Nothing stored was lost.
        *sink.up.borrow_mut() = true;
        assert_eq!(spool.replay(&sink).unwrap(), (1, 0));
    }

    #[test]
    fn torn_lines_are_kept_aside_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        spool.append(&rec(1)).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal.jsonl"))
            .unwrap()
            .write_all(b"{\"message\":\"tor")
            .unwrap();
        // The next record after the crash is not swallowed by the torn line.
        spool.append(&rec(2)).unwrap();
        let sink = Fake::new(true);
        assert_eq!(spool.replay(&sink).unwrap(), (2, 0));
        let bad = fs::read_to_string(dir.path().join("journal.bad")).unwrap();
        assert_eq!(bad, "{\"message\":\"tor\n");
        let ids: Vec<_> = sink
            .got
            .borrow()
            .iter()
            .map(|r| r.field("PORTCULLIS_CONTAINER_ID").unwrap().to_string())
            .collect();
        assert_eq!(ids, ["c1", "c2"]);
    }

    #[test]
    fn lines_that_are_not_utf8_are_set_aside_and_block_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        let file = dir.path().join("journal.jsonl");
        fs::write(&file, b"{\"message\":\"\xff\xfe\"}\n").unwrap();
        spool.append(&rec(1)).unwrap();
        let sink = Fake::new(true);
        assert_eq!(spool.replay(&sink).unwrap(), (1, 0));
        assert_eq!(
            fs::read(dir.path().join("journal.bad")).unwrap(),
            b"{\"message\":\"\xff\xfe\"}\n"
        );
        assert!(!spool.is_pending());
    }

    /// Takes `left` records, then refuses.
    struct Flaky {
        left: std::cell::Cell<usize>,
        got: RefCell<Vec<String>>,
    }

    impl Sink for Flaky {
        fn send(&self, r: &Record) -> Result<(), String> {
            if self.left.get() == 0 {
                return Err("connection refused".into());
            }
            self.left.set(self.left.get() - 1);
            let id = r.field("PORTCULLIS_CONTAINER_ID").unwrap_or("?");
            self.got.borrow_mut().push(id.to_string());
            Ok(())
        }
    }

    #[test]
    fn a_replay_cut_short_keeps_the_rest_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        for i in 0..5 {
            spool.append(&rec(i)).unwrap();
        }
        let sink = Flaky {
            left: std::cell::Cell::new(2),
            got: RefCell::new(vec![]),
        };
        assert_eq!(spool.replay(&sink).unwrap(), (2, 3));
        sink.left.set(10);
        assert_eq!(spool.replay(&sink).unwrap(), (3, 0));
        assert_eq!(*sink.got.borrow(), ["c0", "c1", "c2", "c3", "c4"]);
    }

    /// A journald that is down, and records 0 to 2 spooled while it is.
    fn three_spooled(spool: &Spool) -> Fake {
        let sink = Fake::new(false);
        for i in 0..3 {
            assert_eq!(record(&sink, spool, &rec(i)).unwrap(), Delivery::Spooled);
        }
        sink
    }

    #[test]
    fn a_full_spool_refuses_the_record_and_keeps_every_spooled_one() {
        let dir = tempfile::tempdir().unwrap();
        // Room for the three spooled lines (each with the reason it waited),
        // not four.
        let line_len = |n: usize, reason: &str| {
            let mut r = rec(n);
            r.fields
                .push(("PORTCULLIS_SPOOL_REASON".into(), reason.into()));
            serde_json::to_vec(&r).unwrap().len() as u64 + 1
        };
        let behind = "earlier records are still spooled";
        let three = line_len(0, "connection refused") + line_len(1, behind) + line_len(2, behind);
        let max = three + line_len(3, behind) / 2;
        let spool = Spool::with_max(dir.path(), max);
        let sink = three_spooled(&spool);
        let file = dir.path().join("journal.jsonl");
        let before = fs::read(&file).unwrap();
        assert_eq!(before.len() as u64, three);
        let e = record(&sink, &spool, &rec(3)).unwrap_err();
        assert!(
            matches!(e, JournalError::SpoolFull { size, max: m, .. } if size == three && m == max),
            "{e:?}"
        );
        let line = e.to_string();
        for want in [
            "is full",
            "start systemd-journald",
            "portcullis journal replay",
        ] {
            assert!(line.contains(want), "{line}");
        }
        assert!(!line.contains('\n'), "one line: {line}");
        // Nothing spooled was dropped or rewritten to make room.
        assert_eq!(fs::read(&file).unwrap(), before);
        // journald back: the three go out in order and the spool has room.
        *sink.up.borrow_mut() = true;
        assert_eq!(record(&sink, &spool, &rec(4)).unwrap(), Delivery::Sent);
        let got: Vec<_> = sink
            .got
            .borrow()
            .iter()
            .map(|r| r.message.clone())
            .collect();
        assert_eq!(got, ["m0", "m1", "m2", "m4"]);
        assert!(!spool.is_pending());
    }

    #[test]
    fn a_spool_journald_cannot_take_is_left_as_it_was() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        let sink = three_spooled(&spool);
        let file = dir.path().join("journal.jsonl");
        let (before, ino) = (fs::read(&file).unwrap(), fs::metadata(&file).unwrap().ino());
        assert_eq!(spool.replay(&sink).unwrap(), (0, 3));
        // Not rewritten: the same file (a rewrite renames a new one in).
        assert_eq!(fs::metadata(&file).unwrap().ino(), ino);
        assert_eq!(fs::read(&file).unwrap(), before);
        // Once journald is back, one record sent and the rest kept in order.
        *sink.up.borrow_mut() = true;
        assert_eq!(record(&sink, &spool, &rec(3)).unwrap(), Delivery::Sent);
        assert_eq!(sink.got.borrow().len(), 4);
        assert!(!spool.is_pending());
    }

    #[test]
    fn unwritable_spool_reports_loss() {
        let sink = Fake::new(false);
        let spool = Spool::new("/proc/portcullis-cannot-exist");
        let e = record(&sink, &spool, &rec(1)).unwrap_err();
        assert!(e.to_string().contains("cannot record the verdict"), "{e}");
    }
}

#[cfg(test)]
mod catalog_tests {
    use super::message_id::*;

    #[test]
    fn every_message_id_has_a_catalog_entry() {
        let catalog = include_str!("../../systemd/portcullis.catalog");
        for id in [
            VERIFIED,
            EXEMPT,
            DENIED,
            WARNED,
            AUDITED,
            HEARTBEAT,
            TASK_STARTED,
            OBSERVER,
            REVOKED,
            POLICY_INSTALLED,
            POLICY_REFUSED,
            POLICY_UNREACHABLE,
            REVOKED_STOPPED,
        ] {
            assert_eq!(id.len(), 32);
            assert!(
                catalog.contains(&format!("-- {id}\n")),
                "{id} missing from the catalog"
            );
        }
    }
}
