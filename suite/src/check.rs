//! Checking a flow's expectations (contract §3) against the trace of its
//! first packet, and explaining a failure so that a kube-proxy engineer can
//! act on it: the packet, expected and actual distributions side by side,
//! and every path with the rules (and their lines) it went through.
//!
//! Decisions where the contract is silent:
//! - `endpoints`: every listed destination within the tolerance, the listed
//!   probabilities summing to the accepted mass within the tolerance, and
//!   every accepted destination listed (an unlisted one fails at any mass).
//! - `verdict`: every outcome, exactly.
//! - `masquerade`: every accepted outcome; with no accepted traffic at all
//!   the expectation cannot hold and fails.
//! - `sticky: true`: for every DNATed first-connection outcome, a second
//!   connection from the same client, traced right away with the lists the
//!   first left, reaches that outcome's destination (and verdict) with
//!   probability 1 within the tolerance. `sticky: false`: when the first
//!   connection can reach two or more destinations, some second connection
//!   must be free to go elsewhere.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;

use bigdecimal::BigDecimal;
use kpconform_iptables::Mass;

use crate::exact::{self, BigRational};

use crate::invariants::Profile;
use crate::scenario::{Expect, Flow, Scenario};
use kpconform_iptables::model::{Family, RuleSet};
use kpconform_iptables::ProbabilityMode;
use kpconform_iptables::{
    format_probability, Distribution, Outcome, Packet, TraceError, Tracer, Verdict, SOURCE_PORT,
};
use kpconform_iptables::{SourceFile, Span};

/// The result of checking one flow.
#[derive(Debug, Clone)]
pub struct FlowReport {
    /// The flow's name.
    pub flow: String,
    /// The node whose rules were traced.
    pub node: String,
    /// Where the flow was written in its scenario.
    pub span: Span,
    /// The packet traced.
    pub packet: Packet,
    /// What was expected.
    pub expect: Expect,
    /// The tolerance used for probabilities.
    pub tolerance: BigDecimal,
    /// The probability mode of the trace.
    pub mode: ProbabilityMode,
    /// The first connection's distribution, unless the trace failed or the
    /// flow passed in a check that keeps only failing flows' ([`Keep`]).
    pub distribution: Option<Distribution>,
    /// Second connections traced for `sticky`: the index of the first
    /// connection's outcome, and what the second one did.
    pub second: Vec<(usize, Distribution)>,
    /// Every expectation that did not hold (empty when the flow passes).
    pub failures: Vec<Failure>,
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Failure {
    /// The packet could not be traced.
    Trace(TraceError),
    /// A listed destination got the wrong probability.
    Endpoint {
        /// The destination.
        destination: SocketAddr,
        /// Its expected probability.
        expected: BigRational,
        /// Its accepted mass.
        actual: Mass,
    },
    /// Traffic was accepted to a destination that is not listed.
    UnlistedEndpoint {
        /// The destination.
        destination: SocketAddr,
        /// Its accepted mass.
        actual: Mass,
    },
    /// The listed probabilities do not sum to the accepted mass.
    EndpointSum {
        /// Sum of the listed probabilities.
        expected: BigRational,
        /// The accepted mass.
        actual: Mass,
    },
    /// Not all the mass ended in the expected verdict.
    Verdict {
        /// The expected verdict.
        expected: Verdict,
        /// The mass that ended elsewhere, per verdict.
        actual: Vec<(Verdict, Mass)>,
    },
    /// Some accepted traffic was (or was not) masqueraded.
    Masquerade {
        /// The expected value.
        expected: bool,
        /// The accepted mass with the other value, per destination.
        wrong: Vec<(SocketAddr, Mass)>,
    },
    /// `masquerade` was expected but nothing was accepted.
    NoAcceptedTraffic,
    /// A second connection did not (all) reach the first one's destination.
    NotSticky {
        /// Index of the first connection's outcome.
        outcome: usize,
        /// Where the first connection went.
        first: SocketAddr,
        /// The second connection's mass that reached it with the same verdict.
        same: Mass,
    },
    /// `sticky: false`, but every second connection stuck.
    UnexpectedlySticky,
    /// A second connection could not be traced.
    SecondTrace {
        /// Index of the first connection's outcome.
        outcome: usize,
        /// Why.
        error: TraceError,
    },
}

/// Which flows' distributions a check keeps in its [`FlowReport`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// Every flow's (what kernel mode needs to predict each flow).
    #[default]
    All,
    /// Only those of flows that fail, which is all a rendered report shows.
    /// A passing flow is then judged while it is traced and its outcomes
    /// are dropped one by one: a flow into an `n`-endpoint service has
    /// paths of `31·i` bits of exact mass each, `Θ(n²)` bits kept, where
    /// judging needs only a short bound per destination.
    Failing,
}

/// Traces `flow`'s packet with `tracer` (the rules of `flow.node`) and
/// checks every expectation the flow sets.
pub fn check_flow(tracer: &Tracer<'_>, flow: &Flow) -> FlowReport {
    check_flow_keeping(tracer, flow, Keep::All)
}

/// [`check_flow`], keeping the distribution as `keep` says. Judgements and
/// every failing flow's report are the same either way.
pub fn check_flow_keeping(tracer: &Tracer<'_>, flow: &Flow, keep: Keep) -> FlowReport {
    let packet = flow.packet();
    let mut report = FlowReport {
        flow: flow.name.clone(),
        node: flow.node.clone(),
        span: flow.span,
        packet,
        expect: flow.expect.clone(),
        tolerance: flow.tolerance.clone(),
        mode: tracer.mode(),
        distribution: None,
        second: Vec::new(),
        failures: Vec::new(),
    };
    if keep == Keep::Failing && flow.expect.sticky.is_none() {
        match stream::surely_passes(tracer, &packet, &flow.expect, &flow.tolerance) {
            Ok(true) => return report,
            // Failing or too close to call with bounds: judged (and kept)
            // exactly below, with a second trace.
            Ok(false) => {}
            Err(e) => {
                report.failures.push(Failure::Trace(e));
                return report;
            }
        }
    }
    let dist = match tracer.trace(&packet) {
        Ok(d) => d,
        Err(e) => {
            report.failures.push(Failure::Trace(e));
            return report;
        }
    };
    let tol = &flow.tolerance;
    let expect = &flow.expect;
    if let Some(endpoints) = &expect.endpoints {
        check_endpoints(&dist, endpoints, tol, &mut report.failures);
    }
    if let Some(v) = expect.verdict {
        let wrong: Vec<_> = dist
            .verdicts()
            .into_iter()
            .filter(|(k, _)| *k != v)
            .collect();
        if !wrong.is_empty() {
            report.failures.push(Failure::Verdict {
                expected: v,
                actual: wrong,
            });
        }
    }
    if let Some(m) = expect.masquerade {
        check_masquerade(&dist, m, &mut report.failures);
    }
    if let Some(sticky) = expect.sticky {
        check_sticky(tracer, &packet, &dist, sticky, tol, &mut report);
    }
    report.distribution = Some(dist);
    report
}

fn check_endpoints(
    dist: &Distribution,
    expected: &std::collections::BTreeMap<SocketAddr, BigRational>,
    tol: &BigDecimal,
    failures: &mut Vec<Failure>,
) {
    // Borrowed unless a destination has several paths: the masses of a
    // big service's paths are long, and the distribution keeps them anyway.
    let mut accepted: BTreeMap<SocketAddr, Cow<'_, Mass>> = BTreeMap::new();
    for o in dist
        .outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Accept)
    {
        match accepted.entry(o.destination) {
            Entry::Vacant(e) => {
                e.insert(Cow::Borrowed(&o.probability));
            }
            Entry::Occupied(mut e) => *e.get_mut().to_mut() += &o.probability,
        }
    }
    let zero = Mass::zero();
    for (dest, want) in expected {
        let got = accepted.get(dest).map_or(&zero, |m| &**m);
        if !exact::decimal_within(got, want, tol) {
            failures.push(Failure::Endpoint {
                destination: *dest,
                expected: want.clone(),
                actual: got.clone(),
            });
        }
    }
    for (dest, got) in &accepted {
        if !expected.contains_key(dest) && !got.is_zero() {
            failures.push(Failure::UnlistedEndpoint {
                destination: *dest,
                actual: got.clone().into_owned(),
            });
        }
    }
    let want: BigRational = expected.values().sum();
    let got: Mass = accepted.values().map(|m| &**m).sum();
    if !exact::decimal_within(&got, &want, tol) {
        failures.push(Failure::EndpointSum {
            expected: want,
            actual: got,
        });
    }
}

fn check_masquerade(dist: &Distribution, expected: bool, failures: &mut Vec<Failure>) {
    let accepted: Vec<&Outcome> = dist
        .outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Accept)
        .collect();
    if accepted.is_empty() {
        failures.push(Failure::NoAcceptedTraffic);
        return;
    }
    let mut wrong: std::collections::BTreeMap<SocketAddr, Mass> = Default::default();
    for o in accepted.iter().filter(|o| o.masquerade != expected) {
        *wrong.entry(o.destination).or_default() += &o.probability;
    }
    if !wrong.is_empty() {
        failures.push(Failure::Masquerade {
            expected,
            wrong: wrong.into_iter().collect(),
        });
    }
}

fn check_sticky(
    tracer: &Tracer<'_>,
    packet: &Packet,
    dist: &Distribution,
    expected: bool,
    tol: &BigDecimal,
    report: &mut FlowReport,
) {
    let one = exact::integer(1);
    let mut misses = Vec::new();
    for (i, first) in dist.outcomes.iter().enumerate().filter(|(_, o)| o.dnated()) {
        let second = match tracer.trace_with(packet, &first.recent) {
            Ok(d) => d,
            Err(error) => {
                report
                    .failures
                    .push(Failure::SecondTrace { outcome: i, error });
                continue;
            }
        };
        let same: Mass = second
            .outcomes
            .iter()
            .filter(|o| o.destination == first.destination && o.verdict == first.verdict)
            .map(|o| &o.probability)
            .sum();
        if !exact::decimal_within(&same, &one, tol) {
            misses.push(Failure::NotSticky {
                outcome: i,
                first: first.destination,
                same,
            });
        }
        report.second.push((i, second));
    }
    if expected {
        report.failures.extend(misses);
    } else if misses.is_empty() && dist.accepted().len() >= 2 && !report.second.is_empty() {
        report.failures.push(Failure::UnexpectedlySticky);
    }
}

/// Judging a flow while its outcomes stream past ([`Keep::Failing`]).
mod stream {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use bigdecimal::BigDecimal;
    use kpconform_iptables::{Packet, RecentState, TraceError, Tracer, Verdict};

    use crate::exact::{BigRational, MassBound};
    use crate::scenario::Expect;

    /// Whether the flow's first connection certainly meets `expect`
    /// (without `sticky`), keeping one short bound per destination instead
    /// of the outcomes. `false` when some expectation fails or the bounds
    /// are too close to call: the caller then judges exactly, so this only
    /// needs to be right when it says `true`. Every outcome's mass is
    /// non-zero (a statistic fork only happens for `0 < p < 1`), so an
    /// outcome's existence is enough to fail a verdict, masquerade or
    /// unlisted-destination expectation.
    pub(super) fn surely_passes(
        tracer: &Tracer<'_>,
        packet: &Packet,
        expect: &Expect,
        tol: &BigDecimal,
    ) -> Result<bool, TraceError> {
        let mut accepted: BTreeMap<SocketAddr, MassBound> = BTreeMap::new();
        let mut total = MassBound::default();
        let mut any_accepted = false;
        let mut ok = true;
        tracer.trace_each(packet, &RecentState::new(), |o| {
            if !ok {
                return;
            }
            if expect.verdict.is_some_and(|v| o.verdict != v) {
                ok = false;
                return;
            }
            if o.verdict != Verdict::Accept {
                return;
            }
            any_accepted = true;
            if expect.masquerade.is_some_and(|m| o.masquerade != m) {
                ok = false;
                return;
            }
            if let Some(endpoints) = &expect.endpoints {
                ok = endpoints.contains_key(&o.destination)
                    && accepted
                        .entry(o.destination)
                        .or_default()
                        .add(&o.probability)
                    && total.add(&o.probability);
            }
        })?;
        if !ok || (expect.masquerade.is_some() && !any_accepted) {
            return Ok(false);
        }
        if let Some(endpoints) = &expect.endpoints {
            let zero = MassBound::default();
            let each = endpoints
                .iter()
                .all(|(d, want)| accepted.get(d).unwrap_or(&zero).surely_within(want, tol));
            let want: BigRational = endpoints.values().sum();
            return Ok(each && total.surely_within(&want, tol));
        }
        Ok(true)
    }
}

impl FlowReport {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The explanation: a one-line verdict, and for a failure the packet,
    /// the failed expectations, expected vs actual, and every path's walk.
    /// With the rules' `source`, walks show each rule's text.
    pub fn render(&self, source: Option<&SourceFile>) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write(&mut out, source);
        out
    }

    fn write(&self, out: &mut String, source: Option<&SourceFile>) -> fmt::Result {
        let status = if self.passed() { "PASS" } else { "FAIL" };
        write!(out, "{status} {:?} on {}", self.flow, self.node)?;
        if self.span.line > 0 {
            write!(out, " (scenario line {})", self.span.line)?;
        }
        writeln!(out)?;
        if self.passed() {
            return Ok(());
        }
        let mode = match self.mode {
            ProbabilityMode::Kernel => "kernel probabilities",
            ProbabilityMode::AsWritten => "probabilities as written",
        };
        writeln!(
            out,
            "  packet: {} (source port {SOURCE_PORT}, {mode})",
            self.packet
        )?;
        writeln!(out, "  failed:")?;
        for f in &self.failures {
            match (f, source) {
                (Failure::Trace(e) | Failure::SecondTrace { error: e, .. }, Some(src))
                    if e.span.line > 0 =>
                {
                    writeln!(out, "    - {f}")?;
                    writeln!(out, "{}", indent(&e.render(src), "      "))?;
                }
                _ => writeln!(out, "    - {f}")?,
            }
        }
        let Some(dist) = &self.distribution else {
            return Ok(());
        };
        self.write_side_by_side(out, dist)?;
        writeln!(out, "  paths:")?;
        for (i, o) in dist.outcomes.iter().enumerate() {
            write_outcome(out, i, o, source)?;
            for (_, second) in self.second.iter().filter(|(j, _)| *j == i) {
                writeln!(out, "        a second connection after it ({}):", o.recent)?;
                for s in &second.outcomes {
                    writeln!(out, "          {s}")?;
                }
            }
        }
        Ok(())
    }

    fn write_side_by_side(&self, out: &mut String, dist: &Distribution) -> fmt::Result {
        let mut left = Vec::new();
        if let Some(eps) = &self.expect.endpoints {
            for (d, p) in eps {
                left.push(format!("accept {d}  p={}", exact::show(p)));
            }
        }
        if let Some(v) = self.expect.verdict {
            left.push(format!("verdict: all {v}"));
        }
        if let Some(m) = self.expect.masquerade {
            left.push(format!("masquerade: {m}"));
        }
        if let Some(s) = self.expect.sticky {
            left.push(format!("sticky: {s}"));
        }
        left.push(format!(
            "(tolerance {})",
            exact::show_decimal(&self.tolerance)
        ));
        let right: Vec<String> = dist
            .summary()
            .into_iter()
            .map(|((v, d, m), p)| {
                let masq = if m { "  masquerade" } else { "" };
                format!("{v} {d}  p={}{masq}", format_probability(&p))
            })
            .collect();
        let width = left
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
            .max("expected".len());
        writeln!(out, "  {:width$}   actual", "expected")?;
        for i in 0..left.len().max(right.len()) {
            let l = left.get(i).map_or("", String::as_str);
            let r = right.get(i).map_or("", String::as_str);
            let row = format!("  {l:width$}   {r}");
            writeln!(out, "{}", row.trim_end())?;
        }
        Ok(())
    }
}

impl fmt::Display for FlowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(None))
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One outcome: its compact path, then each step with its line.
fn write_outcome(
    out: &mut String,
    i: usize,
    o: &Outcome,
    source: Option<&SourceFile>,
) -> fmt::Result {
    let masq = if o.masquerade { ", masqueraded" } else { "" };
    writeln!(
        out,
        "    [{}] {} {}{masq}  p={}",
        i + 1,
        o.verdict,
        o.destination,
        format_probability(&o.probability)
    )?;
    writeln!(out, "        {}", o.path())?;
    for line in o.explain_brief(source) {
        writeln!(out, "        {line}")?;
    }
    Ok(())
}

/// One line per failure, in the scenario's terms.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = format_probability;
        match self {
            Failure::Trace(e) => write!(f, "the packet could not be traced: {e}"),
            Failure::Endpoint {
                destination,
                expected,
                actual,
            } => write!(
                f,
                "endpoint {destination}: expected p={}, got p={}",
                exact::show(expected),
                p(actual)
            ),
            Failure::UnlistedEndpoint { destination, actual } => write!(
                f,
                "endpoint {destination} is not expected, but p={} of the traffic is accepted there",
                p(actual)
            ),
            Failure::EndpointSum { expected, actual } => write!(
                f,
                "expected endpoints sum to {}, but the accepted mass is {}",
                exact::show(expected),
                p(actual)
            ),
            Failure::Verdict { expected, actual } => {
                write!(f, "expected all traffic to {expected}, but")?;
                for (i, (v, m)) in actual.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep} p={} ends in {v}", p(m))?;
                }
                Ok(())
            }
            Failure::Masquerade { expected, wrong } => {
                let what = if *expected { "not masqueraded" } else { "masqueraded" };
                write!(f, "expected masquerade: {expected}, but traffic to")?;
                for (i, (d, m)) in wrong.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep} {d} (p={})", p(m))?;
                }
                write!(f, " is {what}")
            }
            Failure::NoAcceptedTraffic => {
                f.write_str("a masquerade expectation needs accepted traffic, but none is accepted")
            }
            Failure::NotSticky { outcome, first, same } => write!(
                f,
                "not sticky: after path [{}] to {first}, a second connection from the same client \
                 reaches it with p={} instead of 1",
                outcome + 1,
                p(same)
            ),
            Failure::UnexpectedlySticky => f.write_str(
                "expected no session affinity, but every second connection sticks to the first one's endpoint",
            ),
            Failure::SecondTrace { outcome, error } => write!(
                f,
                "the second connection after path [{}] could not be traced: {error}",
                outcome + 1
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use ipnet::IpNet;

    use super::*;
    use crate::scenario::{Destination, FlowSource};
    use kpconform_iptables::model::{Protocol, RuleSet};
    use kpconform_iptables::parse_str;

    fn recorded(case: &str) -> (RuleSet, SourceFile) {
        let path = kpconform_golden::recordings()
            .join(format!("kube-proxy-v1.30/outputs/{case}.rules"))
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let rules = parse_str(&text).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        (rules, SourceFile::new(format!("{case}.rules"), text))
    }

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    fn mass(s: &str) -> Mass {
        Mass::from_str(s).unwrap()
    }

    fn node_a() -> Vec<IpNet> {
        vec!["192.168.0.10/24".parse().unwrap()]
    }

    fn flow(from: FlowSource, to: &str, expect: Expect) -> Flow {
        Flow {
            name: "a flow".into(),
            node: "node-a".into(),
            from,
            to: Destination {
                addr: to.parse().unwrap(),
                protocol: Protocol::Tcp,
            },
            expect,
            tolerance: dec("0.000001"),
            span: Span::default(),
        }
    }

    fn client() -> FlowSource {
        FlowSource::Ip("203.0.113.7".parse().unwrap())
    }

    fn endpoints(list: &[(&str, &str)]) -> Option<BTreeMap<SocketAddr, BigRational>> {
        Some(
            list.iter()
                .map(|(a, p)| (a.parse().unwrap(), exact::from_decimal(&dec(p))))
                .collect(),
        )
    }

    #[test]
    fn etp_local_external_client_passes_kubernetes_expectations() {
        let (rules, _) = recorded("nodeport-etp-local-2-local-1-remote");
        let tracer = Tracer::new(&rules, &node_a());
        let expect = Expect {
            endpoints: endpoints(&[("10.64.0.5:8080", "0.5"), ("10.64.0.77:8080", "0.5")]),
            verdict: Some(Verdict::Accept),
            masquerade: Some(false),
            ..Expect::default()
        };
        let report = check_flow(&tracer, &flow(client(), "192.168.0.10:31080", expect));
        assert!(report.passed(), "{report}");
        assert_eq!(report.render(None), "PASS \"a flow\" on node-a\n");
    }

    #[test]
    fn wrong_and_unlisted_endpoints_fail() {
        let (rules, _) = recorded("nodeport-etp-local-2-local-1-remote");
        let tracer = Tracer::new(&rules, &node_a());
        // What a Cluster policy would give: all three endpoints.
        let expect = Expect {
            endpoints: endpoints(&[
                ("10.64.0.5:8080", "0.3333333333"),
                ("10.64.0.77:8080", "0.3333333333"),
                ("10.64.1.28:8080", "0.3333333334"),
            ]),
            ..Expect::default()
        };
        let report = check_flow(&tracer, &flow(client(), "192.168.0.10:31080", expect));
        let dests: Vec<_> = report
            .failures
            .iter()
            .map(|f| match f {
                Failure::Endpoint {
                    destination,
                    actual,
                    ..
                } => (destination.to_string(), actual.clone()),
                other => panic!("unexpected failure {other}"),
            })
            .collect();
        assert_eq!(
            dests,
            vec![
                ("10.64.0.5:8080".into(), mass("0.5")),
                ("10.64.0.77:8080".into(), mass("0.5")),
                ("10.64.1.28:8080".into(), mass("0")),
            ]
        );

        let expect = Expect {
            endpoints: endpoints(&[("10.64.0.5:8080", "1")]),
            ..Expect::default()
        };
        let report = check_flow(&tracer, &flow(client(), "192.168.0.10:31080", expect));
        assert_eq!(report.failures.len(), 2, "{report}");
        assert!(matches!(
            &report.failures[1],
            Failure::UnlistedEndpoint { destination, actual }
                if destination.to_string() == "10.64.0.77:8080" && *actual == mass("0.5")
        ));
    }

    #[test]
    fn keeping_only_failing_distributions_judges_and_renders_the_same() {
        let (rules, source) = recorded("nodeport-etp-local-2-local-1-remote");
        let tracer = Tracer::new(&rules, &node_a());
        let e = |list: &[(&str, &str)]| Expect {
            endpoints: endpoints(list),
            ..Expect::default()
        };
        let halves = [("10.64.0.5:8080", "0.5"), ("10.64.0.77:8080", "0.5")];
        let mut cases = vec![
            (e(&halves), "0.000001"),
            // Exactly on the tolerance's edge: 0.5 - 0.4 = 0.1.
            (
                e(&[("10.64.0.5:8080", "0.4"), ("10.64.0.77:8080", "0.6")]),
                "0.1",
            ),
            (
                e(&[("10.64.0.5:8080", "0.4"), ("10.64.0.77:8080", "0.6")]),
                "0.0999",
            ),
            (e(&[("10.64.0.5:8080", "1")]), "0.000001"),
            (e(&[("10.64.0.5:8080", "0.5")]), "0.000001"),
            (
                e(&[
                    ("10.64.0.5:8080", "0.3333333333"),
                    ("10.64.0.77:8080", "0.3333333333"),
                    ("10.64.1.28:8080", "0.3333333334"),
                ]),
                "0.000001",
            ),
        ];
        for verdict in [Verdict::Accept, Verdict::Drop] {
            cases.push((
                Expect {
                    verdict: Some(verdict),
                    ..Expect::default()
                },
                "0",
            ));
        }
        for masquerade in [false, true] {
            cases.push((
                Expect {
                    masquerade: Some(masquerade),
                    ..e(&halves)
                },
                "0",
            ));
        }
        let mut passed = 0;
        for (expect, tol) in cases {
            let mut f = flow(client(), "192.168.0.10:31080", expect);
            f.tolerance = dec(tol);
            let all = check_flow(&tracer, &f);
            let failing = check_flow_keeping(&tracer, &f, Keep::Failing);
            assert_eq!(failing.failures, all.failures, "{all}");
            assert_eq!(failing.render(Some(&source)), all.render(Some(&source)));
            assert!(all.distribution.is_some());
            assert_eq!(failing.distribution.is_some(), !all.passed(), "{all}");
            passed += usize::from(all.passed());
        }
        // Both kinds were exercised.
        assert_eq!(passed, 4);
    }

    #[test]
    fn listed_probabilities_must_sum_to_the_accepted_mass() {
        let (rules, _) = recorded("nodeport-etp-local-2-local-1-remote");
        let tracer = Tracer::new(&rules, &node_a());
        let mut f = flow(
            client(),
            "192.168.0.10:31080",
            Expect {
                endpoints: endpoints(&[("10.64.0.5:8080", "0.6"), ("10.64.0.77:8080", "0.6")]),
                ..Expect::default()
            },
        );
        f.tolerance = dec("0.15");
        let report = check_flow(&tracer, &f);
        assert_eq!(
            report.failures,
            vec![Failure::EndpointSum {
                expected: BigRational::new(6.into(), 5.into()),
                actual: mass("1")
            }]
        );
    }

    fn recorded_ipv6(case: &str) -> RuleSet {
        let path = kpconform_golden::recordings()
            .join(format!("kube-proxy-v1.30-ipv6/outputs/{case}.rules"))
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_str(&text).unwrap_or_else(|e| panic!("{path}: {e:?}"))
    }

    /// Recorded as `dualstack-clusterip` (IPv4) and `dualstack-clusterip-ipv6`.
    const DUAL_STACK: &str = r#"description: dual-stack cluster IPs
cluster:
  clusterCIDR: "10.64.0.0/16,fd00:10:64::/48"
  nodes:
    - {name: node-a, addresses: [192.168.0.10, "fd00:192:168::10"]}
  objects: []
flows:
  - name: IPv4 pod
    node: node-a
    from: 10.64.0.200
    to: 10.96.12.34:80/tcp
    expect:
      endpoints: {10.64.0.218:3000: 1/3, 10.64.1.81:3000: 1/3, 10.64.2.175:3000: 1/3}
      masquerade: false
  - name: IPv6 pod
    node: node-a
    from: "fd00:10:64:a::200"
    to: "[fd00:10:96::1234]:80/tcp"
    expect:
      endpoints: {"[fd00:10:64:a::218]:3000": 1/3, "[fd00:10:64:b::81]:3000": 1/3, "[fd00:10:64:c::175]:3000": 1/3}
      masquerade: false
  - name: IPv6 node
    node: node-a
    from: node
    to: "[fd00:10:96::1234]:80/tcp"
    expect:
      endpoints: {"[fd00:10:64:a::218]:3000": 1/3, "[fd00:10:64:b::81]:3000": 1/3, "[fd00:10:64:c::175]:3000": 1/3}
      masquerade: true
"#;

    fn dual_stack() -> Scenario {
        Scenario::from_source(&SourceFile::new("dual.yaml", DUAL_STACK), "dualstack/x")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn check_node_family_traces_the_flows_of_its_family() {
        let scenario = dual_stack();
        let mode = ProbabilityMode::Kernel;
        let v6 = recorded_ipv6("dualstack-clusterip-ipv6");
        let report = check_node_family(&v6, &scenario, "node-a", Family::Ipv6, None, mode).unwrap();
        assert_eq!(report.family, Family::Ipv6);
        let names: Vec<&str> = report.flows.iter().map(|f| f.flow.as_str()).collect();
        assert_eq!(names, ["IPv6 pod", "IPv6 node"]);
        assert!(report.passed(), "{}", report.render(None));
        // check_node takes the family from the rules.
        let auto = check_node(&v6, &scenario, "node-a", None, mode).unwrap();
        assert_eq!(auto.family, Family::Ipv6);
        assert_eq!(auto.flows.len(), 2);

        let v4 = recorded_ipv6("dualstack-clusterip");
        let report = check_node_family(&v4, &scenario, "node-a", Family::Ipv4, None, mode).unwrap();
        let names: Vec<&str> = report.flows.iter().map(|f| f.flow.as_str()).collect();
        assert_eq!(names, ["IPv4 pod"]);
        assert!(report.passed(), "{}", report.render(None));
        assert_eq!(
            check_node(&v4, &scenario, "node-a", None, mode)
                .unwrap()
                .family,
            Family::Ipv4
        );
        assert!(check_node_family(&v4, &scenario, "node-z", Family::Ipv4, None, mode).is_none());
    }

    #[test]
    fn rules_of_the_wrong_family_are_a_clear_violation() {
        let scenario = dual_stack();
        let mode = ProbabilityMode::Kernel;
        // IPv4 rules given as the IPv6 ones: the IPv6 flows fail, and the
        // invariants say why.
        let v4 = recorded_ipv6("dualstack-clusterip");
        let report = check_node_family(&v4, &scenario, "node-a", Family::Ipv6, None, mode).unwrap();
        assert!(!report.passed());
        assert_eq!(report.violations[0].invariant, "rules-family");
        assert_eq!(
            report.violations[0].message,
            "these are IPv4 rules (iptables-save), but they were given as node-a's IPv6 rules \
             (expected ip6tables-save output)"
        );
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        assert!(report.flows.iter().all(|f| !f.passed()));
        // And the other way round, rendered at the first addressed rule.
        let v6 = recorded_ipv6("ipv6-clusterip-1-endpoint");
        let report = check_node_family(&v6, &scenario, "node-a", Family::Ipv4, None, mode).unwrap();
        let text = report.render(None);
        assert!(
            text.contains(
                "these are IPv6 rules (ip6tables-save), but they were given as node-a's IPv4 rules"
            ),
            "{text}"
        );
        assert!(text.contains("[rules-family]"), "{text}");
        // Rules naming no address fit either family.
        let bare = parse_str("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n").unwrap();
        let report =
            check_node_family(&bare, &scenario, "node-a", Family::Ipv6, None, mode).unwrap();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }

    #[test]
    fn route_localnet_ignores_ipv6_node_port_addresses() {
        let nets =
            |list: &[&str]| -> Vec<IpNet> { list.iter().map(|n| n.parse().unwrap()).collect() };
        // No IPv4 CIDR: the IPv4 proxier opens node ports everywhere.
        assert!(route_localnet(&nets(&["fd00:192:168::/64"])));
        assert!(route_localnet(&nets(&["::1/128"])));
        assert!(!route_localnet(&nets(&[
            "fd00:192:168::/64",
            "192.168.0.0/24"
        ])));
        assert!(route_localnet(&nets(&["::/0", "127.0.0.0/8"])));
    }

    #[test]
    fn verdict_and_masquerade_expectations() {
        let (rules, _) = recorded("nodeport-etp-local-no-local-endpoint");
        let node_b = ["192.168.0.11/24".parse().unwrap()];
        let tracer = Tracer::new(&rules, &node_b);
        let drop = Expect {
            verdict: Some(Verdict::Drop),
            ..Expect::default()
        };
        assert!(check_flow(&tracer, &flow(client(), "192.168.0.11:30080", drop)).passed());
        let accept = Expect {
            verdict: Some(Verdict::Accept),
            masquerade: Some(false),
            ..Expect::default()
        };
        let report = check_flow(&tracer, &flow(client(), "192.168.0.11:30080", accept));
        assert_eq!(
            report.failures,
            vec![
                Failure::Verdict {
                    expected: Verdict::Accept,
                    actual: vec![(Verdict::Drop, mass("1"))]
                },
                Failure::NoAcceptedTraffic,
            ]
        );

        // From the node itself the traffic is masqueraded.
        let (rules, _) = recorded("nodeport-etp-local-2-local-1-remote");
        let tracer = Tracer::new(&rules, &node_a());
        let no_masq = Expect {
            masquerade: Some(false),
            ..Expect::default()
        };
        let report = check_flow(
            &tracer,
            &flow(FlowSource::Node, "192.168.0.10:31080", no_masq),
        );
        match report.failures.as_slice() {
            [Failure::Masquerade {
                expected: false,
                wrong,
            }] => assert_eq!(wrong.len(), 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sticky_holds_only_with_session_affinity() {
        let sticky = |s| Expect {
            sticky: Some(s),
            ..Expect::default()
        };
        let (rules, _) = recorded("clusterip-session-affinity-timeout-600");
        let tracer = Tracer::new(&rules, &node_a());
        let to = "10.96.7.70:443";
        let report = check_flow(&tracer, &flow(client(), to, sticky(true)));
        assert!(report.passed(), "{report}");
        assert_eq!(report.second.len(), 2);
        let report = check_flow(&tracer, &flow(client(), to, sticky(false)));
        assert_eq!(report.failures, vec![Failure::UnexpectedlySticky]);

        let (rules, _) = recorded("clusterip-2-endpoints");
        let tracer = Tracer::new(&rules, &node_a());
        let to = "10.96.14.20:8080";
        let report = check_flow(&tracer, &flow(client(), to, sticky(true)));
        assert_eq!(report.failures.len(), 2, "{report}");
        assert!(report
            .failures
            .iter()
            .all(|f| matches!(f, Failure::NotSticky { same, .. } if *same == mass("0.5"))));
        assert!(check_flow(&tracer, &flow(client(), to, sticky(false))).passed());
    }

    #[test]
    fn a_failure_explains_packet_distributions_and_walks() {
        let (rules, source) = recorded("nodeport-etp-local-2-local-1-remote");
        let tracer = Tracer::new(&rules, &node_a());
        let expect = Expect {
            endpoints: endpoints(&[("10.64.1.28:8080", "1")]),
            masquerade: Some(true),
            ..Expect::default()
        };
        let mut f = flow(client(), "192.168.0.10:31080", expect);
        f.span = Span::new(0, 1, 42);
        let text = check_flow(&tracer, &f).render(Some(&source));
        for needle in [
            "FAIL \"a flow\" on node-a (scenario line 42)",
            "packet: 203.0.113.7 -> 192.168.0.10:31080/tcp (source port 40000, kernel probabilities)",
            "endpoint 10.64.1.28:8080: expected p=1, got p=0",
            "expected masquerade: true, but traffic to 10.64.0.5:8080 (p=0.5), 10.64.0.77:8080 (p=0.5) is not masqueraded",
            "accept 10.64.1.28:8080  p=1",
            "accept 10.64.0.5:8080  p=0.5",
            "[1] accept 10.64.0.5:8080  p=0.5",
            "nat PREROUTING > KUBE-SERVICES > KUBE-NODEPORTS > KUBE-EXT-KKDGWRPDK6Z5NCHS",
            "nat KUBE-NODEPORTS line 60: -A KUBE-NODEPORTS -p tcp -m comment --comment \"default/api:http\" -m tcp --dport 31080 -j KUBE-EXT-KKDGWRPDK6Z5NCHS",
            "nat KUBE-SVL-KKDGWRPDK6Z5NCHS line 76: -A KUBE-SVL-KKDGWRPDK6Z5NCHS",
            "-j KUBE-SEP-4LXD63IHTXJHBTAZ  [statistic taken, p=0.5]",
            "nat KUBE-SVL-KKDGWRPDK6Z5NCHS line 76: not taken (1 statistic rule(s))",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn a_dropped_path_is_explained_with_its_nat_walk_and_labelled_lines() {
        let (rules, source) = recorded("nodeport-etp-local-no-local-endpoint");
        let node_b = ["192.168.0.11/24".parse().unwrap()];
        let tracer = Tracer::new(&rules, &node_b);
        let expect = Expect {
            verdict: Some(Verdict::Accept),
            ..Expect::default()
        };
        let text = check_flow(&tracer, &flow(client(), "192.168.0.11:30080", expect))
            .render(Some(&source));
        for needle in [
            // The header: the nat walk that led to the DROP, ending where
            // the packet fell off the node port's KUBE-EXT chain.
            "        nat PREROUTING > KUBE-SERVICES > KUBE-NODEPORTS > KUBE-EXT-67NZLRHBNDSAWJRO (end, return) \
             | filter INPUT > KUBE-EXTERNAL-SERVICES > DROP\n",
            // Every line labelled with its table and chain.
            "        nat PREROUTING:\n          nat PREROUTING line 51: -A PREROUTING ",
            "          nat KUBE-NODEPORTS line 58: -A KUBE-NODEPORTS -p tcp ",
            "          nat KUBE-EXT-67NZLRHBNDSAWJRO (end, return)\n          nat KUBE-NODEPORTS (end, return)\n",
            "        filter INPUT:\n          filter INPUT line 20: -A INPUT -j KUBE-FIREWALL\n          filter KUBE-FIREWALL (end, return)\n",
            "          filter KUBE-EXTERNAL-SERVICES line 31: -A KUBE-EXTERNAL-SERVICES -p tcp ",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        // Without the source, the action stands in for the rule text.
        let text = check_flow(
            &tracer,
            &flow(
                client(),
                "192.168.0.11:30080",
                Expect {
                    verdict: Some(Verdict::Accept),
                    ..Expect::default()
                },
            ),
        )
        .render(None);
        assert!(
            text.contains("          filter KUBE-EXTERNAL-SERVICES line 31: DROP\n"),
            "{text}"
        );
    }

    #[test]
    fn route_localnet_follows_kube_proxys_localhost_node_ports() {
        let nets =
            |list: &[&str]| -> Vec<IpNet> { list.iter().map(|n| n.parse().unwrap()).collect() };
        // Empty: node ports on every local address, 127.0.0.1 included.
        assert!(route_localnet(&[]));
        assert!(route_localnet(&nets(&["0.0.0.0/0"])));
        assert!(route_localnet(&nets(&["172.16.5.0/24", "127.0.0.0/8"])));
        // kube-proxy's ContainsIPv4Loopback: a loopback network address
        // counts even when the CIDR does not hold 127.0.0.0 or 127.0.0.1.
        assert!(route_localnet(&nets(&["127.0.0.1/32"])));
        assert!(route_localnet(&nets(&["127.0.0.2/32"])));
        assert!(route_localnet(&nets(&["126.0.0.0/7"])));
        assert!(!route_localnet(&nets(&["192.168.0.0/24"])));
        assert!(!route_localnet(&nets(&["128.0.0.0/1", "10.0.0.0/8"])));
    }

    #[test]
    fn without_route_localnet_localhost_node_ports_from_the_network_are_martians() {
        // Recorded with nodePortAddresses [192.168.0.0/24]: kube-proxy leaves
        // route_localnet off, and 127.0.0.1 is not a node port address.
        let (rules, source) = recorded("nodeport-nodeportaddresses-one-cidr");
        let npa: Vec<IpNet> = vec!["192.168.0.0/24".parse().unwrap()];
        let tracer = Tracer::new(&rules, &node_a()).with_route_localnet(route_localnet(&npa));
        let drop = Expect {
            verdict: Some(Verdict::Drop),
            ..Expect::default()
        };
        let report = check_flow(&tracer, &flow(client(), "127.0.0.1:30080", drop.clone()));
        assert!(report.passed(), "{}", report.render(Some(&source)));
        let dist = report.distribution.as_ref().unwrap();
        assert_eq!(
            dist.outcomes[0].path(),
            "nat PREROUTING > KUBE-SERVICES (end, return) \
             | routing > DROP martian destination 127.0.0.1 (route_localnet=0 on eth0)"
        );
        // The explanation of a failing expectation says why.
        let accept = Expect {
            verdict: Some(Verdict::Accept),
            ..Expect::default()
        };
        let text =
            check_flow(&tracer, &flow(client(), "127.0.0.1:30080", accept)).render(Some(&source));
        assert!(
            text.contains("        routing:\n          DROP martian destination 127.0.0.1 (route_localnet=0 on eth0)\n"),
            "{text}"
        );
        // The node port on the selected address is DNATed and routed on.
        let to_pod = check_flow(
            &tracer,
            &flow(
                client(),
                "192.168.0.10:30080",
                Expect {
                    verdict: Some(Verdict::Accept),
                    ..Expect::default()
                },
            ),
        );
        assert!(to_pod.passed(), "{to_pod}");

        // With route_localnet (kube-proxy's default nodePortAddresses), the
        // node port on 127.0.0.1 DNATs the same packet to an endpoint.
        let (rules, _) = recorded("nodeport-etp-cluster");
        let tracer = Tracer::new(&rules, &node_a()).with_route_localnet(route_localnet(&[]));
        let report = check_flow(&tracer, &flow(client(), "127.0.0.1:30080", drop));
        let dist = report.distribution.as_ref().unwrap();
        assert!(
            dist.outcomes.iter().all(|o| o.verdict == Verdict::Accept
                && o.dnated()
                && !o.destination.ip().is_loopback()),
            "{dist}"
        );
    }

    #[test]
    fn a_trace_error_is_a_failure_rendered_at_its_rule() {
        let text =
            "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n-A PREROUTING -j A\n-A A -j A\nCOMMIT\n";
        let rules = parse_str(text).unwrap();
        let source = SourceFile::new("loop.rules", text);
        let tracer = Tracer::new(&rules, &node_a());
        let expect = Expect {
            verdict: Some(Verdict::Accept),
            ..Expect::default()
        };
        let report = check_flow(&tracer, &flow(client(), "10.96.0.1:80", expect));
        assert!(matches!(report.failures.as_slice(), [Failure::Trace(_)]));
        let out = report.render(Some(&source));
        assert!(
            out.contains("loop.rules:5:1: nat: chain loop A (line 5) -> A"),
            "{out}"
        );
        assert!(out.contains("5 | -A A -j A"), "{out}");
    }
}

/// Everything checked for one node's rules against one scenario: each of the
/// node's flows, and the invariants.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// The scenario id.
    pub scenario: String,
    /// The node.
    pub node: String,
    /// The family of the rules checked (and of the flows traced).
    pub family: Family,
    /// The invariant profile applied.
    pub profile: Profile,
    /// One report per flow of this node, in scenario order.
    pub flows: Vec<FlowReport>,
    /// Broken invariants.
    pub violations: Vec<crate::invariants::Violation>,
}

impl NodeReport {
    /// Whether every flow and every invariant passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.flows.iter().all(FlowReport::passed)
    }

    /// How many flows failed.
    pub fn failed_flows(&self) -> usize {
        self.flows.iter().filter(|f| !f.passed()).count()
    }

    /// The explanation of every failure (flows, then invariants), or one
    /// line per flow when everything passed. With the rules' `source`,
    /// rule text and carets are shown.
    pub fn render(&self, source: Option<&SourceFile>) -> String {
        let mut out = String::new();
        for f in &self.flows {
            out.push_str(&f.render(source));
        }
        if !self.violations.is_empty() {
            let _ = writeln!(
                out,
                "FAIL {} invariant violation(s) ({} profile)",
                self.violations.len(),
                self.profile
            );
            for v in &self.violations {
                match source {
                    Some(src) => {
                        let _ = writeln!(out, "{}", indent(&src.render(v.span, v), "  "));
                    }
                    None => {
                        let _ = writeln!(out, "  line {}: {v}", v.span.line);
                    }
                }
            }
        }
        out
    }
}

/// Whether kube-proxy sets `net.ipv4.conf.all.route_localnet=1` on a node
/// with these `--nodeport-addresses`: only when node ports are open on
/// localhost, that is when the list has no IPv4 CIDR (kube-proxy's IPv4
/// proxier then opens them on all local addresses) or one of its IPv4
/// CIDRs contains a loopback address (kube-proxy's `ContainsIPv4Loopback`:
/// the CIDR contains 127.0.0.0 or its address is a loopback one, i.e. it
/// overlaps 127.0.0.0/8). IPv6 CIDRs are the IPv6 proxier's business and
/// are ignored. `--iptables-localhost-nodeports`, which the scenario format
/// does not have, is taken at its default (true).
///
/// Without it the kernel drops a packet from the network to 127.0.0.0/8
/// before INPUT or FORWARD unless nat PREROUTING DNATed it elsewhere
/// ([`Tracer::with_route_localnet`]). IPv6 has no such setting: kube-proxy
/// never opens node ports on `::1`, and [`check_node_family`] applies this
/// to IPv4 flows only.
pub fn route_localnet(node_port_addresses: &[ipnet::IpNet]) -> bool {
    let loopback_start = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0));
    let mut ipv4 = node_port_addresses
        .iter()
        .filter(|n| matches!(n, ipnet::IpNet::V4(_)))
        .peekable();
    ipv4.peek().is_none() || ipv4.any(|n| n.network().is_loopback() || n.contains(&loopback_start))
}

/// A flow's family: that of its destination address (a flow's source, when
/// an address, is of the same family: the loader insists).
pub fn flow_family(flow: &crate::scenario::Flow) -> Family {
    Family::of(flow.to.addr.ip())
}

/// Checks `rules` as node `node`'s rules for `scenario`: every flow of that
/// node (traced in `mode`) and the invariants of `profile` (detected from
/// the rules when `None`). `None` when the scenario has no such node.
///
/// The rules are taken as those of their own family ([`RuleSet::family`]),
/// or, for a rule set that names no address, of the family of the node's
/// first address; only the flows of that family are traced. A dual-stack
/// node has one rule set per family: see [`check_node_family`].
pub fn check_node(
    rules: &RuleSet,
    scenario: &Scenario,
    node: &str,
    profile: Option<Profile>,
    mode: ProbabilityMode,
) -> Option<NodeReport> {
    let spec = scenario.node(node)?;
    let family = rules
        .family()
        .or_else(|| spec.addresses.first().map(|a| Family::of(a.addr())))
        .unwrap_or(Family::Ipv4);
    check_node_family(rules, scenario, node, family, profile, mode)
}

/// Checks `rules` as node `node`'s `family` rules for `scenario`: the
/// node's flows of that family (a flow's family is that of its `to`
/// address), traced with all of the node's addresses (the tracer picks the
/// node IP of the packet's family) and, for IPv4 only, kube-proxy's
/// `route_localnet`; then the invariants of `profile` (detected from the
/// rules when `None`), plus a `rules-family` violation when the rules are
/// of the other family ([`crate::invariants::check_family`]). `None` when
/// the scenario has no such node.
pub fn check_node_family(
    rules: &RuleSet,
    scenario: &Scenario,
    node: &str,
    family: Family,
    profile: Option<Profile>,
    mode: ProbabilityMode,
) -> Option<NodeReport> {
    check_node_family_keeping(rules, scenario, node, family, profile, mode, Keep::All)
}

/// [`check_node_family`], keeping the flows' distributions as `keep` says
/// (the same judgements and rendered report either way).
pub fn check_node_family_keeping(
    rules: &RuleSet,
    scenario: &Scenario,
    node: &str,
    family: Family,
    profile: Option<Profile>,
    mode: ProbabilityMode,
    keep: Keep,
) -> Option<NodeReport> {
    let spec = scenario.node(node)?;
    let localnet = family == Family::Ipv4 && route_localnet(&scenario.cluster.node_port_addresses);
    let tracer = Tracer::new(rules, &spec.addresses)
        .with_mode(mode)
        .with_route_localnet(localnet);
    let flows = scenario
        .flows
        .iter()
        .filter(|f| f.node == node && flow_family(f) == family)
        .map(|f| check_flow_keeping(&tracer, f, keep))
        .collect();
    let profile = profile.unwrap_or_else(|| crate::invariants::detect_profile(rules));
    let mut violations = crate::invariants::check(rules, profile);
    if let Some(v) = crate::invariants::check_family(rules, family, node) {
        violations.insert(0, v);
    }
    Some(NodeReport {
        scenario: scenario.id.clone(),
        node: node.to_string(),
        family,
        profile,
        flows,
        violations,
    })
}
