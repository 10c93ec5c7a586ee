//! The reference generator: the rules kube-proxy v1.30 (iptables mode) installs
//! on one node for one IP family (IPv4 or IPv6, `input.node.family`), in
//! iptables-save's or ip6tables-save's spelling.
//!
//! ```
//! use kpconform_iptables::model::Family;
//! use kpconform_suite::scenario::{GeneratorInput, NodeConfig};
//!
//! let input = GeneratorInput {
//!     node: NodeConfig {
//!         name: "node-a".into(),
//!         family: Family::Ipv4,
//!         addresses: vec!["192.168.0.10/32".parse().unwrap()],
//!         cluster_cidrs: vec!["10.64.0.0/16".parse().unwrap()],
//!         masquerade_all: false,
//!         masquerade_bit: 14,
//!         node_port_addresses: vec![],
//!     },
//!     objects: vec![],
//! };
//! let rules = kpconform_reference::generate(&input);
//! assert!(rules.starts_with("*mangle\n"));
//! assert!(rules.contains("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n"));
//! ```
//!
//! The work is split the way kube-proxy's `syncProxyRules` is, minus its
//! map-order output: the cluster state is first resolved into a typed,
//! sorted model (service ports, their endpoint sets and chain decisions, in
//! `plan`), then each section (fixed chains, per-service filter rules,
//! per-service nat rules) is a pure function from that model to typed rules,
//! and the tables print them. The chains every service shares are ordered as
//! the recordings order them: stably by comment, the node-port jump last.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod addr;
mod endpoints;
mod filter;
mod fixed;
mod names;
mod nat;
mod plan;
mod rule;
mod services;
mod table;

use std::fmt::Write as _;

use kpconform_suite::scenario::GeneratorInput;

use plan::Cluster;
use table::Table;

/// The rules kube-proxy v1.30's proxier of `input.node.family` would install
/// on `input.node`, as `iptables-save` (IPv4) or `ip6tables-save` (IPv6)
/// prints them (tables mangle, filter, nat).
pub fn generate(input: &GeneratorInput) -> String {
    let [mangle, filter, nat] = tables(input);
    // Writing into a String cannot fail.
    let mut out = String::with_capacity(mangle.len_hint() + filter.len_hint() + nat.len_hint());
    let _ = write!(out, "{mangle}{filter}{nat}");
    out
}

/// [`generate`], written to `out` as the tables are printed: a large
/// cluster's rules are not held twice (once per chain, once as the whole
/// text) before they are written.
pub fn generate_to(input: &GeneratorInput, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let [mangle, filter, nat] = tables(input);
    write!(out, "{mangle}{filter}{nat}")
}

/// The three tables, complete and sorted.
fn tables(input: &GeneratorInput) -> [Table; 3] {
    let cluster = Cluster::new(input);
    let node = &cluster.node;
    let plans = cluster.plans();

    // kube-proxy fills these in Go map order; the recordings sort them.
    const SORTED: &[&str] = &[
        fixed::SERVICES,
        fixed::EXTERNAL_SERVICES,
        fixed::NODEPORTS,
        fixed::PROXY_FIREWALL,
    ];
    let mut mangle = Table::new("mangle", &fixed::MANGLE_BUILTINS, SORTED);
    mangle.extend(fixed::mangle());

    let mut filter = Table::new("filter", &fixed::FILTER_BUILTINS, SORTED);
    filter.extend(fixed::filter(node));
    for plan in &plans {
        filter.extend(filter::service(plan, node));
    }

    let mut nat = Table::new("nat", &fixed::NAT_BUILTINS, SORTED);
    nat.extend(fixed::nat(node));
    let mut probabilities = nat::Probabilities::default();
    for plan in &plans {
        nat.extend(nat::service(plan, node, &mut probabilities));
    }
    nat.extend(nat::nodeports_jump(node));

    for &chain in SORTED {
        filter.sort_by_comment(chain, None);
        nat.sort_by_comment(chain, Some(fixed::NODEPORTS_COMMENT));
    }
    [mangle, filter, nat]
}

#[cfg(test)]
mod tests;
