//! The service-independent parts: jumps from the built-in chains, the
//! top-level chains every sync declares, masquerading, forwarding and the
//! localnet guard.

use crate::plan::NodeContext;
use crate::rule::{Match, Rule, Target};
use crate::table::Section;

/// `KUBE-SERVICES`
pub(crate) const SERVICES: &str = "KUBE-SERVICES";
/// `KUBE-EXTERNAL-SERVICES`
pub(crate) const EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
/// `KUBE-NODEPORTS`
pub(crate) const NODEPORTS: &str = "KUBE-NODEPORTS";
/// `KUBE-POSTROUTING`
const POSTROUTING: &str = "KUBE-POSTROUTING";
/// `KUBE-MARK-MASQ`
pub(crate) const MARK_MASQ: &str = "KUBE-MARK-MASQ";
/// `KUBE-FORWARD`
const FORWARD: &str = "KUBE-FORWARD";
/// `KUBE-PROXY-FIREWALL`
pub(crate) const PROXY_FIREWALL: &str = "KUBE-PROXY-FIREWALL";
/// `KUBE-PROXY-CANARY` (created by kube-proxy's iptables monitor).
const CANARY: &str = "KUBE-PROXY-CANARY";
/// `KUBE-FIREWALL` (kubelet's chain, duplicated by kube-proxy).
const KUBELET_FIREWALL: &str = "KUBE-FIREWALL";

/// The comment of the jump to `KUBE-NODEPORTS`, which must stay last.
pub(crate) const NODEPORTS_COMMENT: &str =
    "kubernetes service nodeports; NOTE: this must be the last rule in this chain";

/// Built-in chains per table, in hook order.
pub(crate) const MANGLE_BUILTINS: [&str; 5] =
    ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
pub(crate) const FILTER_BUILTINS: [&str; 3] = ["INPUT", "FORWARD", "OUTPUT"];
pub(crate) const NAT_BUILTINS: [&str; 4] = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum TableId {
    Filter,
    Nat,
}

/// kube-proxy's `iptablesJumpChains` followed by `iptablesKubeletJumpChains`:
/// (table, from, to, comment, `--ctstate NEW` first).
const JUMPS: [(TableId, &str, &str, &str, bool); 14] = [
    (
        TableId::Filter,
        "INPUT",
        EXTERNAL_SERVICES,
        "kubernetes externally-visible service portals",
        true,
    ),
    (
        TableId::Filter,
        "FORWARD",
        EXTERNAL_SERVICES,
        "kubernetes externally-visible service portals",
        true,
    ),
    (
        TableId::Filter,
        "INPUT",
        NODEPORTS,
        "kubernetes health check service ports",
        false,
    ),
    (
        TableId::Filter,
        "FORWARD",
        SERVICES,
        "kubernetes service portals",
        true,
    ),
    (
        TableId::Filter,
        "OUTPUT",
        SERVICES,
        "kubernetes service portals",
        true,
    ),
    (
        TableId::Filter,
        "FORWARD",
        FORWARD,
        "kubernetes forwarding rules",
        false,
    ),
    (
        TableId::Filter,
        "INPUT",
        PROXY_FIREWALL,
        "kubernetes load balancer firewall",
        true,
    ),
    (
        TableId::Filter,
        "OUTPUT",
        PROXY_FIREWALL,
        "kubernetes load balancer firewall",
        true,
    ),
    (
        TableId::Filter,
        "FORWARD",
        PROXY_FIREWALL,
        "kubernetes load balancer firewall",
        true,
    ),
    (
        TableId::Nat,
        "OUTPUT",
        SERVICES,
        "kubernetes service portals",
        false,
    ),
    (
        TableId::Nat,
        "PREROUTING",
        SERVICES,
        "kubernetes service portals",
        false,
    ),
    (
        TableId::Nat,
        "POSTROUTING",
        POSTROUTING,
        "kubernetes postrouting rules",
        false,
    ),
    (TableId::Filter, "INPUT", KUBELET_FIREWALL, "", false),
    (TableId::Filter, "OUTPUT", KUBELET_FIREWALL, "", false),
];

/// The jumps of one table. kube-proxy *prepends* each jump in list order,
/// so a built-in chain ends up holding them in reverse.
fn jumps(table: TableId) -> Section {
    let mut section = Section::default();
    for (t, from, to, comment, new_only) in JUMPS.iter().rev() {
        if *t != table {
            continue;
        }
        let mut rule = Rule::new();
        if *new_only {
            rule = rule.with(Match::CtState {
                negated: false,
                states: "NEW",
            });
        }
        if !comment.is_empty() {
            rule = rule.comment(*comment);
        }
        section.declare(to);
        section.push(from, rule.jump(*to));
    }
    section
}

/// mangle: only the canary chain.
pub(crate) fn mangle() -> Section {
    let mut section = Section::default();
    section.declare(CANARY);
    section
}

/// filter: jumps, the top-level chains, the localnet guard and KUBE-FORWARD.
pub(crate) fn filter(node: &NodeContext) -> Section {
    let mut section = jumps(TableId::Filter);
    for chain in [
        SERVICES,
        EXTERNAL_SERVICES,
        FORWARD,
        NODEPORTS,
        PROXY_FIREWALL,
        CANARY,
    ] {
        section.declare(chain);
    }
    if node.localhost_node_ports {
        // route_localnet is on for localhost node ports; this closes the
        // hole it opens (kubernetes/kubernetes#90259).
        // Only the IPv4 proxier ever has them on.
        let loopback =
            ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or_default();
        section.push(
            KUBELET_FIREWALL,
            Rule::new()
                .not_src(loopback)
                .dst(loopback)
                .comment("block incoming localnet connections")
                .with(Match::CtState {
                    negated: true,
                    states: "RELATED,ESTABLISHED,DNAT",
                })
                .target(Target::Drop),
        );
    }
    // nf_conntrack_tcp_be_liberal is 0 in the recorded setup.
    section.push(
        FORWARD,
        Rule::new()
            .with(Match::CtState {
                negated: false,
                states: "INVALID",
            })
            .target(Target::Drop),
    );
    section.push(
        FORWARD,
        Rule::new()
            .comment("kubernetes forwarding rules")
            .with(Match::Mark {
                negated: false,
                mark: node.mark,
            })
            .target(Target::Accept),
    );
    section.push(
        FORWARD,
        Rule::new()
            .comment("kubernetes forwarding conntrack rule")
            .with(Match::CtState {
                negated: false,
                states: "RELATED,ESTABLISHED",
            })
            .target(Target::Accept),
    );
    section
}

/// nat: jumps, the top-level chains, KUBE-POSTROUTING and KUBE-MARK-MASQ.
pub(crate) fn nat(node: &NodeContext) -> Section {
    let mut section = jumps(TableId::Nat);
    for chain in [SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ, CANARY] {
        section.declare(chain);
    }
    let mark = node.mark;
    section.push(
        POSTROUTING,
        Rule::new()
            .with(Match::Mark {
                negated: true,
                mark,
            })
            .target(Target::Return),
    );
    // Clears the mark (`--xor-mark`) so a re-traversing packet is not masqueraded twice.
    section.push(
        POSTROUTING,
        Rule::new().target(Target::SetXmark {
            value: mark,
            mask: 0,
        }),
    );
    section.push(
        POSTROUTING,
        Rule::new()
            .comment("kubernetes service traffic requiring SNAT")
            .target(Target::MasqueradeRandomFully),
    );
    section.push(
        MARK_MASQ,
        Rule::new().target(Target::SetXmark {
            value: mark,
            mask: mark,
        }),
    );
    section
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::NodePortDestinations;
    use crate::table::Table;

    fn node(localhost: bool) -> NodeContext {
        NodeContext {
            family: kpconform_iptables::model::Family::Ipv4,
            node_ip: None,
            cluster_cidr: None,
            masquerade_all: false,
            mark: 0x4000,
            node_ports: NodePortDestinations::AllLocal,
            localhost_node_ports: localhost,
            large_cluster: false,
        }
    }

    #[test]
    fn builtin_jumps_are_in_prepended_order() {
        let mut t = Table::new("filter", &FILTER_BUILTINS, &[]);
        t.extend(filter(&node(true)));
        let input: Vec<String> = t.rules("INPUT").iter().map(|r| r.to_string()).collect();
        // As in every recording.
        assert_eq!(
            input,
            [
                "-j KUBE-FIREWALL",
                "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
                "-m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
                "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
            ]
        );
        assert_eq!(t.rules("KUBE-FIREWALL").len(), 1);
    }

    #[test]
    fn localnet_guard_only_with_localhost_node_ports() {
        let mut t = Table::new("filter", &FILTER_BUILTINS, &[]);
        t.extend(filter(&node(false)));
        assert!(t.has_chain("KUBE-FIREWALL"));
        assert!(t.rules("KUBE-FIREWALL").is_empty());
    }

    #[test]
    fn masquerade_mark_follows_the_bit() {
        let mut n = node(true);
        n.mark = 0x20;
        let mut t = Table::new("nat", &NAT_BUILTINS, &[]);
        t.extend(nat(&n));
        let text = t.to_string();
        assert!(
            text.contains("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x20/0x20\n"),
            "{text}"
        );
        assert!(
            text.contains("-A KUBE-POSTROUTING -m mark ! --mark 0x20/0x20 -j RETURN\n"),
            "{text}"
        );
        assert!(
            text.contains("-A KUBE-POSTROUTING -j MARK --set-xmark 0x20/0x0\n"),
            "{text}"
        );
    }
}
