//! Writes a [`Case`] as a scenario file (contract §1): the reproducer a
//! fuzzer finding turns into.

use std::fmt::Write as _;

use bigdecimal::{BigDecimal, Zero};

use super::{Case, Probe};
use kpconform_suite::scenario::{Expect, FlowSource};

/// Denominators tried when writing a probability as a fraction.
const MAX_DENOMINATOR: u32 = 1000;

pub(super) fn scenario(case: &Case, expect: &dyn Fn(&Probe) -> Option<Expect>) -> String {
    let c = &case.cluster;
    let services = c
        .objects
        .iter()
        .filter(|o| matches!(o, kpconform_suite::scenario::Object::Service(_)))
        .count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "description: >-\n  A random valid cluster state ({} node(s), {services} service(s)) written by\n  kpconform's case generator; each flow expects what Kubernetes Service semantics require.",
        c.nodes.len()
    );
    out.push_str("tags:\n  - fuzz\ncluster:\n");
    let cidr = c.cluster_cidr.map_or("''".to_string(), |n| n.to_string());
    let _ = writeln!(out, "  clusterCIDR: {cidr}");
    let _ = writeln!(out, "  masqueradeAll: {}", c.masquerade_all);
    let _ = writeln!(out, "  masqueradeBit: {}", c.masquerade_bit);
    let npa: Vec<String> = c
        .node_port_addresses
        .iter()
        .map(|n| n.to_string())
        .collect();
    let _ = writeln!(out, "  nodePortAddresses: [{}]", npa.join(", "));
    out.push_str("  nodes:\n");
    for node in &c.nodes {
        let addresses: Vec<String> = node
            .addresses
            .iter()
            .map(|a| {
                if a.prefix_len() == 32 {
                    a.addr().to_string()
                } else {
                    a.to_string()
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "    - name: {}\n      addresses: [{}]",
            node.name,
            addresses.join(", ")
        );
    }
    if c.objects.is_empty() {
        out.push_str("  objects: []\n");
    } else {
        out.push_str("  objects:\n");
        match serde_saphyr::to_string(&c.objects) {
            Ok(text) => {
                for line in text.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            // k8s-openapi's plain data always serializes; say so if not.
            Err(err) => {
                let _ = writeln!(out, "    # the objects could not be written: {err}");
            }
        }
    }
    let flows: Vec<(&Probe, Expect)> = case
        .probes
        .iter()
        .filter_map(|p| Some((p, expect(p)?)))
        .filter(|(_, x)| *x != Expect::default())
        .collect();
    if flows.is_empty() {
        return out;
    }
    out.push_str("flows:\n");
    for (probe, x) in flows {
        flow(&mut out, probe, &x);
    }
    out
}

fn flow(out: &mut String, probe: &Probe, x: &Expect) {
    let _ = writeln!(out, "  - name: {}", quote(&probe.name));
    let _ = writeln!(out, "    node: {}", probe.node);
    let _ = writeln!(out, "    from: {}", source(probe.from));
    let _ = writeln!(
        out,
        "    to: {}:{}/{}",
        probe.to.addr.ip(),
        probe.to.addr.port(),
        probe.to.protocol
    );
    out.push_str("    expect:\n");
    if let Some(endpoints) = &x.endpoints {
        if endpoints.is_empty() {
            out.push_str("      endpoints: {}\n");
        } else {
            out.push_str("      endpoints:\n");
            for (addr, p) in endpoints {
                let _ = writeln!(out, "        {addr}: {}", probability(p));
            }
        }
    }
    if let Some(v) = x.verdict {
        let _ = writeln!(out, "      verdict: {v}");
    }
    if let Some(m) = x.masquerade {
        let _ = writeln!(out, "      masquerade: {m}");
    }
    if let Some(s) = x.sticky {
        let _ = writeln!(out, "      sticky: {s}");
    }
}

/// The probes as a comment, for a reproducer printed without expectations.
pub(super) fn probes_comment(probes: &[Probe]) -> String {
    let mut out = String::from("# probes the oracle cannot decide (flows without expectations):\n");
    for p in probes {
        let _ = writeln!(
            out,
            "#  - {{name: {}, node: {}, from: {}, to: {}:{}/{}}}",
            quote(&p.name),
            p.node,
            source(p.from),
            p.to.addr.ip(),
            p.to.addr.port(),
            p.to.protocol
        );
    }
    out
}

fn source(from: FlowSource) -> String {
    match from {
        FlowSource::Node => "node".to_string(),
        FlowSource::Ip(ip) => ip.to_string(),
    }
}

/// A single-quoted YAML scalar.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `1`, `0`, `"1/3"` when a small denominator is exact, else the decimal.
pub(super) fn probability(p: &BigDecimal) -> String {
    if *p == 1 {
        return "1".to_string();
    }
    if p.is_zero() {
        return "0".to_string();
    }
    // The oracle's 1/n carries 30 decimals; anything that close to k/d is k/d.
    let close = BigDecimal::new(1.into(), 24);
    for d in 2..=MAX_DENOMINATOR {
        let scaled = p * BigDecimal::from(d);
        let k = scaled.round(0);
        if (&scaled - &k).abs() < close {
            return format!("\"{}/{d}\"", k.with_scale(0));
        }
    }
    format!("\"{}\"", p.normalized())
}
