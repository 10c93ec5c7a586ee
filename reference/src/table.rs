//! Tables of typed rules and their iptables-save text.

use std::fmt;

use rustc_hash::FxHashMap;

use crate::rule::Rule;

/// Rules produced by one section writer, with the chains it declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Section {
    /// User chains to declare (even if they stay empty).
    pub(crate) chains: Vec<String>,
    /// Rules by chain in the order written; consecutive rules of one chain
    /// share an entry, so the chain name is stored (and later looked up)
    /// once per run instead of once per rule.
    pub(crate) rules: Vec<(String, Vec<Rule>)>,
}

impl Section {
    /// Declares a user chain.
    pub(crate) fn declare(&mut self, chain: &str) {
        self.chains.push(chain.to_string());
    }

    /// Appends a rule to a chain.
    pub(crate) fn push(&mut self, chain: &str, rule: Rule) {
        match self.rules.last_mut() {
            Some((last, rules)) if last == chain => rules.push(rule),
            _ => self.rules.push((chain.to_string(), vec![rule])),
        }
    }
}

/// The rules of one chain. Most chains belong to one service port and are
/// final when written, so they are printed right away (a 10k-Service node
/// has 400k rules: keeping them typed until the end cost more than making
/// them). Only the chains sorted afterwards keep their typed rules.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rules {
    /// Kept for [`Table::sort_by_comment`].
    Typed(Vec<Rule>),
    /// Printed: `-A CHAIN …` lines, each with its newline.
    Text(String),
}

/// One `*table` block: built-in chains in hook order, then user chains by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    name: &'static str,
    /// Built-in chains first (in hook order), then user chains in the order
    /// first seen; user chains are printed sorted by name.
    chains: Vec<(String, Rules)>,
    builtins: usize,
    /// Position of each chain in `chains`: a hash lookup per section run
    /// instead of a string-compared tree walk per rule. FxHash: the keys
    /// are our own chain names, and SipHash's flood resistance cost more
    /// than the lookups themselves.
    index: FxHashMap<String, usize>,
    /// Chains that keep typed rules, to be sorted once complete.
    sorted: &'static [&'static str],
}

impl Table {
    /// An empty table with these built-in chains (policy ACCEPT); the
    /// chains in `sorted` can be sorted with [`Table::sort_by_comment`].
    pub(crate) fn new(
        name: &'static str,
        builtins: &[&'static str],
        sorted: &'static [&'static str],
    ) -> Table {
        let mut table = Table {
            name,
            chains: Vec::new(),
            builtins: builtins.len(),
            index: FxHashMap::default(),
            sorted,
        };
        for builtin in builtins {
            table.position(builtin);
        }
        table
    }

    fn position(&mut self, chain: &str) -> usize {
        if let Some(&i) = self.index.get(chain) {
            return i;
        }
        let rules = if self.sorted.contains(&chain) {
            Rules::Typed(Vec::new())
        } else {
            Rules::Text(String::new())
        };
        let i = self.chains.len();
        self.chains.push((chain.to_string(), rules));
        self.index.insert(chain.to_string(), i);
        i
    }

    /// Adds a section's declarations and rules (rules append to their chain).
    pub(crate) fn extend(&mut self, section: Section) {
        for chain in section.chains {
            self.position(&chain);
        }
        for (chain, rules) in section.rules {
            let i = self.position(&chain);
            match &mut self.chains[i].1 {
                Rules::Typed(typed) => typed.extend(rules),
                Rules::Text(text) => {
                    // About one line's length per rule: grown once, not by doubling from empty.
                    text.reserve(rules.len() * (chain.len() + 100));
                    for rule in rules {
                        text.push_str("-A ");
                        text.push_str(&chain);
                        text.push(' ');
                        rule.write_to(text);
                        text.push('\n');
                    }
                }
            }
        }
    }

    /// Stably sorts a chain's rules by comment text, keeping the rules whose
    /// comment is `last` at the end: how the recordings order the chains
    /// kube-proxy fills in Go map order. Only chains named as `sorted` in
    /// [`Table::new`] can be sorted; others are left as written.
    pub(crate) fn sort_by_comment(&mut self, chain: &str, last: Option<&str>) {
        fn key<'r>(r: &'r Rule, last: Option<&str>) -> (bool, &'r str) {
            let c = r.comment_text().unwrap_or("");
            (last == Some(c), c)
        }
        let Some(&i) = self.index.get(chain) else {
            return;
        };
        if let Rules::Typed(rules) = &mut self.chains[i].1 {
            rules.sort_by(|a, b| key(a, last).cmp(&key(b, last)));
        }
    }

    /// About how many bytes the table prints (exact for printed chains),
    /// so the output is allocated once.
    pub(crate) fn len_hint(&self) -> usize {
        self.chains
            .iter()
            .map(|(name, rules)| {
                let declaration = name.len() + 16;
                declaration
                    + match rules {
                        Rules::Typed(rules) => rules.len() * (name.len() + 120),
                        Rules::Text(text) => text.len(),
                    }
            })
            .sum::<usize>()
            + 32
    }

    /// The rules of a chain as printed after `-A CHAIN ` (empty if it does
    /// not exist).
    #[cfg(test)]
    pub(crate) fn rules(&self, chain: &str) -> Vec<String> {
        let Some(&i) = self.index.get(chain) else {
            return Vec::new();
        };
        match &self.chains[i].1 {
            Rules::Typed(rules) => rules.iter().map(Rule::to_string).collect(),
            Rules::Text(text) => {
                let prefix = format!("-A {chain} ");
                text.lines()
                    .filter_map(|l| l.strip_prefix(prefix.as_str()))
                    .map(str::to_string)
                    .collect()
            }
        }
    }

    /// Whether a user chain is declared.
    #[cfg(test)]
    pub(crate) fn has_chain(&self, chain: &str) -> bool {
        self.index.get(chain).is_some_and(|&i| i >= self.builtins)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "*{}", self.name)?;
        let (builtins, user) = self.chains.split_at(self.builtins);
        for (name, _) in builtins {
            writeln!(f, ":{name} ACCEPT [0:0]")?;
        }
        // Chain names are unique, so an unstable sort is deterministic.
        let mut user: Vec<&(String, Rules)> = user.iter().collect();
        user.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (name, _) in &user {
            f.write_str(":")?;
            f.write_str(name)?;
            f.write_str(" - [0:0]\n")?;
        }
        let mut line = String::new();
        for (name, rules) in builtins.iter().chain(user) {
            match rules {
                Rules::Typed(rules) => {
                    for rule in rules {
                        line.clear();
                        line.push_str("-A ");
                        line.push_str(name);
                        line.push(' ');
                        rule.write_to(&mut line);
                        line.push('\n');
                        f.write_str(&line)?;
                    }
                }
                Rules::Text(text) => f.write_str(text)?,
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
        let mut t = Table::new("nat", &["PREROUTING", "OUTPUT"], &["KUBE-SERVICES"]);
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
        let mut t = Table::new("nat", &[], &["X"]);
        let mut s = Section::default();
        for (c, target) in [("last", "L"), ("b", "B1"), ("a", "A"), ("b", "B2")] {
            s.push("X", Rule::new().comment(c).jump(target));
            s.push("Y", Rule::new().comment(c).jump(target));
        }
        t.extend(s);
        t.sort_by_comment("X", Some("last"));
        t.sort_by_comment("Y", Some("last"));
        let order = |chain: &str| -> Vec<String> {
            t.rules(chain)
                .iter()
                .filter_map(|r| r.rsplit_once("-j ").map(|(_, j)| j.to_string()))
                .collect()
        };
        assert_eq!(order("X"), ["A", "B1", "B2", "L"]);
        // Not declared sortable: printed as written.
        assert_eq!(order("Y"), ["L", "B1", "A", "B2"]);
        assert!(t.has_chain("X") && !t.has_chain("Z"));
    }
}
