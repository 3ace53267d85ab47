//! Privilege separation: untrusted bytes are parsed in a child with no
//! privileges.
//!
//! This module owns the verification sandbox. Signatures, certificates and
//! attestations come from registries; the code that parses and verifies
//! them runs in a child process forked for the purpose, which before
//! touching them
//!
//! - sets `no_new_privs` and asks to be killed when its parent dies,
//! - drops every capability: bounding and ambient sets, then inheritable,
//!   effective and permitted (and checks that they are empty),
//! - installs a seccomp filter (built with `seccompiler`) that allows only
//!   what reading files and computing a verdict needs: read-only `openat`,
//!   `read`, memory management, `write` to the result pipe and stderr, and
//!   exiting. Anything else (sockets, `execve`, writes to files, `ptrace`,
//!   ...) kills the child with `SIGSYS`.
//!
//! The parent, which keeps its privileges for the `exec` of the inner shim,
//! reads only a small serialized result over a pipe (at most
//! [`MAX_RESULT_BYTES`]). A child that crashes, is killed, exceeds its
//! deadline or writes anything that does not decode is an error, which the
//! gate turns into a denial naming it: the sandbox fails closed.
//! After its result the child writes three marks of the monotonic clock
//! (when it ran, when it was confined, when its work ended), which the
//! parent strips and joins to its own into a [`Timeline`]: where a start's
//! sandbox time went, for the benchmark.
//!
//! The child is a `fork` of the caller, not a fresh program, so it starts
//! with the policy, signers and containerd's answer already in memory and
//! costs about a fork. That is sound only in a single-threaded process (a
//! forked child of a threaded one may inherit locks held by threads that no
//! longer exist), so [`run`] checks the thread count first. The shim and the
//! CLI are single-threaded when they verify (the containerd lookup's
//! current-thread runtime is gone by then) and call [`require`]: in a
//! threaded process they refuse rather than verify unisolated. A library
//! host that did not call [`require`] (the unit tests' threaded harness) gets
//! in-process verification instead, and [`Isolation`] says which happened.
//!
//! The caller prepares before the fork what is node configuration rather
//! than registry bytes (the rule's identity expressions compiled, the trust
//! root parsed): a fresh child would fault in that code and heap again, and
//! tear them down at its exit.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde::{de::DeserializeOwned, Serialize};

/// Largest result the parent reads from the child, in bytes.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
/// How long the child may take, unless `PORTCULLIS_VERIFY_TIMEOUT_MS` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

static REQUIRED: AtomicBool = AtomicBool::new(false);

/// From now on, refuse to verify outside the sandbox (the binaries call
/// this; a threaded process then gets [`SandboxError::Threaded`]).
pub fn require() {
    REQUIRED.store(true, Ordering::SeqCst);
}

/// Is isolation required in this process?
pub fn required() -> bool {
    REQUIRED.load(Ordering::SeqCst)
}

/// Where the work ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In a forked child without capabilities, under `no_new_privs` and seccomp.
    Child,
    /// In this process (a threaded library host that did not call [`require`]).
    InProcess,
}

/// Why the sandboxed work produced no result.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// More than one thread: forking is unsafe, and isolation is required.
    #[error("the verification sandbox needs a single-threaded process to fork from, and this one has {0} threads")]
    Threaded(usize),
    /// A system call of the parent failed.
    #[error("cannot start the verification sandbox: {0}")]
    Spawn(String),
    /// The child could not drop its privileges.
    #[error("the verification sandbox could not drop its privileges: {0}")]
    Setup(String),
    /// The child died by a signal.
    #[error("the verification child was killed by {0}{1}")]
    Killed(String, &'static str),
    /// The verifying code panicked in the child.
    #[error("the verification child panicked (a bug in parsing or verifying the cached artifacts; its message is on the shim's stderr)")]
    Panicked,
    /// The child exited without a result.
    #[error("the verification child exited with status {0} without a verdict")]
    Exited(i32),
    /// The child ran past its deadline and was killed.
    #[error("the verification child took longer than {0} ms and was killed; raise PORTCULLIS_VERIFY_TIMEOUT_MS if the cache is very large")]
    Timeout(u128),
    /// The result was too large or did not decode.
    #[error("the verification child's result is unusable: {0}")]
    Garbage(String),
}

/// The deadline: `PORTCULLIS_VERIFY_TIMEOUT_MS`, else [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Duration {
    crate::base::deadline::from_env("PORTCULLIS_VERIFY_TIMEOUT_MS", DEFAULT_TIMEOUT)
}

/// Threads of this process, from `/proc/self/task`.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(usize::MAX)
}

/// Run `f` in the sandbox and decode what it returns. In a threaded process
/// that did not call [`require`], `f` runs here instead, and its result goes
/// through the same encoding.
pub fn run<T, F>(f: F) -> Result<(T, Isolation), SandboxError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> T,
{
    run_timed(f).map(|(t, isolation, _)| (t, isolation))
}

/// [`run`], and where the sandbox's time went when a child ran.
pub fn run_timed<T, F>(f: F) -> Result<(T, Isolation, Option<Timeline>), SandboxError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> T,
{
    // One encoding, in a child or in process: what a decision returns is
    // the same isolated or not, and the threaded unit tests exercise the
    // encoding the gates' children use.
    let encoded = move || serde_json::to_vec(&f()).unwrap_or_default();
    let threads = thread_count();
    if threads != 1 {
        if required() {
            return Err(SandboxError::Threaded(threads));
        }
        return decode(&encoded()).map(|t| (t, Isolation::InProcess, None));
    }
    let (bytes, timeline) = run_raw_timed(encoded, timeout())?;
    decode(&bytes).map(|t| (t, Isolation::Child, Some(timeline)))
}

/// Decode a child's result.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SandboxError> {
    serde_json::from_slice(bytes).map_err(|e| {
        SandboxError::Garbage(format!("{} bytes that do not decode: {e}", bytes.len()))
    })
}

/// Fork, confine the child, run `f` there and return the bytes it produced.
/// The caller must be single-threaded ([`run`] checks).
pub fn run_raw<F>(f: F, deadline: Duration) -> Result<Vec<u8>, SandboxError>
where
    F: FnOnce() -> Vec<u8>,
{
    run_raw_timed(f, deadline).map(|(bytes, _)| bytes)
}

/// [`run_raw`], and where the time went.
pub fn run_raw_timed<F>(f: F, deadline: Duration) -> Result<(Vec<u8>, Timeline), SandboxError>
where
    F: FnOnce() -> Vec<u8>,
{
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SandboxError::Spawn(format!("pipe: {e}")))?;
    // Both processes measure from here: the child inherits the instant.
    let called = Instant::now();
    // SAFETY: the process is single-threaded (checked by `run`, the only
    // caller outside tests that also check), so the child inherits no lock
    // held by another thread and may allocate; it leaves only by `_exit`.
    match unsafe { fork() }.map_err(|e| SandboxError::Spawn(format!("fork: {e}")))? {
        ForkResult::Child => {
            drop(rd);
            let code = child(wr, f, called);
            // SAFETY: `_exit` skips atexit handlers and stdio flushing that
            // belong to the parent; nothing else is unsafe about it.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let forked = called.elapsed();
            drop(wr);
            parent(rd, child, deadline, called, forked)
        }
    }
}

/// Where a sandboxed run's time went, in microseconds of the monotonic
/// clock, which the parent and the child both read on either side of each
/// step. The two processes overlap: the parent waits while the child runs.
/// The benchmark's breakdown of the child's cost; never journaled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    /// `fork` in the parent: from its call until it returned there.
    pub fork_us: u64,
    /// From the parent's call of `fork` until the child first ran.
    pub child_start_us: u64,
    /// The child dropping its privileges and installing its filter.
    pub confine_us: u64,
    /// The work, its result serialized.
    pub work_us: u64,
    /// From the work's end until the parent saw the pipe close: the
    /// result's write, and the close as the child's work returns.
    pub exit_us: u64,
    /// From the pipe's close until `waitpid` returned: the child's exit,
    /// its memory torn down, and the parent's wake-up.
    pub reap_us: u64,
}

/// The child's marks after its result: when it ran, when it was confined
/// and when its work ended, each as little-endian nanoseconds since the
/// parent called `fork`.
const MARKS_BYTES: usize = 24;

impl Timeline {
    /// `ran`, `confined` and `worked` are the child's marks; every instant
    /// is counted from the parent's call of `fork`.
    fn from_marks(
        forked: Duration,
        [ran, confined, worked]: [Duration; 3],
        eof: Duration,
        reaped: Duration,
    ) -> Self {
        let us = |d: Duration| d.as_micros() as u64;
        Timeline {
            fork_us: us(forked),
            child_start_us: us(ran),
            confine_us: us(confined.saturating_sub(ran)),
            work_us: us(worked.saturating_sub(confined)),
            exit_us: us(eof.saturating_sub(worked)),
            reap_us: us(reaped.saturating_sub(eof)),
        }
    }
}

/// In the child: confine, compute, write, return the exit code.
fn child<F: FnOnce() -> Vec<u8>>(wr: OwnedFd, f: F, called: Instant) -> i32 {
    let ran = called.elapsed();
    // Built here, not before the fork: it names this process, the only one
    // the child may signal (its own abort).
    let confined = filter(wr.as_raw_fd(), std::process::id()).and_then(|p| confine(&p));
    let confined_at = called.elapsed();
    let mut out = std::fs::File::from(wr);
    if let Err(e) = confined {
        // Status 3 and the reason on the pipe, prefixed so it cannot decode
        // as a result.
        let _ = out.write_all(format!("\0setup:{e}").as_bytes());
        return 3;
    }
    let mut bytes = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(b) => b,
        Err(_) => return 4,
    };
    let worked = called.elapsed();
    for mark in [ran, confined_at, worked] {
        bytes.extend_from_slice(&(mark.as_nanos() as u64).to_le_bytes());
    }
    if out.write_all(&bytes).is_err() {
        return 5;
    }
    0
}

/// Drop every privilege this process has. Public so tests can confine a
/// child they forked themselves.
pub fn confine(filter: &seccompiler::BpfProgram) -> Result<(), String> {
    use caps::CapSet;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("PR_SET_NO_NEW_PRIVS: {e}"))?;
    // The bounding set needs CAP_SETPCAP to shrink; without it (an
    // unprivileged caller) it can grant nothing anyway: no_new_privs is set
    // and the child never executes a program.
    // Each capability is dropped without being read first (`caps::clear`
    // reads each, then drops it: twice the system calls, 82 where 41 do);
    // a drop that fails counts only if the capability is still in the set
    // (one this kernel does not know, EINVAL, is not).
    if caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP).unwrap_or(false) {
        for cap in caps::all() {
            if let Err(e) = caps::drop(None, CapSet::Bounding, cap) {
                if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                    return Err(format!("bounding set: {cap}: {e}"));
                }
            }
        }
    }
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| format!("{set:?} set: {e}"))?;
    }
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        let left = caps::read(None, set).map_err(|e| format!("{set:?} set: {e}"))?;
        if !left.is_empty() {
            return Err(format!("{set:?} set still holds {left:?}"));
        }
    }
    seccompiler::apply_filter(filter).map_err(|e| format!("seccomp: {e}"))?;
    Ok(())
}

/// In the parent: read until EOF or the deadline, then reap the child.
fn parent(
    rd: OwnedFd,
    child: Pid,
    deadline: Duration,
    called: Instant,
    forked: Duration,
) -> Result<(Vec<u8>, Timeline), SandboxError> {
    let start = Instant::now();
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut file = std::fs::File::from(rd);
    let mut failure = None;
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            failure = Some(SandboxError::Timeout(deadline.as_millis()));
            break;
        }
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                failure = Some(SandboxError::Spawn(format!("poll: {e}")));
                break;
            }
        }
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if buf.len() + n > MAX_RESULT_BYTES + MARKS_BYTES {
                    failure = Some(SandboxError::Garbage(format!(
                        "more than {MAX_RESULT_BYTES} bytes"
                    )));
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                failure = Some(SandboxError::Spawn(format!("read: {e}")));
                break;
            }
        }
    }
    let eof = called.elapsed();
    if failure.is_some() {
        let _ = kill(child, Signal::SIGKILL);
    }
    let status = loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let reaped = called.elapsed();
    if let Some(f) = failure {
        return Err(f);
    }
    match status {
        Ok(WaitStatus::Exited(_, 0)) => {
            let Some(end) = buf.len().checked_sub(MARKS_BYTES) else {
                return Err(SandboxError::Garbage(format!(
                    "{} bytes, fewer than the child always writes",
                    buf.len()
                )));
            };
            let mut marks = [Duration::ZERO; 3];
            for (m, b) in marks.iter_mut().zip(buf[end..].chunks_exact(8)) {
                *m = Duration::from_nanos(u64::from_le_bytes(b.try_into().unwrap_or_default()));
            }
            buf.truncate(end);
            Ok((buf, Timeline::from_marks(forked, marks, eof, reaped)))
        }
        Ok(WaitStatus::Exited(_, 3)) => Err(SandboxError::Setup(
            String::from_utf8_lossy(buf.strip_prefix(b"\0setup:").unwrap_or(&buf)).into_owned(),
        )),
        Ok(WaitStatus::Exited(_, 4)) => Err(SandboxError::Panicked),
        Ok(WaitStatus::Exited(_, code)) => Err(SandboxError::Exited(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Err(SandboxError::Killed(
            sig.as_str().to_string(),
            if sig == Signal::SIGSYS {
                " (a system call outside the sandbox's seccomp allow-list)"
            } else {
                ""
            },
        )),
        Ok(other) => Err(SandboxError::Spawn(format!(
            "unexpected child state {other:?}"
        ))),
        Err(e) => Err(SandboxError::Spawn(format!("waitpid: {e}"))),
    }
}

/// The seccomp allow-list: what parsing cached files and computing a
/// verdict needs, and nothing that reaches outside the process. `pid` is
/// the child's own: the only process its signals may reach (an abort
/// raises `SIGABRT` on itself, through `tgkill` on glibc and `tkill` on
/// musl). It runs as the gate's user, so an unrestricted `tgkill` could
/// signal any of that user's processes, containerd's included.
fn filter(result_fd: i32, pid: u32) -> Result<seccompiler::BpfProgram, String> {
    use nix::libc;
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
        SeccompFilter, SeccompRule,
    };
    let any = Vec::new;
    let cond = |arg, op, v| Cond::new(arg, Len::Qword, op, v).map_err(|e| e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let plain: &[libc::c_long] = &[
        libc::SYS_read,
        libc::SYS_pread64,
        libc::SYS_readv,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_lseek,
        libc::SYS_getdents64,
        libc::SYS_readlinkat,
        libc::SYS_getcwd,
        libc::SYS_fcntl,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_brk,
        libc::SYS_madvise,
        libc::SYS_futex,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_gettimeofday,
        libc::SYS_sched_yield,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_sigaltstack,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_exit,
        libc::SYS_exit_group,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_stat,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_lstat,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_readlink,
    ];
    for s in plain {
        rules.insert(*s, any());
    }
    // mprotect, but never to make memory executable.
    rules.insert(
        libc::SYS_mprotect,
        vec![
            SeccompRule::new(vec![cond(2, Op::MaskedEq(libc::PROT_EXEC as u64), 0)?])
                .map_err(|e| e.to_string())?,
        ],
    );
    // Opening read-only: no write access mode, no O_CREAT/O_TRUNC/O_APPEND,
    // checked on the flags argument of openat (glibc's) and of open (musl's).
    let write_bits =
        (libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND | libc::O_TMPFILE) as u64;
    let opens: &[(libc::c_long, u8)] = &[
        (libc::SYS_openat, 2),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_open, 1),
    ];
    for &(sys, flags) in opens {
        rules.insert(
            sys,
            vec![
                SeccompRule::new(vec![cond(flags, Op::MaskedEq(write_bits), 0)?])
                    .map_err(|e| e.to_string())?,
            ],
        );
    }
    // Signals to itself only (tgkill's thread group, tkill's thread: the
    // child is single-threaded, so both are its pid).
    for sys in [libc::SYS_tgkill, libc::SYS_tkill] {
        rules.insert(
            sys,
            vec![SeccompRule::new(vec![cond(0, Op::Eq, u64::from(pid))?])
                .map_err(|e| e.to_string())?],
        );
    }
    // write only to the result pipe and stderr.
    let to_fd = |fd: i32| -> Result<SeccompRule, String> {
        SeccompRule::new(vec![cond(0, Op::Eq, fd as u64)?]).map_err(|e| e.to_string())
    };
    rules.insert(libc::SYS_write, vec![to_fd(result_fd)?, to_fd(2)?]);
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let f = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| e.to_string())?;
    f.try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_builds_for_this_architecture() {
        assert!(!filter(7, std::process::id()).unwrap().is_empty());
    }

    #[test]
    fn garbage_does_not_decode() {
        let e = decode::<u32>(b"\x00\xffnot json").unwrap_err();
        assert!(e.to_string().contains("do not decode"), "{e}");
    }

    #[test]
    fn a_threaded_process_verifies_in_process_unless_isolation_is_required() {
        // The test harness runs tests on threads, so this process has more
        // than one; `require` is never called in unit tests.
        assert!(thread_count() > 1);
        let (v, iso) = run(|| 41 + 1).unwrap();
        assert_eq!((v, iso), (42, Isolation::InProcess));
        // The same encoding as a child's result: a value JSON cannot carry
        // is refused here as it would be from a child.
        assert!(matches!(run(|| f64::NAN), Err(SandboxError::Garbage(_))));
    }
}
