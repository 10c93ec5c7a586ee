//! The walker: follows every branch of a packet through the hooks, table by
//! table, chain by chain, and collects the outcomes.
//!
//! Branches live on an explicit work stack, so neither long chains of
//! statistic rules nor deep jumps grow the Rust call stack. Probability mass
//! is only touched at `-m statistic --mode random` rules.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::mass::Mass;
use crate::model::{
    BuiltinChain, Chain, ChainIndex, ChainName, Family, NatRange, Neg, Policy, Rule, RuleSet,
    Statistic, Table, TableName, Target,
};
use crate::probability::ProbabilityMode;
use crate::source::Span;
use crate::trace::FlowSource;

use super::eval::{eval_rule, Eval};
use super::hooks::Leg;
use super::index::{Scan, TableScan};
use super::outcome::{Action, Distribution, Outcome, Step, Walk};
use super::packet::{NodeAddrs, Packet, PacketState};
use super::recent::RecentState;
use super::Verdict;

/// How many user chains may be nested (the call stack's depth).
pub const MAX_DEPTH: usize = 64;

/// How many outcomes one trace may produce before it gives up.
pub const MAX_PATHS: usize = 100_000;

/// How many rule evaluations one trace may spend before it gives up.
pub const MAX_RULE_EVALUATIONS: u64 = 200_000_000;

/// A reusable tracer for one node's rule set.
///
/// ```
/// # use kpconform_iptables::{Packet, Tracer};
/// # use kpconform_iptables::model::{Protocol, RuleSet};
/// # use kpconform_iptables::FlowSource;
/// let rules = RuleSet::default();
/// let tracer = Tracer::new(&rules, &["192.168.0.10/32".parse().unwrap()]);
/// let packet = Packet::new(FlowSource::Node, "10.96.0.1:443".parse().unwrap(), Protocol::Tcp);
/// let dist = tracer.trace(&packet).unwrap();
/// assert_eq!(dist.outcomes.len(), 1); // no rules: accepted, unchanged
/// ```
#[derive(Debug, Clone)]
pub struct Tracer<'a> {
    tables: Vec<(TableName, TableIndex<'a>)>,
    node: NodeAddrs,
    mode: ProbabilityMode,
    max_paths: usize,
    max_evaluations: u64,
    route_localnet: bool,
    scan: Scan,
}

#[derive(Debug, Clone)]
struct TableIndex<'a> {
    table: &'a Table,
    chains: ChainIndex<'a>,
    /// Where the next rule that can match is, in chains long enough.
    rules: TableScan,
}

/// Why a trace could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TraceError {
    /// What kind of problem.
    pub kind: TraceErrorKind,
    /// The rule that caused it (default when none).
    pub span: Span,
    /// What went wrong, naming chains and lines.
    pub message: String,
}

/// What kind of problem a [`TraceError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceErrorKind {
    /// A jump or goto to a chain already being traversed.
    Loop,
    /// More than [`MAX_DEPTH`] nested chains.
    TooDeep,
    /// A jump or goto to a chain the table does not declare.
    UndeclaredChain,
    /// A jump or goto to a built-in chain.
    BuiltinTarget,
    /// The packet comes from the node (or is REDIRECTed/MASQUERADEd to it)
    /// but the node has no address.
    NoNodeAddress,
    /// More outcomes or rule evaluations than the tracer's limits allow
    /// (by default [`MAX_PATHS`] and [`MAX_RULE_EVALUATIONS`]).
    TooManyPaths,
}

impl TraceError {
    /// Renders the error against the rules' source: `file:line:col`, the
    /// rule, carets.
    pub fn render(&self, file: &crate::source::SourceFile) -> String {
        file.render(self.span, &self.message)
    }
}

/// A chain being traversed; `rule` is the next rule to evaluate.
#[derive(Debug, Clone)]
struct Frame {
    chain: usize,
    rule: usize,
    /// Chains this frame left by `-g`, with the goto rule's index, so that
    /// goto loops are caught too.
    via: Vec<(usize, usize)>,
}

/// One path being followed.
#[derive(Debug, Clone)]
struct Branch {
    pkt: PacketState,
    leg: Leg,
    stage: usize,
    /// The table being traversed at `stage`, with its call stack (empty
    /// between stages).
    frames: Vec<Frame>,
    /// Resume the current rule's matches at this index (after a statistic
    /// fork took the matching side).
    resume: Option<usize>,
    mass: Mass,
    /// Shared with the branches this one forked from or into.
    walk: Walk,
    recent: RecentState,
}

impl<'a> Tracer<'a> {
    /// A tracer for `rules` on a node whose own addresses are `node_addresses`
    /// (the first is the node IP), in kernel probability mode.
    pub fn new(rules: &'a RuleSet, node_addresses: &[IpNet]) -> Tracer<'a> {
        let mut tables: Vec<(TableName, TableIndex<'a>)> = Vec::new();
        for table in &rules.tables {
            // A repeated table is the invariants' business; the first wins,
            // as with RuleSet::table.
            if tables.iter().any(|(n, _)| *n == table.name) {
                continue;
            }
            let chains = table.chain_index();
            let rules = TableScan::new(table, Scan::default());
            tables.push((
                table.name,
                TableIndex {
                    table,
                    chains,
                    rules,
                },
            ));
        }
        Tracer {
            tables,
            node: NodeAddrs::new(node_addresses),
            mode: ProbabilityMode::Kernel,
            max_paths: MAX_PATHS,
            max_evaluations: MAX_RULE_EVALUATIONS,
            route_localnet: true,
            scan: Scan::default(),
        }
    }

    /// The same tracer finding the next rule of a chain as `scan` says:
    /// through an index of long chains ([`Scan::default`]), or by
    /// evaluating every rule in order ([`Scan::Plain`]). Both give the same
    /// distributions; the index makes a trace of a dispatch chain with one
    /// rule per service independent of the number of services. (The rule
    /// evaluation budget counts only rules evaluated, so near
    /// [`Tracer::with_limits`]'s limit a plain scan may give up where an
    /// indexed one does not.)
    pub fn with_scan(mut self, scan: Scan) -> Tracer<'a> {
        if scan != self.scan {
            for (_, t) in &mut self.tables {
                t.rules = TableScan::new(t.table, scan);
            }
            self.scan = scan;
        }
        self
    }

    /// How the next rule of a chain is found.
    pub fn scan(&self) -> Scan {
        self.scan
    }

    /// The same tracer with `net.ipv4.conf.<iface>.route_localnet` set
    /// (`true`, the default) or not on the interface packets from the
    /// network arrive on.
    ///
    /// Without it the kernel's routing decision after PREROUTING
    /// (`ip_route_input_noref`) drops a packet from the network whose
    /// destination — as nat PREROUTING left it — is in `127.0.0.0/8`: a
    /// "martian destination". A packet DNATed away from 127.0.0.1 is routed
    /// normally; node-sent packets, which come back in through `lo`, are not
    /// affected. kube-proxy sets it only when node ports are open on
    /// localhost (see `kpconform_suite::check::route_localnet`); the default
    /// keeps the behaviour for callers that do not know the setting.
    pub fn with_route_localnet(mut self, route_localnet: bool) -> Tracer<'a> {
        self.route_localnet = route_localnet;
        self
    }

    /// Whether packets from the network may be routed to `127.0.0.0/8`.
    pub fn route_localnet(&self) -> bool {
        self.route_localnet
    }

    /// The same tracer with other limits on the number of outcomes and of
    /// rule evaluations (defaults [`MAX_PATHS`], [`MAX_RULE_EVALUATIONS`]).
    pub fn with_limits(mut self, max_paths: usize, max_rule_evaluations: u64) -> Tracer<'a> {
        self.max_paths = max_paths;
        self.max_evaluations = max_rule_evaluations;
        self
    }

    /// The same tracer applying probabilities in `mode`.
    pub fn with_mode(mut self, mode: ProbabilityMode) -> Tracer<'a> {
        self.mode = mode;
        self
    }

    /// The probability mode in use.
    pub fn mode(&self) -> ProbabilityMode {
        self.mode
    }

    /// Traces the first packet of a new connection with no `-m recent` state.
    pub fn trace(&self, packet: &Packet) -> Result<Distribution, TraceError> {
        self.trace_with(packet, &RecentState::new())
    }

    /// Traces a packet that meets existing `-m recent` lists (a later
    /// connection from the same client, for example).
    pub fn trace_with(
        &self,
        packet: &Packet,
        recent: &RecentState,
    ) -> Result<Distribution, TraceError> {
        let mut outcomes = Vec::new();
        self.trace_each(packet, recent, |o| outcomes.push(o))?;
        Ok(Distribution { outcomes })
    }

    /// Traces like [`Tracer::trace_with`], but hands each outcome to
    /// `visit` as soon as its path ends (in the same order as
    /// [`Distribution::outcomes`]) instead of keeping them all, and returns
    /// how many there were.
    ///
    /// Path `i` through an `n`-endpoint service has an exact mass of about
    /// `31·i` bits, so a distribution that keeps every path holds `Θ(n²)`
    /// bits; a caller that only aggregates (as `check` does for a passing
    /// flow) keeps memory linear by dropping each outcome after looking at
    /// it. On an error, `visit` has seen the outcomes before it.
    pub fn trace_each(
        &self,
        packet: &Packet,
        recent: &RecentState,
        mut visit: impl FnMut(Outcome),
    ) -> Result<usize, TraceError> {
        let src = match packet.from {
            FlowSource::Ip(ip) => ip,
            FlowSource::Node => self.node_ip(
                packet.family(),
                Span::default(),
                "a packet sent by the node",
            )?,
        };
        let leg = match packet.from {
            FlowSource::Ip(_) => Leg::Prerouting,
            FlowSource::Node => Leg::LocalOut,
        };
        let mut work = vec![Branch {
            pkt: PacketState::new(src, packet.to),
            leg,
            stage: 0,
            frames: Vec::new(),
            resume: None,
            mass: Mass::one(),
            walk: Walk::new(),
            recent: recent.clone(),
        }];
        let mut count = 0;
        let mut budget = self.max_evaluations;
        while let Some(mut branch) = work.pop() {
            let verdict = self.run(&mut branch, &mut work, &mut budget)?;
            if count >= self.max_paths {
                return Err(self.too_many());
            }
            count += 1;
            visit(Outcome {
                verdict,
                destination: branch.pkt.destination(),
                masquerade: branch.pkt.masquerade,
                probability: branch.mass,
                walk: branch.walk,
                recent: branch.recent,
            });
        }
        Ok(count)
    }

    /// The routing decision after PREROUTING, for a packet from the
    /// network: without `route_localnet`, a destination in 127.0.0.0/8 —
    /// after any DNAT, since routing happens after nat PREROUTING — is
    /// martian and the packet is dropped (the kernel's
    /// `ip_route_input_slow`: `ipv4_is_loopback(daddr) &&
    /// !IN_DEV_NET_ROUTE_LOCALNET` goes to `martian_destination`).
    fn martian(&self, b: &Branch) -> Option<Step> {
        // IPv6 has no route_localnet: the kernel drops a packet from the
        // network to ::1 whatever the settings (ip6_rcv_core).
        let localnet = self.route_localnet && b.pkt.dst.is_ipv4();
        let martian = b.leg == Leg::Prerouting && !localnet && b.pkt.dst.is_loopback();
        martian.then(|| Step {
            table: TableName::Nat,
            hook: BuiltinChain::Prerouting,
            chain: ChainName::Builtin(BuiltinChain::Prerouting),
            rule: None,
            line: 0,
            span: Span::default(),
            depth: 0,
            action: Action::Martian(b.pkt.dst),
        })
    }

    fn table(&self, name: TableName) -> Option<&TableIndex<'a>> {
        self.tables.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// The node's first address of `family`.
    fn node_ip(&self, family: Family, span: Span, what: &str) -> Result<IpAddr, TraceError> {
        self.node.first(family).ok_or_else(|| TraceError {
            kind: TraceErrorKind::NoNodeAddress,
            span,
            message: format!("{what} needs the node's {family} address, but the node has none"),
        })
    }

    /// Follows `b` until it ends, pushing the other side of every statistic
    /// fork onto `work`.
    fn run(
        &self,
        b: &mut Branch,
        work: &mut Vec<Branch>,
        budget: &mut u64,
    ) -> Result<Verdict, TraceError> {
        loop {
            let Some(&(table_name, hook)) = b.leg.stages().get(b.stage) else {
                if let Some(step) = self.martian(b) {
                    b.walk.push(step);
                    return Ok(Verdict::Drop);
                }
                match b.leg.next(&b.pkt, &self.node) {
                    Some(leg) => {
                        b.leg = leg;
                        b.stage = 0;
                        continue;
                    }
                    None => return Ok(Verdict::Accept),
                }
            };
            let Some(index) = self.table(table_name) else {
                b.stage += 1;
                continue;
            };
            if b.frames.is_empty() {
                let Some(builtin) = index.chains.get(hook.as_str()) else {
                    b.stage += 1;
                    continue;
                };
                b.leg.enter(table_name, hook, &mut b.pkt, &self.node);
                b.frames.push(Frame {
                    chain: builtin,
                    rule: 0,
                    via: Vec::new(),
                });
            }
            match self.step(index, table_name, hook, b, work, budget)? {
                Next::Continue => {}
                Next::Stage => {
                    b.frames.clear();
                    b.stage += 1;
                }
                Next::End(v) => return Ok(v),
            }
        }
    }

    /// Evaluates the next rule of the innermost chain (or falls off its end).
    fn step(
        &self,
        index: &TableIndex<'a>,
        table_name: TableName,
        hook: BuiltinChain,
        b: &mut Branch,
        work: &mut Vec<Branch>,
        budget: &mut u64,
    ) -> Result<Next, TraceError> {
        let table = index.table;
        let depth = b.frames.len().saturating_sub(1);
        let Some(frame) = b.frames.last_mut() else {
            return Ok(Next::Stage);
        };
        if b.resume.is_none() {
            // A new rule: skip those that provably cannot match.
            frame.rule = index.rules.next(frame.chain, frame.rule, &b.pkt);
        }
        let chain = &table.chains[frame.chain];
        let rule_index = frame.rule;
        let Some(rule) = chain.rules.get(rule_index) else {
            return Ok(self.fall_off(table, table_name, hook, b));
        };
        *budget = budget.checked_sub(1).ok_or_else(|| self.too_many())?;
        let from = b.resume.take().unwrap_or(0);
        let at = |action| Step {
            table: table_name,
            hook,
            chain: chain.name.clone(),
            rule: Some(rule_index),
            line: rule.span.line,
            span: rule.span,
            depth,
            action,
        };
        match eval_rule(rule, from, &b.pkt, &self.node, &mut b.recent) {
            Eval::NoMatch => {
                advance(b);
                Ok(Next::Continue)
            }
            Eval::Fork {
                index: m,
                statistic,
            } => {
                let p = self.match_probability(statistic);
                if p.is_zero() {
                    advance(b);
                } else if p.is_one() {
                    b.resume = Some(m + 1);
                } else {
                    // p < 1 here: probabilities are parsed within 0..=1.
                    let miss_p = p.complement().unwrap_or_default();
                    // Each side's mass is one product of the parent's, not
                    // a copy then a product: a path's mass is long.
                    let mass = std::mem::take(&mut b.mass);
                    let mut miss = b.clone();
                    miss.mass = &mass * &miss_p;
                    miss.walk.push(at(Action::Statistic {
                        taken: false,
                        probability: miss_p,
                    }));
                    advance(&mut miss);
                    if work.len() >= self.max_paths {
                        return Err(self.too_many());
                    }
                    work.push(miss);
                    b.mass = &mass * &p;
                    b.walk.push(at(Action::Statistic {
                        taken: true,
                        probability: p,
                    }));
                    b.resume = Some(m + 1);
                }
                Ok(Next::Continue)
            }
            Eval::Match => self.apply_target(table, table_name, hook, rule, b, at),
        }
    }

    /// The probability that a random statistic match matches, negation
    /// included (only `1 - p`, never a division).
    fn match_probability(&self, s: &Neg<Statistic>) -> Mass {
        let p = match &s.value {
            Statistic::Random(p) => p.value(self.mode),
            // Nth matches are deterministic and never fork.
            Statistic::Nth { .. } => Mass::zero(),
        };
        if s.negated {
            // Parsed probabilities are within 0..=1.
            p.complement().unwrap_or_default()
        } else {
            p
        }
    }

    fn apply_target(
        &self,
        table: &Table,
        table_name: TableName,
        hook: BuiltinChain,
        rule: &Rule,
        b: &mut Branch,
        at: impl Fn(Action) -> Step,
    ) -> Result<Next, TraceError> {
        let Some(target) = &rule.target else {
            b.walk.push(at(Action::Matched));
            advance(b);
            return Ok(Next::Continue);
        };
        let flow = match target {
            Target::Accept => {
                b.walk.push(at(Action::Accept));
                Next::Stage
            }
            Target::Drop => {
                b.walk.push(at(Action::Drop));
                Next::End(Verdict::Drop)
            }
            Target::Reject { .. } => {
                b.walk.push(at(Action::Reject));
                Next::End(Verdict::Reject)
            }
            Target::Return => {
                b.walk.push(at(Action::Return));
                b.frames.pop();
                if b.frames.is_empty() {
                    // RETURN from a built-in chain applies its policy.
                    return Ok(self.policy(table, table_name, hook, b));
                }
                Next::Continue
            }
            Target::Jump(name) | Target::Goto(name) => {
                let goto = matches!(target, Target::Goto(_));
                let next = self.resolve(table, table_name, name, rule, b)?;
                b.walk.push(at(if goto {
                    Action::Goto(name.clone())
                } else {
                    Action::Jump(name.clone())
                }));
                if goto {
                    if let Some(f) = b.frames.last_mut() {
                        f.via.push((f.chain, f.rule));
                        f.chain = next;
                        f.rule = 0;
                    }
                } else {
                    advance(b);
                    if b.frames.len() >= MAX_DEPTH {
                        return Err(TraceError {
                            kind: TraceErrorKind::TooDeep,
                            span: rule.span,
                            message: format!(
                                "{table_name}: more than {MAX_DEPTH} nested chains at the jump to {name} (line {})",
                                rule.span.line
                            ),
                        });
                    }
                    b.frames.push(Frame {
                        chain: next,
                        rule: 0,
                        via: Vec::new(),
                    });
                }
                Next::Continue
            }
            Target::Dnat(range) => {
                let to = nat_address(range, b.pkt.dport);
                self.rewrite_destination(b, to);
                b.walk.push(at(Action::Dnat(to)));
                Next::Stage
            }
            Target::Redirect { to_ports } => {
                // The kernel redirects locally generated packets to
                // 127.0.0.1 and others to the primary address of the
                // interface they came in on, which for this model's single
                // external interface is the node IP.
                let family = Family::of(b.pkt.dst);
                let ip = if hook == BuiltinChain::Output {
                    family.localhost()
                } else {
                    self.node_ip(family, rule.span, "REDIRECT")?
                };
                let port = to_ports.map_or(b.pkt.dport, |r| r.first);
                let to = SocketAddr::new(ip, port);
                self.rewrite_destination(b, to);
                b.walk.push(at(Action::Redirect(to)));
                Next::Stage
            }
            Target::Snat { to, .. } => {
                b.pkt.src = to.first;
                if let Some(ports) = to.ports {
                    b.pkt.sport = ports.first;
                }
                b.pkt.snat = true;
                b.pkt.masquerade = true;
                b.walk.push(at(Action::Snat(to.first)));
                Next::Stage
            }
            Target::Masquerade { to_ports, .. } => {
                // The address of the interface the packet leaves by.
                let family = Family::of(b.pkt.src);
                let ip = if b.pkt.out_iface == super::packet::LOOPBACK_IFACE {
                    family.localhost()
                } else {
                    self.node_ip(family, rule.span, "MASQUERADE")?
                };
                b.pkt.src = ip;
                if let Some(ports) = to_ports {
                    b.pkt.sport = ports.first;
                }
                b.pkt.snat = true;
                b.pkt.masquerade = true;
                b.walk.push(at(Action::Masquerade(ip)));
                Next::Stage
            }
            Target::Mark(op) => {
                b.pkt.mark = op.apply(b.pkt.mark);
                b.walk.push(at(Action::Mark {
                    op: *op,
                    mark: b.pkt.mark,
                }));
                advance(b);
                Next::Continue
            }
            Target::Log { .. } => {
                b.walk.push(at(Action::Log));
                advance(b);
                Next::Continue
            }
            Target::Unknown { name, .. } => {
                b.walk.push(at(Action::Unknown(name.to_string())));
                advance(b);
                Next::Continue
            }
        };
        Ok(flow)
    }

    fn too_many(&self) -> TraceError {
        TraceError {
            kind: TraceErrorKind::TooManyPaths,
            span: Span::default(),
            message: format!(
                "the trace has more than {} paths or {} rule evaluations; \
                 the rule set branches too much to enumerate",
                self.max_paths, self.max_evaluations
            ),
        }
    }

    fn rewrite_destination(&self, b: &mut Branch, to: SocketAddr) {
        b.pkt.dst = to.ip();
        b.pkt.dport = to.port();
        b.pkt.dnat = true;
    }

    /// The end of a chain: a user chain returns to its caller, a built-in
    /// chain applies its policy.
    fn fall_off(
        &self,
        table: &Table,
        table_name: TableName,
        hook: BuiltinChain,
        b: &mut Branch,
    ) -> Next {
        if b.frames.len() > 1 {
            if let Some(chain) = b.frames.last().and_then(|f| table.chains.get(f.chain)) {
                b.walk.push(Step {
                    table: table_name,
                    hook,
                    chain: chain.name.clone(),
                    rule: None,
                    line: 0,
                    span: Span::default(),
                    depth: b.frames.len() - 1,
                    action: Action::FallOff,
                });
            }
            b.frames.pop();
            return Next::Continue;
        }
        self.policy(table, table_name, hook, b)
    }

    fn policy(
        &self,
        table: &Table,
        table_name: TableName,
        hook: BuiltinChain,
        b: &mut Branch,
    ) -> Next {
        // Through the index: big dumps have tens of thousands of chains.
        let builtin = self
            .table(table_name)
            .and_then(|t| t.chains.get(hook.as_str()))
            .and_then(|i| table.chains.get(i));
        match builtin.and_then(|c| c.policy) {
            Some(Policy::Drop) => {
                b.walk
                    .push(policy_step(table_name, hook, builtin, Policy::Drop));
                Next::End(Verdict::Drop)
            }
            Some(Policy::Accept) | None => Next::Stage,
        }
    }

    /// The chain index a jump or goto leads to, or why it cannot be taken.
    fn resolve(
        &self,
        table: &Table,
        table_name: TableName,
        name: &ChainName,
        rule: &Rule,
        b: &Branch,
    ) -> Result<usize, TraceError> {
        let err = |kind, message| TraceError {
            kind,
            span: rule.span,
            message,
        };
        if name.is_builtin() {
            return Err(err(
                TraceErrorKind::BuiltinTarget,
                format!(
                    "{table_name}: line {} jumps to the built-in chain {name}",
                    rule.span.line
                ),
            ));
        }
        let next = self
            .table(table_name)
            .and_then(|t| t.chains.get(name.as_str()))
            .ok_or_else(|| {
                err(
                    TraceErrorKind::UndeclaredChain,
                    format!(
                        "{table_name}: line {} jumps to {name}, which the table does not declare",
                        rule.span.line
                    ),
                )
            })?;
        // The call path: every frame's chain and the chains it left by goto,
        // each with the rule that moved on from it.
        let mut path: Vec<(usize, usize)> = Vec::new();
        for (i, f) in b.frames.iter().enumerate() {
            path.extend(f.via.iter().copied());
            // The current frame has not advanced past the jumping rule; the
            // callers have (their `rule` is the return address).
            let at = if i + 1 == b.frames.len() {
                f.rule
            } else {
                f.rule.saturating_sub(1)
            };
            path.push((f.chain, at));
        }
        if let Some(start) = path.iter().position(|(c, _)| *c == next) {
            let cycle: Vec<String> = path[start..]
                .iter()
                .map(|&(c, r)| describe(table, c, r))
                .collect();
            return Err(err(
                TraceErrorKind::Loop,
                format!("{table_name}: chain loop {} -> {name}", cycle.join(" -> ")),
            ));
        }
        Ok(next)
    }
}

/// What to do after a step.
enum Next {
    /// Evaluate the next rule (of whatever chain is now innermost).
    Continue,
    /// This table is done with the hook; go to the next stage.
    Stage,
    /// The packet's fate is decided.
    End(Verdict),
}

fn advance(b: &mut Branch) {
    if let Some(f) = b.frames.last_mut() {
        f.rule += 1;
    }
}

/// `KUBE-A (line 12)`: a chain in a loop and the line that moved on from it.
fn describe(table: &Table, chain: usize, rule: usize) -> String {
    let c: Option<&Chain> = table.chains.get(chain);
    let name = c.map_or("?", |c| c.name.as_str());
    match c.and_then(|c| c.rules.get(rule)) {
        Some(r) => format!("{name} (line {})", r.span.line),
        None => name.to_string(),
    }
}

fn policy_step(
    table: TableName,
    hook: BuiltinChain,
    chain: Option<&Chain>,
    policy: Policy,
) -> Step {
    Step {
        table,
        hook,
        chain: ChainName::Builtin(hook),
        rule: None,
        line: chain.map_or(0, |c| c.span.line),
        span: chain.map_or(Span::default(), |c| c.span),
        depth: 0,
        action: Action::Policy(policy),
    }
}

/// The address a DNAT rewrites to: the range's first address, and its first
/// port if it gives ports (else the original port).
fn nat_address(range: &NatRange, port: u16) -> SocketAddr {
    SocketAddr::new(range.first, range.ports.map_or(port, |p| p.first))
}
