//! Mutants of the rule set's structure: hooks, chain order, jumps, and the
//! matches and targets that route a service's packets.

use super::places::{
    chains, named, parents, per_chain, per_rule, removing, rules_where, target_chain, variants,
    ChainAt,
};
use super::Mutation;
use kpconform_iptables::model::{
    BuiltinChain, ChainName, Match, Protocol, Rule, RuleSet, TableName, Target,
};

/// kube-proxy #12896: the KUBE-NODEPORTS jump (`--dst-type LOCAL`) must be
/// the last rule of KUBE-SERVICES. Before the other rules it takes a packet
/// for a local service address (an external IP or load balancer IP the node
/// holds) whose port is also a node port away from its service rule.
pub(super) fn nodeports_not_last(rules: &RuleSet) -> Vec<Mutation> {
    let places = chains(rules, TableName::Nat, |c| {
        c.name.as_str() == "KUBE-SERVICES"
    });
    per_chain(rules, places, |chain| {
        let (mut jumps, others): (Vec<Rule>, Vec<Rule>) = chain
            .rules
            .drain(..)
            .partition(|r| target_chain(r) == Some("KUBE-NODEPORTS"));
        let moved = !jumps.is_empty() && !others.is_empty();
        jumps.extend(others);
        chain.rules = jumps;
        moved
    })
}

/// Packets from the network never see the service rules.
pub(super) fn missing_prerouting_jump(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Nat, |c, r| {
        c.name == ChainName::Builtin(BuiltinChain::Prerouting)
            && target_chain(r) == Some("KUBE-SERVICES")
    });
    removing(rules, places)
}

/// Chains a service's traffic passes through, which a jump may dangle to
/// or loop back from.
const PER_SERVICE: [&str; 5] = [
    "KUBE-SVC-",
    "KUBE-SVL-",
    "KUBE-EXT-",
    "KUBE-FW-",
    "KUBE-SEP-",
];

/// The per-service chains that lead to endpoint chains.
const ENTRY_CHAINS: [&str; 4] = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-"];

/// A chain that something jumps to is deleted (declaration and rules) and
/// the jumps stay; `iptables-restore` refuses the whole table.
pub(super) fn dangling_jump(rules: &RuleSet) -> Vec<Mutation> {
    let places = chains(rules, TableName::Nat, |c| named(c, &PER_SERVICE))
        .into_iter()
        .filter(|&at| parents(rules, at).next().is_some())
        .collect::<Vec<ChainAt>>();
    variants(
        rules,
        places,
        |r, at| at.describe(r),
        |r, at| match r.tables.get_mut(at.table) {
            Some(t) if at.chain < t.chains.len() => {
                t.chains.remove(at.chain);
                true
            }
            _ => false,
        },
    )
}

/// A service chain jumps back to the first chain that jumps to it; the
/// kernel refuses a table with a loop (ELOOP), whether or not a packet
/// would reach the jump.
pub(super) fn jump_loop(rules: &RuleSet) -> Vec<Mutation> {
    let places = chains(rules, TableName::Nat, |c| named(c, &ENTRY_CHAINS))
        .into_iter()
        .filter(|&at| parents(rules, at).next().is_some())
        .collect::<Vec<ChainAt>>();
    variants(
        rules,
        places,
        |r, at| {
            let back = parents(r, at)
                .next()
                .map(|p| p.to_string())
                .unwrap_or_default();
            format!("{} -> {back}", at.describe(r))
        },
        |r, at| {
            let Some(parent) = parents(r, at).next().cloned() else {
                return false;
            };
            let Some(chain) = at.get_mut(r) else {
                return false;
            };
            chain.rules.push(Rule {
                basic: Default::default(),
                matches: Box::default(),
                target: Some(Target::Jump(parent)),
                counters: None,
                span: Default::default(),
            });
            true
        },
    )
}

/// The other protocol for a swapped service rule.
fn swapped(p: Protocol) -> Option<Protocol> {
    match p {
        Protocol::Tcp => Some(Protocol::Udp),
        Protocol::Udp | Protocol::Sctp => Some(Protocol::Tcp),
        _ => None,
    }
}

/// A service's entry rule (in KUBE-SERVICES or KUBE-NODEPORTS) matches the
/// other protocol: tcp <-> udp, sctp -> tcp. Both `-p` and the port match
/// module change, as a generator that mixed up the port's protocol would write.
pub(super) fn protocol_swapped(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Nat, |c, r| {
        matches!(c.name.as_str(), "KUBE-SERVICES" | "KUBE-NODEPORTS")
            && target_chain(r).is_some()
            && r.basic
                .protocol
                .as_ref()
                .is_some_and(|p| !p.negated && swapped(p.value).is_some())
    });
    per_rule(rules, places, |rule| {
        let Some(p) = rule.basic.protocol.as_mut() else {
            return false;
        };
        let Some(other) = swapped(p.value) else {
            return false;
        };
        let from = std::mem::replace(&mut p.value, other);
        for m in &mut rule.matches {
            if let Match::Ports { protocol, .. } = m {
                if *protocol == from {
                    *protocol = other;
                }
            }
        }
        true
    })
}

/// An endpoint's DNAT goes to the port after its target port (the one
/// before, for 65535): a generator that used the wrong port field.
pub(super) fn wrong_dnat_port(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(
        rules,
        TableName::Nat,
        |_, r| matches!(&r.target, Some(Target::Dnat(n)) if n.ports.is_some()),
    );
    per_rule(rules, places, |rule| match &mut rule.target {
        Some(Target::Dnat(nat)) => match &mut nat.ports {
            // The whole range moves by one, down when it ends at the top port.
            Some(ports) if ports.last == u16::MAX => {
                if ports.first == 0 {
                    return false;
                }
                ports.first -= 1;
                ports.last -= 1;
                true
            }
            Some(ports) => {
                ports.first += 1;
                ports.last += 1;
                true
            }
            None => false,
        },
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        apply, changes, fixture_text, line_of, not_applicable, with_rules, without_lines,
    };

    #[test]
    fn nodeports_not_last() {
        let variants = apply("nodeports-not-last");
        assert_eq!(variants.len(), 1);
        assert_eq!(variants[0].place, "nat KUBE-SERVICES");
        let nat = &variants[0].rules.tables[1];
        let services = nat.chain_by_name("KUBE-SERVICES").expect("declared");
        let targets: Vec<&str> = services
            .rules
            .iter()
            .filter_map(|r| super::target_chain(r))
            .collect();
        assert_eq!(
            targets,
            [
                "KUBE-NODEPORTS",
                "KUBE-SVC-WEB",
                "KUBE-SVC-DNS",
                "KUBE-SVC-LB",
                "KUBE-FW-LB"
            ]
        );
        // Only the node-port jump: nothing to move it before.
        let text = without_lines(&fixture_text(), "-A KUBE-SERVICES -d ");
        not_applicable("nodeports-not-last", &with_rules(&text));
    }

    #[test]
    fn missing_prerouting_jump() {
        let (place, removed, added) = changes("missing-prerouting-jump", 0);
        let line = line_of("-A PREROUTING ");
        assert_eq!(place, format!("nat PREROUTING, line {line}"));
        assert_eq!(
            removed,
            ["-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"]
        );
        assert!(added.is_empty());
    }

    #[test]
    fn dangling_jump() {
        let variants = apply("dangling-jump");
        let places: Vec<&str> = variants.iter().map(|m| m.place.as_str()).collect();
        assert_eq!(
            places,
            ["nat KUBE-EXT-LB", "nat KUBE-EXT-WEB", "nat KUBE-FW-LB"]
        );
        let (_, removed, added) = changes("dangling-jump", 0);
        assert_eq!(
            removed,
            [
                ":KUBE-EXT-LB - [0:0]",
                "-A KUBE-EXT-LB -m comment --comment \"masquerade traffic for shop/lb:https external destinations\" -j KUBE-MARK-MASQ",
                "-A KUBE-EXT-LB -j KUBE-SVC-LB",
            ]
        );
        assert!(added.is_empty());
        // The jumps to it stay.
        let text = kpconform_iptables::print(&variants[0].rules);
        assert!(text.contains("-j KUBE-EXT-LB\n"), "{text}");
    }

    #[test]
    fn jump_loop() {
        let (place, removed, added) = changes("jump-loop", 0);
        // KUBE-FW-LB is declared before KUBE-NODEPORTS, so it is the first parent.
        assert_eq!(place, "nat KUBE-EXT-LB -> KUBE-FW-LB");
        assert!(removed.is_empty());
        assert_eq!(added, ["-A KUBE-EXT-LB -j KUBE-FW-LB"]);
        // A table without service chains has nothing to loop.
        not_applicable("jump-loop", &with_rules("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n"));
    }

    #[test]
    fn protocol_swapped() {
        let (place, removed, added) = changes("protocol-swapped", 0);
        assert!(place.starts_with("nat KUBE-NODEPORTS, line "), "{place}");
        assert_eq!(
            removed,
            ["-A KUBE-NODEPORTS -p tcp -m comment --comment \"shop/web:http\" -m tcp --dport 30080 -j KUBE-EXT-WEB"]
        );
        assert_eq!(
            added,
            ["-A KUBE-NODEPORTS -p udp -m comment --comment \"shop/web:http\" -m udp --dport 30080 -j KUBE-EXT-WEB"]
        );
        // The udp service becomes tcp.
        let variants = apply("protocol-swapped");
        assert_eq!(variants.len(), 3);
        let text = kpconform_iptables::print(&variants[2].rules);
        assert!(
            text.contains("-A KUBE-SERVICES -d 10.96.0.50/32 -p udp"),
            "{text}"
        );
        let only_icmp =
            "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n\
             -A KUBE-SERVICES -d 10.96.0.1/32 -p icmp -j KUBE-SVC-X\nCOMMIT\n";
        not_applicable("protocol-swapped", &with_rules(only_icmp));
    }

    #[test]
    fn wrong_dnat_port() {
        let (place, removed, added) = changes("wrong-dnat-port", 0);
        assert!(place.starts_with("nat KUBE-SEP-A, line "), "{place}");
        assert_eq!(removed.len(), 1);
        assert!(
            removed[0].ends_with("-j DNAT --to-destination 10.64.0.5:8080"),
            "{removed:?}"
        );
        assert_eq!(added.len(), 1);
        assert_eq!(
            added[0],
            removed[0].replace("10.64.0.5:8080", "10.64.0.5:8081")
        );
        let top = with_rules(
            "*nat\n:KUBE-SEP-A - [0:0]\n-A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.64.0.5:65535\nCOMMIT\n",
        );
        let [m] = super::super::find("wrong-dnat-port")
            .unwrap()
            .apply(&top)
            .try_into()
            .unwrap();
        assert!(kpconform_iptables::print(&m.rules).contains("--to-destination 10.64.0.5:65534"));
        let no_port = with_rules(
            "*nat\n:KUBE-SEP-A - [0:0]\n-A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.64.0.5\nCOMMIT\n",
        );
        not_applicable("wrong-dnat-port", &no_port);
    }
}
