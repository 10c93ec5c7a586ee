//! Writes a [`Case`] as a scenario file (contract §1): the reproducer a
//! fuzzer finding turns into. The cluster is spelled by kpconform-suite's
//! one scenario writer ([`ScenarioWriter`]); the flows are written here so
//! that IPv6 sources, destinations and endpoint keys are quoted, in the
//! bracketed syntax the loader reads (`to: "[fd00:10:96::1]:80/tcp"`,
//! `"[fd00:10:64:a::5]:8080": 1`), as the IPv6 golden scenarios write them.

use std::fmt::Write as _;

use super::{Case, Probe};
use kpconform_suite::scenario::write::{probability, quote};
use kpconform_suite::scenario::{Destination, Expect, FlowSource, Object, ScenarioWriter};

pub(super) fn scenario(case: &Case, expect: &dyn Fn(&Probe) -> Option<Expect>) -> String {
    let c = &case.cluster;
    let services = c
        .objects
        .iter()
        .filter(|o| matches!(o, Object::Service(_)))
        .count();
    let families: Vec<&str> = case.families().iter().map(|f| f.as_str()).collect();
    let mut out = ScenarioWriter::new();
    out.description(&format!(
        "A random valid {} cluster state ({} node(s), {services} service(s)) written by \
         kpconform's case generator; each flow expects what Kubernetes Service semantics require.",
        families.join("/"),
        c.nodes.len()
    ))
    .tags(&["fuzz"])
    .cluster(c, None);
    let mut text = out.finish();
    let mut flows = false;
    for probe in &case.probes {
        let Some(x) = expect(probe).filter(|x| *x != Expect::default()) else {
            continue;
        };
        if !flows {
            text.push_str("flows:\n");
            flows = true;
        }
        flow(&mut text, probe, &x);
    }
    text
}

/// An address, `IP:PORT` or `IP:PORT/PROTO`: plain for IPv4, double-quoted
/// when it holds an IPv6 address (whose colons and brackets YAML would
/// otherwise read as syntax).
fn spelled(text: &str) -> String {
    if text.contains(':') && (text.contains('[') || text.matches(':').count() > 1) {
        format!("\"{text}\"")
    } else {
        text.to_string()
    }
}

fn source(from: FlowSource) -> String {
    spelled(&from.to_string())
}

fn destination(to: Destination) -> String {
    spelled(&to.to_string())
}

fn flow(out: &mut String, probe: &Probe, x: &Expect) {
    let _ = writeln!(out, "  - name: {}", quote(&probe.name));
    let _ = writeln!(out, "    node: {}", quote(&probe.node));
    let _ = writeln!(out, "    from: {}", source(probe.from));
    let _ = writeln!(out, "    to: {}", destination(probe.to));
    out.push_str("    expect:\n");
    if let Some(endpoints) = &x.endpoints {
        if endpoints.is_empty() {
            out.push_str("      endpoints: {}\n");
        } else {
            out.push_str("      endpoints:\n");
            for (addr, p) in endpoints {
                let _ = writeln!(
                    out,
                    "        {}: {}",
                    spelled(&addr.to_string()),
                    probability(p)
                );
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
    let mut out = ScenarioWriter::new();
    out.comment(
        0,
        "probes the oracle cannot decide (flows without expectations):",
    );
    for p in probes {
        out.comment(
            0,
            &format!(
                " - {{name: {}, node: {}, from: {}, to: {}}}",
                quote(&p.name),
                quote(&p.node),
                source(p.from),
                destination(p.to)
            ),
        );
    }
    out.finish()
}
