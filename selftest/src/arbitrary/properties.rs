//! The properties the fuzz targets, the proptest suite and `kpconform fuzz`
//! check, as plain functions: each returns the first [`Finding`] or `Ok`.
//!
//! A fuzz target is then a few lines (build the input, call the property,
//! panic with the finding and the case's reproducer), and a crash it finds
//! replays as an ordinary `#[test]` through the same function.
//!
//! ```
//! use kpconform_selftest::arbitrary::{properties, Case};
//! use kpconform_harness::FnGenerator;
//!
//! // A "generator" that installs nothing breaks the kube-proxy invariants.
//! let empty = FnGenerator::new("empty", |_: &_| Ok("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n".to_string()));
//! let finding = properties::invariants(&Case::from_seed(1), &empty).unwrap_err();
//! assert_eq!(finding.property, "invariants");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;

use bigdecimal::BigDecimal;

use super::{Case, Entropy, Probe};
use kpconform_harness::{Generator, Request};
use kpconform_iptables::model::{Family, RuleSet};
use kpconform_iptables::Mode;
use kpconform_iptables::ProbabilityMode;
use kpconform_iptables::{normalize, ORDER_FREE_CHAINS};
use kpconform_iptables::{Distribution, Tracer, Verdict};
use kpconform_iptables::{SourceFile, Span};
use kpconform_suite::check::check_flow;
use kpconform_suite::invariants::{self, Profile};
use kpconform_suite::oracle::{Oracle, OracleError, Prediction};
use kpconform_suite::scenario::{Expect, Flow, NodeSpec};

/// Trace limits for rule sets the fuzzer made up: small enough that a jump
/// maze costs milliseconds, large enough for any real dump's walk.
const FUZZ_PATHS: usize = 1_000;
const FUZZ_EVALUATIONS: u64 = 200_000;

/// A broken property: which one, on which node and family, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The property's name (the fuzz target's, for most).
    pub property: &'static str,
    /// The node whose rules broke it, if it is about one.
    pub node: Option<String>,
    /// The family of the node's rules that broke it, if it is about one.
    pub family: Option<Family>,
    /// What was expected and what happened.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.node, self.family) {
            (Some(node), Some(family)) => write!(
                f,
                "{} on {node} ({family}): {}",
                self.property, self.message
            ),
            (Some(node), None) => write!(f, "{} on {node}: {}", self.property, self.message),
            (None, _) => write!(f, "{}: {}", self.property, self.message),
        }
    }
}

impl std::error::Error for Finding {}

fn finding(property: &'static str, node: Option<&str>, message: String) -> Finding {
    Finding {
        property,
        node: node.map(str::to_string),
        family: None,
        message,
    }
}

/// A finding about `node`'s rules of `family`.
fn finding_on(property: &'static str, at: (&NodeSpec, Family), message: String) -> Finding {
    Finding {
        property,
        node: Some(at.0.name.clone()),
        family: Some(at.1),
        message,
    }
}

/// Every (node, family) whose rules a generator is asked for: each node
/// once per family it has an address of, IPv4 first.
fn node_families(case: &Case) -> Vec<(&NodeSpec, Family)> {
    case.cluster
        .nodes
        .iter()
        .flat_map(|n| n.families().into_iter().map(move |f| (n, f)))
        .collect()
}

/// Parser, printer, normalizer, invariants and tracer on any text: nothing
/// panics, every error has a line and a span inside the text, normalizing
/// is idempotent, and a parsed rule set prints to text that parses back to
/// the same rule set (which then prints the same).
pub fn parse_rules(text: &str) -> Result<(), Finding> {
    const P: &str = "parse_rules";
    let once = normalize(text);
    if normalize(&once) != once {
        return Err(finding(
            P,
            None,
            format!("normalize is not idempotent on its output:\n{once}"),
        ));
    }
    let source = SourceFile::new("<fuzz>", text);
    for mode in [Mode::Strict, Mode::Lax] {
        let parsed = match kpconform_iptables::parse(text, mode) {
            Ok(parsed) => parsed,
            Err(errors) => {
                if errors.is_empty() {
                    return Err(finding(
                        P,
                        None,
                        format!("{mode:?} parse failed without an error"),
                    ));
                }
                for e in &errors {
                    check_span(&source, e.span, &e.message)?;
                    let _ = e.render(&source);
                }
                continue;
            }
        };
        for w in &parsed.warnings {
            check_span(&source, w.span, &w.message)?;
            let _ = w.render(&source);
        }
        let printed = kpconform_iptables::print(&parsed.rules);
        let again = kpconform_iptables::parse(&printed, mode).map_err(|errors| {
            let first = errors
                .first()
                .map(|e| e.render(&SourceFile::new("<printed>", printed.as_str())));
            finding(
                P,
                None,
                format!(
                    "{mode:?}: the printed rule set does not parse back: {}\n{printed}",
                    first.unwrap_or_default()
                ),
            )
        })?;
        if again.rules != parsed.rules {
            return Err(finding(
                P,
                None,
                format!("{mode:?}: the printed rule set parses to a different one:\n{printed}"),
            ));
        }
        if kpconform_iptables::print(&again.rules) != printed {
            return Err(finding(
                P,
                None,
                format!("{mode:?}: printing is not stable:\n{printed}"),
            ));
        }
        for profile in [Profile::Generic, Profile::KubeProxy] {
            // A violation about the whole dump (a missing table) has no line.
            for v in invariants::check(&parsed.rules, profile)
                .into_iter()
                .filter(|v| v.span != Span::default())
            {
                check_span(&source, v.span, &v.message)?;
            }
        }
        trace_some(&parsed.rules)?;
    }
    Ok(())
}

fn check_span(source: &SourceFile, span: Span, message: &str) -> Result<(), Finding> {
    let text = source.text();
    let lines = text.split('\n').count() as u32;
    let ok = span.line >= 1
        && span.line <= lines
        && span.start <= span.end
        && span.end as usize <= text.len()
        && text.is_char_boundary(span.start as usize)
        && text.is_char_boundary(span.end as usize);
    // The line is the one `start` is on, as rendering computes it.
    if ok && source.line_col(span.start as usize).0 == span.line as usize {
        return Ok(());
    }
    Err(finding(
        "parse_rules",
        None,
        format!(
            "span {}..{} line {} is outside the text ({} bytes, {lines} lines): {message}",
            span.start,
            span.end,
            span.line,
            text.len()
        ),
    ))
}

/// A few packets through made-up rules: the tracer must end (within its
/// limits) and, when it finishes, account for all the mass.
fn trace_some(rules: &RuleSet) -> Result<(), Finding> {
    use kpconform_iptables::model::Protocol;
    use kpconform_iptables::Packet;
    use kpconform_suite::scenario::FlowSource;
    let node = [ipnet::IpNet::from(std::net::IpAddr::V4(
        super::cluster::NODE_IP,
    ))];
    let tracer = Tracer::new(rules, &node).with_limits(FUZZ_PATHS, FUZZ_EVALUATIONS);
    let packets = [
        Packet::new(
            FlowSource::Ip(super::cluster::CLIENTS[0].into()),
            SocketAddr::new(super::cluster::NODE_IP.into(), 30080),
            Protocol::Tcp,
        ),
        Packet::new(
            FlowSource::Node,
            SocketAddr::new([10, 96, 0, 10].into(), 53),
            Protocol::Udp,
        ),
    ];
    for packet in &packets {
        if let Ok(dist) = tracer.trace(packet) {
            if !dist.total().is_one() {
                return Err(finding(
                    "parse_rules",
                    None,
                    format!(
                        "{packet}: the outcomes sum to {}, not 1:\n{dist}",
                        dist.total()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// One node's rules of one family from `generator`, and their strict parse.
fn rules_of(
    property: &'static str,
    case: &Case,
    generator: &dyn Generator,
    at: (&NodeSpec, Family),
) -> Result<(String, RuleSet), Finding> {
    let (node, family) = at;
    let input = case
        .generator_input_for(&node.name, family)
        .ok_or_else(|| {
            finding_on(
                property,
                at,
                format!("not a node of the case with an {family} address"),
            )
        })?;
    let request = Request {
        scenario: "fuzz",
        node: &node.name,
        input: &input,
    };
    let text = generator
        .generate(&request)
        .map_err(|e| finding_on(property, at, format!("the generator failed: {e}")))?;
    let rules = kpconform_iptables::parse_str(&text).map_err(|errors| {
        let source = SourceFile::new(rules_file(at), text.as_str());
        let shown: Vec<String> = errors.iter().take(5).map(|e| e.render(&source)).collect();
        finding_on(
            property,
            at,
            format!("the rules do not parse:\n{}", shown.join("\n")),
        )
    })?;
    Ok((text, rules))
}

/// `node-a.rules`, `node-a.ipv6.rules`.
fn rules_file(at: (&NodeSpec, Family)) -> String {
    match at.1 {
        Family::Ipv4 => format!("{}.rules", at.0.name),
        Family::Ipv6 => format!("{}.ipv6.rules", at.0.name),
    }
}

/// Every node's rules parse strictly and break no kube-proxy invariant
/// (dispatch 1/n per endpoint with nothing unassigned, KUBE-NODEPORTS last, ...).
pub fn invariants(case: &Case, generator: &dyn Generator) -> Result<(), Finding> {
    const P: &str = "invariants";
    for at in node_families(case) {
        let (text, rules) = rules_of(P, case, generator, at)?;
        let violations = invariants::check(&rules, Profile::KubeProxy);
        if !violations.is_empty() {
            let source = SourceFile::new(rules_file(at), text.as_str());
            let shown: Vec<String> = violations
                .iter()
                .map(|v| source.render(v.span, v))
                .collect();
            return Err(finding_on(P, at, shown.join("\n")));
        }
    }
    Ok(())
}

/// Every probe's distribution sums to exactly 1 in both probability modes,
/// and kernel quantization reaches the same (verdict, destination,
/// masquerade) outcomes as the written probabilities.
pub fn distributions(case: &Case, generator: &dyn Generator) -> Result<(), Finding> {
    const P: &str = "distributions";
    for at in node_families(case) {
        let node = at.0;
        let (_, rules) = rules_of(P, case, generator, at)?;
        let kernel = Tracer::new(&rules, &node.addresses);
        let written = Tracer::new(&rules, &node.addresses).with_mode(ProbabilityMode::AsWritten);
        for probe in case.probes_of(&node.name, at.1) {
            let k = trace(P, &kernel, probe)?;
            let w = trace(P, &written, probe)?;
            for (mode, d) in [("kernel", &k), ("as-written", &w)] {
                if !d.total().is_one() {
                    return Err(finding_on(
                        P,
                        at,
                        format!("{}: {mode} outcomes sum to {}:\n{d}", probe.name, d.total()),
                    ));
                }
            }
            if reachable(&k) != reachable(&w) {
                return Err(finding_on(P, at, format!("{}: kernel quantization changes what is reachable\nkernel:\n{k}as written:\n{w}", probe.name)));
            }
        }
    }
    Ok(())
}

fn trace(
    property: &'static str,
    tracer: &Tracer<'_>,
    probe: &Probe,
) -> Result<Distribution, Finding> {
    tracer.trace(&probe.packet()).map_err(|e| {
        finding(
            property,
            Some(&probe.node),
            format!("{}: the trace failed: {}", probe.name, e.message),
        )
    })
}

/// The outcomes with non-zero mass.
fn reachable(d: &Distribution) -> BTreeSet<(Verdict, SocketAddr, bool)> {
    d.summary()
        .into_iter()
        .filter(|(_, p)| !p.is_zero())
        .map(|(k, _)| k)
        .collect()
}

/// The generator's text prints back byte for byte from its parse, and the
/// printed text parses to the same rule set (`parse_str(print(rs)) == rs`).
pub fn print_roundtrip(case: &Case, generator: &dyn Generator) -> Result<(), Finding> {
    const P: &str = "print_roundtrip";
    for at in node_families(case) {
        let (text, rules) = rules_of(P, case, generator, at)?;
        let printed = kpconform_iptables::print(&rules);
        let again = kpconform_iptables::parse_str(&printed).map_err(|e| {
            finding_on(
                P,
                at,
                format!(
                    "the printed rules do not parse: {}",
                    e.first().map(|e| e.to_string()).unwrap_or_default()
                ),
            )
        })?;
        if again != rules {
            return Err(finding_on(
                P,
                at,
                format!("parse(print(rules)) differs from rules:\n{printed}"),
            ));
        }
        if printed != text {
            let line = text
                .lines()
                .zip(printed.lines())
                .position(|(a, b)| a != b)
                .map_or(0, |i| i + 1);
            return Err(finding_on(
                P,
                at,
                format!("printing changes line {line} of the generator's text"),
            ));
        }
    }
    Ok(())
}

/// Normalizing is idempotent, and shuffling the rules of the order-free
/// chains ([`ORDER_FREE_CHAINS`], the `KUBE-NODEPORTS` jump kept in place)
/// changes neither the normalized text nor any probe's trace.
pub fn normalize_roundtrip(
    case: &Case,
    generator: &dyn Generator,
    e: &mut dyn Entropy,
) -> Result<(), Finding> {
    const P: &str = "normalize_roundtrip";
    for at in node_families(case) {
        let node = at.0;
        let (text, rules) = rules_of(P, case, generator, at)?;
        let normal = normalize(&text);
        if normalize(&normal) != normal {
            return Err(finding_on(
                P,
                at,
                format!("normalize is not idempotent:\n{normal}"),
            ));
        }
        let shuffled = shuffle_order_free(&text, e);
        if normalize(&shuffled) != normal {
            return Err(finding_on(P, at, format!("shuffling order-free chains changes the normalized text; shuffled:\n{shuffled}")));
        }
        let shuffled_rules = kpconform_iptables::parse_str(&shuffled).map_err(|e| {
            finding_on(
                P,
                at,
                format!(
                    "the shuffled rules do not parse: {}",
                    e.first().map(|e| e.to_string()).unwrap_or_default()
                ),
            )
        })?;
        let before = Tracer::new(&rules, &node.addresses);
        let after = Tracer::new(&shuffled_rules, &node.addresses);
        for probe in case.probes_of(&node.name, at.1) {
            let b = trace(P, &before, probe)?;
            let a = trace(P, &after, probe)?;
            if b.summary() != a.summary() {
                return Err(finding_on(P, at, format!("{}: shuffling order-free chains changes the trace\nbefore:\n{b}after:\n{a}", probe.name)));
            }
        }
    }
    Ok(())
}

/// Permutes each order-free chain's `-A` lines among their own positions,
/// leaving every `-j KUBE-NODEPORTS` line where it is.
pub fn shuffle_order_free(text: &str, e: &mut dyn Entropy) -> String {
    let mut owned = text.to_string();
    if !owned.ends_with('\n') {
        owned.push('\n');
    }
    let mut lines: Vec<&str> = owned.split_inclusive('\n').collect();
    let mut table_start = 0;
    // Per table block: chain -> positions of its movable lines.
    let mut groups: BTreeMap<(usize, &str), Vec<usize>> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('*') {
            table_start = i;
            continue;
        }
        let mut words = line.split_whitespace();
        if let (Some("-A"), Some(chain)) = (words.next(), words.next()) {
            let fixed = line
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w == ["-j", "KUBE-NODEPORTS"]);
            if ORDER_FREE_CHAINS.contains(&chain) && !fixed {
                groups.entry((table_start, chain)).or_default().push(i);
            }
        }
    }
    for positions in groups.values() {
        let mut moved: Vec<&str> = positions.iter().map(|i| lines[*i]).collect();
        for i in (1..moved.len()).rev() {
            let j = e.below(i as u64 + 1) as usize;
            moved.swap(i, j);
        }
        for (pos, line) in positions.iter().zip(moved) {
            lines[*pos] = line;
        }
    }
    lines.concat()
}

/// What a flow on `probe` must expect, by the oracle: the accepted mass per
/// destination, the verdict and masquerade when all outcomes agree, and
/// `sticky: true` where affinity is observable. `None` when the oracle
/// cannot say (several entry points claim the packet).
pub fn oracle_expect(case: &Case, probe: &Probe) -> Option<Expect> {
    let input = case.generator_input_for(&probe.node, probe.family())?;
    let prediction = Oracle::new(&input).predict(&probe.packet()).ok()?;
    Some(expect_of(&prediction))
}

fn expect_of(prediction: &Prediction) -> Expect {
    let accepted = prediction.accepted();
    let observable = accepted.len() >= 2;
    Expect {
        endpoints: (!accepted.is_empty()).then_some(accepted),
        verdict: prediction.verdict(),
        masquerade: prediction.masquerade(),
        sticky: (prediction.sticky && observable).then_some(true),
    }
}

/// `trace(generator(state))` agrees with the oracle for every probe: the
/// same mass per (verdict, destination, masquerade) within 1e-6, and a
/// second connection sticks exactly when session affinity applies. Probes
/// the oracle cannot decide (several entry points claim them) are skipped.
pub fn semantic_diff(case: &Case, generator: &dyn Generator) -> Result<(), Finding> {
    const P: &str = "semantic_diff";
    // The contract's default: kernel rounding of n dispatch rules stays far below it.
    let tolerance = BigDecimal::new(1.into(), 6);
    for at in node_families(case) {
        let node = at.0;
        let (_, rules) = rules_of(P, case, generator, at)?;
        let Some(input) = case.generator_input_for(&node.name, at.1) else {
            continue;
        };
        let oracle = Oracle::new(&input);
        let tracer = Tracer::new(&rules, &node.addresses);
        for probe in case.probes_of(&node.name, at.1) {
            let prediction = match oracle.predict(&probe.packet()) {
                Ok(p) => p,
                // No single answer; a new kind of error must be decided here.
                Err(OracleError::Overlap { .. } | OracleError::NoNodeAddress) => continue,
            };
            let traced = trace(P, &tracer, probe)?;
            if let Err(mismatch) = prediction.compare(&traced, &tolerance) {
                return Err(finding_on(P, at, format!("{}: {mismatch}", probe.name)));
            }
            if prediction.accepted().len() >= 2 {
                let flow = Flow {
                    name: probe.name.clone(),
                    node: node.name.clone(),
                    from: probe.from,
                    to: probe.to,
                    expect: Expect {
                        sticky: Some(prediction.sticky),
                        ..Expect::default()
                    },
                    tolerance: tolerance.clone(),
                    span: Span::default(),
                };
                let report = check_flow(&tracer, &flow);
                if !report.passed() {
                    return Err(finding_on(P, at, report.to_string()));
                }
            }
        }
    }
    Ok(())
}
