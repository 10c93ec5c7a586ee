//! `kpconform check`: one node's rules against a scenario's flows and the invariants.
//!
//! A dual-stack node has two dumps (`iptables-save` and `ip6tables-save`),
//! given as two `--rules`. Each dump's family is that of the addresses it
//! names (a dump naming none is of the node's first family); each is checked
//! against the node's flows of its family. A family of the node that has
//! flows but no dump fails the check: its flows were not checked.

use anyhow::{bail, Result};
use kpconform_iptables::model::{Family, RuleSet};
use kpconform_iptables::SourceFile;
use kpconform_suite::check::{check_node_family, flow_family};

use super::Outcome;
use crate::cli::{CheckArgs, ProfileArg};
use crate::{rules_file, scenario_file};

/// One `--rules` dump, read and parsed, with its family.
struct Dump {
    source: SourceFile,
    rules: RuleSet,
    family: Family,
}

pub(crate) fn run(args: &CheckArgs) -> Result<Outcome> {
    let scenario = scenario_file::load(&args.scenario)?;
    // Fail on a wrong node name before reading (possibly stdin) rules.
    scenario_file::input_for(&scenario, &args.node)?;
    let node = &args.node;
    let families = scenario
        .node(node)
        .map(|n| n.families())
        .unwrap_or_default();
    let Some(&first) = families.first() else {
        bail!("node `{node}` of scenario `{}` has no address", scenario.id);
    };
    if args.rules.len() > 2 {
        bail!(
            "--rules is given {} times; a node has at most two dumps, one per family \
             (iptables-save and ip6tables-save)",
            args.rules.len()
        );
    }
    if args.rules.len() == 2 && args.rules.iter().all(|r| r.as_os_str() == "-") {
        bail!("--rules: standard input (`-`) can be read only once");
    }
    let mut dumps: Vec<Dump> = Vec::new();
    for path in &args.rules {
        let source = rules_file::read(path)?;
        let rules = rules_file::parse(&source, &args.parse)?;
        let named = rules.family();
        let family = named.unwrap_or(first);
        if !families.contains(&family) {
            bail!(
                "{}: {family} rules, but node `{node}` of scenario `{}` has no {family} address \
                 (its addresses: {})",
                source.name(),
                scenario.id,
                addresses(&scenario, node)
            );
        }
        if let Some(other) = dumps.iter().find(|d| d.family == family) {
            let why = if named.is_none() {
                format!(" (it names no address, so it counts as the node's first family, {first})")
            } else {
                String::new()
            };
            bail!(
                "{} and {} are both {family} rules{why}; give one dump per family \
                 (iptables-save for IPv4, ip6tables-save for IPv6)",
                other.source.name(),
                source.name()
            );
        }
        dumps.push(Dump {
            source,
            rules,
            family,
        });
    }
    dumps.sort_by_key(|d| d.family);
    // Name the family in every line when the node has two.
    let dual = families.len() > 1;
    let mut passed = true;
    for dump in &dumps {
        let profile = match args.profile {
            ProfileArg::Auto => None,
            other => Some(super::lint::resolve_profile(other, &dump.rules)),
        };
        let report = check_node_family(
            &dump.rules,
            &scenario,
            node,
            dump.family,
            profile,
            args.probability.into(),
        )
        .expect("the node was checked above");
        out!("{}", report.render(Some(&dump.source)));
        let flows = report.flows.len();
        let failed = report.failed_flows();
        let violations = report.violations.len();
        let (of, family) = if dual {
            (format!("{} ", dump.family), format!(" ({})", dump.family))
        } else {
            (String::new(), String::new())
        };
        if flows == 0 {
            outln!(
                "note: scenario `{}` has no {of}flows on {node}",
                scenario.id
            );
        }
        let summary = format!(
            "{}@{node}{family}: {} of {flows} flow(s) passed, {violations} invariant violation(s) ({} profile)",
            scenario.id,
            flows - failed,
            report.profile,
        );
        if report.passed() {
            outln!("ok: {summary}");
        } else {
            outln!("FAILED: {summary}");
            passed = false;
        }
    }
    for &family in families
        .iter()
        .filter(|f| dumps.iter().all(|d| d.family != **f))
    {
        let unchecked = scenario
            .flows
            .iter()
            .filter(|f| &f.node == node && flow_family(f) == family)
            .count();
        let tool = match family {
            Family::Ipv4 => "iptables-save",
            Family::Ipv6 => "ip6tables-save",
        };
        if unchecked > 0 {
            outln!(
                "FAILED: {family} flows not checked: no {family} rules given \
                 ({unchecked} {family} flow(s) on {node}; add the node's {tool} dump as a second --rules)"
            );
            passed = false;
        } else {
            outln!(
                "note: no {family} rules given; scenario `{}` has no {family} flows on {node}, \
                 and the {family} invariants were not checked",
                scenario.id
            );
        }
    }
    Ok(if passed { Outcome::Pass } else { Outcome::Fail })
}

/// The node's addresses, comma-separated, for messages.
fn addresses(scenario: &kpconform_suite::scenario::Scenario, node: &str) -> String {
    scenario
        .node(node)
        .map(|n| {
            n.addresses
                .iter()
                .map(|a| a.addr().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
