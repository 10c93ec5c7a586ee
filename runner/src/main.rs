//! `kpconform`: check, trace and lint kube-proxy-style iptables rules.
//!
//! Exit codes: 0 everything passed, 1 a flow or invariant failed,
//! 2 usage or input error (bad arguments, unreadable or malformed files).

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod cmd;
mod rules_file;
mod scenario_file;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            cmd::Outcome::InputError.into()
        }
    }
}
