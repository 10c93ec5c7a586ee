//! `kpconform new-scenario`: a scenario skeleton from `kubectl get -o yaml` output.

use anyhow::{anyhow, bail, Result};
use ipnet::Ipv4Net;
use kpconform_suite::scenario::{parse_objects, Scenario};
use kpconform_suite::skeleton::{skeleton, Options};
use kpconform_suite::source::SourceFile;

use super::Outcome;
use crate::cli::NewScenarioArgs;
use crate::rules_file;

pub(crate) fn run(args: &NewScenarioArgs) -> Result<Outcome> {
    let source = rules_file::read(&args.from_kubectl)?;
    let objects = parse_objects(&source).map_err(|e| anyhow!("{e}"))?;
    let mut nodes = Vec::new();
    for spec in &args.node {
        let (name, ips) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--node `{spec}`: expected NAME=IP[,IP..]"))?;
        let addresses = ips
            .split(',')
            .map(|ip| {
                ip.parse::<Ipv4Net>()
                    .or_else(|_| ip.parse::<std::net::Ipv4Addr>().map(Ipv4Net::from))
                    .map_err(|_| anyhow!("--node `{spec}`: `{ip}` is not an IPv4 address"))
            })
            .collect::<Result<Vec<_>>>()?;
        nodes.push((name.to_string(), addresses));
    }
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
