//! Flows and their expectations (contract §1, §3).

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::str::FromStr;

use bigdecimal::{BigDecimal, RoundingMode};

use super::error::{did_you_mean, key_path, ErrorKind, Problem};
use super::fields::{boolean, ipv4, mapping, sequence, text, At, Fields};
use super::yaml::{is_decimal, Resolved};
use super::{Destination, Expect, Flow, FlowSource, NodeSpec};
use kpconform_iptables::model::Protocol;
use kpconform_iptables::Verdict;

const FLOW_KEYS: [&str; 6] = ["name", "node", "from", "to", "expect", "tolerance"];
const EXPECT_KEYS: [&str; 4] = ["endpoints", "verdict", "masquerade", "sticky"];

/// Decimal places kept when a probability is written as a fraction like `1/3`.
const FRACTION_SCALE: i64 = 30;

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
        let from = source(fields.required("from")?.at())?;
        let to = destination(fields.required("to")?.at())?;
        let expect = expect(fields.required("expect")?.at())?;
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
    ipv4(at).map(FlowSource::Ip).map_err(|mut p| {
        p.message.push_str(" or `node`");
        p
    })
}

/// `IP:PORT/PROTO`, PROTO one of tcp, udp, sctp (lowercase).
fn destination(at: At<'_>) -> Result<Destination, Problem> {
    let t = text(at)?;
    let bad = |why: &str| {
        Problem::invalid(
            at.node.span,
            at.path,
            format!("`{t}` {why}; expected IP:PORT/PROTO like 10.96.0.10:53/udp"),
        )
    };
    let (addr, proto) = t.split_once('/').ok_or_else(|| bad("has no /PROTO"))?;
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => {
            return Err(bad(
                "has a protocol other than tcp, udp or sctp (lowercase)",
            ))
        }
    };
    let addr = socket(addr).ok_or_else(|| bad("is not a valid IPv4 address and port"))?;
    Ok(Destination { addr, protocol })
}

/// An IPv4 `IP:PORT` with a port in 1..=65535.
fn socket(t: &str) -> Option<SocketAddrV4> {
    SocketAddrV4::from_str(t).ok().filter(|s| s.port() != 0)
}

fn expect(at: At<'_>) -> Result<Expect, Problem> {
    let fields = Fields::open(at, &EXPECT_KEYS)?;
    let mut expect = Expect::default();
    if let Some(f) = fields.get("endpoints") {
        expect.endpoints = Some(endpoints(f.at())?);
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

fn endpoints(at: At<'_>) -> Result<BTreeMap<SocketAddrV4, BigDecimal>, Problem> {
    let mut out = BTreeMap::new();
    let mut total = BigDecimal::from(0);
    for (key, value) in mapping(at)? {
        let key_text = key.scalar().map(|s| s.text.as_str()).unwrap_or("");
        let path = key_path(at.path, key_text);
        let addr = socket(key_text).ok_or_else(|| {
            Problem::invalid(
                key.span,
                &path,
                format!("`{key_text}` is not an IPv4 IP:PORT like 10.64.1.5:8080"),
            )
        })?;
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
    // Fractions are rounded to FRACTION_SCALE places, each by at most half a
    // unit there, so six `1/6` may sum to a hair above 1; only a real excess
    // is an error.
    let slack = BigDecimal::new(out.len().into(), FRACTION_SCALE);
    if total > BigDecimal::from(1) + slack {
        return Err(Problem::invalid(
            at.node.span,
            at.path,
            format!(
                "endpoint probabilities sum to {}, more than 1",
                total.normalized()
            ),
        ));
    }
    Ok(out)
}

/// An exact probability in 0..=1: a decimal as written, or a fraction `a/b`.
fn probability(at: At<'_>) -> Result<BigDecimal, Problem> {
    let p = match text(at).ok().and_then(|t| t.split_once('/')) {
        Some((num, den)) => {
            let num = exact(num).ok_or_else(|| not_a_probability(at))?;
            let den = exact(den).ok_or_else(|| not_a_probability(at))?;
            if den == 0 {
                return Err(not_a_probability(at));
            }
            (num / den).with_scale_round(FRACTION_SCALE, RoundingMode::HalfEven)
        }
        None => decimal(at).map_err(|_| not_a_probability(at))?,
    };
    if !(BigDecimal::from(0)..=BigDecimal::from(1)).contains(&p) {
        return Err(Problem::invalid(
            at.node.span,
            at.path,
            format!("probability {} is outside 0..1", p.normalized()),
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
        .and_then(|s| exact(&s.text))
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

fn exact(t: &str) -> Option<BigDecimal> {
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

    fn at_root<T>(text: &str, f: impl Fn(At<'_>) -> Result<T, Problem>) -> Result<T, Problem> {
        let node = parse_documents(text).expect("yaml").remove(0);
        f(At {
            node: &node,
            path: "x",
        })
    }

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).expect("decimal")
    }

    #[test]
    fn probabilities_are_exact() {
        let eps = at_root(
            "{10.0.0.1:80: 0.3333333333, 10.0.0.2:80: '1/3', 10.0.0.3:80: 1e-1}",
            endpoints,
        )
        .expect("endpoints");
        let a = |ip: &str| eps[&SocketAddrV4::from_str(ip).expect("addr")].clone();
        assert_eq!(a("10.0.0.1:80"), dec("0.3333333333"));
        assert_eq!(a("10.0.0.2:80"), dec("0.333333333333333333333333333333"));
        assert_eq!(a("10.0.0.3:80"), dec("0.1"));
        // 0.1 as f64 is not 0.1; the decimal must be.
        assert_ne!(
            a("10.0.0.3:80"),
            BigDecimal::try_from(0.1f64).expect("finite")
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
            let err = at_root(text, endpoints).expect_err(text);
            assert_eq!(err.path, "x.10.0.0.1:80", "{text}");
        }
        let err = at_root("{10.0.0.1:80: 0.6, 10.0.0.2:80: 0.6}", endpoints).expect_err("sum");
        assert!(err.message.contains("sum to 1.2"), "{}", err.message);
        // Rounded fractions that are exactly 1 between them are fine.
        let six = (1..=6)
            .map(|i| format!("10.0.0.{i}:80: '1/6'"))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            at_root(&format!("{{{six}}}"), endpoints).map(|e| e.len()),
            Ok(6)
        );
        let two51 = (0..251)
            .map(|i| format!("10.0.{}.{}:80: '1/251'", i / 200, i % 200 + 1))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            at_root(&format!("{{{two51}}}"), endpoints).map(|e| e.len()),
            Ok(251)
        );
        let err = at_root("{10.0.0.1: 1}", endpoints).expect_err("no port");
        assert_eq!(err.span.start, 1);
    }

    #[test]
    fn destinations() {
        let d = at_root("10.96.0.10:53/udp", destination).expect("dns");
        assert_eq!(
            d.addr,
            SocketAddrV4::from_str("10.96.0.10:53").expect("addr")
        );
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
        let e = at_root("{verdict: drop, sticky: true}", expect).expect("expect");
        assert_eq!(
            (e.verdict, e.sticky, e.masquerade),
            (Some(Verdict::Drop), Some(true), None)
        );
        let err = at_root("{}", expect).expect_err("empty");
        assert_eq!(err.kind, ErrorKind::MissingKey);
        let err = at_root("{verdict: DROP}", expect).expect_err("case");
        assert_eq!(err.path, "x.verdict");
    }
}
