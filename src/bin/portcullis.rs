//! `portcullis`: the operator's command line. Wiring only; see [`portcullis::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    match portcullis::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("portcullis: error: {e:#}");
            ExitCode::from(portcullis::cli::EXIT_ERROR)
        }
    }
}
