//! `portcullis-runc`: the OCI runtime gate, installed as `runc` ahead of the
//! real one on containerd's PATH (or named by the runc options' `BinaryName`).
//!
//! Wiring only: [`portcullis::runc_gate::plan`] decides, this binary acts.
//! Nothing is written to stdout or stderr on allow: those are the container's.

use std::ffi::OsString;
use std::process::ExitCode;

use portcullis::runc_gate::{exec_runc, plan, report_refusal, Plan};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match plan(&args) {
        (Plan::Exec(runc), parsed) => {
            let err = exec_runc(&runc, &args);
            report_refusal(
                &parsed,
                &format!(
                    "portcullis: cannot run the real runc {}: {err}; install runc or set PORTCULLIS_RUNC",
                    runc.display()
                ),
            );
            ExitCode::FAILURE
        }
        (Plan::Refuse(line), parsed) => {
            report_refusal(&parsed, &line);
            ExitCode::FAILURE
        }
    }
}
