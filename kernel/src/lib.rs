//! Real-kernel mode: a scenario's flows sent as real connections through a
//! generator's rules, loaded with `iptables-restore` into a private network
//! namespace that stands for the node, and judged twice: against the flow's
//! `expect` (the kernel alone decides), and against the tracer's prediction
//! (where the two disagree, kpconform's model is wrong, and the run fails
//! with both results side by side).
//!
//! One (scenario, node) is one [`Topology`](topology::Topology) of anonymous
//! namespaces, built from a [`Plan`]; [`run_node`] builds it, loads the
//! rules, sends every flow and tears everything down, whatever happens. The
//! host's own namespace is never entered (see `netns`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use num_traits::ToPrimitive;

use kpconform_iptables::model::Family;
use kpconform_iptables::{Distribution, Mass, Verdict};
use kpconform_suite::check::{flow_family, route_localnet, NodeReport};
use kpconform_suite::scenario::{Flow, Scenario};

mod loader;
mod netns;
pub mod plan;
mod sctp;
mod socket;
pub mod stats;
mod topology;

pub use loader::{restore_available, time_restore_test};
pub use plan::{Plan, L4};
pub use socket::Attempt;
use stats::Test;
use topology::Topology;

/// Which iptables the rules are loaded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// `iptables-nft-restore`: the nf_tables backend (the default, as on
    /// current distributions).
    #[default]
    Nft,
    /// `iptables-legacy-restore`: the x_tables backend.
    Legacy,
}

impl Backend {
    /// `iptables-nft-restore`, `ip6tables-legacy-restore`, ...
    fn restore(self, family: Family) -> String {
        let base = match family {
            Family::Ipv4 => "iptables",
            Family::Ipv6 => "ip6tables",
        };
        format!("{base}-{self}-restore")
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Nft => "nft",
            Backend::Legacy => "legacy",
        })
    }
}

/// How kernel mode runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which iptables loads the rules.
    pub backend: Backend,
    /// Connections per flow that may be accepted (the sample for the
    /// statistical tests).
    pub connections: u32,
    /// Connections per flow that the tracer and the expectation both say
    /// is refused or dropped (each one that is dropped costs `timeout`).
    pub refusals: u32,
    /// How long a connection may take before it counts as dropped. Longer
    /// than TCP's first SYN retransmission (1 s): a real client whose first
    /// SYN was lost (to neighbour discovery on a busy machine, say) still
    /// connects, and so must kernel mode's.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backend: Backend::Nft,
            connections: 1000,
            refusals: 3,
            timeout: Duration::from_millis(2500),
        }
    }
}

/// Why kernel mode cannot run on this machine: what is missing and how to
/// get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            Path::new(&p).is_file()
        })
    })
}

/// Checks that this machine can run kernel mode with `backend` for
/// `families`: root, `ip`, the iptables tools, and network namespaces.
pub fn preflight(backend: Backend, families: &[Family]) -> Result<(), Unavailable> {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push(
            "root: kernel mode creates network namespaces and loads rules into them, which needs \
             CAP_SYS_ADMIN and CAP_NET_ADMIN (run it as root, e.g. with sudo)"
                .to_string(),
        );
    }
    if !on_path("ip") {
        missing.push("`ip` (install iproute2: apt-get install iproute2)".to_string());
    }
    for &family in families {
        let tool = backend.restore(family);
        if !on_path(&tool) {
            missing.push(format!(
                "`{tool}` (install iptables: apt-get install iptables)"
            ));
        }
    }
    if missing.is_empty() {
        if let Err(e) = netns::Netns::new("probe") {
            missing.push(format!(
                "network namespaces: {e} (the kernel needs CONFIG_NET_NS, and a container must \
                 allow unshare)"
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Unavailable(format!(
            "kernel mode cannot run here; missing: {}",
            missing.join("; ")
        )))
    }
}

/// One family's rules for a node, and what the tracer made of them.
#[derive(Debug, Clone)]
pub struct FamilyRules<'a> {
    /// The family.
    pub family: Family,
    /// The rules, in `iptables-save` format, as `iptables-restore` takes them.
    pub text: Cow<'a, str>,
    /// The tracer's report on the same rules (its distributions are the
    /// predictions to cross-check).
    pub report: &'a NodeReport,
    /// Whether the rules contain matches or targets the tracer does not
    /// model (lax parsing): its predictions are then unconfirmed.
    pub unmodelled: bool,
}

/// The kernel's results for one (scenario, node).
#[derive(Debug, Clone)]
pub struct KernelReport {
    /// The scenario id.
    pub scenario: String,
    /// The node.
    pub node: String,
    /// The backend used.
    pub backend: Backend,
    /// Why the topology could not be built (a defect of kpconform or of
    /// the machine, never a pass).
    pub setup_error: Option<String>,
    /// Rules the kernel refused, per family, with its message.
    pub refused: Vec<(Family, String)>,
    /// One result per flow of the node whose family was loaded.
    pub flows: Vec<KernelFlow>,
    /// Wall time, topology included.
    pub elapsed: Duration,
}

/// The kernel's results for one flow.
#[derive(Debug, Clone)]
pub struct KernelFlow {
    /// The flow's name.
    pub name: String,
    /// Its family.
    pub family: Family,
    /// Its destination, as written.
    pub to: String,
    /// Why it was not sent (never counted as passed).
    pub skipped: Option<String>,
    /// What the connections saw.
    pub observation: Option<Observation>,
    /// The tracer's prediction, when it could trace the flow.
    pub prediction: Option<Prediction>,
    /// Expectations the kernel's observation contradicts.
    pub failures: Vec<String>,
    /// Where the tracer and the kernel disagree.
    pub disagreements: Vec<String>,
    /// The tracer could not confirm this flow (unmodelled rules, or it
    /// could not trace it): disagreements are reported, not failed.
    pub unconfirmed: Option<String>,
    /// How many of the flow's judgements (its listed endpoints, the
    /// cross-check) needed statistics: each may fail falsely with
    /// probability at most [`stats::ALPHA`].
    pub tests: u32,
}

/// What a flow's connections saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Connections made.
    pub connections: u32,
    /// Answered connections per listener (destination after NAT).
    pub answered: BTreeMap<SocketAddr, u32>,
    /// Connections refused at once.
    pub refused: u32,
    /// Connections that got no answer in time (or were not permitted).
    pub dropped: u32,
    /// Answered connections whose source the listener saw changed (source
    /// NAT: MASQUERADE or SNAT).
    pub masqueraded: u32,
    /// The session-affinity probe, when the flow expects `sticky`.
    pub sticky: Option<StickyProbe>,
    /// Wall time of the flow's connections.
    pub elapsed: Duration,
}

/// Rounds of "a first connection, then four more from the same client".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StickyProbe {
    /// Rounds made.
    pub rounds: u32,
    /// Rounds whose five connections all reached the same destination.
    pub consistent: u32,
}

/// The tracer's prediction for a flow, as probabilities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prediction {
    /// Accepted mass per destination.
    pub accepted: BTreeMap<SocketAddr, f64>,
    /// Rejected mass.
    pub refused: f64,
    /// Dropped mass.
    pub dropped: f64,
    /// Accepted and masqueraded mass.
    pub masqueraded: f64,
    /// Accepted mass, per destination, that no connection can show: a
    /// hairpin without masquerade (the endpoint is the client itself and
    /// answers itself, inside its own namespace). It is counted in
    /// [`Prediction::dropped`], which is what the kernel shows for it.
    pub unanswerable: BTreeMap<SocketAddr, f64>,
}

fn f(m: &Mass) -> f64 {
    m.to_f64()
}

impl Prediction {
    /// The prediction for connections from `client`; `reply` when the
    /// kernel observes a connection by its answer (TCP, UDP), which a
    /// hairpin without masquerade never gets back.
    fn of(d: &Distribution, client: Option<std::net::IpAddr>, reply: bool) -> Prediction {
        let mut p = Prediction::default();
        for o in &d.outcomes {
            let mass = f(&o.probability);
            match o.verdict {
                Verdict::Accept if reply && !o.masquerade && Some(o.destination.ip()) == client => {
                    *p.unanswerable.entry(o.destination).or_default() += mass;
                    p.dropped += mass;
                }
                Verdict::Accept => {
                    *p.accepted.entry(o.destination).or_default() += mass;
                    if o.masquerade {
                        p.masqueraded += mass;
                    }
                }
                Verdict::Reject => p.refused += mass,
                Verdict::Drop => p.dropped += mass,
            }
        }
        p
    }

    fn accepted_total(&self) -> f64 {
        self.accepted.values().sum()
    }
}

impl Observation {
    fn accepted(&self) -> u32 {
        self.answered.values().sum()
    }

    fn verdict_count(&self, v: Verdict) -> u32 {
        match v {
            Verdict::Accept => self.accepted(),
            Verdict::Reject => self.refused,
            Verdict::Drop => self.dropped,
        }
    }
}

impl KernelFlow {
    /// Whether the flow passed in the kernel (skipped flows did not pass:
    /// see [`KernelFlow::skipped`]).
    pub fn passed(&self) -> bool {
        self.skipped.is_none()
            && self.failures.is_empty()
            && (self.unconfirmed.is_some() || self.disagreements.is_empty())
    }

    /// Whether the flow failed (skipped flows neither pass nor fail).
    pub fn failed(&self) -> bool {
        self.skipped.is_none() && !self.passed()
    }
}

impl KernelReport {
    /// Whether everything ran and nothing failed (skipped flows aside).
    pub fn passed(&self) -> bool {
        self.setup_error.is_none()
            && self.refused.is_empty()
            && !self.flows.iter().any(KernelFlow::failed)
    }

    /// Flows that were skipped.
    pub fn skipped(&self) -> usize {
        self.flows.iter().filter(|f| f.skipped.is_some()).count()
    }

    /// Judgements that needed statistics (see [`KernelFlow::tests`]).
    pub fn tests(&self) -> u32 {
        self.flows.iter().map(|f| f.tests).sum()
    }
}

/// Runs every flow of `node` whose family is among `rules` through the
/// kernel. Never panics on anything in the rules or the scenario; failures
/// of the machine become [`KernelReport::setup_error`].
pub fn run_node(
    scenario: &Scenario,
    node: &str,
    rules: &[FamilyRules<'_>],
    options: &Options,
) -> KernelReport {
    let start = Instant::now();
    let mut report = KernelReport {
        scenario: scenario.id.clone(),
        node: node.to_string(),
        backend: options.backend,
        setup_error: None,
        refused: Vec::new(),
        flows: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let families: Vec<Family> = rules.iter().map(|r| r.family).collect();
    // Each flow with its rules' tracer report.
    let flows: Vec<(&Flow, &FamilyRules<'_>, Option<&Distribution>)> = scenario
        .flows
        .iter()
        .filter(|f| f.node == node)
        .filter_map(|f| {
            let r = rules.iter().find(|r| r.family == flow_family(f))?;
            let traced = r
                .report
                .flows
                .iter()
                .find(|t| t.flow == f.name)
                .and_then(|t| t.distribution.as_ref());
            Some((f, r, traced))
        })
        .collect();
    let for_plan: Vec<_> = flows.iter().map(|(f, _, d)| (*f, *d)).collect();
    let plan = Plan::new(scenario, node, &families, &for_plan);
    let localnet =
        families.contains(&Family::Ipv4) && route_localnet(&scenario.cluster.node_port_addresses);
    let mut topology = match Topology::build(plan, localnet, options.backend) {
        Ok(t) => t,
        Err(e) => {
            report.setup_error = Some(format!("cannot build the node's namespaces: {e}"));
            report.elapsed = start.elapsed();
            return report;
        }
    };

    // A control connection per flow before any rule exists: the topology
    // must deliver each flow untouched to its destination, or nothing the
    // rules do could be observed.
    let mut control: Vec<Option<String>> = Vec::new();
    for (flow, _, _) in &flows {
        control.push(control_connection(&topology, flow));
    }

    for r in rules {
        if let Err(message) = topology.load(r.family, &r.text) {
            report.refused.push((r.family, message));
        }
    }
    if !report.refused.is_empty() {
        report.elapsed = start.elapsed();
        return report;
    }
    if let Err(e) = topology.open_recent() {
        report.setup_error = Some(format!("cannot open the -m recent lists: {e}"));
        report.elapsed = start.elapsed();
        return report;
    }
    for ((flow, r, traced), control) in flows.iter().zip(control) {
        let mut k = KernelFlow {
            name: flow.name.clone(),
            family: r.family,
            to: flow.to.to_string(),
            skipped: None,
            observation: None,
            prediction: traced.map(|d| {
                let client = topology.source(flow.from, r.family).ok().map(|(_, ip)| ip);
                let reply = L4::of(flow.to.protocol) != Some(L4::Sctp);
                Prediction::of(d, client, reply)
            }),
            failures: Vec::new(),
            disagreements: Vec::new(),
            unconfirmed: None,
            tests: 0,
        };
        if r.unmodelled {
            k.unconfirmed = Some(
                "the rules contain matches or targets the tracer does not model (--lax); \
                 the kernel's result stands alone"
                    .into(),
            );
        } else if traced.is_none() {
            k.unconfirmed = Some("the tracer could not trace this flow".into());
        }
        match skip_reason(&topology, flow, r.family) {
            Some(reason) => k.skipped = Some(reason),
            None => {
                if let Some(problem) = control {
                    k.failures.push(problem);
                } else {
                    match observe(&topology, flow, r.family, k.prediction.as_ref(), options) {
                        Ok(o) => {
                            judge(flow, &o, &mut k);
                            k.observation = Some(o);
                        }
                        Err(e) => k
                            .failures
                            .push(format!("the connections could not be made: {e}")),
                    }
                }
            }
        }
        report.flows.push(k);
    }
    drop(topology);
    report.elapsed = start.elapsed();
    report
}

fn skip_reason(topology: &Topology, flow: &Flow, family: Family) -> Option<String> {
    if L4::of(flow.to.protocol).is_none() {
        return Some(format!("protocol {} cannot be sent", flow.to.protocol));
    };
    if let Err(reason) = topology.source(flow.from, family) {
        return Some(reason);
    }
    if let (true, kpconform_iptables::FlowSource::Ip(from)) =
        (flow.to.addr.ip().is_loopback(), flow.from)
    {
        if flow.to.addr.is_ipv6() || matches!(topology.plan.owner(from), plan::Owner::Pod(_)) {
            return Some(format!(
                "a packet from {from} to {} cannot be sent: the sender's own loopback would take it",
                flow.to.addr.ip()
            ));
        }
    }
    None
}

/// One connection without rules; `Some(problem)` if it was not answered
/// at its destination.
fn control_connection(topology: &Topology, flow: &Flow) -> Option<String> {
    let family = flow_family(flow);
    if skip_reason(topology, flow, family).is_some() {
        return None;
    }
    // From the network to the node's loopback: the node may drop it as a
    // martian before any rule (without route_localnet), so no rule-less
    // delivery can be asked for.
    if flow.to.addr.ip().is_loopback() && !matches!(flow.from, kpconform_iptables::FlowSource::Node)
    {
        return None;
    }
    let l4 = L4::of(flow.to.protocol)?;
    let source = topology.source(flow.from, family).ok()?;
    // A fresh topology may need a moment before every link, address and
    // route carries traffic (seen once: an IPv6 connection refused right
    // after the build, answered a moment later); that is not what is being
    // tested. Six tries, 50 ms to 800 ms apart.
    let mut last = String::new();
    for attempt in 0..6u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(50 << (attempt - 1)));
        }
        let result = topology.connect(source, flow.to.addr, l4, 1, Duration::from_secs(2), |_| {
            Ok(())
        });
        match result {
            Ok(a) => match a.first() {
                Some(Attempt::Answered { at, .. }) if *at == flow.to.addr => return None,
                other => {
                    last = other.map_or_else(|| "no attempt".to_string(), ToString::to_string);
                }
            },
            Err(e) => last = e.to_string(),
        }
    }
    Some(format!(
        "kpconform's topology is wrong: without any rule loaded, a connection to {} was not \
         answered there ({last}); {}",
        flow.to,
        topology.describe()
    ))
}

/// Sends the flow's connections and counts what happened.
fn observe(
    topology: &Topology,
    flow: &Flow,
    family: Family,
    prediction: Option<&Prediction>,
    options: &Options,
) -> io::Result<Observation> {
    let l4 = L4::of(flow.to.protocol).expect("checked by skip_reason");
    let source = topology
        .source(flow.from, family)
        .map_err(io::Error::other)?;
    // A flow that both the tracer and the expectation say is refused or
    // dropped needs no sample; anything that may be accepted does.
    let may_accept = prediction.is_none_or(|p| p.accepted_total() > 0.0)
        || flow
            .expect
            .endpoints
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        || flow.expect.verdict == Some(Verdict::Accept)
        || flow.expect.masquerade.is_some()
        || flow.expect.sticky.is_some();
    let n = if may_accept {
        options.connections
    } else {
        options.refusals
    };
    let start = Instant::now();
    let attempts = topology.connect(source, flow.to.addr, l4, n, options.timeout, |_| {
        topology.clear_recent()
    })?;
    let mut o = Observation {
        connections: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
        ..Observation::default()
    };
    for a in &attempts {
        match a {
            Attempt::Answered { at, seen } => {
                *o.answered.entry(*at).or_default() += 1;
                // Every masquerade picks an address no flow sends from
                // (see `topology`), so a changed source address is exactly
                // a source NAT.
                if seen.ip() != source.1 {
                    o.masqueraded += 1;
                }
            }
            Attempt::Refused => o.refused += 1,
            Attempt::Dropped => o.dropped += 1,
        }
    }
    if flow.expect.sticky.is_some() && o.accepted() > 0 {
        o.sticky = Some(sticky_probe(topology, source, flow, l4, &o, options)?);
    }
    o.elapsed = start.elapsed();
    Ok(o)
}

/// Connections per sticky round: a first one and four more.
const ROUND: u32 = 5;

/// Rounds of a first connection (affinity cleared) and four more from the
/// same client. As many rounds as it takes for a service without affinity
/// to show itself with probability 1 - ALPHA, given the spread the flow's
/// connections showed (at most 200).
fn sticky_probe(
    topology: &Topology,
    source: (&netns::Netns, std::net::IpAddr),
    flow: &Flow,
    l4: L4,
    o: &Observation,
    options: &Options,
) -> io::Result<StickyProbe> {
    let accepted = f64::from(o.accepted());
    // Chance that ROUND connections without affinity all reach one place.
    let q: f64 = o
        .answered
        .values()
        .map(|&c| (f64::from(c) / accepted).powi(ROUND as i32))
        .sum();
    let rounds = if q >= 1.0 {
        1
    } else {
        ((stats::ALPHA.ln() / q.ln()).ceil() as u32).clamp(1, 200)
    };
    let mut probe = StickyProbe::default();
    for _ in 0..rounds {
        let attempts = topology.connect(source, flow.to.addr, l4, ROUND, options.timeout, |i| {
            if i == 0 {
                topology.clear_recent()
            } else {
                Ok(())
            }
        })?;
        probe.rounds += 1;
        let first = attempts.first().copied();
        let same = matches!(first, Some(Attempt::Answered { .. }))
            && attempts.iter().all(|a| match (a, first) {
                (Attempt::Answered { at, .. }, Some(Attempt::Answered { at: first, .. })) => {
                    *at == first
                }
                _ => false,
            });
        if same {
            probe.consistent += 1;
        } else if flow.expect.sticky == Some(false) {
            // One round that moved is all `sticky: false` needs.
            break;
        }
    }
    Ok(probe)
}

fn share(count: u32, n: u32) -> String {
    if n == 0 {
        return "-".into();
    }
    format!("{:.3} ({count})", f64::from(count) / f64::from(n))
}

fn show_p(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

fn pvalue(t: Test) -> String {
    match t {
        Test::Inconsistent { p_value } if p_value > 0.0 => {
            format!(" (binomial test p = {p_value:.1e})")
        }
        _ => String::new(),
    }
}

/// Judges `o` against the flow's expectations and the tracer's prediction.
fn judge(flow: &Flow, o: &Observation, k: &mut KernelFlow) {
    let n = o.connections;
    // The tests of one judgement (the listed endpoints and their sum; the
    // cross-check of every outcome) share one α, Bonferroni-split: a
    // service with 250 endpoints costs a run no more false-failure risk
    // than one with two.
    let mut tests = 0u32;
    let group = |size: usize| {
        let alpha = stats::ALPHA / size.max(1) as f64;
        let mut spent = false;
        let mut counted = false;
        move |count: u32, p: f64, tests: &mut u32| {
            let t = stats::binomial_at(count, n, p, alpha);
            spent |= t.statistical();
            if spent && !counted {
                counted = true;
                *tests += 1;
            }
            t
        }
    };
    let e = &flow.expect;
    if let Some(endpoints) = &e.endpoints {
        let mut test = group(endpoints.len() + 1);
        let mut listed = 0.0;
        for (dest, p) in endpoints {
            let p = p.to_f64().unwrap_or(f64::NAN);
            listed += p;
            let c = o.answered.get(dest).copied().unwrap_or(0);
            let t = test(c, p, &mut tests);
            if !t.holds() {
                k.failures.push(format!(
                    "endpoint {dest}: expected {}, the kernel answered {} of {n} connections there{}",
                    show_p(p),
                    c,
                    pvalue(t)
                ));
            }
        }
        for (at, c) in &o.answered {
            if !endpoints.contains_key(at) {
                k.failures.push(format!(
                    "unlisted destination {at} answered {c} of {n} connections"
                ));
            }
        }
        let t = test(o.accepted(), listed.min(1.0), &mut tests);
        if !t.holds() {
            k.failures.push(format!(
                "the listed probabilities add up to {}, but {} of {n} connections were accepted{}",
                show_p(listed),
                o.accepted(),
                pvalue(t)
            ));
        }
    }
    if let Some(v) = e.verdict {
        let c = o.verdict_count(v);
        if c != n {
            k.failures.push(format!(
                "verdict: expected every connection to {v}, but {} of {n} did not ({} accepted, {} refused, {} dropped)",
                n - c,
                o.accepted(),
                o.refused,
                o.dropped
            ));
        }
    }
    if let Some(m) = e.masquerade {
        let accepted = o.accepted();
        if accepted == 0 {
            k.failures
                .push("masquerade: nothing was accepted, so it cannot hold".into());
        } else if m && o.masqueraded != accepted {
            k.failures.push(format!(
                "masquerade: expected every accepted connection to be masqueraded, but {} of {accepted} were",
                o.masqueraded
            ));
        } else if !m && o.masqueraded != 0 {
            k.failures.push(format!(
                "masquerade: expected none, but {} of {accepted} accepted connections were masqueraded",
                o.masqueraded
            ));
        }
    }
    if let (Some(sticky), Some(p)) = (e.sticky, o.sticky) {
        let destinations = o.answered.len();
        if sticky && p.consistent != p.rounds {
            k.failures.push(format!(
                "sticky: in {} of {} rounds, five connections from one client reached different endpoints",
                p.rounds - p.consistent,
                p.rounds
            ));
        } else if !sticky && destinations >= 2 && p.consistent == p.rounds {
            k.failures.push(format!(
                "sticky: expected no affinity, but in all {} rounds five connections from one client \
                 reached the same endpoint",
                p.rounds
            ));
        }
    }

    if let Some(pred) = &k.prediction {
        let mut places: Vec<SocketAddr> = pred.accepted.keys().copied().collect();
        places.extend(o.answered.keys().copied());
        places.sort();
        places.dedup();
        let mut test = group(places.len() + 3);
        for at in places {
            let p = pred.accepted.get(&at).copied().unwrap_or(0.0);
            let c = o.answered.get(&at).copied().unwrap_or(0);
            let t = test(c, p, &mut tests);
            if !t.holds() {
                k.disagreements.push(format!(
                    "accepted at {at}: the tracer predicts {}, the kernel answered {}{}",
                    show_p(p),
                    share(c, n),
                    pvalue(t)
                ));
            }
        }
        for (what, p, c) in [
            ("refused", pred.refused, o.refused),
            ("dropped", pred.dropped, o.dropped),
            ("masqueraded", pred.masqueraded, o.masqueraded),
        ] {
            let t = test(c, p, &mut tests);
            if !t.holds() {
                k.disagreements.push(format!(
                    "{what}: the tracer predicts {}, the kernel saw {}{}",
                    show_p(p),
                    share(c, n),
                    pvalue(t)
                ));
            }
        }
    }
    k.tests = tests;
}

impl KernelReport {
    /// Every flow's result, failures explained, with the tracer and the
    /// kernel side by side where they disagree.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let case = format!("{}@{}", self.scenario, self.node);
        if let Some(e) = &self.setup_error {
            let _ = writeln!(out, "KERNEL ERROR {case}: {e}");
        }
        for (family, message) in &self.refused {
            let _ = writeln!(
                out,
                "KERNEL BROKEN {case}: the kernel refused the {family} rules ({} backend):\n{}",
                self.backend,
                indent(message)
            );
        }
        for f in &self.flows {
            let label = if let Some(reason) = &f.skipped {
                let _ = writeln!(out, "kernel SKIP {case} {} ({}): {reason}", f.name, f.to);
                continue;
            } else if f.failed() {
                "kernel FAIL"
            } else {
                "kernel ok  "
            };
            let summary = f.observation.as_ref().map(summarize).unwrap_or_default();
            let _ = writeln!(out, "{label} {case} {} ({}) {summary}", f.name, f.to);
            for failure in &f.failures {
                let _ = writeln!(out, "    - {failure}");
            }
            if let Some(p) = f.prediction.as_ref().filter(|p| !p.unanswerable.is_empty()) {
                let places: Vec<String> = p
                    .unanswerable
                    .iter()
                    .map(|(at, m)| format!("{} at {at}", show_p(*m)))
                    .collect();
                let _ = writeln!(
                    out,
                    "    note: the tracer accepts {} without masquerade, back to the client itself (a \
                     hairpin): the endpoint's answer to its own address never leaves it, so the \
                     connection cannot complete, and the kernel shows it dropped",
                    places.join(", ")
                );
            }
            if !f.disagreements.is_empty() {
                match &f.unconfirmed {
                    Some(why) => {
                        let _ = writeln!(
                            out,
                            "    note: the tracer could not confirm this flow: {why}"
                        );
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "    DEFECT OF KPCONFORM: its tracer and the kernel disagree on the same rules \
                             (please report it with this output):"
                        );
                    }
                }
                for d in &f.disagreements {
                    let _ = writeln!(out, "    - {d}");
                }
                if let (Some(p), Some(o)) = (&f.prediction, &f.observation) {
                    out.push_str(&side_by_side(p, o));
                }
            }
        }
        out
    }
}

fn summarize(o: &Observation) -> String {
    let mut parts: Vec<String> = if o.answered.len() <= 8 {
        o.answered
            .iter()
            .map(|(at, c)| format!("{at} {c}"))
            .collect()
    } else {
        let min = o.answered.values().min().copied().unwrap_or(0);
        let max = o.answered.values().max().copied().unwrap_or(0);
        vec![format!(
            "{} answered at {} destinations ({min} to {max} each)",
            o.accepted(),
            o.answered.len()
        )]
    };
    if o.refused > 0 {
        parts.push(format!("refused {}", o.refused));
    }
    if o.dropped > 0 {
        parts.push(format!("dropped {}", o.dropped));
    }
    let mut s = format!("{} connection(s): {}", o.connections, parts.join(", "));
    if o.masqueraded > 0 {
        let _ = write!(s, "; masqueraded {}", o.masqueraded);
    }
    if let Some(p) = o.sticky {
        let _ = write!(s, "; sticky {}/{} rounds", p.consistent, p.rounds);
    }
    s
}

fn side_by_side(p: &Prediction, o: &Observation) -> String {
    let n = o.connections;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut places: Vec<SocketAddr> = p
        .accepted
        .keys()
        .chain(o.answered.keys())
        .copied()
        .collect();
    places.sort();
    places.dedup();
    for at in places {
        rows.push((
            format!("accept {at}"),
            show_p(p.accepted.get(&at).copied().unwrap_or(0.0)),
            share(o.answered.get(&at).copied().unwrap_or(0), n),
        ));
    }
    rows.push(("reject".into(), show_p(p.refused), share(o.refused, n)));
    rows.push(("drop".into(), show_p(p.dropped), share(o.dropped, n)));
    rows.push((
        "masquerade".into(),
        show_p(p.masqueraded),
        share(o.masqueraded, n),
    ));
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(7);
    let mut out = format!(
        "      {:w$}  {:>10}  {:>14}\n",
        "outcome", "tracer", "kernel"
    );
    for (what, tracer, kernel) in rows {
        let _ = writeln!(out, "      {what:w$}  {tracer:>10}  {kernel:>14}");
    }
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// The bound on a false failure of a run that made `tests` statistical
/// tests (a union bound over them).
pub fn false_failure_bound(tests: u32) -> f64 {
    f64::from(tests) * stats::ALPHA
}
