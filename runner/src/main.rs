//! `kpconform`: check, trace, lint and run kube-proxy-style iptables rule
//! generators against the golden scenario corpus.
//!
//! Exit codes: 0 everything passed, 1 a flow or invariant failed,
//! 2 usage or input error (bad arguments, unreadable or malformed files).

use std::process::ExitCode;

use clap::Parser;

/// `println!` that tolerates a closed stdout (`kpconform ... | head`):
/// output is best effort, a broken pipe is not a crash.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

mod cli;
mod cmd;
mod report;
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
