//! `portcullis`: the operator's command line. Wiring only; see [`portcullis::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    match portcullis::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Our messages already carry their cause; print the top one only.
            let e = anyhow::Error::from(e);
            eprintln!("portcullis: error: {e}");
            ExitCode::from(portcullis::cli::EXIT_ERROR)
        }
    }
}
