//! `kpconform new-scenario`: a scenario skeleton from `kubectl get -o yaml` output.

use anyhow::{anyhow, bail, Result};
use kpconform_iptables::SourceFile;
use kpconform_suite::scenario::{parse_objects, Scenario};
use kpconform_suite::skeleton::{skeleton, Options};

use super::Outcome;
use crate::cli::{parse_node_spec, NewScenarioArgs};
use crate::rules_file;

pub(crate) fn run(args: &NewScenarioArgs) -> Result<Outcome> {
    let source = rules_file::read(&args.from_kubectl)?;
    let objects = parse_objects(&source).map_err(|e| anyhow!("{e}"))?;
    let nodes = args
        .node
        .iter()
        .map(|spec| parse_node_spec(spec).map_err(|e| anyhow!("--node {e}")))
        .collect::<Result<Vec<_>>>()?;
    let options = Options {
        description: args.description.clone(),
        cluster_cidr: args.cluster_cidr,
        nodes,
    };
    let yaml = skeleton(&objects, &options).map_err(|e| anyhow!("{}: {e}", source.name()))?;
    // What we print must load: a skeleton that does not is our bug, not the user's.
    if let Err(e) = Scenario::from_source(&SourceFile::new("<skeleton>", yaml.clone()), "new") {
        bail!("internal error: the generated skeleton does not load:\n{e}");
    }
    out!("{yaml}");
    Ok(Outcome::Pass)
}
