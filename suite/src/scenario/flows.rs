//! Flows and their expectations (contract §1, §3).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;

use bigdecimal::BigDecimal;

use super::error::{did_you_mean, key_path, ErrorKind, Problem};
use super::fields::{boolean, ip, mapping, sequence, text, At, Fields};
use super::yaml::{is_decimal, Resolved};
use super::{Destination, Expect, Flow, FlowSource, NodeSpec};
use crate::exact::{self, BigRational};
use kpconform_iptables::model::Family;
use kpconform_iptables::Verdict;

const FLOW_KEYS: [&str; 6] = ["name", "node", "from", "to", "expect", "tolerance"];
const EXPECT_KEYS: [&str; 4] = ["endpoints", "verdict", "masquerade", "sticky"];

/// Exponents beyond this are refused: they cannot be meant, and a scale of
/// a billion digits would make every later comparison slow.
const MAX_EXPONENT: i64 = 100;

/// The default `tolerance`: 1e-6.
pub(crate) fn default_tolerance() -> BigDecimal {
    BigDecimal::new(1.into(), 6)
}

/// Reads `flows:`; flow names are unique and every flow's node exists.
pub(crate) fn read_flows(at: At<'_>, nodes: &[NodeSpec]) -> Result<Vec<Flow>, Problem> {
    let mut flows: Vec<Flow> = Vec::new();
    for item in sequence(at)? {
        let fields = Fields::open(item.at(), &FLOW_KEYS)?;
        let name_field = fields.required("name")?;
        let name = text(name_field.at())?.to_string();
        if flows.iter().any(|f| f.name == name) {
            return Err(Problem::new(
                ErrorKind::Duplicate,
                name_field.node.span,
                &name_field.path,
                format!("a flow named `{name}` already exists; flow names must be unique"),
            ));
        }
        let node_field = fields.required("node")?;
        let node = text(node_field.at())?.to_string();
        if !nodes.iter().any(|n| n.name == node) {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            let mut message = format!("no node `{node}` in cluster.nodes");
            match did_you_mean(&node, names.iter().copied()) {
                Some(s) => message.push_str(&format!("; did you mean `{s}`?")),
                None => message.push_str(&format!(" (nodes: {})", names.join(", "))),
            }
            return Err(Problem::new(
                ErrorKind::UnknownNode,
                node_field.node.span,
                &node_field.path,
                message,
            ));
        }
        let from_field = fields.required("from")?;
        let from = source(from_field.at())?;
        let to_field = fields.required("to")?;
        let to = destination(to_field.at())?;
        let family = Family::of(to.addr.ip());
        if let FlowSource::Ip(ip) = from {
            if Family::of(ip) != family {
                return Err(Problem::invalid(
                    from_field.node.span,
                    &from_field.path,
                    format!(
                        "`from` {ip} is an {} address, but `to` {to} is {}: a flow's source \
                         and destination are of one family (a dual-stack cluster has one flow \
                         per family)",
                        Family::of(ip),
                        family
                    ),
                ));
            }
        }
        // A node of the flow's family: its rules of that family exist (the
        // generator runs once per family the node has an address of), and
        // `from: node` has a source address.
        if let Some(spec) = nodes.iter().find(|n| n.name == node) {
            if !spec.families().contains(&family) {
                let addresses: Vec<String> = spec
                    .addresses
                    .iter()
                    .map(|a| a.addr().to_string())
                    .collect();
                return Err(Problem::invalid(
                    to_field.node.span,
                    &to_field.path,
                    format!(
                        "`to` {to} is an {family} destination, but node `{node}` has no {family} \
                         address (addresses: {}), so it has no {family} rules to trace; give the \
                         node an {family} address or send the flow to an address of its family",
                        addresses.join(", ")
                    ),
                ));
            }
        }
        let expect = expect(fields.required("expect")?.at(), family)?;
        let tolerance = match fields.optional("tolerance") {
            Some(f) => decimal(f.at())?,
            None => default_tolerance(),
        };
        flows.push(Flow {
            name,
            node,
            from,
            to,
            expect,
            tolerance,
            span: item.node.span,
        });
    }
    Ok(flows)
}

fn source(at: At<'_>) -> Result<FlowSource, Problem> {
    if text(at)? == "node" {
        return Ok(FlowSource::Node);
    }
    ip(at).map(FlowSource::Ip).map_err(|mut p| {
        p.message.push_str(" or `node`");
        p
    })
}

/// `IP:PORT/PROTO` (`[IPv6]:PORT/PROTO`) as [`Destination`]'s `FromStr` reads it, its error at the
/// value's span; scenarios keep the contract's lower-case protocol (the
/// spelling `Display` writes), which the parser alone would not insist on.
fn destination(at: At<'_>) -> Result<Destination, Problem> {
    let t = text(at)?;
    let d: Destination = t
        .parse()
        .map_err(|e: kpconform_iptables::DestinationError| {
            Problem::invalid(at.node.span, at.path, e.to_string())
        })?;
    if t.rsplit_once('/')
        .is_some_and(|(_, p)| p != p.to_ascii_lowercase())
    {
        return Err(Problem::invalid(
            at.node.span,
            at.path,
            format!(
                "`{t}` spells its protocol in upper case; scenarios write IP:PORT/PROTO with tcp, udp or sctp in lower case, like {d}"
            ),
        ));
    }
    Ok(d)
}

/// An `IP:PORT` (`[IPv6]:PORT`) with a port in 1..=65535.
fn socket(t: &str) -> Option<SocketAddr> {
    SocketAddr::from_str(t).ok().filter(|s| s.port() != 0)
}

/// A flow's `expect:`; `family` is the flow's, which every endpoint
/// destination shares (DNAT does not change a packet's family).
fn expect(at: At<'_>, family: Family) -> Result<Expect, Problem> {
    let fields = Fields::open(at, &EXPECT_KEYS)?;
    let mut expect = Expect::default();
    if let Some(f) = fields.get("endpoints") {
        expect.endpoints = Some(endpoints(f.at(), family)?);
    }
    if let Some(f) = fields.get("verdict") {
        expect.verdict = Some(match text(f.at())? {
            "accept" => Verdict::Accept,
            "drop" => Verdict::Drop,
            "reject" => Verdict::Reject,
            other => {
                return Err(Problem::invalid(
                    f.node.span,
                    &f.path,
                    format!("verdict `{other}` is not one of accept, drop, reject"),
                ))
            }
        });
    }
    if let Some(f) = fields.get("masquerade") {
        expect.masquerade = Some(boolean(f.at())?);
    }
    if let Some(f) = fields.get("sticky") {
        expect.sticky = Some(boolean(f.at())?);
    }
    if expect == Expect::default() {
        return Err(Problem::new(
            ErrorKind::MissingKey,
            at.node.span,
            at.path,
            format!("expect needs at least one of: {}", EXPECT_KEYS.join(", ")),
        ));
    }
    Ok(expect)
}

fn endpoints(at: At<'_>, family: Family) -> Result<BTreeMap<SocketAddr, BigRational>, Problem> {
    let mut out = BTreeMap::new();
    let mut total = exact::integer(0);
    for (key, value) in mapping(at)? {
        let key_text = key.scalar().map(|s| &*s.text).unwrap_or("");
        let path = key_path(at.path, key_text);
        let addr = socket(key_text).ok_or_else(|| {
            Problem::invalid(
                key.span,
                &path,
                format!(
                    "`{key_text}` is not an IP:PORT like 10.64.1.5:8080 or [fd00:10:64:a::5]:8080"
                ),
            )
        })?;
        if Family::of(addr.ip()) != family {
            return Err(Problem::invalid(
                key.span,
                &path,
                format!(
                    "endpoint {addr} is an {} address, but the flow is {family}: DNAT keeps a \
                     packet's family, so it can never be accepted there",
                    Family::of(addr.ip())
                ),
            ));
        }
        let p = probability(At {
            node: value,
            path: &path,
        })?;
        total += &p;
        if out.insert(addr, p).is_some() {
            return Err(Problem::new(
                ErrorKind::Duplicate,
                key.span,
                &path,
                format!("{addr} is listed twice"),
            ));
        }
    }
    // Exact: six `1/6` sum to 1, not a hair above.
    if total > exact::integer(1) {
        return Err(Problem::invalid(
            at.node.span,
            at.path,
            format!(
                "endpoint probabilities sum to {}, more than 1",
                exact::exact_text(&total)
            ),
        ));
    }
    Ok(out)
}

/// An exact probability in 0..=1: a decimal as written, or a fraction `a/b`
/// of decimals, kept as the fraction it is.
fn probability(at: At<'_>) -> Result<BigRational, Problem> {
    let p = match text(at).ok().and_then(|t| t.split_once('/')) {
        Some((num, den)) => {
            let num = parse_decimal(num).ok_or_else(|| not_a_probability(at))?;
            let den = parse_decimal(den).ok_or_else(|| not_a_probability(at))?;
            if den == 0 {
                return Err(not_a_probability(at));
            }
            exact::from_decimal(&num) / exact::from_decimal(&den)
        }
        None => exact::from_decimal(&decimal(at).map_err(|_| not_a_probability(at))?),
    };
    if p < exact::integer(0) || p > exact::integer(1) {
        return Err(Problem::invalid(
            at.node.span,
            at.path,
            format!("probability {} is outside 0..1", exact::exact_text(&p)),
        ));
    }
    Ok(p)
}

fn not_a_probability(at: At<'_>) -> Problem {
    Problem::invalid(
        at.node.span,
        at.path,
        "expected a probability: a decimal like 0.5 or a fraction like 1/3",
    )
}

/// A non-negative decimal read from its text, never through a float.
fn decimal(at: At<'_>) -> Result<BigDecimal, Problem> {
    let value = at
        .node
        .scalar()
        .filter(|s| matches!(s.resolve(), Resolved::Int | Resolved::Float | Resolved::Str))
        .and_then(|s| parse_decimal(&s.text))
        .ok_or_else(|| super::fields::expected(at, "a decimal number"))?;
    if value < 0 {
        return Err(Problem::invalid(
            at.node.span,
            at.path,
            "must not be negative",
        ));
    }
    Ok(value)
}

fn parse_decimal(t: &str) -> Option<BigDecimal> {
    let t = t.trim();
    if !is_decimal(t) {
        return None;
    }
    if let Some(i) = t.find(['e', 'E']) {
        let exponent: i64 = t[i + 1..].parse().ok()?;
        if exponent.abs() > MAX_EXPONENT {
            return None;
        }
    }
    BigDecimal::from_str(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::yaml::parse_documents;
    use kpconform_iptables::model::Protocol;

    fn eps4(at: At<'_>) -> Result<BTreeMap<SocketAddr, BigRational>, Problem> {
        endpoints(at, Family::Ipv4)
    }

    fn expect4(at: At<'_>) -> Result<Expect, Problem> {
        expect(at, Family::Ipv4)
    }

    fn at_root<T>(text: &str, f: impl Fn(At<'_>) -> Result<T, Problem>) -> Result<T, Problem> {
        let node = parse_documents(text).expect("yaml").remove(0);
        f(At {
            node: &node,
            path: "x",
        })
    }

    #[test]
    fn probabilities_are_exact() {
        let eps = at_root(
            "{10.0.0.1:80: 0.3333333333, 10.0.0.2:80: '1/3', 10.0.0.3:80: 1e-1}",
            eps4,
        )
        .expect("endpoints");
        let a = |ip: &str| eps[&SocketAddr::from_str(ip).expect("addr")].clone();
        let ratio = |n: i64, d: i64| BigRational::new(n.into(), d.into());
        assert_eq!(a("10.0.0.1:80"), ratio(3333333333, 10000000000));
        // A third is a third, not 30 decimals of one.
        assert_eq!(a("10.0.0.2:80"), ratio(1, 3));
        assert_eq!(a("10.0.0.3:80"), ratio(1, 10));
        let halves = at_root("{10.0.0.4:80: '0.5/1.5'}", eps4).expect("0.5/1.5");
        assert_eq!(halves.values().next(), Some(&ratio(1, 3)));
        // 0.1 as f64 is not 0.1; the probability must be.
        assert_ne!(
            a("10.0.0.3:80"),
            exact::from_decimal(&BigDecimal::try_from(0.1f64).expect("finite"))
        );
    }

    #[test]
    fn bad_probabilities_are_refused() {
        for text in [
            "{10.0.0.1:80: 1.5}",
            "{10.0.0.1:80: '1/0'}",
            "{10.0.0.1:80: half}",
            "{10.0.0.1:80: 1e999}",
        ] {
            let err = at_root(text, eps4).expect_err(text);
            assert_eq!(err.path, "x.10.0.0.1:80", "{text}");
        }
        let err = at_root("{10.0.0.1:80: 0.6, 10.0.0.2:80: 0.6}", eps4).expect_err("sum");
        assert!(err.message.contains("sum to 1.2"), "{}", err.message);
        // Fractions that are exactly 1 between them are fine; a hair more is not.
        let six = (1..=6)
            .map(|i| format!("10.0.0.{i}:80: '1/6'"))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(at_root(&format!("{{{six}}}"), eps4).map(|e| e.len()), Ok(6));
        let two51 = (0..251)
            .map(|i| format!("10.0.{}.{}:80: '1/251'", i / 200, i % 200 + 1))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            at_root(&format!("{{{two51}}}"), eps4).map(|e| e.len()),
            Ok(251)
        );
        let err = at_root(
            "{10.0.0.1:80: '1/3', 10.0.0.2:80: '1/3', 10.0.0.3:80: 0.3333333334}",
            eps4,
        )
        .expect_err("a hair above 1");
        assert!(
            err.message
                .contains("sum to 15000000001/15000000000, more than 1"),
            "{}",
            err.message
        );
        let err = at_root("{10.0.0.1:80: '4/3'}", eps4).expect_err("4/3");
        assert!(
            err.message.contains("probability 4/3 is outside"),
            "{}",
            err.message
        );
        let err = at_root("{10.0.0.1: 1}", eps4).expect_err("no port");
        assert_eq!(err.span.start, 1);
    }

    #[test]
    fn destinations() {
        let d = at_root("10.96.0.10:53/udp", destination).expect("dns");
        assert_eq!(d.addr, SocketAddr::from_str("10.96.0.10:53").expect("addr"));
        assert_eq!(d.protocol, Protocol::Udp);
        for bad in [
            "10.96.0.10:53/UDP",
            "10.96.0.10:53",
            "10.96.0.10/tcp",
            "10.96.0.10:0/tcp",
            "10.96.0.256:53/tcp",
        ] {
            assert!(at_root(bad, destination).is_err(), "{bad}");
        }
        let err = at_root("10.96.0.10:53", destination).expect_err("no proto");
        assert_eq!(
            err.message,
            "`10.96.0.10:53` has no /PROTO; expected IP:PORT/PROTO like 10.96.0.10:53/udp"
        );
        let err = at_root("10.96.0.10:53/UDP", destination).expect_err("upper case");
        assert!(err.message.contains("lower case"), "{}", err.message);
        assert_eq!(err.path, "x");
    }

    #[test]
    fn sources() {
        assert_eq!(at_root("node", source).expect("node"), FlowSource::Node);
        assert!(matches!(
            at_root("203.0.113.7", source),
            Ok(FlowSource::Ip(_))
        ));
        let err = at_root("nod", source).expect_err("typo");
        assert!(err.message.ends_with("or `node`"), "{}", err.message);
    }

    #[test]
    fn tolerance_and_expect() {
        assert_eq!(at_root("1e-6", decimal).expect("1e-6"), default_tolerance());
        assert!(at_root("-0.1", decimal).is_err());
        let e = at_root("{verdict: drop, sticky: true}", expect4).expect("expect");
        assert_eq!(
            (e.verdict, e.sticky, e.masquerade),
            (Some(Verdict::Drop), Some(true), None)
        );
        let err = at_root("{}", expect4).expect_err("empty");
        assert_eq!(err.kind, ErrorKind::MissingKey);
        let err = at_root("{verdict: DROP}", expect4).expect_err("case");
        assert_eq!(err.path, "x.verdict");
    }
}
