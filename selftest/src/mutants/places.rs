//! Where a mutant can edit, and one variant per place.
//!
//! Places are found on the original rule set (in table, chain, rule order)
//! and edited on a copy each; an edit that would change nothing reports so
//! and makes no variant.

use std::collections::BTreeSet;

use super::{Mutation, MAX_PLACES};
use kpconform_iptables::model::{
    AddrType, Chain, ChainName, Match, Neg, RecentAction, Rule, RuleSet, Statistic, TableName,
};
use kpconform_iptables::Probability;

/// The prefixes of kube-proxy's per-service dispatch chains.
pub(super) const SERVICE_CHAINS: [&str; 2] = ["KUBE-SVC-", "KUBE-SVL-"];

/// kube-proxy's masquerade-marking chain.
pub(super) const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";

/// A chain: index of its table and of the chain in it.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChainAt {
    pub(super) table: usize,
    pub(super) chain: usize,
}

/// A rule: its chain and its index in it.
#[derive(Debug, Clone, Copy)]
pub(super) struct RuleAt {
    pub(super) at: ChainAt,
    pub(super) rule: usize,
}

impl ChainAt {
    /// The chain in `rules` (which must be the rule set, or a copy of the
    /// one, the place was found in).
    pub(super) fn get(self, rules: &RuleSet) -> Option<&Chain> {
        rules.tables.get(self.table)?.chains.get(self.chain)
    }

    /// The chain, mutably.
    pub(super) fn get_mut(self, rules: &mut RuleSet) -> Option<&mut Chain> {
        rules.tables.get_mut(self.table)?.chains.get_mut(self.chain)
    }

    /// `nat KUBE-SVC-X`.
    pub(super) fn describe(self, rules: &RuleSet) -> String {
        match (rules.tables.get(self.table), self.get(rules)) {
            (Some(t), Some(c)) => format!("{} {}", t.name, c.name),
            _ => "?".into(),
        }
    }
}

impl RuleAt {
    /// The rule in `rules`.
    pub(super) fn get(self, rules: &RuleSet) -> Option<&Rule> {
        self.at.get(rules)?.rules.get(self.rule)
    }

    /// The rule, mutably.
    pub(super) fn get_mut(self, rules: &mut RuleSet) -> Option<&mut Rule> {
        self.at.get_mut(rules)?.rules.get_mut(self.rule)
    }

    /// Removes the rule; whether it was there.
    pub(super) fn remove(self, rules: &mut RuleSet) -> bool {
        match self.at.get_mut(rules) {
            Some(c) if self.rule < c.rules.len() => {
                c.rules.remove(self.rule);
                true
            }
            _ => false,
        }
    }

    /// `nat KUBE-SVC-X, line 57` (the rule's line in the original dump).
    pub(super) fn describe(self, rules: &RuleSet) -> String {
        let chain = self.at.describe(rules);
        match self.get(rules) {
            Some(r) if r.span.line > 0 => format!("{chain}, line {}", r.span.line),
            Some(_) => format!("{chain}, rule {}", self.rule + 1),
            None => chain,
        }
    }
}

/// One variant per place, at most [`MAX_PLACES`]: `edit` changes a copy of
/// `rules` at the place and says whether it changed anything.
pub(super) fn variants<P: Copy>(
    rules: &RuleSet,
    places: impl IntoIterator<Item = P>,
    describe: impl Fn(&RuleSet, P) -> String,
    edit: impl Fn(&mut RuleSet, P) -> bool,
) -> Vec<Mutation> {
    let mut out = Vec::new();
    for place in places {
        if out.len() == MAX_PLACES {
            break;
        }
        let mut copy = rules.clone();
        if edit(&mut copy, place) && copy != *rules {
            out.push(Mutation {
                place: describe(rules, place),
                rules: copy,
            });
        }
    }
    out
}

/// [`variants`] over chains.
pub(super) fn per_chain(
    rules: &RuleSet,
    places: Vec<ChainAt>,
    edit: impl Fn(&mut Chain) -> bool,
) -> Vec<Mutation> {
    variants(
        rules,
        places,
        |r, at| at.describe(r),
        |r, at| at.get_mut(r).is_some_and(&edit),
    )
}

/// [`variants`] over rules.
pub(super) fn per_rule(
    rules: &RuleSet,
    places: Vec<RuleAt>,
    edit: impl Fn(&mut Rule) -> bool,
) -> Vec<Mutation> {
    variants(
        rules,
        places,
        |r, at| at.describe(r),
        |r, at| at.get_mut(r).is_some_and(&edit),
    )
}

/// [`variants`] that remove one rule each.
pub(super) fn removing(rules: &RuleSet, places: Vec<RuleAt>) -> Vec<Mutation> {
    variants(rules, places, |r, at| at.describe(r), |r, at| at.remove(r))
}

/// The chains of table `table` that satisfy `keep`, in order.
pub(super) fn chains(
    rules: &RuleSet,
    table: TableName,
    keep: impl Fn(&Chain) -> bool,
) -> Vec<ChainAt> {
    let mut out = Vec::new();
    for (t, tb) in rules.tables.iter().enumerate() {
        if tb.name != table {
            continue;
        }
        for (c, chain) in tb.chains.iter().enumerate() {
            if keep(chain) {
                out.push(ChainAt { table: t, chain: c });
            }
        }
    }
    out
}

/// The rules of table `table` for which `keep(chain, rule)` holds, in order.
pub(super) fn rules_where(
    rules: &RuleSet,
    table: TableName,
    keep: impl Fn(&Chain, &Rule) -> bool,
) -> Vec<RuleAt> {
    let mut out = Vec::new();
    for at in chains(rules, table, |_| true) {
        let Some(chain) = at.get(rules) else { continue };
        for (i, rule) in chain.rules.iter().enumerate() {
            if keep(chain, rule) {
                out.push(RuleAt { at, rule: i });
            }
        }
    }
    out
}

/// The chain `name` of the first table `table`.
pub(super) fn chain_named<'a>(
    rules: &'a RuleSet,
    table: TableName,
    name: &str,
) -> Option<&'a Chain> {
    rules.table(table)?.chain_by_name(name)
}

/// Whether the chain's name starts with one of `prefixes`.
pub(super) fn named(chain: &Chain, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| chain.name.as_str().starts_with(p))
}

/// The user chain a rule jumps or goes to, if any.
pub(super) fn target_chain(rule: &Rule) -> Option<&str> {
    match rule.jump_target() {
        Some(ChainName::User(name)) => Some(name),
        _ => None,
    }
}

/// Whether the rule jumps or goes to a chain whose name starts with `prefix`.
pub(super) fn jumps_to(rule: &Rule, prefix: &str) -> bool {
    target_chain(rule).is_some_and(|t| t.starts_with(prefix))
}

/// A session-affinity check: `-m recent --rcheck` (or `--update`).
pub(super) fn is_affinity_check(rule: &Rule) -> bool {
    rule.matches.iter().any(|m| {
        matches!(m, Match::Recent(r) if !r.negated
            && matches!(r.action, RecentAction::Rcheck | RecentAction::Update))
    })
}

/// An endpoint dispatch rule: a jump to a KUBE-SEP chain that is not an
/// affinity check.
pub(super) fn is_dispatch(rule: &Rule) -> bool {
    jumps_to(rule, "KUBE-SEP-") && !is_affinity_check(rule)
}

/// Indices of a chain's dispatch rules, in order.
pub(super) fn dispatch_rules(chain: &Chain) -> Vec<usize> {
    chain
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| is_dispatch(r))
        .map(|(i, _)| i)
        .collect()
}

/// The KUBE-SEP chains a chain dispatches to.
pub(super) fn dispatch_targets(chain: &Chain) -> BTreeSet<&str> {
    chain
        .rules
        .iter()
        .filter(|r| is_dispatch(r))
        .filter_map(target_chain)
        .collect()
}

/// The rule's `-m statistic --mode random` probability, mutably.
pub(super) fn probability_mut(rule: &mut Rule) -> Option<&mut Probability> {
    rule.matches.iter_mut().find_map(|m| match m {
        Match::Statistic(Neg {
            negated: false,
            value: Statistic::Random(p),
        }) => Some(p),
        _ => None,
    })
}

/// Sets the rule's statistic probability to `p` (as iptables-save would
/// print it back); whether the kernel value changed.
pub(super) fn set_probability(rule: &mut Rule, p: &Probability) -> bool {
    let saved = saved(p);
    match probability_mut(rule) {
        Some(old) if old.kernel_units() != saved.kernel_units() => {
            *old = saved;
            true
        }
        _ => false,
    }
}

/// `p` as iptables-save prints it once the kernel has it: `k / 2^31` with
/// 11 decimals, the spelling of every other probability in a dump.
pub(super) fn saved(p: &Probability) -> Probability {
    Probability::parse(&p.save_spelling()).unwrap_or_else(|_| p.clone())
}

/// Whether the rule has `-m addrtype --src-type LOCAL`.
pub(super) fn from_local(rule: &Rule) -> bool {
    rule.matches.iter().any(|m| {
        matches!(m, Match::AddrType { src_type: Some(t), .. }
            if !t.negated && t.value.contains(&AddrType::Local))
    })
}

/// Every `-j`/`-g` target of a table's chain, for finding who jumps where.
pub(super) fn parents<'a>(
    rules: &'a RuleSet,
    at: ChainAt,
) -> impl Iterator<Item = &'a ChainName> + 'a {
    let name = at.get(rules).map(|c| c.name.as_str()).unwrap_or_default();
    rules
        .tables
        .get(at.table)
        .into_iter()
        .flat_map(|t| &t.chains)
        .filter(move |c| c.rules.iter().any(|r| target_chain(r) == Some(name)))
        .map(|c| &c.name)
}
