//! The one writer of scenario files (contract §1) and generator inputs
//! (contract §2): `kpconform new-scenario`'s skeletons, fuzz reproducers and
//! [`GeneratorInput::to_yaml`] all spell strings, probabilities, addresses
//! and Kubernetes objects here, so that what one writes the loader reads
//! back the same way for all of them.
//!
//! Spellings, where the former writers differed:
//! - strings ([`quote`]): plain when YAML reads them back as the same
//!   string, else single-quoted (`'it''s'`); double-quoted with escapes only
//!   for text a single-quoted scalar cannot hold (line breaks, control
//!   characters).
//! - probabilities ([`probability`]): `0`, `1`, else a quoted fraction
//!   `"k/d"` when the denominator is at most [`MAX_DENOMINATOR`], else the
//!   exact decimal when there is one, else the fraction however large.
//! - node addresses ([`address`]): a bare IP for a /32, else the CIDR.
//! - Kubernetes objects ([`objects`]): serde-saphyr's block YAML.

use kpconform_iptables::model::Family;
use std::fmt::Write as _;
use std::net::SocketAddr;

use ipnet::IpNet;
use num_traits::{One, Zero};

use super::yaml::{Resolved, Scalar};
use super::{Cluster, Expect, FlowSource, GeneratorInput, Object};
use crate::exact::{self, BigRational};
use kpconform_iptables::Destination;

/// Denominators up to this are written as fractions even when the
/// probability is also a short decimal (`"3/10"`, not `0.3`).
pub const MAX_DENOMINATOR: u32 = 1000;

/// A string as a YAML scalar that reads back as the same string.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_./()".contains(c))
        && !s.starts_with(['-', ' ', '.'])
        && !s.ends_with(' ')
        // YAML 1.1 booleans and anything that looks like a number stay
        // quoted for readers older than the 1.2 core schema.
        && !matches!(s.to_ascii_lowercase().as_str(), "yes" | "no" | "on" | "off" | "y" | "n")
        && s.parse::<f64>().is_err()
        && Scalar {
            text: s.into(),
            plain: true,
        }
        .resolve()
            == Resolved::Str;
    if plain {
        s.to_string()
    } else if s.chars().all(|c| !c.is_control() && !is_line_break(c)) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        double_quoted(s)
    }
}

/// An address, CIDR, `IP:PORT` or `IP:PORT/PROTO`: a plain YAML scalar,
/// but quoted where IPv6 would read as something else (`[fd00::1]:80/tcp`
/// is a flow sequence, `::1` starts like a key).
fn net_text(text: &str) -> String {
    if text.starts_with(['[', ':']) {
        format!("'{text}'")
    } else {
        text.to_string()
    }
}

/// YAML line breaks beyond the ASCII ones, which a single-quoted scalar folds.
fn is_line_break(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_line_break(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A probability as scenarios write it, exactly: `0`, `1`, `"1/3"`,
/// `"3/10"`, `"0.00048828125"` (1/2048: a decimal beats a large
/// denominator), `"1/1001"`.
pub fn probability(p: &BigRational) -> String {
    if p.is_zero() {
        return "0".to_string();
    }
    if p.is_one() {
        return "1".to_string();
    }
    let small = p.denom() <= &MAX_DENOMINATOR.into();
    match exact::to_decimal(p).filter(|_| !small) {
        Some(d) => format!("\"{}\"", d.normalized()),
        None => format!("\"{}/{}\"", p.numer(), p.denom()),
    }
}

/// A node address: a bare IP for a host address (/32, /128), as scenarios
/// write them, else the CIDR; quoted where YAML needs it.
pub fn address(a: IpNet) -> String {
    // A host address (/32, /128) is written bare, as the recordings write
    // node addresses; an IPv6 one quoted.
    let text = if a.prefix_len() == a.max_prefix_len() {
        a.addr().to_string()
    } else {
        a.to_string()
    };
    net_text(&text)
}

/// The objects as a YAML block sequence at column 0, ending in a newline.
///
/// The one error policy for serializing them: k8s-openapi's types are
/// structs of strings, integers, booleans, string-keyed maps and lists
/// (quantities and times serialize as strings), with derived or
/// string-producing `Serialize` impls, and serde-saphyr fails only on what
/// YAML cannot express (non-scalar map keys, a `Serialize` impl that
/// errors). None of that can occur, so a failure is a bug here, not a
/// property of the input: it panics rather than writing a file that would
/// silently lack its objects.
pub fn objects(objects: &[Object]) -> String {
    let mut text =
        serde_saphyr::to_string(&objects).expect("Kubernetes objects always serialize to YAML");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Builds a scenario file section by section, in the contract's key order.
#[derive(Debug, Default)]
pub struct ScenarioWriter {
    out: String,
    flows: bool,
}

impl ScenarioWriter {
    /// An empty file.
    pub fn new() -> ScenarioWriter {
        ScenarioWriter::default()
    }

    /// `# text`, one comment line per line of `text`, at `indent` spaces.
    pub fn comment(&mut self, indent: usize, text: &str) -> &mut Self {
        for line in text.lines() {
            let _ = writeln!(self.out, "{:indent$}# {line}", "");
        }
        self
    }

    /// `description:`.
    pub fn description(&mut self, text: &str) -> &mut Self {
        let _ = writeln!(self.out, "description: {}", quote(text));
        self
    }

    /// `tags:` as a flow list.
    pub fn tags(&mut self, tags: &[&str]) -> &mut Self {
        let tags: Vec<String> = tags.iter().map(|t| quote(t)).collect();
        let _ = writeln!(self.out, "tags: [{}]", tags.join(", "));
        self
    }

    /// `cluster:` with its settings, nodes and objects. Without a cluster
    /// CIDR, `unknown_cidr` (if any) is written as a comment above the
    /// empty `clusterCIDR: ''`.
    pub fn cluster(&mut self, cluster: &Cluster, unknown_cidr: Option<&str>) -> &mut Self {
        let out = &mut self.out;
        out.push_str("cluster:\n");
        match cidr_list(&cluster.cluster_cidrs) {
            Some(c) => {
                let _ = writeln!(out, "  clusterCIDR: {c}");
            }
            None => {
                if let Some(note) = unknown_cidr {
                    let _ = writeln!(out, "  # {note}");
                }
                out.push_str("  clusterCIDR: ''\n");
            }
        }
        let _ = writeln!(out, "  masqueradeAll: {}", cluster.masquerade_all);
        let _ = writeln!(out, "  masqueradeBit: {}", cluster.masquerade_bit);
        let npa: Vec<String> = cluster
            .node_port_addresses
            .iter()
            .map(|n| n.to_string())
            .collect();
        let _ = writeln!(out, "  nodePortAddresses: [{}]", npa.join(", "));
        out.push_str("  nodes:\n");
        for node in &cluster.nodes {
            let addresses: Vec<String> = node.addresses.iter().map(|a| address(*a)).collect();
            let _ = writeln!(
                out,
                "    - name: {}\n      addresses: [{}]",
                quote(&node.name),
                addresses.join(", ")
            );
        }
        if cluster.objects.is_empty() {
            out.push_str("  objects: []\n");
        } else {
            out.push_str("  objects:\n");
            for line in objects(&cluster.objects).lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        self
    }

    /// One flow, after a `flows:` key the first time.
    pub fn flow(
        &mut self,
        name: &str,
        node: &str,
        from: FlowSource,
        to: Destination,
        expect: &Expect,
    ) -> &mut Self {
        let out = &mut self.out;
        if !self.flows {
            out.push_str("flows:\n");
            self.flows = true;
        }
        let _ = writeln!(out, "  - name: {}", quote(name));
        let _ = writeln!(out, "    node: {}", quote(node));
        let _ = writeln!(out, "    from: {}", net_text(&from.to_string()));
        let _ = writeln!(out, "    to: {}", net_text(&to.to_string()));
        out.push_str("    expect:\n");
        if let Some(endpoints) = &expect.endpoints {
            write_endpoints(out, endpoints);
        }
        if let Some(v) = expect.verdict {
            let _ = writeln!(out, "      verdict: {v}");
        }
        if let Some(m) = expect.masquerade {
            let _ = writeln!(out, "      masquerade: {m}");
        }
        if let Some(s) = expect.sticky {
            let _ = writeln!(out, "      sticky: {s}");
        }
        self
    }

    /// The file.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.out)
    }
}

fn write_endpoints(
    out: &mut String,
    endpoints: &std::collections::BTreeMap<SocketAddr, BigRational>,
) {
    if endpoints.is_empty() {
        out.push_str("      endpoints: {}\n");
        return;
    }
    out.push_str("      endpoints:\n");
    for (addr, p) in endpoints {
        let _ = writeln!(
            out,
            "        {}: {}",
            quote(&addr.to_string()),
            probability(p)
        );
    }
}

/// A flow as a one-line flow mapping, e.g. for a comment listing probes.
pub fn flow_line(name: &str, node: &str, from: FlowSource, to: Destination) -> String {
    format!(
        "{{name: {}, node: {}, from: {}, to: {}}}",
        quote(name),
        quote(node),
        net_text(&from.to_string()),
        net_text(&to.to_string())
    )
}

/// `--cluster-cidr` as kube-proxy takes it: comma-separated; `None` when empty.
fn cidr_list(cidrs: &[ipnet::IpNet]) -> Option<String> {
    (!cidrs.is_empty()).then(|| {
        cidrs
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    })
}

impl GeneratorInput {
    /// Writes the input in the contract §2 layout; [`GeneratorInput::from_yaml`]
    /// reads it back equal.
    pub fn to_yaml(&self) -> String {
        let n = &self.node;
        let mut out = String::from("node:\n");
        let _ = writeln!(out, "  name: {}", quote(&n.name));
        // Written only for IPv6, so that IPv4-only generators see exactly
        // the input they always did.
        if n.family == Family::Ipv6 {
            let _ = writeln!(out, "  family: {}", n.family);
        }
        push_list(
            &mut out,
            "addresses",
            n.addresses.iter().map(|a| address(*a)),
        );
        let cidr = cidr_list(&n.cluster_cidrs).unwrap_or_else(|| "''".to_string());
        let _ = writeln!(out, "  clusterCIDR: {cidr}");
        let _ = writeln!(out, "  masqueradeAll: {}", n.masquerade_all);
        let _ = writeln!(out, "  masqueradeBit: {}", n.masquerade_bit);
        push_list(
            &mut out,
            "nodePortAddresses",
            n.node_port_addresses.iter().map(|c| c.to_string()),
        );
        if self.objects.is_empty() {
            out.push_str("objects: []\n");
        } else {
            out.push_str("objects:\n");
            out.push_str(&objects(&self.objects));
        }
        out
    }
}

fn push_list(out: &mut String, key: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        let _ = writeln!(out, "  {key}: []");
    } else {
        let _ = writeln!(out, "  {key}:");
        for item in items {
            let _ = writeln!(out, "  - {item}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::yaml::parse_documents;

    #[test]
    fn ipv6_flows_are_written_so_that_the_loader_reads_them_back() {
        use crate::scenario::{Cluster, NodeSpec, Scenario};
        use kpconform_iptables::SourceFile;
        let cluster = Cluster {
            cluster_cidrs: vec!["fd00:10:64::/48".parse().unwrap()],
            masquerade_all: false,
            masquerade_bit: 14,
            node_port_addresses: vec![],
            nodes: vec![NodeSpec {
                name: "node-a".into(),
                addresses: vec!["fd00:192:168::10/128".parse().unwrap()],
            }],
            objects: vec![],
        };
        let to: Destination = "[fd00:10:96::1]:80/tcp".parse().unwrap();
        let expect = Expect {
            endpoints: Some([(to.addr, ratio(1, 1))].into_iter().collect()),
            ..Expect::default()
        };
        let from = FlowSource::Ip("2001:db8:203::7".parse().unwrap());
        let text = ScenarioWriter::new()
            .description("v6")
            .cluster(&cluster, None)
            .flow("v6 flow", "node-a", from, to, &expect)
            .finish();
        let back = Scenario::from_source(&SourceFile::new("v6.yaml", text.clone()), "x")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!((back.flows[0].from, back.flows[0].to), (from, to));
        assert_eq!(back.flows[0].expect, expect);
        let line = flow_line("f", "node-a", from, to);
        assert!(line.contains("to: '[fd00:10:96::1]:80/tcp'"), "{line}");
    }

    fn ratio(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    /// What the loader's YAML reads `text` as, when it is one string scalar.
    fn read_back(text: &str) -> Option<String> {
        let doc = format!("k: {text}\n");
        let node = parse_documents(&doc).ok()?.remove(0);
        let super::super::yaml::Value::Map(entries) = &node.value else {
            return None;
        };
        let s = entries.first()?.1.scalar()?;
        (s.resolve() == Resolved::Str).then(|| s.text.to_string())
    }

    #[test]
    fn scalars_are_quoted_when_needed() {
        assert_eq!(quote("node-a"), "node-a");
        assert_eq!(
            quote("a pod to default/web (tcp)"),
            "a pod to default/web (tcp)"
        );
        assert_eq!(quote("a: b"), "'a: b'");
        assert_eq!(quote("true"), "'true'");
        assert_eq!(quote("1.5"), "'1.5'");
        assert_eq!(quote("12"), "'12'");
        assert_eq!(quote("say \"x\""), "'say \"x\"'");
        assert_eq!(quote("it's: x"), "'it''s: x'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("two\nlines"), "\"two\\nlines\"");
    }

    #[test]
    fn every_quoted_string_reads_back_the_same() {
        for s in [
            "node-a",
            "a: b",
            "true",
            "True",
            "yes",
            "null",
            "~",
            "1.5",
            "12",
            "0x1f",
            ".inf",
            "-x",
            " x",
            "x ",
            "#x",
            "a #b",
            "it's",
            "say \"x\"",
            "",
            "two\nlines",
            "tab\there",
            "back\\slash",
            "bell\u{7}",
            "\u{2028}",
            "[a]",
            "{a}",
            "a, b",
            "*x",
            "&x",
            "!x",
            "%x",
            "@x",
            "`x",
            "|",
            ">",
            "?",
            "-",
            "é",
        ] {
            assert_eq!(
                read_back(&quote(s)).as_deref(),
                Some(s),
                "{s:?} as {}",
                quote(s)
            );
        }
    }

    #[test]
    fn probabilities_are_written_exactly() {
        assert_eq!(probability(&ratio(1, 1)), "1");
        assert_eq!(probability(&ratio(0, 1)), "0");
        assert_eq!(probability(&ratio(1, 3)), "\"1/3\"");
        assert_eq!(probability(&ratio(1, 4)), "\"1/4\"");
        assert_eq!(probability(&ratio(1, 2)), "\"1/2\"");
        assert_eq!(probability(&ratio(3, 10)), "\"3/10\"");
        assert_eq!(probability(&ratio(1, 8)), "\"1/8\"");
        assert_eq!(probability(&ratio(1, 2048)), "\"0.00048828125\"");
        assert_eq!(probability(&ratio(1, 13)), "\"1/13\"");
        assert_eq!(probability(&ratio(2, 3)), "\"2/3\"");
        assert_eq!(probability(&ratio(1, 1001)), "\"1/1001\"");
        // kube-proxy's 10-decimal spelling is not a third.
        assert_eq!(
            probability(&ratio(3333333333, 10000000000)),
            "\"0.3333333333\""
        );
    }

    #[test]
    fn addresses_are_bare_for_hosts() {
        assert_eq!(address("172.16.5.10/32".parse().unwrap()), "172.16.5.10");
        assert_eq!(
            address("192.168.0.10/24".parse().unwrap()),
            "192.168.0.10/24"
        );
    }
}
