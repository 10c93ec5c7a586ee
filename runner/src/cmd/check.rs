//! `kpconform check`: one node's rules against a scenario's flows and the invariants.
//!
//! A dual-stack node has two dumps (`iptables-save` and `ip6tables-save`),
//! given as two `--rules`. Each dump's family is that of the addresses it
//! names (a dump naming none is of the node's first family); each is checked
//! against the node's flows of its family. A family of the node that has
//! flows but no dump fails the check: its flows were not checked.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use kpconform_iptables::model::{Family, RuleSet};
use kpconform_iptables::SourceFile;
use kpconform_kernel::FamilyRules;
use kpconform_suite::check::{check_node_family_keeping, flow_family, Keep};

use super::Outcome;
use crate::cli::{CheckArgs, ProfileArg};
use crate::{rules_file, scenario_file};

/// One `--rules` dump, read and parsed, with its family.
struct Dump {
    source: SourceFile,
    rules: RuleSet,
    family: Family,
    /// Warnings of a `--lax` parse: rules the tracer does not model.
    warnings: usize,
}

pub(crate) fn run(args: &CheckArgs) -> Result<Outcome> {
    let kernel = args.kernel.options();
    if let Some(k) = &kernel {
        kpconform_kernel::preflight(k.backend, &[Family::Ipv4, Family::Ipv6])?;
    }
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
        let (rules, warnings) = rules_file::parse_counting(&source, &args.parse)?;
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
            warnings,
        });
    }
    dumps.sort_by_key(|d| d.family);
    // Name the family in every line when the node has two.
    let dual = families.len() > 1;
    let mut passed = true;
    let mut reports = Vec::new();
    for dump in &dumps {
        let profile = match args.profile {
            ProfileArg::Auto => None,
            other => Some(super::lint::resolve_profile(other, &dump.rules)),
        };
        // Kernel mode predicts every flow from its distribution; otherwise
        // only failing flows' are rendered, and a big service's passing
        // distribution is Θ(endpoints²) bits of exact masses.
        let keep = if kernel.is_some() {
            Keep::All
        } else {
            Keep::Failing
        };
        let report = check_node_family_keeping(
            &dump.rules,
            &scenario,
            node,
            dump.family,
            profile,
            args.probability.into(),
            keep,
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
        reports.push(report);
    }
    if let Some(options) = &kernel {
        let rules: Vec<FamilyRules<'_>> = dumps
            .iter()
            .zip(&reports)
            .map(|(dump, report)| FamilyRules {
                family: dump.family,
                text: restorable(dump),
                report,
                unmodelled: dump.warnings > 0,
            })
            .collect();
        if std::io::stderr().is_terminal() {
            eprintln!(
                "kernel mode: sending {}@{node}'s flows through the {} backend...",
                scenario.id, options.backend
            );
        }
        let k = kpconform_kernel::run_node(&scenario, node, &rules, options);
        out!("{}", k.render());
        let run = k.flows.len() - k.skipped();
        let ok = k.flows.iter().filter(|f| f.passed()).count();
        let summary = if let Some(e) = &k.setup_error {
            format!("{}@{node} in the kernel: {e}", scenario.id)
        } else if !k.refused.is_empty() {
            format!(
                "{}@{node} in the kernel ({} backend): the kernel refused the rules",
                scenario.id, k.backend
            )
        } else {
            format!(
                "{}@{node} in the kernel ({} backend): {ok} of {run} flow(s) passed, {} skipped, \
             {} statistical judgement(s) (false-failure bound {:.1e}), {:.2} s",
                scenario.id,
                k.backend,
                k.skipped(),
                k.tests(),
                kpconform_kernel::false_failure_bound(k.tests()),
                k.elapsed.as_secs_f64()
            )
        };
        if k.passed() {
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

/// The text `iptables-restore` is given: the dump itself when it is
/// iptables-save output (so that the kernel judges exactly what was
/// written), else (commands, transcripts, fragments) the rule set as
/// kpconform read it, printed in iptables-save form.
fn restorable(dump: &Dump) -> std::borrow::Cow<'_, str> {
    let first = dump
        .source
        .text()
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if first.is_some_and(|l| l.starts_with('*')) {
        dump.source.text().into()
    } else {
        kpconform_iptables::print(&dump.rules).into()
    }
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
