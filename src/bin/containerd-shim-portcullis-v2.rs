//! `containerd-shim-portcullis-v2`: runtime type `io.containerd.portcullis.v2`.
//!
//! Wiring only: [`portcullis::shim::plan`] decides, this binary acts. It
//! runs for every container start and every shim command, so it skips Rust's
//! runtime start-up: [`portcullis::base::entry`] does what the shim needs of it.

#![no_main]

use std::ffi::{c_char, c_int, OsString};

use portcullis::shim::{exec_inner, plan_timed, Plan};

// SAFETY: under `no_main` rustc emits no `main` symbol, so this is the only
// one; the C runtime calls it with `argc` strings in `argv`, which
// `entry::run` reads (std's `args_os` is empty on musl without its start-up).
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: main's own argc and argv.
    unsafe { portcullis::base::entry::run(argc, argv, wrap) }
}

fn wrap(args: Vec<OsString>) -> u8 {
    match plan_timed(&args) {
        (Plan::Exec(shim), timings) => {
            if let Some(t) = timings {
                portcullis::shim::log_rusage(&t);
            }
            let err = exec_inner(&shim, &args);
            eprintln!(
                "portcullis: cannot run the inner shim {shim}: {err}; install it or set `shim` in the policy"
            );
            1
        }
        (Plan::Refuse(line), _) => {
            eprintln!("{line}");
            1
        }
    }
}
