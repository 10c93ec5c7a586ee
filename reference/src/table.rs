//! Tables of typed rules and their iptables-save text.

use std::collections::BTreeMap;
use std::fmt;

use crate::rule::Rule;

/// Rules produced by one section writer, with the chains it declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Section {
    /// User chains to declare (even if they stay empty).
    pub(crate) chains: Vec<String>,
    /// `(chain, rule)` in the order written.
    pub(crate) rules: Vec<(String, Rule)>,
}

impl Section {
    /// Declares a user chain.
    pub(crate) fn declare(&mut self, chain: &str) {
        self.chains.push(chain.to_string());
    }

    /// Appends a rule to a chain.
    pub(crate) fn push(&mut self, chain: &str, rule: Rule) {
        self.rules.push((chain.to_string(), rule));
    }
}

/// One `*table` block: built-in chains in hook order, then user chains by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    name: &'static str,
    builtins: Vec<(&'static str, Vec<Rule>)>,
    chains: BTreeMap<String, Vec<Rule>>,
}

impl Table {
    /// An empty table with these built-in chains (policy ACCEPT).
    pub(crate) fn new(name: &'static str, builtins: &[&'static str]) -> Table {
        Table {
            name,
            builtins: builtins.iter().map(|b| (*b, Vec::new())).collect(),
            chains: BTreeMap::new(),
        }
    }

    fn rules_mut(&mut self, chain: &str) -> &mut Vec<Rule> {
        if let Some(i) = self.builtins.iter().position(|(b, _)| *b == chain) {
            return &mut self.builtins[i].1;
        }
        self.chains.entry(chain.to_string()).or_default()
    }

    /// Adds a section's declarations and rules (rules append to their chain).
    pub(crate) fn extend(&mut self, section: Section) {
        for chain in section.chains {
            self.rules_mut(&chain);
        }
        for (chain, rule) in section.rules {
            self.rules_mut(&chain).push(rule);
        }
    }

    /// Stably sorts a chain's rules by comment text, keeping the rules whose
    /// comment is `last` at the end: how the recordings order the chains
    /// kube-proxy fills in Go map order.
    pub(crate) fn sort_by_comment(&mut self, chain: &str, last: Option<&str>) {
        let Some(rules) = self.chains.get_mut(chain) else {
            return;
        };
        rules.sort_by(|a, b| {
            let key = |r: &Rule| {
                let c = r.comment_text().unwrap_or("");
                (last == Some(c), c.to_string())
            };
            key(a).cmp(&key(b))
        });
    }

    /// The rules of a chain (empty if it does not exist).
    #[cfg(test)]
    pub(crate) fn rules(&self, chain: &str) -> &[Rule] {
        if let Some((_, rules)) = self.builtins.iter().find(|(b, _)| *b == chain) {
            return rules;
        }
        self.chains.get(chain).map_or(&[], Vec::as_slice)
    }

    /// Whether a user chain is declared.
    #[cfg(test)]
    pub(crate) fn has_chain(&self, chain: &str) -> bool {
        self.chains.contains_key(chain)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "*{}", self.name)?;
        for (name, _) in &self.builtins {
            writeln!(f, ":{name} ACCEPT [0:0]")?;
        }
        for name in self.chains.keys() {
            writeln!(f, ":{name} - [0:0]")?;
        }
        let all = self
            .builtins
            .iter()
            .map(|(n, r)| (*n, r))
            .chain(self.chains.iter().map(|(n, r)| (n.as_str(), r)));
        for (name, rules) in all {
            for rule in rules {
                writeln!(f, "-A {name} {rule}")?;
            }
        }
        writeln!(f, "COMMIT")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Target;

    #[test]
    fn declarations_then_rules_grouped_by_chain() {
        let mut t = Table::new("nat", &["PREROUTING", "OUTPUT"]);
        let mut s = Section::default();
        s.declare("KUBE-SVC-B");
        s.push("KUBE-SERVICES", Rule::new().comment("z").jump("KUBE-SVC-B"));
        s.push("OUTPUT", Rule::new().jump("KUBE-SERVICES"));
        s.push(
            "KUBE-SERVICES",
            Rule::new().comment("a").target(Target::Drop),
        );
        t.extend(s);
        assert_eq!(
            t.to_string(),
            "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-B - [0:0]\n\
             -A OUTPUT -j KUBE-SERVICES\n\
             -A KUBE-SERVICES -m comment --comment \"z\" -j KUBE-SVC-B\n\
             -A KUBE-SERVICES -m comment --comment \"a\" -j DROP\nCOMMIT\n"
        );
    }

    #[test]
    fn sort_by_comment_is_stable_and_keeps_last() {
        let mut t = Table::new("nat", &[]);
        let mut s = Section::default();
        for (c, target) in [("last", "L"), ("b", "B1"), ("a", "A"), ("b", "B2")] {
            s.push("X", Rule::new().comment(c).jump(target));
        }
        t.extend(s);
        t.sort_by_comment("X", Some("last"));
        let order: Vec<_> = t
            .rules("X")
            .iter()
            .filter_map(|r| r.jump_target())
            .collect();
        assert_eq!(order, ["A", "B1", "B2", "L"]);
    }
}
