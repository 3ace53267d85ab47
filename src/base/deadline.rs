//! A deadline for a blocking system call made through code we do not own.
//!
//! This module owns interrupting a call that has no timeout of its own: the
//! journald send of `libsystemd`, whose datagram socket is private to that
//! crate and blocking, and blocks for as long as a frozen journald leaves
//! its queue full. [`within`] creates a POSIX timer (`timer_create`) that
//! raises `SIGALRM` in the calling thread only (`SIGEV_THREAD_ID`) at the
//! deadline and then every [`REPEAT`] until the call returns, with a handler
//! that does nothing installed without `SA_RESTART`: a call blocked at the
//! deadline (or entering its block after a signal that came just before
//! it) returns `EINTR`, which the caller sees as a failed call. The timer is
//! deleted before returning.
//!
//! Because the signal is aimed at one thread, this bounds the call in a
//! threaded process too (the operator tools) as well as in the gates; the
//! other threads never see it. The handler is installed once and left (an
//! exec resets it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::libc;

/// After the deadline, how often the signal comes again until the call
/// returns (a call that entered its block just after one signal is woken by
/// the next).
pub const REPEAT: Duration = Duration::from_millis(20);

static INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn wake(_: libc::c_int) {
    // Nothing: the signal's only work is to interrupt the blocked call.
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

/// Run `f` on this thread with `SIGALRM` interrupting it, in this thread
/// only, from `deadline` on. Returns what `f` returned and whether the
/// deadline passed while it ran.
pub fn within<T>(deadline: Duration, f: impl FnOnce() -> T) -> Result<(T, bool), DeadlineError> {
    install()?;
    let started = Instant::now();
    let timer = ThreadTimer::arm(deadline, REPEAT)?;
    let out = f();
    // Deleted before anything else can block.
    drop(timer);
    Ok((out, started.elapsed() >= deadline))
}

fn install() -> Result<(), DeadlineError> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    if INSTALLED.load(Ordering::Relaxed) {
        return Ok(());
    }
    // No SA_RESTART: an interrupted call returns EINTR instead of resuming.
    let act = SigAction::new(SigHandler::Handler(wake), SaFlags::empty(), SigSet::empty());
    // SAFETY: `wake` does nothing, which is async-signal-safe, and it is the
    // whole of the handler.
    unsafe { sigaction(Signal::SIGALRM, &act) }.map_err(|errno| DeadlineError::Setup {
        call: "sigaction",
        errno,
    })?;
    INSTALLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// A POSIX timer whose signal goes to the thread that armed it; deleted on
/// drop. (nix's wrapper has no thread-directed signal on musl, the gates'
/// target, hence libc.)
struct ThreadTimer(libc::timer_t);

impl ThreadTimer {
    fn arm(value: Duration, interval: Duration) -> Result<Self, DeadlineError> {
        let setup = |call| DeadlineError::Setup {
            call,
            errno: nix::errno::Errno::last(),
        };
        // SAFETY: `sigevent` is plain data for which all zeroes is a valid
        // value (its padding is private, so it cannot be written as a
        // literal); the fields the kernel reads are set below.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = libc::SIGALRM;
        sev.sigev_notify_thread_id = nix::unistd::gettid().as_raw();
        let mut id: libc::timer_t = std::ptr::null_mut();
        // SAFETY: `sev` and `id` are initialised and outlive the call, which
        // writes only `id`.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id) } != 0 {
            return Err(setup("timer_create"));
        }
        let timer = ThreadTimer(id);
        let ts = |d: Duration| {
            // SAFETY: as for `sigevent`: plain data, all zeroes valid.
            let mut t: libc::timespec = unsafe { std::mem::zeroed() };
            // The field types, not their aliases: the libc crate deprecates
            // `time_t` on musl (64-bit there since musl 1.2).
            t.tv_sec = d.as_secs() as _;
            t.tv_nsec = d.subsec_nanos() as _;
            t
        };
        let spec = libc::itimerspec {
            it_interval: ts(interval),
            it_value: ts(value),
        };
        // SAFETY: `timer.0` is the timer just created; `spec` is initialised
        // and outlives the call; the old value is not asked for (null).
        if unsafe { libc::timer_settime(timer.0, 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(setup("timer_settime"));
        }
        Ok(timer)
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: the timer was created by `arm` and is deleted only here.
        unsafe { libc::timer_delete(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::sync::mpsc;

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

    /// A sender blocked on a datagram socket whose receiver never reads.
    fn blocked_sender(dir: &std::path::Path) -> (UnixDatagram, UnixDatagram, std::path::PathBuf) {
        let path = dir.join("frozen.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        sender.set_nonblocking(true).unwrap();
        let mut queued = 0;
        while sender.send_to(b"x", &path).is_ok() {
            queued += 1;
            assert!(queued < 1_000_000, "the queue never filled");
        }
        sender.set_nonblocking(false).unwrap();
        (receiver, sender, path)
    }

    // The harness runs tests on threads: the blocked send runs on one, a
    // blocking receive with a timeout of its own on another, and only the
    // first may be interrupted.
    #[test]
    fn a_send_blocked_on_a_full_queue_returns_at_the_deadline_and_no_other_thread_is_woken() {
        let dir = tempfile::tempdir().unwrap();
        let (_receiver, sender, path) = blocked_sender(dir.path());
        install().unwrap();
        // The bystander: a receive that times out after 1.5 s on its own,
        // unless a signal interrupts it first.
        let idle = UnixDatagram::unbound().unwrap();
        idle.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let bystander = std::thread::spawn(move || {
            let t = Instant::now();
            let r = idle.recv(&mut [0u8; 8]);
            (r.map_err(|e| e.kind()), t.elapsed())
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let t = Instant::now();
            let r = within(Duration::from_millis(200), || sender.send_to(b"x", &path));
            let _ = tx.send((
                r.map(|(out, fired)| (out.map_err(|e| e.kind()), fired)),
                t.elapsed(),
            ));
        });
        // Without the timer the send blocks for good: give up after 30 s
        // rather than hang the suite (the blocked thread dies with it).
        let (r, took) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the blocked send was not interrupted");
        let (out, fired) = r.unwrap();
        assert_eq!(out, Err(std::io::ErrorKind::Interrupted));
        assert!(fired && took >= Duration::from_millis(200), "{took:?}");
        let (r, waited) = bystander.join().unwrap();
        assert!(
            matches!(
                r,
                Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
            ),
            "the other thread's receive ended as {r:?} after {waited:?}"
        );
        assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    }

    #[test]
    fn a_call_that_returns_in_time_is_not_interrupted_and_leaves_no_timer() {
        let (n, fired) = within(Duration::from_millis(500), || 7).unwrap();
        assert_eq!((n, fired), (7, false));
        // The timer was deleted: a sleep past the deadline is not cut short
        // by a late signal (a pending one would make `recv` return EINTR).
        let idle = UnixDatagram::unbound().unwrap();
        idle.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        let r = idle.recv(&mut [0u8; 8]).map_err(|e| e.kind());
        assert!(
            matches!(
                r,
                Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
            ),
            "{r:?}"
        );
    }
}
