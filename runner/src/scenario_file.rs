//! Loading scenario files for the commands.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use kpconform_suite::scenario::{GeneratorInput, Scenario};

/// Loads a scenario; its id is its path below the nearest `scenarios/`
/// directory (the golden layout), or its file stem.
pub(crate) fn load(path: &Path) -> Result<Scenario> {
    let root = path
        .ancestors()
        .skip(1)
        .find(|a| a.file_name().is_some_and(|n| n == "scenarios"))
        .unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")));
    Scenario::load(path, root).map_err(|e| anyhow!("{e}"))
}

/// The generator input for `node`, or an error listing the scenario's nodes.
pub(crate) fn input_for(scenario: &Scenario, node: &str) -> Result<GeneratorInput> {
    match scenario.generator_input(node) {
        Some(input) => Ok(input),
        None => {
            let nodes: Vec<&str> = scenario
                .cluster
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect();
            bail!(
                "scenario `{}` has no node `{node}` (its nodes: {})",
                scenario.id,
                nodes.join(", ")
            )
        }
    }
}
