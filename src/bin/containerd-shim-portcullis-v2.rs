//! `containerd-shim-portcullis-v2`: runtime type `io.containerd.portcullis.v2`.
//!
//! Wiring only: [`portcullis::shim::plan`] decides, this binary acts.

use std::ffi::OsString;
use std::process::ExitCode;

use portcullis::shim::{exec_inner, plan, Plan};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match plan(&args) {
        Plan::Exec(shim) => {
            if portcullis::shim::ShimArgs::parse(&args).is_start() {
                portcullis::shim::log_rusage();
            }
            let err = exec_inner(&shim, &args);
            eprintln!(
                "portcullis: cannot run the inner shim {shim}: {err}; install it or set `shim` in the policy"
            );
            ExitCode::FAILURE
        }
        Plan::Refuse(line) => {
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
