//! Mutants of masquerading and of the Local-policy short circuits in
//! KUBE-EXT chains.

use super::places::{
    chain_named, chains, dispatch_targets, from_local, jumps_to, named, per_chain, per_rule,
    removing, rules_where, target_chain, KUBE_MARK_MASQ, SERVICE_CHAINS,
};
use super::Mutation;
use kpconform_iptables::model::{Chain, Rule, RuleSet, TableName};

/// Whether the rule jumps to KUBE-MARK-MASQ.
fn marks(rule: &Rule) -> bool {
    target_chain(rule) == Some(KUBE_MARK_MASQ)
}

/// Whether the rule has a plain (not negated) `-s`.
fn has_source(rule: &Rule) -> bool {
    rule.basic.source.as_ref().is_some_and(|s| !s.negated)
}

/// External traffic keeps its client address where kube-proxy would hide
/// it: every KUBE-MARK-MASQ jump of one KUBE-EXT chain is gone (for
/// Cluster policy the unconditional one, for Local policy the one for the
/// node's own traffic).
pub(super) fn missing_ext_masquerade(rules: &RuleSet) -> Vec<Mutation> {
    let places = chains(rules, TableName::Nat, |c| {
        named(c, &["KUBE-EXT-"]) && c.rules.iter().any(marks)
    });
    per_chain(rules, places, |chain| {
        chain.rules.retain(|r| !marks(r));
        true
    })
}

/// kube-proxy before #77523 applied a Local policy to pods too: a pod
/// reaching a node port or external IP of a Local service was only sent to
/// endpoints on its own node, and dropped where there were none. The edit
/// removes KUBE-EXT's `-s CLUSTER-CIDR -j KUBE-SVC-X`, where KUBE-SVC-X and
/// the chain's KUBE-SVL-X reach different endpoints.
pub(super) fn missing_pod_short_circuit(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Nat, |c, r| {
        named(c, &["KUBE-EXT-"])
            && has_source(r)
            && jumps_to(r, "KUBE-SVC-")
            && local_differs(rules, c, r)
    });
    removing(rules, places)
}

/// The node-side half of #77523: the node's own traffic (`--src-type
/// LOCAL`) to a Local service's external address is neither masqueraded
/// nor sent to all endpoints; both rules are removed from one KUBE-EXT chain.
pub(super) fn missing_node_short_circuit(rules: &RuleSet) -> Vec<Mutation> {
    let places = chains(rules, TableName::Nat, |c| {
        named(c, &["KUBE-EXT-"]) && c.rules.iter().any(from_local)
    });
    per_chain(rules, places, |chain| {
        chain.rules.retain(|r| !from_local(r));
        true
    })
}

/// A pod reaching itself through its service (hairpin) is no longer
/// masqueraded, so its reply would bypass conntrack: KUBE-SEP's
/// `-s EP/32 -j KUBE-MARK-MASQ` (`-s EP/128` in IPv6) is removed.
pub(super) fn missing_hairpin_masquerade(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Nat, |c, r| {
        named(c, &["KUBE-SEP-"]) && has_source(r) && marks(r)
    });
    removing(rules, places)
}

/// `! -s CLUSTER-CIDR -j KUBE-MARK-MASQ` in a service chain loses its `!`:
/// pods get masqueraded and off-cluster clients do not.
pub(super) fn inverted_cluster_cidr(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Nat, |c, r| {
        named(c, &SERVICE_CHAINS) && marks(r) && r.basic.source.as_ref().is_some_and(|s| s.negated)
    });
    per_rule(rules, places, |rule| match &mut rule.basic.source {
        Some(s) if s.negated => {
            s.negated = false;
            true
        }
        _ => false,
    })
}

/// Whether `rule` (in KUBE-EXT chain `ext`) goes to a KUBE-SVC chain that
/// reaches other endpoints than the KUBE-SVL chain `ext` ends in, so that
/// skipping it changes where the traffic can go.
fn local_differs(rules: &RuleSet, ext: &Chain, rule: &Rule) -> bool {
    let nat = |name: &str| chain_named(rules, TableName::Nat, name);
    let cluster = target_chain(rule).and_then(nat);
    let local = ext
        .rules
        .iter()
        .filter(|r| jumps_to(r, "KUBE-SVL-"))
        .find_map(target_chain)
        .and_then(nat);
    match (cluster, local) {
        (Some(c), Some(l)) => dispatch_targets(c) != dispatch_targets(l),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        apply, changes, edit, fixture_text, line_of, not_applicable, with_rules, without_lines,
    };

    #[test]
    fn missing_ext_masquerade() {
        let (place, removed, added) = changes("missing-ext-masquerade", 0);
        assert_eq!(place, "nat KUBE-EXT-LB");
        assert_eq!(
            removed,
            ["-A KUBE-EXT-LB -m comment --comment \"masquerade traffic for shop/lb:https external destinations\" -j KUBE-MARK-MASQ"]
        );
        assert!(added.is_empty());
        let (place, removed, _) = changes("missing-ext-masquerade", 1);
        assert_eq!(place, "nat KUBE-EXT-WEB");
        assert_eq!(removed.len(), 1);
        assert!(
            removed[0].contains("masquerade LOCAL traffic"),
            "{removed:?}"
        );
        assert_eq!(apply("missing-ext-masquerade").len(), 2);
    }

    #[test]
    fn missing_pod_short_circuit() {
        let (place, removed, added) = changes("missing-pod-short-circuit", 0);
        let line = line_of("-A KUBE-EXT-WEB -s 10.64.0.0/16");
        assert_eq!(place, format!("nat KUBE-EXT-WEB, line {line}"));
        assert_eq!(
            removed,
            ["-A KUBE-EXT-WEB -s 10.64.0.0/16 -m comment --comment \"pod traffic for shop/web:http external destinations\" -j KUBE-SVC-WEB"]
        );
        assert!(added.is_empty());
        assert_eq!(apply("missing-pod-short-circuit").len(), 1);
        // Every endpoint local: KUBE-SVL-WEB reaches the same endpoints, and
        // pods would end up in the same place without the short circuit.
        let all_local = edit(
            &fixture_text(),
            "-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.2.7:8080\" -j KUBE-SEP-C\n",
            "",
        );
        not_applicable("missing-pod-short-circuit", &with_rules(&all_local));
    }

    #[test]
    fn missing_node_short_circuit() {
        let (place, removed, added) = changes("missing-node-short-circuit", 0);
        assert_eq!(place, "nat KUBE-EXT-WEB");
        assert_eq!(
            removed,
            [
                "-A KUBE-EXT-WEB -m comment --comment \"masquerade LOCAL traffic for shop/web:http external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                "-A KUBE-EXT-WEB -m comment --comment \"route LOCAL traffic for shop/web:http external destinations\" -m addrtype --src-type LOCAL -j KUBE-SVC-WEB",
            ]
        );
        assert!(added.is_empty());
        not_applicable(
            "missing-node-short-circuit",
            &with_rules(&without_lines(&fixture_text(), "--src-type LOCAL")),
        );
    }

    #[test]
    fn missing_hairpin_masquerade() {
        let (place, removed, added) = changes("missing-hairpin-masquerade", 0);
        let line = line_of("-A KUBE-SEP-A -s 10.64.0.5/32");
        assert_eq!(place, format!("nat KUBE-SEP-A, line {line}"));
        assert_eq!(
            removed,
            ["-A KUBE-SEP-A -s 10.64.0.5/32 -m comment --comment \"shop/web:http\" -j KUBE-MARK-MASQ"]
        );
        assert!(added.is_empty());
        // Five endpoint chains, the first three places.
        assert_eq!(apply("missing-hairpin-masquerade").len(), 3);
    }

    #[test]
    fn inverted_cluster_cidr() {
        let (place, removed, added) = changes("inverted-cluster-cidr", 0);
        assert!(place.starts_with("nat KUBE-SVC-DNS, line "), "{place}");
        assert_eq!(
            removed,
            ["-A KUBE-SVC-DNS ! -s 10.64.0.0/16 -d 10.96.0.10/32 -p udp -m comment --comment \"shop/dns:dns cluster IP\" -m udp --dport 53 -j KUBE-MARK-MASQ"]
        );
        assert_eq!(
            added,
            ["-A KUBE-SVC-DNS -s 10.64.0.0/16 -d 10.96.0.10/32 -p udp -m comment --comment \"shop/dns:dns cluster IP\" -m udp --dport 53 -j KUBE-MARK-MASQ"]
        );
        // Without a cluster CIDR (or with masqueradeAll) there is no `! -s`.
        let no_cidr = fixture_text().replace("! -s 10.64.0.0/16 ", "");
        assert_ne!(no_cidr, fixture_text());
        not_applicable("inverted-cluster-cidr", &with_rules(&no_cidr));
    }
}
