//! Mutants of what kube-proxy refuses: DROP and REJECT rules, and
//! load-balancer source ranges.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

use super::places::{chains, named, per_chain, per_rule, removing, rules_where, target_chain};
use super::Mutation;
use kpconform_iptables::model::{CtState, Match, Rule, RuleSet, TableName, Target};

/// Whether the first packet of a new connection can match the rule's
/// conntrack matches: its state is NEW, plus DNAT once a nat rule rewrote
/// its destination. A rule for INVALID or ESTABLISHED packets only is never
/// met by a flow, and removing it would be an equivalent mutant.
fn can_match_new(rule: &Rule) -> bool {
    let first_packet: [&[CtState]; 2] = [&[CtState::New], &[CtState::New, CtState::Dnat]];
    first_packet.iter().any(|states| {
        rule.matches.iter().all(|m| match m {
            // The kernel tests whether any of the packet's state bits is in
            // the list, then applies `!`.
            Match::Conntrack { states: s, .. } => {
                s.eval(states.iter().any(|st| s.value.contains(st)))
            }
            _ => true,
        })
    })
}

fn is_drop(rule: &Rule) -> bool {
    matches!(rule.target, Some(Target::Drop))
}

fn is_reject(rule: &Rule) -> bool {
    matches!(rule.target, Some(Target::Reject { .. }))
}

/// Whether the rule only matches loopback destinations (in 127.0.0.0/8, or ::1).
fn to_loopback(rule: &Rule) -> bool {
    let loopback = IpNet::from(Ipv4Net::new(Ipv4Addr::LOCALHOST, 8).unwrap_or_default());
    rule.basic.destination.as_ref().is_some_and(|d| {
        !d.negated
            && (loopback.contains(&d.value)
                || d.value == IpNet::from(std::net::IpAddr::V6(Ipv6Addr::LOCALHOST)))
    })
}

/// A service's filter DROP that a new connection can reach is gone:
/// traffic for a Local service without local endpoints, or from outside a
/// load balancer's source ranges, gets through.
pub(super) fn missing_drop(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Filter, |_, r| {
        is_drop(r) && can_match_new(r) && !to_loopback(r)
    });
    removing(rules, places)
}

/// kube-proxy sets `route_localnet` for localhost node ports; the fix for
/// CVE-2020-8558 drops what then arrives from elsewhere for 127.0.0.0/8
/// without having been DNATed. Without that DROP the network reaches the
/// node's localhost-only services. IPv4 only: IPv6 has no `route_localnet`
/// (kube-proxy keeps `::1` out of KUBE-NODEPORTS instead), so IPv6 rules
/// have no such DROP and the mutant does not apply to them.
pub(super) fn missing_localnet_drop(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Filter, |_, r| {
        is_drop(r) && can_match_new(r) && to_loopback(r)
    });
    removing(rules, places)
}

/// A service without endpoints no longer rejects: the connection goes on
/// to the cluster IP and hangs instead of failing fast.
pub(super) fn missing_reject(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Filter, |_, r| is_reject(r));
    removing(rules, places)
}

/// A service without endpoints drops instead of rejecting: clients time
/// out instead of getting "connection refused".
pub(super) fn reject_becomes_drop(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Filter, |_, r| is_reject(r));
    per_rule(rules, places, |rule| {
        rule.target = Some(Target::Drop);
        true
    })
}

/// `loadBalancerSourceRanges` ignored: the KUBE-FW chain's rules that send
/// allowed sources on to the service lose their `-s`, so every source is let
/// through (and never reaches KUBE-PROXY-FIREWALL's DROP).
pub(super) fn source_range_opened(rules: &RuleSet) -> Vec<Mutation> {
    let opens =
        |r: &Rule| target_chain(r).is_some() && r.basic.source.as_ref().is_some_and(|s| !s.negated);
    let places = chains(rules, TableName::Nat, |c| {
        named(c, &["KUBE-FW-"]) && c.rules.iter().any(opens)
    });
    per_chain(rules, places, |chain| {
        for rule in chain.rules.iter_mut().filter(|r| opens(r)) {
            rule.basic.source = None;
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        apply, changes, edit, fixture_text, line_of, not_applicable, parsed, with_rules,
        without_lines,
    };
    use super::can_match_new;

    #[test]
    fn first_packets_and_conntrack_matches() {
        let rule = |spec: &str| {
            let rules = parsed(&format!(
                "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT {spec}\nCOMMIT\n"
            ));
            rules.tables[0].chains[0].rules[0].clone()
        };
        assert!(can_match_new(&rule("-j DROP")));
        assert!(can_match_new(&rule("-m conntrack --ctstate NEW -j DROP")));
        assert!(can_match_new(&rule(
            "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
        )));
        assert!(can_match_new(&rule("-m conntrack --ctstate DNAT -j DROP")));
        assert!(!can_match_new(&rule(
            "-m conntrack --ctstate INVALID -j DROP"
        )));
        assert!(!can_match_new(&rule(
            "-m conntrack --ctstate RELATED,ESTABLISHED -j DROP"
        )));
        assert!(!can_match_new(&rule("-m state ! --state NEW -j DROP")));
    }

    #[test]
    fn missing_drop() {
        let (place, removed, added) = changes("missing-drop", 0);
        let line = line_of("-A KUBE-PROXY-FIREWALL ");
        assert_eq!(place, format!("filter KUBE-PROXY-FIREWALL, line {line}"));
        assert_eq!(
            removed,
            ["-A KUBE-PROXY-FIREWALL -d 203.0.113.70/32 -p tcp -m comment --comment \"shop/lb:https traffic not accepted by KUBE-FW-LB\" -m tcp --dport 443 -j DROP"]
        );
        assert!(added.is_empty());
        // KUBE-FORWARD's INVALID drop is no place (no flow can meet it), and
        // the localnet drop has a mutant of its own.
        assert_eq!(apply("missing-drop").len(), 1);
        not_applicable(
            "missing-drop",
            &with_rules(&without_lines(&fixture_text(), "-A KUBE-PROXY-FIREWALL")),
        );
    }

    #[test]
    fn missing_localnet_drop() {
        let (place, removed, added) = changes("missing-localnet-drop", 0);
        let line = line_of("-A KUBE-FIREWALL ");
        assert_eq!(place, format!("filter KUBE-FIREWALL, line {line}"));
        assert_eq!(
            removed,
            ["-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"]
        );
        assert!(added.is_empty());
        assert_eq!(apply("missing-localnet-drop").len(), 1);
        not_applicable(
            "missing-localnet-drop",
            &with_rules(&without_lines(&fixture_text(), "-A KUBE-FIREWALL ")),
        );
    }

    #[test]
    fn missing_reject() {
        let (place, removed, added) = changes("missing-reject", 0);
        assert!(place.starts_with("filter KUBE-SERVICES, line "), "{place}");
        assert_eq!(
            removed,
            ["-A KUBE-SERVICES -d 10.96.0.60/32 -p tcp -m comment --comment \"shop/empty:https has no endpoints\" -m tcp --dport 443 -j REJECT --reject-with icmp-port-unreachable"]
        );
        assert!(added.is_empty());
        not_applicable(
            "missing-reject",
            &with_rules(&without_lines(&fixture_text(), "-j REJECT")),
        );
    }

    #[test]
    fn reject_becomes_drop() {
        let (_, removed, added) = changes("reject-becomes-drop", 0);
        assert_eq!(
            removed,
            ["-A KUBE-SERVICES -d 10.96.0.60/32 -p tcp -m comment --comment \"shop/empty:https has no endpoints\" -m tcp --dport 443 -j REJECT --reject-with icmp-port-unreachable"]
        );
        assert_eq!(
            added,
            ["-A KUBE-SERVICES -d 10.96.0.60/32 -p tcp -m comment --comment \"shop/empty:https has no endpoints\" -m tcp --dport 443 -j DROP"]
        );
        not_applicable(
            "reject-becomes-drop",
            &with_rules(&without_lines(&fixture_text(), "-j REJECT")),
        );
    }

    #[test]
    fn source_range_opened() {
        let (place, removed, added) = changes("source-range-opened", 0);
        assert_eq!(place, "nat KUBE-FW-LB");
        assert_eq!(
            removed,
            ["-A KUBE-FW-LB -s 198.51.100.0/24 -m comment --comment \"shop/lb:https loadbalancer IP\" -j KUBE-EXT-LB"]
        );
        assert_eq!(
            added,
            ["-A KUBE-FW-LB -m comment --comment \"shop/lb:https loadbalancer IP\" -j KUBE-EXT-LB"]
        );
        // A load balancer without source ranges jumps on unconditionally.
        let open = edit(
            &fixture_text(),
            "-A KUBE-FW-LB -s 198.51.100.0/24 ",
            "-A KUBE-FW-LB ",
        );
        not_applicable("source-range-opened", &with_rules(&open));
    }
}
