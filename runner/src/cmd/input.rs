//! `kpconform input`: the generator input a scenario gives one node.

use anyhow::Result;

use super::Outcome;
use crate::cli::InputArgs;
use crate::scenario_file;

pub(crate) fn run(args: &InputArgs) -> Result<Outcome> {
    let scenario = scenario_file::load(&args.scenario)?;
    let input = scenario_file::input_for(&scenario, &args.node)?;
    out!("{}", input.to_yaml());
    Ok(Outcome::Pass)
}
