//! `kpconform input`: the generator input a scenario gives one node.

use anyhow::{bail, Result};

use super::Outcome;
use crate::cli::InputArgs;
use crate::scenario_file;

pub(crate) fn run(args: &InputArgs) -> Result<Outcome> {
    let scenario = scenario_file::load(&args.scenario)?;
    // The node's first family, or an error naming the scenario's nodes.
    let first = scenario_file::input_for(&scenario, &args.node)?;
    let input = match args.family {
        None => first,
        Some(family) if family == first.node.family => first,
        Some(family) => match scenario.cluster.generator_input_for(&args.node, family) {
            Some(input) => input,
            None => {
                let addresses: Vec<String> = scenario
                    .node(&args.node)
                    .map(|n| n.addresses.iter().map(|a| a.addr().to_string()).collect())
                    .unwrap_or_default();
                bail!(
                    "node `{}` of scenario `{}` has no {} address (its addresses: {}), so it gets no {} input",
                    args.node,
                    scenario.id,
                    family.as_str(),
                    addresses.join(", "),
                    family.as_str(),
                )
            }
        },
    };
    out!("{}", input.to_yaml());
    Ok(Outcome::Pass)
}
