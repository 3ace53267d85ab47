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
//! - standard output is flushed at the end;
//! - the arguments are read from `main`'s own `argc` and `argv`: std's
//!   `args_os` is filled by its start-up on musl (the target the gates are
//!   built for, `packaging/build-gates`), and is empty without it.
//!
//! A stack overflow is then a plain `SIGSEGV` rather than a `SIGSEGV` after
//! std's one-line message; either way the process dies and, being a gate,
//! refuses the start.

use std::ffi::{c_char, c_int, CStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

/// Prepare the process, run `work` on the arguments after the program's
/// name, and return its exit status (101 if it panicked).
///
/// # Safety
///
/// `argv` must hold `argc` pointers to NUL-terminated strings, as the C
/// runtime passes them to `main`.
pub unsafe fn run(
    argc: c_int,
    argv: *const *const c_char,
    work: impl FnOnce(Vec<OsString>) -> u8,
) -> i32 {
    prepare();
    // SAFETY: the caller's contract (main's own argc and argv).
    let args = unsafe { arguments(argc, argv) };
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(args))) {
        Ok(code) => i32::from(code),
        Err(_) => 101,
    };
    let _ = std::io::stdout().flush();
    code
}

/// The arguments after the program's name, as `main` received them.
///
/// # Safety
///
/// `argv`, unless null, must hold `argc` pointers to NUL-terminated strings.
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    if argv.is_null() {
        return Vec::new();
    }
    (1..usize::try_from(argc).unwrap_or(0))
        .filter_map(|i| {
            // SAFETY: i < argc, so `argv.add(i)` is within the array, and a
            // non-null entry is a NUL-terminated string that lives as long
            // as the process (the caller's contract).
            let p = unsafe { *argv.add(i) };
            (!p.is_null()).then(|| {
                // SAFETY: as above.
                OsString::from(std::ffi::OsStr::from_bytes(
                    unsafe { CStr::from_ptr(p) }.to_bytes(),
                ))
            })
        })
        .collect()
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

    /// `run` on a C-style argument vector built from `args` (the first is
    /// the program's name).
    fn run_with(args: &[&CStr], work: impl FnOnce(Vec<OsString>) -> u8) -> i32 {
        let argv: Vec<*const c_char> = args
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        // SAFETY: `argv` holds `args.len()` NUL-terminated strings (then a
        // null, as C's), all outliving the call.
        unsafe { run(args.len() as c_int, argv.as_ptr(), work) }
    }

    #[test]
    fn a_panic_is_status_101_and_a_result_its_own_status() {
        assert_eq!(run_with(&[c"gate"], |_| 0), 0);
        assert_eq!(run_with(&[c"gate"], |_| 1), 1);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let code = run_with(&[c"gate"], |_| panic!("a bug in the gate"));
        std::panic::set_hook(hook);
        assert_eq!(code, 101);
    }

    #[test]
    fn the_work_gets_the_arguments_after_the_name_bytes_unchanged() {
        let mut seen = Vec::new();
        let code = run_with(&[c"runc", c"--root", c"/run/x", c"\xff-not-utf8"], |a| {
            seen = a;
            0
        });
        assert_eq!(code, 0);
        let raw: Vec<&[u8]> = seen.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(raw, [&b"--root"[..], b"/run/x", b"\xff-not-utf8"]);
        assert!(run_with(&[c"runc"], |a| u8::from(!a.is_empty())) == 0);
        // SAFETY: a null argv is never read.
        assert_eq!(
            unsafe { arguments(3, std::ptr::null()) },
            Vec::<OsString>::new()
        );
    }
}
