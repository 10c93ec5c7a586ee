//! Behavioural comparison of two rule sets for the same node: what changed
//! for packets, not for text. Every probe the semantic oracle derives from
//! the cluster state (each service address from each kind of source, as
//! `kpconform audit` asks) and any extra packets (a scenario's flows) are
//! traced through both rule sets; each trace is reduced to its
//! [`Behaviour`] — the exact mass per verdict, destination after DNAT and
//! masquerade, and session affinity — so chain names and the order of
//! order-free rules never count; probes whose behaviours differ are
//! grouped into [`Finding`]s with a sentence each.
//!
//! ```
//! use kpconform_iptables::parse_str;
//! use kpconform_suite::behaviour::compare_rule_sets;
//! use kpconform_suite::scenario::{GeneratorInput, NodeConfig};
//!
//! let input = GeneratorInput {
//!     node: NodeConfig {
//!         name: "node-a".into(),
//!         family: kpconform_iptables::model::Family::Ipv4,
//!         addresses: vec!["192.168.0.10/32".parse().unwrap()],
//!         cluster_cidrs: vec![],
//!         masquerade_all: false,
//!         masquerade_bit: 14,
//!         node_port_addresses: vec![],
//!     },
//!     objects: vec![],
//! };
//! let accept = parse_str("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n").unwrap();
//! let drop = parse_str("*filter\n:INPUT DROP [0:0]\nCOMMIT\n*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n").unwrap();
//! assert!(compare_rule_sets(&input, &accept, &accept, &[]).is_empty());
//! let findings = compare_rule_sets(&input, &accept, &drop, &[]);
//! assert!(findings[0].sentence().contains("were accepted, now dropped"));
//! ```

mod compare;
mod findings;
mod observe;

pub use compare::{differences, differences_from, Aspect};
pub use findings::{group, Finding, ProbeResult};
pub use observe::{observe, Affinity, Behaviour, OutcomeKey, Target};

use std::collections::BTreeMap;

use kpconform_iptables::model::{Family, RuleSet};
use kpconform_iptables::{Packet, ProbabilityMode, Tracer};

use crate::oracle::Oracle;
use crate::scenario::GeneratorInput;

/// The behaviour changes from `old` to `new`, two rule sets for the node of
/// `input`: the oracle's probes for that cluster state and `extra`, traced
/// with kernel probabilities, grouped into findings. Empty when every probe
/// behaves the same.
pub fn compare_rule_sets(
    input: &GeneratorInput,
    old: &RuleSet,
    new: &RuleSet,
    extra: &[Packet],
) -> Vec<Finding> {
    let oracle = Oracle::new(input);
    // Sorted and without duplicates, by their spelling: a flow the oracle
    // also probes is traced once.
    let mut probes: BTreeMap<String, Packet> = BTreeMap::new();
    for p in oracle
        .probes()
        .into_iter()
        .chain(extra.iter().copied())
        .filter(|p| p.family() == input.node.family)
    {
        probes.insert(p.to_string(), p);
    }
    let tracer = |rules| {
        let localnet = input.node.family == Family::Ipv4
            && crate::check::route_localnet(&input.node.node_port_addresses);
        Tracer::new(rules, &input.node.addresses)
            .with_mode(ProbabilityMode::Kernel)
            .with_route_localnet(localnet)
    };
    let (t_old, t_new) = (tracer(old), tracer(new));
    group(probes.into_values().map(|packet| ProbeResult {
        context: oracle.context(&packet),
        old: observe(&t_old, &packet),
        new: observe(&t_new, &packet),
        packet,
    }))
}

#[cfg(test)]
mod tests;
