//! Writes a [`Case`] as a scenario file (contract §1): the reproducer a
//! fuzzer finding turns into, spelled by kpconform-suite's one scenario
//! writer ([`ScenarioWriter`]).

use super::{Case, Probe};
use kpconform_suite::scenario::write::flow_line;
use kpconform_suite::scenario::{Expect, Object, ScenarioWriter};

pub(super) fn scenario(case: &Case, expect: &dyn Fn(&Probe) -> Option<Expect>) -> String {
    let c = &case.cluster;
    let services = c
        .objects
        .iter()
        .filter(|o| matches!(o, Object::Service(_)))
        .count();
    let mut out = ScenarioWriter::new();
    out.description(&format!(
        "A random valid cluster state ({} node(s), {services} service(s)) written by \
         kpconform's case generator; each flow expects what Kubernetes Service semantics require.",
        c.nodes.len()
    ))
    .tags(&["fuzz"])
    .cluster(c, None);
    for probe in &case.probes {
        let Some(x) = expect(probe).filter(|x| *x != Expect::default()) else {
            continue;
        };
        out.flow(&probe.name, &probe.node, probe.from, probe.to, &x);
    }
    out.finish()
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
            &format!(" - {}", flow_line(&p.name, &p.node, p.from, p.to)),
        );
    }
    out.finish()
}
