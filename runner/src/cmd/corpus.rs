//! `kpconform corpus`: what the scenario corpus covers.

use anyhow::{bail, Context, Result};
use kpconform_harness::Corpus;
use kpconform_suite::coverage;
use kpconform_suite::scenario::Scenario;

use super::Outcome;
use crate::cli::CorpusArgs;

pub(crate) fn run(args: &CorpusArgs) -> Result<Outcome> {
    let corpus = Corpus::load(&args.scenarios)
        .with_context(|| format!("reading scenarios under {}", args.scenarios.display()))?;
    for (file, err) in corpus.failures() {
        eprintln!("error: {file}: {err}");
    }
    if !corpus.failures().is_empty() {
        bail!("{} scenario file(s) do not load", corpus.failures().len());
    }
    let scenarios: Vec<Scenario> = corpus.scenarios().iter().map(|s| (**s).clone()).collect();
    if args.recorded {
        out!("{}", coverage::recorded_markdown(&scenarios));
        return Ok(Outcome::Pass);
    }
    let rows = coverage::coverage(&scenarios);
    out!("{}", coverage::markdown(&rows));
    let gaps: Vec<&str> = rows
        .iter()
        .filter(|r| r.scenarios.is_empty())
        .map(|r| r.feature.as_str())
        .collect();
    if gaps.is_empty() {
        Ok(Outcome::Pass)
    } else {
        eprintln!(
            "{} feature(s) without a scenario: {}",
            gaps.len(),
            gaps.join("; ")
        );
        Ok(Outcome::Fail)
    }
}
