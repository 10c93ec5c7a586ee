//! Mutation self-test: known-bad edits of a parsed rule set, to show that the
//! suite (flows + invariants) notices each of them.
//!
//! Every mutant is a small named function listed once in [`catalogue`], with
//! an id, a one-line description and, where the bug it follows has one, the
//! kube-proxy issue or pull request. A mutant turns a correct rule set (the
//! reference generator's output for one scenario and node) into zero or more
//! [`Mutation`]s, one per place it can edit (at most [`MAX_PLACES`], the first
//! ones in rule-set order). A mutant returns nothing where it does not apply,
//! and never a variant that cannot change what the rules do: "wrong DNAT
//! port" always changes a port, "equal probabilities" only touches chains
//! where 1/n differs from 1/(n-i).
//!
//! [`self_test`] runs the catalogue over one (scenario, node) with the same
//! [`evaluate`](kpconform_harness::evaluate) that `kpconform run` uses, and
//! [`tally`] sums the results per mutant; `kpconform mutants` is the front end.
//!
//! Mutants are family-neutral: they find their places by chain, target and
//! match, never by an IPv4 spelling, so they edit IPv6 rules (`-s EP/128`
//! hairpins, `icmp6-port-unreachable` rejects, 128-bit `recent` masks) as
//! they edit IPv4 ones. A dual-stack node's two rule sets are mutated one at
//! a time, and [`tally`] counts each family's rules apart.
//!
//! ```
//! use kpconform_iptables::parse_str;
//! use kpconform_selftest::mutants::find;
//!
//! let dump = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n\
//!             -A PREROUTING -j KUBE-SERVICES\nCOMMIT\n";
//! let rules = parse_str(dump).expect("valid dump");
//! let mutant = find("missing-prerouting-jump").expect("in the catalogue");
//! let [mutation] = mutant.apply(&rules).try_into().expect("one place");
//! assert_eq!(mutation.place, "nat PREROUTING, line 4");
//! assert!(mutation.rules.tables[0].chains[0].rules.is_empty());
//! // Nothing to edit, nothing returned.
//! assert!(mutant.apply(&mutation.rules).is_empty());
//! ```

use std::fmt;

use kpconform_iptables::model::RuleSet;

mod dispatch;
mod filtering;
mod masquerade;
mod places;
mod selftest;
mod structure;

pub use selftest::{
    self_test, tally, Application, CaseResult, Counts, FamilyTally, MutantTally, SetupError,
    SetupFailure, TallyVerdict,
};

/// At most this many variants per mutant and rule set: the first places in
/// rule-set order. Enough to see whether a scenario exercises more than one
/// service, and keeps a 60-service scenario from costing 60 evaluations per mutant.
pub const MAX_PLACES: usize = 3;

/// One known-bad edit of a rule set.
#[derive(Clone, Copy)]
pub struct Mutant {
    /// Short kebab-case id, stable across releases.
    pub id: &'static str,
    /// One line saying what the edit does.
    pub description: &'static str,
    /// The kube-proxy bug it follows (`kubernetes/kubernetes#NNNNN`), if it has a number.
    pub bug: Option<&'static str>,
    mutate: fn(&RuleSet) -> Vec<Mutation>,
}

impl fmt::Debug for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutant")
            .field("id", &self.id)
            .field("bug", &self.bug)
            .finish_non_exhaustive()
    }
}

impl Mutant {
    /// The variants of `rules` this mutant makes, one per place (at most
    /// [`MAX_PLACES`]); empty when it does not apply. Each differs from `rules`.
    pub fn apply(&self, rules: &RuleSet) -> Vec<Mutation> {
        let mut variants = (self.mutate)(rules);
        variants.retain(|m| m.rules != *rules);
        variants.truncate(MAX_PLACES);
        variants
    }
}

/// One mutated copy of a rule set.
#[derive(Debug, Clone)]
pub struct Mutation {
    /// Where the edit was made: table, chain, and the line of the original
    /// dump for a rule (`nat KUBE-SVC-X, line 57`).
    pub place: String,
    /// The mutated rule set.
    pub rules: RuleSet,
}

/// Every mutant, in report order.
pub fn catalogue() -> &'static [Mutant] {
    CATALOGUE
}

/// The mutant with this id.
pub fn find(id: &str) -> Option<&'static Mutant> {
    CATALOGUE.iter().find(|m| m.id == id)
}

const fn mutant(
    id: &'static str,
    bug: Option<&'static str>,
    description: &'static str,
    mutate: fn(&RuleSet) -> Vec<Mutation>,
) -> Mutant {
    Mutant {
        id,
        description,
        bug,
        mutate,
    }
}

static CATALOGUE: &[Mutant] = &[
    mutant(
        "equal-probabilities",
        None,
        "every statistic rule of a KUBE-SVC/SVL chain gets 1/n instead of 1/(n-i)",
        dispatch::equal_probabilities,
    ),
    mutant(
        "last-endpoint-conditional",
        None,
        "the last endpoint rule of a KUBE-SVC/SVL chain gets `--probability 0.5`, so traffic falls through",
        dispatch::last_endpoint_conditional,
    ),
    mutant(
        "five-decimal-probabilities",
        Some("kubernetes/kubernetes#83599"),
        "dispatch probabilities 1/(n-i) written with 5 decimals, then kernel-quantized",
        dispatch::five_decimal_probabilities,
    ),
    mutant(
        "endpoint-never-chosen",
        None,
        "one endpoint's statistic rule gets probability 0",
        dispatch::endpoint_never_chosen,
    ),
    mutant(
        "affinity-removed",
        None,
        "the session-affinity `-m recent --rcheck` rules of a KUBE-SVC/SVL chain are removed",
        dispatch::affinity_removed,
    ),
    mutant(
        "local-policy-falls-through",
        None,
        "a jump to KUBE-SVL-X (Local policy) goes to KUBE-SVC-X, which includes remote endpoints",
        dispatch::local_policy_falls_through,
    ),
    mutant(
        "nodeports-not-last",
        Some("kubernetes/kubernetes#12896"),
        "the KUBE-NODEPORTS jump moves to the front of nat KUBE-SERVICES",
        structure::nodeports_not_last,
    ),
    mutant(
        "missing-prerouting-jump",
        None,
        "nat PREROUTING no longer jumps to KUBE-SERVICES",
        structure::missing_prerouting_jump,
    ),
    mutant(
        "dangling-jump",
        None,
        "a service or endpoint chain is deleted while jumps to it stay",
        structure::dangling_jump,
    ),
    mutant(
        "jump-loop",
        None,
        "a service chain gets a jump back to the chain that jumps to it",
        structure::jump_loop,
    ),
    mutant(
        "protocol-swapped",
        None,
        "a service's KUBE-SERVICES/KUBE-NODEPORTS rule matches the other protocol (tcp <-> udp, sctp -> tcp)",
        structure::protocol_swapped,
    ),
    mutant(
        "wrong-dnat-port",
        None,
        "an endpoint's DNAT goes to the next port number",
        structure::wrong_dnat_port,
    ),
    mutant(
        "missing-ext-masquerade",
        None,
        "a KUBE-EXT chain no longer jumps to KUBE-MARK-MASQ",
        masquerade::missing_ext_masquerade,
    ),
    mutant(
        "missing-pod-short-circuit",
        Some("kubernetes/kubernetes#77523"),
        "Local policy: pod traffic to an external address no longer goes to all endpoints (KUBE-EXT `-s CIDR -j KUBE-SVC` removed)",
        masquerade::missing_pod_short_circuit,
    ),
    mutant(
        "missing-node-short-circuit",
        Some("kubernetes/kubernetes#77523"),
        "Local policy: the node's own traffic to an external address is no longer masqueraded and sent to all endpoints",
        masquerade::missing_node_short_circuit,
    ),
    mutant(
        "missing-hairpin-masquerade",
        None,
        "a KUBE-SEP chain no longer marks its own endpoint's traffic (-s EP/32 or EP/128 -j KUBE-MARK-MASQ)",
        masquerade::missing_hairpin_masquerade,
    ),
    mutant(
        "inverted-cluster-cidr",
        None,
        "a KUBE-SVC/SVL masquerade rule matches `-s CIDR` instead of `! -s CIDR`",
        masquerade::inverted_cluster_cidr,
    ),
    mutant(
        "missing-drop",
        None,
        "a service's filter DROP rule (no local endpoints, source range) is removed",
        filtering::missing_drop,
    ),
    mutant(
        "missing-localnet-drop",
        None,
        "KUBE-FIREWALL no longer drops packets from elsewhere to 127.0.0.0/8 (CVE-2020-8558; IPv4 only, IPv6 has no route_localnet)",
        filtering::missing_localnet_drop,
    ),
    mutant(
        "missing-reject",
        None,
        "a filter REJECT rule (service without endpoints) is removed",
        filtering::missing_reject,
    ),
    mutant(
        "reject-becomes-drop",
        None,
        "a filter REJECT rule drops instead",
        filtering::reject_becomes_drop,
    ),
    mutant(
        "source-range-opened",
        None,
        "a KUBE-FW chain lets every source through to the service (source match removed)",
        filtering::source_range_opened,
    ),
];

#[cfg(test)]
mod test_util;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case_and_described() {
        let mut ids: Vec<&str> = catalogue().iter().map(|m| m.id).collect();
        for id in &ids {
            assert!(
                id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{id}"
            );
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), catalogue().len());
        for m in catalogue() {
            assert!(!m.description.is_empty(), "{}", m.id);
            if let Some(bug) = m.bug {
                assert!(bug.starts_with("kubernetes/kubernetes#"), "{bug}");
            }
        }
    }

    #[test]
    fn no_mutant_applies_to_an_empty_rule_set() {
        for m in catalogue() {
            assert!(m.apply(&RuleSet::default()).is_empty(), "{}", m.id);
        }
    }

    #[test]
    fn every_mutant_applies_to_the_fixture_and_changes_it() {
        let rules = test_util::fixture();
        for m in catalogue() {
            let variants = m.apply(&rules);
            assert!(!variants.is_empty(), "{} does not apply", m.id);
            assert!(variants.len() <= MAX_PLACES);
            for v in &variants {
                assert_ne!(v.rules, rules, "{} at {}", m.id, v.place);
            }
        }
    }
}
