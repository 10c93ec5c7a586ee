//! One module per subcommand; each returns an [`Outcome`] or an input error.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};

mod audit;
mod bench;
mod check;
mod corpus;
mod diff;
mod fuzz;
mod generate;
mod input;
mod lint;
mod mutants;
mod new_scenario;
mod run;
mod run_files;
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
        Command::Bench(args) => bench::run(&args),
        Command::Measure(args) => bench::measure(&args),
        Command::Diff(args) => diff::run(&args),
    }
}

/// Scenario files that did not load: (id, why).
pub(crate) type LoadErrors = Vec<(String, kpconform_suite::scenario::ScenarioError)>;

/// The cases of the corpus under `dir` that `filters` select (all when
/// empty), and the selected scenario files that did not load. No case and
/// no load error is a setup error: nothing would run.
pub(crate) fn select_cases(
    dir: &std::path::Path,
    filters: &[String],
) -> Result<(Vec<kpconform_harness::Case>, LoadErrors)> {
    use anyhow::{bail, Context};
    let corpus = kpconform_harness::Corpus::load(dir)
        .with_context(|| format!("reading scenarios from {}", dir.display()))?;
    let cases: Vec<_> = corpus
        .cases()
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.matches(f)))
        .collect();
    let load_errors: Vec<_> = corpus
        .failures()
        .iter()
        .filter(|(id, _)| filters.is_empty() || filters.iter().any(|f| id.contains(f)))
        .cloned()
        .collect();
    if cases.is_empty() && load_errors.is_empty() {
        if corpus.scenarios().is_empty() {
            bail!("no scenarios found in {}", dir.display());
        }
        bail!(
            "no scenario@node of {} matches --filter {}",
            dir.display(),
            filters.join(" / ")
        );
    }
    Ok((cases, load_errors))
}
