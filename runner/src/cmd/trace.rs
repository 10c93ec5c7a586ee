//! `kpconform trace`: every path one packet can take, with its probability.

use anyhow::{anyhow, bail, Result};
use ipnet::IpNet;
use kpconform_iptables::model::Family;
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
                .map_err(|_| anyhow!("--from: `{ip}` is neither an IP address nor `node`"))?,
        ),
    };
    let (to, protocol) = parse_destination(&args.to).map_err(|e| anyhow!("--to: {e}"))?;
    // The packet's family is that of its destination.
    let family = Family::of(to.ip());
    if let FlowSource::Ip(ip) = from {
        if Family::of(ip) != family {
            bail!(
                "--from {ip} is an {} address, but --to {} is {family}; \
                 a packet has one family",
                Family::of(ip),
                args.to
            );
        }
    }
    if !args.node_ip.iter().any(|ip| Family::of(*ip) == family) {
        bail!(
            "--node-ip: no {family} address for an {family} packet; list the node's addresses \
             of that family too (e.g. --node-ip 192.168.0.10,fd00:192:168::10)"
        );
    }
    let source = rules_file::read(&args.rules)?;
    let rules = rules_file::parse(&source, &args.parse)?;
    if let Some(rules_family) = rules.family().filter(|f| *f != family) {
        bail!(
            "--to {} is {family}, but {} holds {rules_family} rules ({}); \
             trace an {family} packet through the {family} dump",
            args.to,
            source.name(),
            match rules_family {
                Family::Ipv4 => "iptables-save",
                Family::Ipv6 => "ip6tables-save",
            }
        );
    }
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
    let cidr = args
        .cluster_cidr
        .iter()
        .find(|c| Family::of(c.addr()) == family);
    if let Some(cidr) = cidr {
        let side = match from {
            FlowSource::Ip(ip) if cidr.contains(&ip) => "a pod (inside the cluster CIDR)",
            FlowSource::Ip(_) => "outside the cluster CIDR",
            FlowSource::Node => "the node itself",
        };
        outln!("source: {side}");
    }
    for (i, outcome) in dist.outcomes.iter().enumerate() {
        outln!("\npath {}:  {}", i + 1, outcome);
        // Path i of a service with n endpoints fell through i statistic
        // rules: listing each makes the output quadratic in n.
        let lines = if args.full {
            outcome.explain(Some(&source))
        } else {
            outcome.explain_brief(Some(&source))
        };
        for line in lines {
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
