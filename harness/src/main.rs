//! The `flux-compat` binary: parse the command line, set up logging, run, map to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = flux_compat::cli::Cli::parse();
    flux_compat::app::init_logging(&cli.global);
    ExitCode::from(flux_compat::app::run(cli))
}
