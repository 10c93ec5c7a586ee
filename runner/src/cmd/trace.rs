//! `kpconform trace`: every path one packet can take, with its probability.

use anyhow::{anyhow, Result};
use ipnet::IpNet;
use kpconform_iptables::{format_probability, Packet, Tracer, Verdict};
use kpconform_suite::scenario::FlowSource;

use super::Outcome;
use crate::cli::{parse_destination, TraceArgs};
use crate::rules_file;

pub(crate) fn run(args: &TraceArgs) -> Result<Outcome> {
    let from = match args.from.as_str() {
        "node" => FlowSource::Node,
        ip => FlowSource::Ip(
            ip.parse()
                .map_err(|_| anyhow!("--from: `{ip}` is neither an IPv4 address nor `node`"))?,
        ),
    };
    let (to, protocol) = parse_destination(&args.to).map_err(|e| anyhow!("--to: {e}"))?;
    let source = rules_file::read(&args.rules)?;
    let rules = rules_file::parse(&source, &args.parse)?;
    let addresses: Vec<IpNet> = args.node_ip.iter().map(|ip| IpNet::from(*ip)).collect();
    let tracer = Tracer::new(&rules, &addresses).with_mode(args.probability.into());
    let packet = Packet::new(from, to, protocol);
    let dist = match tracer.trace(&packet) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}", e.render(&source));
            return Ok(Outcome::Fail);
        }
    };
    outln!("packet: {packet}");
    if let Some(cidr) = args.cluster_cidr {
        let side = match from {
            FlowSource::Ip(ip) if cidr.contains(&ip) => "a pod (inside the cluster CIDR)",
            FlowSource::Ip(_) => "outside the cluster CIDR",
            FlowSource::Node => "the node itself",
        };
        outln!("source: {side}");
    }
    for (i, outcome) in dist.outcomes.iter().enumerate() {
        outln!("\npath {}:  {}", i + 1, outcome);
        for line in outcome.explain(Some(&source)) {
            outln!("  {line}");
        }
    }
    outln!("\nsummary:");
    for ((verdict, dest, masq), p) in dist.summary() {
        let what = match verdict {
            Verdict::Accept => format!("accept {dest}{}", if masq { " (masqueraded)" } else { "" }),
            other => other.to_string(),
        };
        outln!("  {:>14}  {what}", format_probability(&p));
    }
    Ok(Outcome::Pass)
}
