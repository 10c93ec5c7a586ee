//! One module per subcommand; each returns an [`Outcome`] or an input error.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};

mod audit;
mod check;
mod corpus;
mod fuzz;
mod generate;
mod input;
mod lint;
mod mutants;
mod new_scenario;
mod run;
mod trace;

/// How a command ended, as the exit status reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything passed: exit 0.
    Pass,
    /// A flow or invariant failed: exit 1.
    Fail,
    /// Usage or input error: exit 2.
    InputError,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(match o {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::InputError => 2,
        })
    }
}

pub(crate) fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Audit(args) => audit::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Trace(args) => trace::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Mutants(args) => mutants::run(&args),
        Command::Input(args) => input::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Corpus(args) => corpus::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::NewScenario(args) => new_scenario::run(&args),
    }
}
