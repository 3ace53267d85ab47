//! `portcullis-runc`: the OCI runtime gate, installed as `runc` ahead of the
//! real one on containerd's PATH (or named by the runc options' `BinaryName`).
//!
//! Wiring only: [`portcullis::gate::runc::plan`] decides, this binary acts.
//! Nothing is written to stdout or stderr on allow: those are the container's.
//! It runs for every runc command of every container, so it skips Rust's
//! runtime start-up: [`portcullis::base::entry`] does what the gate needs of it.

#![no_main]

use std::ffi::{c_char, c_int, OsString};
use std::time::Instant;

use portcullis::gate::runc::{exec_runc, plan, report_refusal, Plan};

// SAFETY: under `no_main` rustc emits no `main` symbol, so this is the only
// one; the C runtime calls it with `argc` strings in `argv`, which
// `entry::run` reads (std's `args_os` is empty on musl without its start-up).
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: main's own argc and argv.
    unsafe { portcullis::base::entry::run(argc, argv, gate) }
}

fn gate(args: Vec<OsString>) -> u8 {
    let t0 = Instant::now();
    match plan(&args) {
        (Plan::Exec(runc), parsed, timings) => {
            if parsed.is_gated() {
                // The benchmark's measure (PORTCULLIS_RUSAGE_LOG), as the
                // shim's, with the total from this binary's start.
                portcullis::shim::log_rusage(&portcullis::shim::Timings {
                    total_us: t0.elapsed().as_micros() as u64,
                    ..timings
                });
            }
            let err = exec_runc(&runc, &args);
            report_refusal(
                &parsed,
                &format!(
                    "portcullis: cannot run the real runc {}: {err}; install runc or set PORTCULLIS_RUNC",
                    runc.display()
                ),
            );
            1
        }
        (Plan::Refuse(line), parsed, _) => {
            report_refusal(&parsed, &line);
            1
        }
    }
}
