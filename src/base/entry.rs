//! The start of a start-path binary's process, without Rust's runtime
//! start-up.
//!
//! This module owns what the two gates (`portcullis-runc` and
//! `containerd-shim-portcullis-v2`) do before their work. Both are
//! `#![no_main]`: their C `main` calls [`run`]. std's start-up, which they
//! skip, finds the main thread's stack bounds for its stack-overflow message
//! (glibc's `pthread_getattr_np` reads and parses `/proc/self/maps` to do
//! it, in every process) and maps an alternate signal stack with a guard
//! page. A gate runs for a few milliseconds and then execs runc or the inner
//! shim, and the runc gate runs for every runc command of every container,
//! so that work was paid on each (BENCHMARKS.md has the measurement). What
//! std's start-up does that the gates need is done here, in the same way:
//!
//! - standard descriptors 0, 1 and 2 that are closed are opened on
//!   `/dev/null`, so that no file the gate opens later lands on one and
//!   receives its messages;
//! - `SIGPIPE` is ignored, so that a write to a closed socket (containerd's)
//!   or pipe (its stderr) is an error the gate reports, not a signal that
//!   kills it without a word; std's `Command`, which execs runc and the
//!   inner shim, puts it back to its default for them, as before;
//! - a panic is caught and becomes exit status 101, std's, after the panic
//!   hook has printed it (unwinding out of a C `main` would abort instead);
//! - standard output is flushed at the end.
//!
//! A stack overflow is then a plain `SIGSEGV` rather than a `SIGSEGV` after
//! std's one-line message; either way the process dies and, being a gate,
//! refuses the start.

use std::io::Write;

/// Prepare the process, run `work`, and return its exit status (101 if it
/// panicked).
pub fn run(work: impl FnOnce() -> u8) -> i32 {
    prepare();
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(code) => i32::from(code),
        Err(_) => 101,
    };
    let _ = std::io::stdout().flush();
    code
}

/// The part of std's start-up the gates need: standard descriptors open,
/// `SIGPIPE` ignored.
pub fn prepare() {
    use nix::libc;
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is an array of three initialised `pollfd` that outlives
    // the call, and its length is passed with it; a timeout of 0 never blocks.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    for p in &fds {
        let closed = if polled >= 0 {
            p.revents & libc::POLLNVAL != 0
        } else {
            // SAFETY: F_GETFD only reads the descriptor's flags; no memory
            // is passed.
            let flags = unsafe { libc::fcntl(p.fd, libc::F_GETFD) };
            flags == -1 && nix::errno::Errno::last() == nix::errno::Errno::EBADF
        };
        if closed {
            // The lowest free descriptor: this one. If /dev/null cannot be
            // opened the descriptor stays closed, as std leaves it after
            // its own attempt (it aborts; a gate then refuses).
            let null = c"/dev/null";
            // SAFETY: `null` is a NUL-terminated string that outlives the
            // call; the descriptor is deliberately kept open (never closed).
            if unsafe { libc::open(null.as_ptr(), libc::O_RDWR) } == -1 {
                std::process::abort();
            }
        }
    }
    // SAFETY: SIG_IGN installs no handler code, so nothing runs in signal
    // context; this is what std's start-up does for every Rust program.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
}

// What the gates hand runc (descriptors, SIGPIPE) is checked on the real
// binary by tests/gates.rs; this process's harness has std's start-up.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_status_101_and_a_result_its_own_status() {
        assert_eq!(run(|| 0), 0);
        assert_eq!(run(|| 1), 1);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let code = run(|| panic!("a bug in the gate"));
        std::panic::set_hook(hook);
        assert_eq!(code, 101);
    }
}
