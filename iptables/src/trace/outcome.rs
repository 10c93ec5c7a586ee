//! What a trace produces: outcomes with exact probabilities and the walk
//! that led to each, and their compact one-line rendering.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::mass::Mass;

use crate::model::{BuiltinChain, ChainName, MarkOp, Policy, TableName};
use crate::source::Span;

use super::recent::RecentState;
use super::Verdict;

/// Every way a packet can go, with its probability (they sum to exactly 1).
#[derive(Debug, Clone, Default)]
pub struct Distribution {
    /// The outcomes in exploration order (a statistic rule's matching branch
    /// before its falling-through one).
    pub outcomes: Vec<Outcome>,
}

/// One path: where its mass ends and how it got there.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Accepted, dropped or rejected.
    pub verdict: Verdict,
    /// The destination after DNAT (the original one if there was none).
    pub destination: SocketAddr,
    /// Whether a MASQUERADE or SNAT target applied.
    pub masquerade: bool,
    /// The exact probability of this path.
    pub probability: Mass,
    /// The rules that did something, in order. Paths that forked from
    /// each other share the steps before the fork.
    pub walk: Walk,
    /// The `-m recent` lists after this path, for tracing a next connection.
    pub recent: RecentState,
}

/// A rule (or a chain policy, the end of a user chain, or the routing
/// decision) that acted on the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The table. For the routing decision after PREROUTING
    /// ([`Action::Martian`]), `nat`: the last table the packet met.
    pub table: TableName,
    /// The hook being traversed.
    pub hook: BuiltinChain,
    /// The chain the rule is in (the chain that ended, for
    /// [`Action::FallOff`]; the hook's chain for [`Action::Martian`]).
    pub chain: ChainName,
    /// Index of the rule in its chain; `None` for the chain's policy, the
    /// end of a user chain and the routing decision.
    pub rule: Option<usize>,
    /// Source line of the rule (of the chain declaration for a policy; 0
    /// for the end of a chain and the routing decision).
    pub line: u32,
    /// The whole rule in the source: for a command continued over several
    /// lines with `\`, all of them (the chain declaration for a policy;
    /// empty for the end of a chain and the routing decision).
    pub span: Span,
    /// How many user chains deep the chain is (0 = the built-in chain).
    pub depth: usize,
    /// What happened.
    pub action: Action,
}

/// What a [`Step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// `-j CHAIN`.
    Jump(ChainName),
    /// `-g CHAIN`.
    Goto(ChainName),
    /// `-j RETURN`.
    Return,
    /// `-j ACCEPT`: the rest of this table's hook is skipped.
    Accept,
    /// `-j DROP`.
    Drop,
    /// `-j REJECT`.
    Reject,
    /// A built-in chain's DROP policy (ACCEPT policies are not recorded).
    Policy(Policy),
    /// The packet fell off the end of a user chain and returns to the rule
    /// after the one that called it.
    FallOff,
    /// The routing decision after PREROUTING dropped a packet from the
    /// network to this loopback address (a "martian destination": the
    /// incoming interface does not have `route_localnet`).
    Martian(IpAddr),
    /// `-j DNAT`, to this address.
    Dnat(SocketAddr),
    /// `-j REDIRECT`, to this address.
    Redirect(SocketAddr),
    /// `-j SNAT`, from this address.
    Snat(IpAddr),
    /// `-j MASQUERADE`, from this address.
    Masquerade(IpAddr),
    /// `-j MARK`: the operation and the mark after it.
    Mark {
        /// The operation.
        op: MarkOp,
        /// The packet mark afterwards.
        mark: u32,
    },
    /// `-j LOG`.
    Log,
    /// A target the suite does not model, treated as non-terminating (a
    /// warning: the real target may do more).
    Unknown(String),
    /// The rule matched but has no target.
    Matched,
    /// A `-m statistic --mode random` branch: whether this path took the
    /// rule, and with what probability.
    Statistic {
        /// `true` on the matching branch.
        taken: bool,
        /// The branch's probability.
        probability: Mass,
    },
}

impl Action {
    /// Whether the step changed the packet or ended something (as opposed to
    /// control flow and bookkeeping); the compact walk shows only these.
    pub fn is_effect(&self) -> bool {
        !matches!(
            self,
            Action::Jump(_)
                | Action::Goto(_)
                | Action::Return
                | Action::FallOff
                | Action::Matched
                | Action::Statistic { .. }
        )
    }
}

impl Action {
    /// Whether the action ends the table's traversal of the hook.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Action::Accept
                | Action::Drop
                | Action::Reject
                | Action::Policy(_)
                | Action::Martian(_)
                | Action::Dnat(_)
                | Action::Redirect(_)
                | Action::Snat(_)
                | Action::Masquerade(_)
        )
    }
}

/// `DNAT 10.64.2.4:80`, `MARK=0x4000`, `DROP`, ...
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Jump(c) => write!(f, "-j {c}"),
            Action::Goto(c) => write!(f, "-g {c}"),
            Action::Return => f.write_str("RETURN"),
            Action::Accept => f.write_str("ACCEPT"),
            Action::Drop => f.write_str("DROP"),
            Action::Reject => f.write_str("REJECT"),
            Action::Policy(Policy::Drop) => f.write_str("policy DROP"),
            Action::Policy(Policy::Accept) => f.write_str("policy ACCEPT"),
            Action::FallOff => f.write_str("(end, return)"),
            Action::Martian(ip) => write!(
                f,
                "DROP martian destination {ip} (route_localnet=0 on {})",
                super::packet::EXTERNAL_IFACE
            ),
            Action::Dnat(a) => write!(f, "DNAT {a}"),
            Action::Redirect(a) => write!(f, "REDIRECT {a}"),
            Action::Snat(a) => write!(f, "SNAT {a}"),
            Action::Masquerade(a) => write!(f, "MASQUERADE {a}"),
            Action::Mark { mark, .. } => write!(f, "MARK={mark:#x}"),
            Action::Log => f.write_str("LOG"),
            Action::Unknown(name) => write!(f, "{name} (not modelled)"),
            Action::Matched => f.write_str("matched"),
            Action::Statistic { taken, probability } => write!(
                f,
                "statistic {} p={}",
                if *taken { "taken" } else { "not taken" },
                format_probability(probability)
            ),
        }
    }
}

impl Distribution {
    /// The sum of all outcomes' probabilities (exactly 1 for a full trace).
    pub fn total(&self) -> Mass {
        self.outcomes.iter().map(|o| &o.probability).sum()
    }

    /// Probabilities summed per (verdict, destination, masquerade).
    pub fn summary(&self) -> BTreeMap<(Verdict, SocketAddr, bool), Mass> {
        let mut out: BTreeMap<_, Mass> = BTreeMap::new();
        for o in &self.outcomes {
            *out.entry((o.verdict, o.destination, o.masquerade))
                .or_default() += &o.probability;
        }
        out
    }

    /// The accepted mass per destination.
    pub fn accepted(&self) -> BTreeMap<SocketAddr, Mass> {
        let mut out: BTreeMap<_, Mass> = BTreeMap::new();
        for o in self
            .outcomes
            .iter()
            .filter(|o| o.verdict == Verdict::Accept)
        {
            *out.entry(o.destination).or_default() += &o.probability;
        }
        out
    }

    /// The mass per verdict.
    pub fn verdicts(&self) -> BTreeMap<Verdict, Mass> {
        let mut out: BTreeMap<_, Mass> = BTreeMap::new();
        for o in &self.outcomes {
            *out.entry(o.verdict).or_default() += &o.probability;
        }
        out
    }
}

/// One outcome per line.
impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.outcomes {
            writeln!(f, "{o}")?;
        }
        Ok(())
    }
}

impl Outcome {
    /// Whether a DNAT or REDIRECT target applied on this path.
    pub fn dnated(&self) -> bool {
        self.walk.items_rev().any(|i| {
            matches!(i, WalkItem::Step(s) if matches!(s.action, Action::Dnat(_) | Action::Redirect(_)))
        })
    }

    /// Steps for targets the suite does not model (lax-mode rule sets).
    pub fn warnings(&self) -> impl Iterator<Item = &Step> {
        self.walk.items().into_iter().filter_map(|i| match i {
            WalkItem::Step(s) if matches!(s.action, Action::Unknown(_)) => Some(s),
            _ => None,
        })
    }

    /// The compact walk without the probability, e.g.
    /// `nat PREROUTING > KUBE-SERVICES > KUBE-SVC-X > KUBE-SEP-Y > DNAT 10.64.2.4:80 | accept`.
    ///
    /// Chains that did nothing are left out, except in the nat table of a
    /// path that is dropped or rejected: there the whole nat walk is shown,
    /// since which service chain the packet reached (and that it fell off
    /// its end, `KUBE-EXT-X (end, return)`, without a DNAT) is usually why
    /// the filter table then refused it.
    pub fn path(&self) -> String {
        let full_nat = matches!(self.verdict, Verdict::Drop | Verdict::Reject);
        let mut segments = Vec::new();
        // Statistic rules are never shown here (they neither act nor
        // jump), so runs of them not taken are skipped whole.
        let walk: Vec<&Step> = self
            .walk
            .items()
            .into_iter()
            .filter_map(|i| match i {
                WalkItem::Step(s) => Some(s),
                WalkItem::NotTaken { .. } => None,
            })
            .collect();
        let mut rest = &walk[..];
        while let Some(first) = rest.first() {
            if let Action::Martian(_) = first.action {
                segments.push(format!("routing > {}", first.action));
                rest = &rest[1..];
                continue;
            }
            let len = rest
                .iter()
                .take_while(|s| {
                    s.table == first.table
                        && s.hook == first.hook
                        && !matches!(s.action, Action::Martian(_))
                })
                .count();
            let (segment, tail) = rest.split_at(len);
            rest = tail;
            let mut pos = 0;
            let all = full_nat && first.table == TableName::Nat;
            let body = render_level(segment, &mut pos, 0, all);
            if !body.tokens.is_empty() {
                segments.push(format!(
                    "{} {} > {}",
                    first.table,
                    first.hook.as_str(),
                    body.tokens.join(" > ")
                ));
            }
        }
        if self.verdict == Verdict::Accept {
            segments.push("accept".to_string());
        }
        segments.join(" | ")
    }
}

/// `nat PREROUTING > KUBE-SERVICES > ... > DNAT 10.64.2.4:80 | accept  p=0.5`.
///
/// Chains that were entered and left without doing anything are left out
/// (but see [`Outcome::path`] for dropped and rejected paths); a chain that
/// did something and returned is shown in parentheses, e.g.
/// `KUBE-EXT-X > (KUBE-MARK-MASQ > MARK=0x4000) > KUBE-SVC-X > ...`.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  p={}",
            self.path(),
            format_probability(&self.probability)
        )
    }
}

struct Level {
    tokens: Vec<String>,
    has_effect: bool,
    /// The invocation ended the hook (or the walk) rather than returning.
    terminal: bool,
    /// The invocation ended by falling off the end of its chain.
    fell_off: bool,
    /// The last token is a parenthesized chain invocation that returned
    /// (only tracked when every chain is shown).
    trailing_group: bool,
}

/// Renders the steps of one chain invocation at `depth`, starting at
/// `steps[*pos]`, until the walk leaves that depth. With `all`, chains that
/// did nothing are shown too, an idle one that fell off its end as
/// `CHAIN (end, return)`, and an invocation that returned as the last thing
/// its caller did is not parenthesized.
fn render_level(steps: &[&Step], pos: &mut usize, depth: usize, all: bool) -> Level {
    let mut level = Level {
        tokens: Vec::new(),
        has_effect: false,
        terminal: false,
        fell_off: false,
        trailing_group: false,
    };
    while let Some(step) = steps.get(*pos) {
        if step.depth < depth {
            break;
        }
        *pos += 1;
        match &step.action {
            Action::Jump(chain) | Action::Goto(chain) => {
                // A goto replaces the current chain: what follows at this
                // depth is the new chain's.
                let inner_depth = match step.action {
                    Action::Goto(_) => step.depth,
                    _ => step.depth + 1,
                };
                let inner = render_level(steps, pos, inner_depth, all);
                if !inner.has_effect && !all {
                    continue;
                }
                let name = if inner.tokens.is_empty() && inner.fell_off {
                    format!("{chain} {}", Action::FallOff)
                } else {
                    chain.to_string()
                };
                level.has_effect |= inner.has_effect;
                if inner_depth == step.depth {
                    // The goto's chain continues this invocation.
                    level.terminal |= inner.terminal;
                    level.fell_off |= inner.fell_off;
                    level.trailing_group = inner.trailing_group;
                    level.tokens.push(name);
                    level.tokens.extend(inner.tokens);
                } else {
                    let mut tokens = vec![name];
                    tokens.extend(inner.tokens);
                    let joined = tokens.join(" > ");
                    if inner.terminal {
                        level.terminal = true;
                        level.trailing_group = false;
                        level.tokens.push(joined);
                    } else {
                        level.trailing_group = all;
                        level.tokens.push(format!("({joined})"));
                    }
                }
            }
            Action::FallOff if step.depth == depth => level.fell_off = true,
            Action::Return if all => {
                level.trailing_group = false;
                level.tokens.push(step.action.to_string());
            }
            action if action.is_effect() => {
                level.has_effect = true;
                level.terminal |= action.is_terminal();
                level.trailing_group = false;
                level.tokens.push(action.to_string());
            }
            _ => {}
        }
    }
    if level.trailing_group {
        // The last thing this invocation did was call a chain that
        // returned: no parentheses needed to show where the caller resumes.
        if let Some(last) = level.tokens.last_mut() {
            *last = last[1..last.len() - 1].to_string();
        }
        level.trailing_group = false;
    }
    level
}

/// Formats a probability as a plain decimal with at most 12 significant
/// digits (rounded half to even), without trailing zeros: `0.5`,
/// `0.333333333489`, `1`. The same as [`Mass`]'s `Display`.
pub fn format_probability(p: &Mass) -> String {
    p.to_string()
}

/// An outcome's walk: a persistent list of steps. Every statistic fork
/// continues two paths from the same steps, so they share them instead of
/// copying (copying makes `n` endpoints cost `n^2` steps); cloning a walk
/// is O(1).
///
/// A run of `-m statistic` rules not taken in one chain invocation is also
/// reachable as a whole ([`Walk::items`]): path `i` of an `n`-endpoint
/// service fell through `i - 1` of them, and the compact renderings skip
/// the run in one step instead of visiting each.
#[derive(Clone, Default)]
pub struct Walk {
    last: Option<Arc<Node>>,
    len: usize,
}

struct Node {
    step: Step,
    prev: Option<Arc<Node>>,
    /// For a statistic rule not taken: how many such steps, this one
    /// included, end here in the same chain invocation (0 otherwise).
    run: usize,
    /// The run's first step, when that is not this one (an ancestor along
    /// `prev`, so this never keeps anything alive on its own).
    run_first: Option<Arc<Node>>,
}

/// A step of a walk, or a run of statistic rules not taken in one chain
/// invocation (see [`Walk::items`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkItem<'a> {
    /// Any other step.
    Step(&'a Step),
    /// `count` consecutive statistic rules not taken, from `first` to `last`.
    NotTaken {
        /// The first rule of the run.
        first: &'a Step,
        /// The last rule of the run.
        last: &'a Step,
        /// How many.
        count: usize,
    },
}

fn not_taken(step: &Step) -> bool {
    matches!(step.action, Action::Statistic { taken: false, .. })
}

impl Walk {
    /// No steps.
    pub fn new() -> Walk {
        Walk::default()
    }

    /// Adds a step at the end (other walks sharing the steps before it are
    /// not affected).
    pub fn push(&mut self, step: Step) {
        let prev = self.last.take();
        let (run, run_first) = match prev.as_deref() {
            _ if !not_taken(&step) => (0, None),
            Some(p)
                if p.run > 0
                    && p.step.table == step.table
                    && p.step.hook == step.hook
                    && p.step.depth == step.depth
                    && p.step.chain == step.chain =>
            {
                let first = p.run_first.clone().or_else(|| prev.clone());
                (p.run + 1, first)
            }
            _ => (1, None),
        };
        self.last = Some(Arc::new(Node {
            step,
            prev,
            run,
            run_first,
        }));
        self.len += 1;
    }

    /// How many steps.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last step.
    pub fn last(&self) -> Option<&Step> {
        self.last.as_deref().map(|n| &n.step)
    }

    /// The steps from the last to the first, without allocating.
    pub fn iter_rev(&self) -> impl Iterator<Item = &Step> {
        std::iter::successors(self.last.as_deref(), |n| n.prev.as_deref()).map(|n| &n.step)
    }

    /// The steps in order.
    pub fn iter(&self) -> std::vec::IntoIter<&Step> {
        self.to_vec().into_iter()
    }

    /// The steps in order, as references.
    pub fn to_vec(&self) -> Vec<&Step> {
        let mut steps: Vec<&Step> = Vec::with_capacity(self.len);
        steps.extend(self.iter_rev());
        steps.reverse();
        steps
    }

    /// The items from the last to the first: each run of statistic rules
    /// not taken is one item, reached in one step.
    pub fn items_rev(&self) -> impl Iterator<Item = WalkItem<'_>> {
        let mut at = self.last.as_deref();
        std::iter::from_fn(move || {
            let node = at?;
            if node.run == 0 {
                at = node.prev.as_deref();
                return Some(WalkItem::Step(&node.step));
            }
            let first = node.run_first.as_deref().unwrap_or(node);
            at = first.prev.as_deref();
            Some(WalkItem::NotTaken {
                first: &first.step,
                last: &node.step,
                count: node.run,
            })
        })
    }

    /// The items in order: the steps, with each run of statistic rules not
    /// taken in one chain invocation as one item. Costs the number of
    /// items, not of steps.
    pub fn items(&self) -> Vec<WalkItem<'_>> {
        let mut items: Vec<WalkItem<'_>> = self.items_rev().collect();
        items.reverse();
        items
    }

    /// The `i`th step.
    pub fn get(&self, i: usize) -> Option<&Step> {
        let from_end = self.len.checked_sub(i + 1)?;
        self.iter_rev().nth(from_end)
    }
}

impl Drop for Walk {
    /// Iteratively: the default recursive drop of a walk through thousands
    /// of statistic rules would overflow the stack.
    fn drop(&mut self) {
        let mut next = self.last.take();
        while let Some(node) = next {
            match Arc::try_unwrap(node) {
                // `run_first` is an ancestor still reachable from `prev`:
                // dropping it here never frees anything.
                Ok(mut node) => next = node.prev.take(),
                // Shared with another walk, which drops it later.
                Err(_) => break,
            }
        }
    }
}

impl From<Vec<Step>> for Walk {
    fn from(steps: Vec<Step>) -> Walk {
        steps.into_iter().collect()
    }
}

impl FromIterator<Step> for Walk {
    fn from_iter<I: IntoIterator<Item = Step>>(iter: I) -> Walk {
        let mut walk = Walk::new();
        for step in iter {
            walk.push(step);
        }
        walk
    }
}

impl<'a> IntoIterator for &'a Walk {
    type Item = &'a Step;
    type IntoIter = std::vec::IntoIter<&'a Step>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for Walk {
    fn eq(&self, other: &Walk) -> bool {
        self.len == other.len && self.iter_rev().eq(other.iter_rev())
    }
}

impl Eq for Walk {}

impl fmt::Debug for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl std::ops::Index<usize> for Walk {
    type Output = Step;
    /// Like a slice's: panics when `i` is out of range.
    fn index(&self, i: usize) -> &Step {
        match self.get(i) {
            Some(step) => step,
            None => panic!("walk index {i} out of range for length {}", self.len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Mass {
        Mass::from_str(s).unwrap()
    }

    #[test]
    fn probabilities_print_as_short_decimals() {
        assert_eq!(format_probability(&dec("0.5000000000000")), "0.5");
        assert_eq!(format_probability(&dec("1")), "1");
        assert_eq!(format_probability(&dec("0")), "0");
        assert_eq!(
            format_probability(&crate::probability::kernel_fraction(715827883)),
            "0.333333333489"
        );
        assert_eq!(format_probability(&dec("0.99999999999999")), "1");
        assert_eq!(format_probability(&dec("0.0000001")), "0.0000001");
    }

    fn step(depth: usize, hook: BuiltinChain, chain: &str, action: Action) -> Step {
        Step {
            table: TableName::Nat,
            hook,
            chain: ChainName::new(chain),
            rule: Some(0),
            line: 1,
            span: Span::default(),
            depth,
            action,
        }
    }

    #[test]
    fn compact_walk_elides_idle_chains_and_brackets_side_trips() {
        use BuiltinChain::{Postrouting, Prerouting};
        let user = |s: &str| ChainName::new(s);
        let o = Outcome {
            verdict: Verdict::Accept,
            destination: "10.64.1.5:8080".parse().unwrap(),
            masquerade: true,
            probability: dec("0.5"),
            walk: Walk::from(vec![
                step(
                    0,
                    Prerouting,
                    "PREROUTING",
                    Action::Jump(user("KUBE-SERVICES")),
                ),
                step(
                    1,
                    Prerouting,
                    "KUBE-SERVICES",
                    Action::Jump(user("KUBE-EXT-X")),
                ),
                step(
                    2,
                    Prerouting,
                    "KUBE-EXT-X",
                    Action::Jump(user("KUBE-MARK-MASQ")),
                ),
                step(
                    3,
                    Prerouting,
                    "KUBE-MARK-MASQ",
                    Action::Mark {
                        op: MarkOp {
                            value: 0x4000,
                            mask: 0x4000,
                        },
                        mark: 0x4000,
                    },
                ),
                step(2, Prerouting, "KUBE-EXT-X", Action::Jump(user("KUBE-IDLE"))),
                step(3, Prerouting, "KUBE-IDLE", Action::Return),
                step(
                    2,
                    Prerouting,
                    "KUBE-EXT-X",
                    Action::Jump(user("KUBE-SVC-X")),
                ),
                step(
                    3,
                    Prerouting,
                    "KUBE-SVC-X",
                    Action::Statistic {
                        taken: true,
                        probability: dec("0.5"),
                    },
                ),
                step(
                    3,
                    Prerouting,
                    "KUBE-SVC-X",
                    Action::Jump(user("KUBE-SEP-Y")),
                ),
                step(
                    4,
                    Prerouting,
                    "KUBE-SEP-Y",
                    Action::Dnat("10.64.1.5:8080".parse().unwrap()),
                ),
                step(
                    0,
                    Postrouting,
                    "POSTROUTING",
                    Action::Jump(user("KUBE-POSTROUTING")),
                ),
                step(
                    1,
                    Postrouting,
                    "KUBE-POSTROUTING",
                    Action::Masquerade("192.168.0.10".parse().unwrap()),
                ),
            ]),
            recent: RecentState::new(),
        };
        assert_eq!(
            o.to_string(),
            "nat PREROUTING > KUBE-SERVICES > KUBE-EXT-X > (KUBE-MARK-MASQ > MARK=0x4000) > KUBE-SVC-X > \
             KUBE-SEP-Y > DNAT 10.64.1.5:8080 | nat POSTROUTING > KUBE-POSTROUTING > MASQUERADE 192.168.0.10 \
             | accept  p=0.5"
        );
        assert!(o.dnated());
    }

    fn not_taken_step(chain: &str, line: u32) -> Step {
        let mut s = step(
            1,
            BuiltinChain::Prerouting,
            chain,
            Action::Statistic {
                taken: false,
                probability: dec("0.5"),
            },
        );
        s.line = line;
        s
    }

    #[test]
    fn walks_share_prefixes_and_skip_runs_of_statistic_rules_not_taken() {
        let jump = step(
            0,
            BuiltinChain::Prerouting,
            "PREROUTING",
            Action::Jump(ChainName::new("KUBE-SVC-X")),
        );
        let mut walk = Walk::new();
        walk.push(jump.clone());
        let mut forks = Vec::new();
        for line in 10..15 {
            forks.push(walk.clone());
            walk.push(not_taken_step("KUBE-SVC-X", line));
        }
        walk.push(not_taken_step("KUBE-SVC-Y", 20));
        let dnat = step(
            1,
            BuiltinChain::Prerouting,
            "KUBE-SVC-Y",
            Action::Dnat("10.64.0.1:80".parse().unwrap()),
        );
        walk.push(dnat.clone());
        assert_eq!(walk.len(), 8);
        assert_eq!(walk.get(0), Some(&jump));
        assert_eq!(walk.last(), Some(&dnat));
        assert_eq!(walk.to_vec().len(), 8);
        assert_eq!(walk.iter_rev().count(), 8);
        let items = walk.items();
        assert_eq!(items.len(), 4, "{items:?}");
        assert_eq!(items[0], WalkItem::Step(&jump));
        match items[1] {
            WalkItem::NotTaken { first, last, count } => {
                assert_eq!((first.line, last.line, count), (10, 14, 5));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(items[2], WalkItem::NotTaken { count: 1, .. }));
        assert_eq!(items[3], WalkItem::Step(&dnat));
        // The forks kept their own (shorter) walks.
        assert_eq!(forks[2].len(), 3);
        assert!(matches!(
            forks[2].items()[1],
            WalkItem::NotTaken { count: 2, .. }
        ));
        assert_eq!(
            Walk::from(walk.to_vec().into_iter().cloned().collect::<Vec<_>>()),
            walk
        );
    }

    #[test]
    fn a_very_long_walk_drops_without_recursion() {
        let mut walk = Walk::new();
        for line in 0..1_000_000 {
            walk.push(not_taken_step("KUBE-SVC-X", line));
        }
        let shared = walk.clone();
        drop(walk);
        assert_eq!(shared.items().len(), 1);
        drop(shared);
    }

    #[test]
    fn summary_groups_and_sums() {
        let mk = |v, d: &str, p: &str| Outcome {
            verdict: v,
            destination: d.parse().unwrap(),
            masquerade: false,
            probability: dec(p),
            walk: Walk::new(),
            recent: RecentState::new(),
        };
        let d = Distribution {
            outcomes: vec![
                mk(Verdict::Accept, "10.0.0.1:80", "0.25"),
                mk(Verdict::Drop, "10.0.0.1:80", "0.25"),
                mk(Verdict::Accept, "10.0.0.1:80", "0.25"),
                mk(Verdict::Accept, "10.0.0.2:80", "0.25"),
            ],
        };
        assert_eq!(d.total(), dec("1"));
        let s = d.summary();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[&(Verdict::Accept, "10.0.0.1:80".parse().unwrap(), false)],
            dec("0.5")
        );
        assert_eq!(d.accepted().len(), 2);
        assert_eq!(d.verdicts()[&Verdict::Drop], dec("0.25"));
    }
}
