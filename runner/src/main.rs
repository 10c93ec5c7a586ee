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
mod parallel;
mod report;
mod rules_file;
mod scenario_file;

fn main() -> ExitCode {
    stop_generators_on_signals();
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            cmd::Outcome::InputError.into()
        }
    }
}

/// On SIGINT or SIGTERM, kills the process group of every generator still
/// running (they would otherwise live on, re-parented to init) and exits
/// with the shell's status for that signal (130, 143).
fn stop_generators_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return; // without handlers the default action still ends kpconform
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            kpconform_harness::kill_running_generators();
            std::process::exit(128 + signal);
        }
    });
}
