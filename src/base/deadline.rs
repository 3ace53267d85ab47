//! A deadline for a blocking system call made through code we do not own.
//!
//! This module owns interrupting a call that has no timeout of its own: the
//! journald send of `libsystemd`, whose datagram socket is private to that
//! crate and blocking, and blocks for as long as a frozen journald leaves
//! its queue full. [`within`] arms the process's real-time interval timer
//! (`setitimer(ITIMER_REAL)`) to raise `SIGALRM` at the deadline and then
//! every [`REPEAT`] until the call returns, with a handler that does nothing
//! installed without `SA_RESTART`: a call blocked at the deadline (or
//! entering its block after a signal that came just before it) returns
//! `EINTR`, which the caller sees as a failed call. The timer is disarmed
//! before returning.
//!
//! `SIGALRM` goes to some thread of the process, so this bounds the call
//! only in a single-threaded process: the two gates, which are at that
//! point. The handler is installed once and left (an exec resets it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::libc;

/// After the deadline, how often the signal comes again until the call
/// returns (a call that entered its block just after one signal is woken by
/// the next).
pub const REPEAT: Duration = Duration::from_millis(20);

static INSTALLED: AtomicBool = AtomicBool::new(false);
static FIRED: AtomicBool = AtomicBool::new(false);

extern "C" fn wake(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    FIRED.store(true, Ordering::Relaxed);
}

/// A deadline an operator sets in milliseconds through the environment
/// variable `var` (a positive whole number), else `default`.
pub fn from_env(var: &str, default: Duration) -> Duration {
    millis_or(std::env::var(var).ok().as_deref(), default)
}

/// `value` as a positive whole number of milliseconds, else `default`.
fn millis_or(value: Option<&str>, default: Duration) -> Duration {
    value
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(default)
}

/// Why no deadline could be set (the caller decides what to do instead: a
/// gate spools its record rather than send it without one).
#[derive(Debug, thiserror::Error)]
pub enum DeadlineError {
    /// The handler or the timer could not be set.
    #[error("cannot set a deadline ({call}): {errno}")]
    Setup {
        /// Which call failed.
        call: &'static str,
        /// Its error.
        errno: nix::errno::Errno,
    },
}

/// Run `f` with `SIGALRM` interrupting it from `deadline` on. Returns what
/// `f` returned and whether the deadline passed while it ran.
pub fn within<T>(deadline: Duration, f: impl FnOnce() -> T) -> Result<(T, bool), DeadlineError> {
    install()?;
    FIRED.store(false, Ordering::Relaxed);
    set_timer(deadline, REPEAT)?;
    let out = f();
    // Disarm before anything else can block; a failure here leaves a timer
    // whose signal only interrupts (never kills) this process.
    let _ = set_timer(Duration::ZERO, Duration::ZERO);
    Ok((out, FIRED.load(Ordering::Relaxed)))
}

fn install() -> Result<(), DeadlineError> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    if INSTALLED.load(Ordering::Relaxed) {
        return Ok(());
    }
    // No SA_RESTART: an interrupted call returns EINTR instead of resuming.
    let act = SigAction::new(SigHandler::Handler(wake), SaFlags::empty(), SigSet::empty());
    // SAFETY: `wake` only stores to an atomic, which is async-signal-safe,
    // and it is the whole of the handler.
    unsafe { sigaction(Signal::SIGALRM, &act) }.map_err(|errno| DeadlineError::Setup {
        call: "sigaction",
        errno,
    })?;
    INSTALLED.store(true, Ordering::Relaxed);
    Ok(())
}

fn set_timer(value: Duration, interval: Duration) -> Result<(), DeadlineError> {
    // The field types, not their aliases: the libc crate deprecates
    // `time_t` and `suseconds_t` on musl (64-bit there since musl 1.2).
    let tv = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as _,
        tv_usec: d.subsec_micros() as _,
    };
    let it = libc::itimerval {
        it_interval: tv(interval),
        it_value: tv(value),
    };
    // SAFETY: `it` is an initialised `itimerval` that outlives the call; the
    // old value is not asked for (null).
    let rc = unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(DeadlineError::Setup {
            call: "setitimer",
            errno: nix::errno::Errno::last(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::time::Instant;

    #[test]
    fn a_deadline_from_the_environment_is_a_positive_number_of_milliseconds() {
        let d = Duration::from_secs(2);
        for (value, want) in [
            (None, d),
            (Some("250"), Duration::from_millis(250)),
            (Some("0"), d),
            (Some("-5"), d),
            (Some("2s"), d),
        ] {
            assert_eq!(millis_or(value, d), want, "{value:?}");
        }
    }

    // One test: the timer and SIGALRM belong to the whole process, and the
    // harness runs tests on threads. It forks a single-threaded child, as
    // the gates are, to block and be interrupted there.
    #[test]
    fn a_send_blocked_on_a_full_queue_returns_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frozen.sock");
        // A receiver that never reads: its queue fills.
        let _receiver = UnixDatagram::bind(&path).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        sender.set_nonblocking(true).unwrap();
        let mut queued = 0;
        while sender.send_to(b"x", &path).is_ok() {
            queued += 1;
            assert!(queued < 1_000_000, "the queue never filled");
        }
        sender.set_nonblocking(false).unwrap();
        // SAFETY: the child only sends, reads the clock and calls `_exit`
        // (no lock another thread could hold is taken: `send_to` and the
        // timer are system calls, the handler an atomic store).
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let start = Instant::now();
                let code = match within(Duration::from_millis(200), || sender.send_to(b"x", &path))
                {
                    Ok((Err(e), true)) if e.kind() == std::io::ErrorKind::Interrupted => {
                        if start.elapsed() >= Duration::from_millis(200) {
                            0
                        } else {
                            3
                        }
                    }
                    Ok((Ok(_), _)) => 4,
                    Ok((Err(_), _)) => 5,
                    Err(_) => 6,
                };
                // SAFETY: `_exit` skips the harness's exit handlers; nothing
                // else is unsafe about it.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                // Without the deadline the child would block for good:
                // kill it after 30 s rather than hang the suite.
                let waited = Instant::now();
                loop {
                    match nix::sys::wait::waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
                        .unwrap()
                    {
                        nix::sys::wait::WaitStatus::StillAlive => {
                            if waited.elapsed() > Duration::from_secs(30) {
                                let _ = nix::sys::signal::kill(
                                    child,
                                    nix::sys::signal::Signal::SIGKILL,
                                );
                                panic!("the blocked send was not interrupted");
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        nix::sys::wait::WaitStatus::Exited(_, code) => {
                            assert_eq!(code, 0, "child status {code} (3: early, 4: sent, 5: another error, 6: no deadline)");
                            break;
                        }
                        other => panic!("child ended as {other:?}"),
                    }
                }
            }
        }
    }
}
