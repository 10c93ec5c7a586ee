//! `kpconform audit`: is this node's rule set right for this cluster state?
//! The invariants, then every probe packet the semantic oracle derives from
//! the objects (each service address from each kind of source), traced and
//! compared with what Kubernetes semantics require.

use anyhow::{anyhow, Result};
use bigdecimal::BigDecimal;
use kpconform_iptables::Tracer;
use kpconform_suite::oracle::{Oracle, OracleError};
use kpconform_suite::scenario::{parse_objects, GeneratorInput, NodeConfig};

use super::lint::{report_violations, resolve_profile};
use super::Outcome;
use crate::cli::{parse_node_spec, AuditArgs};
use crate::rules_file;

pub(crate) fn run(args: &AuditArgs) -> Result<Outcome> {
    let (name, addresses) = parse_node_spec(&args.node).map_err(|e| anyhow!("--node {e}"))?;
    let objects_file = rules_file::read(&args.kubectl)?;
    let objects = parse_objects(&objects_file).map_err(|e| anyhow!("{e}"))?;
    let source = rules_file::read(&args.rules)?;
    let rules = rules_file::parse(&source, &args.parse)?;
    let input = GeneratorInput {
        node: NodeConfig {
            name,
            addresses: addresses.clone(),
            cluster_cidr: args.cluster_cidr,
            masquerade_all: args.masquerade_all,
            masquerade_bit: args.masquerade_bit,
            node_port_addresses: args.node_port_addresses.clone(),
        },
        objects,
    };

    let profile = resolve_profile(args.profile, &rules);
    let violations = report_violations(&source, &rules, profile);

    let oracle = Oracle::new(&input);
    let tracer = Tracer::new(&rules, &addresses).with_mode(args.probability.into());
    let tolerance: BigDecimal = "0.000001".parse().expect("a decimal");
    let probes = oracle.probes();
    let (mut agreed, mut disagreed, mut skipped) = (0usize, 0usize, 0usize);
    for packet in &probes {
        let prediction = match oracle.predict(packet) {
            Ok(p) => p,
            Err(e @ OracleError::Overlap { .. }) => {
                outln!("skipped: {e}");
                skipped += 1;
                continue;
            }
            Err(e) => return Err(anyhow!("{e}")),
        };
        let traced = match tracer.trace(packet) {
            Ok(d) => d,
            Err(e) => {
                outln!("FAIL {packet}: cannot be traced\n{}\n", e.render(&source));
                disagreed += 1;
                continue;
            }
        };
        match prediction.compare(&traced, &tolerance) {
            Ok(()) => agreed += 1,
            Err(m) => {
                outln!("FAIL {m}\n");
                disagreed += 1;
            }
        }
    }
    let summary = format!(
        "{} probe(s): {agreed} as Kubernetes requires, {disagreed} not, {skipped} skipped; {violations} invariant violation(s) ({profile} profile)",
        probes.len()
    );
    if disagreed == 0 && violations == 0 {
        outln!("ok: {summary}");
        Ok(Outcome::Pass)
    } else {
        outln!("FAILED: {summary}");
        Ok(Outcome::Fail)
    }
}
