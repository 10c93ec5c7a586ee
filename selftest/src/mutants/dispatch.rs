//! Mutants of the per-service dispatch chains (KUBE-SVC-*, KUBE-SVL-*):
//! probabilities, affinity, and which chain a Local policy uses.

use super::places::{
    chain_named, chains, dispatch_rules, dispatch_targets, is_affinity_check, is_dispatch, named,
    per_chain, per_rule, probability_mut, rules_where, saved, set_probability, target_chain,
    ChainAt, SERVICE_CHAINS,
};
use super::Mutation;
use kpconform_iptables::model::{ChainName, Match, Neg, RuleSet, Statistic, TableName, Target};
use kpconform_iptables::Probability;

/// The service chains of the nat table.
fn service_chains(rules: &RuleSet) -> Vec<ChainAt> {
    chains(rules, TableName::Nat, |c| named(c, &SERVICE_CHAINS))
}

/// `1/n` as kube-proxy spells it (`%0.10f`), for `n >= 1`.
fn one_over(n: usize, decimals: u32) -> Probability {
    Probability::one_over(u32::try_from(n.max(1)).unwrap_or(u32::MAX), decimals)
}

/// Every statistic rule of a chain's dispatch gets 1/n, n the number of
/// endpoints: the textbook mistake, which gives the first endpoint 1/n
/// and the last (1-1/n)^(n-1). Equal to kube-proxy's 1/(n-i) for n <= 2.
pub(super) fn equal_probabilities(rules: &RuleSet) -> Vec<Mutation> {
    per_chain(rules, service_chains(rules), |chain| {
        let dispatch = dispatch_rules(chain);
        let equal = one_over(dispatch.len(), 10);
        let mut changed = false;
        for i in dispatch {
            changed |= set_probability(&mut chain.rules[i], &equal);
        }
        changed
    })
}

/// The last dispatch rule, which must be unconditional so that everything
/// reaching it goes to an endpoint, only matches half of the time.
pub(super) fn last_endpoint_conditional(rules: &RuleSet) -> Vec<Mutation> {
    per_chain(rules, service_chains(rules), |chain| {
        let Some(&last) = dispatch_rules(chain).last() else {
            return false;
        };
        let rule = &mut chain.rules[last];
        if probability_mut(rule).is_some() {
            return false;
        }
        let mut matches = std::mem::take(&mut rule.matches).into_vec();
        matches.push(Match::Statistic(Neg::pos(Statistic::Random(saved(
            &one_over(2, 10),
        )))));
        rule.matches = matches.into();
        true
    })
}

/// kube-proxy before #83599 printed 1/(n-i) with `%0.5f`: for n = 3 the
/// first endpoint got 0.33333 instead of 0.3333333333, and for large n the
/// error grew to whole endpoints' worth of traffic.
pub(super) fn five_decimal_probabilities(rules: &RuleSet) -> Vec<Mutation> {
    per_chain(rules, service_chains(rules), |chain| {
        let dispatch = dispatch_rules(chain);
        let n = dispatch.len();
        let mut changed = false;
        for (i, r) in dispatch.into_iter().enumerate() {
            changed |= set_probability(&mut chain.rules[r], &one_over(n - i, 5));
        }
        changed
    })
}

/// One endpoint's statistic rule never matches; the others share its traffic.
pub(super) fn endpoint_never_chosen(rules: &RuleSet) -> Vec<Mutation> {
    let places = rules_where(rules, TableName::Nat, |c, r| {
        named(c, &SERVICE_CHAINS) && is_dispatch(r) && r.probability().is_some()
    });
    let Ok(zero) = Probability::parse("0") else {
        return Vec::new();
    };
    per_rule(rules, places, |rule| set_probability(rule, &zero))
}

/// Session affinity forgotten: the chain's `--rcheck` rules are gone, so a
/// returning client is dispatched at random again.
pub(super) fn affinity_removed(rules: &RuleSet) -> Vec<Mutation> {
    per_chain(rules, service_chains(rules), |chain| {
        let before = chain.rules.len();
        chain.rules.retain(|r| !is_affinity_check(r));
        chain.rules.len() != before
    })
}

/// A Local-policy entry (a jump to KUBE-SVL-X) goes to KUBE-SVC-X, the
/// cluster-wide endpoints, instead. Only where the two chains reach
/// different endpoints: on a node that hosts all of them the edit would
/// change nothing.
pub(super) fn local_policy_falls_through(rules: &RuleSet) -> Vec<Mutation> {
    let nat = |name: &str| chain_named(rules, TableName::Nat, name);
    let places = rules_where(rules, TableName::Nat, |_, r| {
        let Some(local) = target_chain(r).filter(|t| t.starts_with("KUBE-SVL-")) else {
            return false;
        };
        match (nat(local), nat(&cluster_chain_of(local))) {
            (Some(l), Some(c)) => dispatch_targets(l) != dispatch_targets(c),
            _ => false,
        }
    });
    per_rule(rules, places, |rule| {
        let Some(cluster) = target_chain(rule).map(cluster_chain_of) else {
            return false;
        };
        match &mut rule.target {
            Some(Target::Jump(c)) | Some(Target::Goto(c)) => {
                *c = ChainName::User(cluster.into());
                true
            }
            _ => false,
        }
    })
}

/// `KUBE-SVC-X` for `KUBE-SVL-X`.
fn cluster_chain_of(local: &str) -> String {
    local.replacen("KUBE-SVL-", "KUBE-SVC-", 1)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        apply, changes, edit, fixture_text, not_applicable, with_rules, without_lines,
    };

    #[test]
    fn equal_probabilities() {
        let (place, removed, added) = changes("equal-probabilities", 0);
        assert_eq!(place, "nat KUBE-SVC-WEB");
        // Three endpoints: the first rule already has 1/3; the second gets
        // 1/3 instead of 1/2; the last stays unconditional.
        assert_eq!(
            removed,
            ["-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.0.6:8080\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B"]
        );
        assert_eq!(
            added,
            ["-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.0.6:8080\" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-B"]
        );
        // KUBE-SVL-WEB has two endpoints: 1/2 is 1/(n-i), nothing to change.
        assert_eq!(apply("equal-probabilities").len(), 1);
    }

    #[test]
    fn last_endpoint_conditional() {
        // Service chains in declaration order: KUBE-SVC-DNS comes first.
        let (place, removed, added) = changes("last-endpoint-conditional", 0);
        assert_eq!(place, "nat KUBE-SVC-DNS");
        assert_eq!(
            removed,
            ["-A KUBE-SVC-DNS -m comment --comment \"shop/dns:dns -> 10.64.1.8:53\" -j KUBE-SEP-D"]
        );
        assert_eq!(
            added,
            ["-A KUBE-SVC-DNS -m comment --comment \"shop/dns:dns -> 10.64.1.8:53\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-D"]
        );
        let variants = apply("last-endpoint-conditional");
        let places: Vec<&str> = variants.iter().map(|m| m.place.as_str()).collect();
        assert_eq!(
            places,
            ["nat KUBE-SVC-DNS", "nat KUBE-SVC-LB", "nat KUBE-SVC-WEB"]
        );
        let web = kpconform_iptables::print(&variants[2].rules);
        assert!(
            web.contains("\"shop/web:http -> 10.64.2.7:8080\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-C\n"),
            "{web}"
        );
    }

    #[test]
    fn five_decimal_probabilities() {
        let (place, removed, added) = changes("five-decimal-probabilities", 0);
        assert_eq!(place, "nat KUBE-SVC-WEB");
        // 0.33333 as the kernel stores it; 1/2 has no sixth decimal to lose.
        assert_eq!(
            removed,
            ["-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.0.5:8080\" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-A"]
        );
        assert_eq!(
            added,
            ["-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.0.5:8080\" -m statistic --mode random --probability 0.33332999982 -j KUBE-SEP-A"]
        );
        assert_eq!(apply("five-decimal-probabilities").len(), 1);
    }

    #[test]
    fn endpoint_never_chosen() {
        let (place, removed, added) = changes("endpoint-never-chosen", 0);
        assert!(place.starts_with("nat KUBE-SVC-WEB, line "), "{place}");
        assert_eq!(
            removed,
            ["-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.0.5:8080\" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-A"]
        );
        assert_eq!(
            added,
            ["-A KUBE-SVC-WEB -m comment --comment \"shop/web:http -> 10.64.0.5:8080\" -m statistic --mode random --probability 0.00000000000 -j KUBE-SEP-A"]
        );
        // One variant per statistic rule: two in KUBE-SVC-WEB, one in KUBE-SVL-WEB.
        assert_eq!(apply("endpoint-never-chosen").len(), 3);
    }

    #[test]
    fn affinity_removed() {
        let (place, removed, added) = changes("affinity-removed", 0);
        assert_eq!(place, "nat KUBE-SVC-WEB");
        assert_eq!(removed.len(), 3);
        assert!(
            removed.iter().all(|l| l.contains("--rcheck")),
            "{removed:?}"
        );
        assert!(added.is_empty());
        let without = with_rules(&without_lines(&fixture_text(), "--rcheck"));
        not_applicable("affinity-removed", &without);
    }

    #[test]
    fn local_policy_falls_through() {
        let (place, removed, added) = changes("local-policy-falls-through", 0);
        assert!(place.starts_with("nat KUBE-EXT-WEB, line "), "{place}");
        assert_eq!(removed, ["-A KUBE-EXT-WEB -j KUBE-SVL-WEB"]);
        assert_eq!(added, ["-A KUBE-EXT-WEB -j KUBE-SVC-WEB"]);
        // When the node hosts every endpoint, both chains are the same.
        let all_local = edit(
            &fixture_text(),
            "-A KUBE-SVL-WEB -m comment --comment \"shop/web:http -> 10.64.0.6:8080\" -j KUBE-SEP-B\n",
            "-A KUBE-SVL-WEB -m comment --comment \"shop/web:http -> 10.64.0.6:8080\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B\n\
             -A KUBE-SVL-WEB -m comment --comment \"shop/web:http -> 10.64.2.7:8080\" -j KUBE-SEP-C\n",
        );
        not_applicable("local-policy-falls-through", &with_rules(&all_local));
    }
}
