//! `containerd-shim-portcullis-v2`: runtime type `io.containerd.portcullis.v2`.
//!
//! Wiring only: [`portcullis::shim::plan`] decides, this binary acts.

use std::ffi::OsString;
use std::process::ExitCode;

use portcullis::shim::{exec_inner, plan_timed, Plan};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match plan_timed(&args) {
        (Plan::Exec(shim), timings) => {
            if let Some(t) = timings {
                portcullis::shim::log_rusage(&t);
            }
            let err = exec_inner(&shim, &args);
            eprintln!(
                "portcullis: cannot run the inner shim {shim}: {err}; install it or set `shim` in the policy"
            );
            ExitCode::FAILURE
        }
        (Plan::Refuse(line), _) => {
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
