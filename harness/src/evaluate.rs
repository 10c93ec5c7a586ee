//! The one evaluation every front end shares: run a generator for one
//! (scenario, node), once per family the node has an address of, parse each
//! output, check that family's flows and the invariants, compare each
//! snapshot, and classify the result.

use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::snapshot::{SnapshotCheck, Snapshots};
use crate::generator::{Generator, GeneratorError, GeneratorErrorKind, Request};
use kpconform_iptables::model::Family;
use kpconform_iptables::model::TableName;
use kpconform_iptables::normalize;
use kpconform_iptables::ProbabilityMode;
use kpconform_iptables::SourceFile;
use kpconform_iptables::{parse, require_tables, Mode, ParseError};
use kpconform_kernel::{FamilyRules, KernelReport};
use kpconform_suite::check::{check_node_family, NodeReport};
use kpconform_suite::scenario::{NodeSpec, Scenario};

/// How one (scenario, node) ended, worst first when sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// The generator produced nothing to judge: it failed, timed out, wrote
    /// too much, could not be started, or the snapshot could not be read.
    Error,
    /// The output does not parse, or a flow or an invariant failed.
    Broken,
    /// Everything held but the output differs from its snapshot.
    Changed,
    /// Everything held and the snapshot (if compared) matched.
    Passed,
}

impl Status {
    /// Every status, in report order.
    pub const ALL: [Status; 4] = [
        Status::Passed,
        Status::Broken,
        Status::Changed,
        Status::Error,
    ];

    /// Lower-case name, as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Broken => "broken",
            Status::Changed => "changed",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything found for one (scenario, node): one [`FamilyEvaluation`] per
/// family the node has an address of (IPv4 first), since the generator runs
/// once per family.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The scenario id.
    pub scenario: String,
    /// The node.
    pub node: String,
    /// The generator's name.
    pub generator: String,
    /// Why nothing ran at all (the scenario has no such node, or the node no
    /// address); each family's own failure is in its [`FamilyEvaluation`].
    pub error: Option<GeneratorError>,
    /// One result per family evaluated, IPv4 first.
    pub families: Vec<FamilyEvaluation>,
    /// The real kernel's results, when kernel mode ran
    /// ([`Evaluation::run_in_kernel`]).
    pub kernel: Option<KernelReport>,
    /// Wall time of the whole evaluation.
    pub elapsed: Duration,
}

/// What one run of the generator (one family of a node) gave.
#[derive(Debug, Clone)]
pub struct FamilyEvaluation {
    /// The family the generator was asked for (`node.family` of its input).
    pub family: Family,
    /// What the generator wrote, named `<generator>/<scenario-id>/<node>.rules`
    /// (`<node>.ipv6.rules` for IPv6) so that positions read like a
    /// recorded-rules directory; `None` when it failed.
    pub output: Option<SourceFile>,
    /// Why there is no output.
    pub error: Option<GeneratorError>,
    /// Why the output does not parse (strict mode).
    pub parse_errors: Vec<ParseError>,
    /// Flows of this family and invariants, when the output parsed.
    pub report: Option<NodeReport>,
    /// The snapshot comparison.
    pub snapshot: SnapshotCheck,
}

/// Runs `generator` for `node` of `scenario`, once per family the node has
/// an address of, and judges each result; with `snapshots`, also compares
/// each normalized output with its snapshot. Never panics on anything the
/// generator or the files contain.
pub fn evaluate(
    generator: &dyn Generator,
    scenario: &Scenario,
    node: &str,
    snapshots: Option<&Snapshots>,
) -> Evaluation {
    let families = scenario
        .node(node)
        .map(NodeSpec::families)
        .unwrap_or_default();
    evaluate_families(generator, scenario, node, &families, snapshots)
}

/// [`evaluate`] for the given families only (e.g. the one family a
/// recording holds); a family the node has no address of is an error for
/// that family.
pub fn evaluate_families(
    generator: &dyn Generator,
    scenario: &Scenario,
    node: &str,
    families: &[Family],
    snapshots: Option<&Snapshots>,
) -> Evaluation {
    let start = Instant::now();
    let mut evaluation = Evaluation {
        scenario: scenario.id.clone(),
        node: node.to_string(),
        generator: generator.name().to_string(),
        error: None,
        families: Vec::new(),
        kernel: None,
        elapsed: Duration::ZERO,
    };
    if scenario.node(node).is_none() {
        let nodes: Vec<&str> = scenario
            .cluster
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        evaluation.error = Some(GeneratorError::new(
            GeneratorErrorKind::Unavailable,
            format!(
                "scenario `{}` has no node `{node}` (its nodes: {})",
                scenario.id,
                nodes.join(", ")
            ),
        ));
    } else if families.is_empty() {
        evaluation.error = Some(GeneratorError::new(
            GeneratorErrorKind::Unavailable,
            format!("node `{node}` of scenario `{}` has no address", scenario.id),
        ));
    }
    if evaluation.error.is_none() {
        evaluation.families = families
            .iter()
            .map(|&family| evaluate_family(generator, scenario, node, family, snapshots))
            .collect();
    }
    evaluation.elapsed = start.elapsed();
    evaluation
}

/// One run of the generator, for `family`.
fn evaluate_family(
    generator: &dyn Generator,
    scenario: &Scenario,
    node: &str,
    family: Family,
    snapshots: Option<&Snapshots>,
) -> FamilyEvaluation {
    let mut result = FamilyEvaluation {
        family,
        output: None,
        error: None,
        parse_errors: Vec::new(),
        report: None,
        snapshot: SnapshotCheck::NotChecked,
    };
    let Some(input) = scenario.cluster.generator_input_for(node, family) else {
        result.error = Some(GeneratorError::new(
            GeneratorErrorKind::Unavailable,
            format!(
                "node `{node}` of scenario `{}` has no {family} address",
                scenario.id
            ),
        ));
        return result;
    };
    let request = Request {
        scenario: &scenario.id,
        node,
        input: &input,
    };
    let name = generator.name();
    // An in-process generator that panics is that case's error, not the
    // end of the run.
    let generated = panic::catch_unwind(AssertUnwindSafe(|| generator.generate(&request)))
        .unwrap_or_else(|payload| {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string payload".into());
            Err(GeneratorError::new(
                GeneratorErrorKind::Failed,
                format!("generator `{name}` panicked: {what}"),
            ))
        });
    let text = match generated {
        Ok(text) => text,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    let source = SourceFile::new(
        format!("{name}/{}/{node}{}", scenario.id, rules_suffix(family)),
        text,
    );
    // The protocol asks for `filter` and `nat`: output without them (an
    // empty one above all) is broken, never a silent pass.
    let parsed = parse(source.text(), Mode::Strict).and_then(|parsed| {
        require_tables(
            &parsed.rules,
            source.text(),
            &[TableName::Filter, TableName::Nat],
        )
        .map_err(|e| vec![e])
        .map(|()| parsed)
    });
    match parsed {
        Ok(parsed) => {
            result.report = check_node_family(
                &parsed.rules,
                scenario,
                node,
                family,
                None,
                ProbabilityMode::Kernel,
            );
        }
        Err(errors) => result.parse_errors = errors,
    }
    if let Some(snapshots) = snapshots {
        result.snapshot =
            snapshots.check_for(name, &scenario.id, node, family, &normalize(source.text()));
    }
    result.output = Some(source);
    result
}

/// How a family's rules file ends: `.rules` (IPv4), `.ipv6.rules` (IPv6),
/// as in a recorded-rules directory.
pub(crate) fn rules_suffix(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => ".rules",
        Family::Ipv6 => ".ipv6.rules",
    }
}

impl FamilyEvaluation {
    /// The classification of this family's run alone.
    pub fn status(&self) -> Status {
        if self.error.is_some() || matches!(self.snapshot, SnapshotCheck::Unreadable { .. }) {
            Status::Error
        } else if self.is_broken() {
            Status::Broken
        } else if self.is_changed() {
            Status::Changed
        } else {
            Status::Passed
        }
    }

    /// Whether the output failed to parse or a flow or invariant failed.
    pub fn is_broken(&self) -> bool {
        !self.parse_errors.is_empty() || self.report.as_ref().is_some_and(|r| !r.passed())
    }

    /// Whether the output differs from its snapshot.
    pub fn is_changed(&self) -> bool {
        matches!(self.snapshot, SnapshotCheck::Changed { .. })
    }

    /// What follows the case name in a summary line: `: <what was
    /// checked>` and the snapshot's state.
    fn detail(&self) -> String {
        let mut line = String::new();
        if let Some(e) = &self.error {
            let _ = write!(line, ": {}", e.message);
        } else if !self.parse_errors.is_empty() {
            let _ = write!(
                line,
                ": {} parse error(s) in the output",
                self.parse_errors.len()
            );
        } else if let Some(r) = &self.report {
            let _ = write!(
                line,
                ": {} of {} flow(s) passed, {} invariant violation(s)",
                r.flows.len() - r.failed_flows(),
                r.flows.len(),
                r.violations.len()
            );
        }
        match &self.snapshot {
            SnapshotCheck::Changed { missing: true, .. } => line.push_str(", no snapshot yet"),
            SnapshotCheck::Changed { .. } => line.push_str(", snapshot changed"),
            SnapshotCheck::Accepted { pending: None, .. } => line.push_str(", snapshot updated"),
            SnapshotCheck::Accepted { .. } => line.push_str(", snapshot pending review"),
            _ => {}
        }
        line
    }

    fn write_details(&self, generator: &str, out: &mut String) -> fmt::Result {
        writeln!(out, "  generator: {generator}")?;
        // The error's message is in the summary line; its stderr is not.
        if let Some(stderr) = self.error.as_ref().map(|e| e.stderr.trim_end()) {
            if !stderr.is_empty() {
                writeln!(out, "--- generator stderr ---\n{stderr}\n---")?;
            }
        }
        if let Some(source) = &self.output {
            for e in &self.parse_errors {
                writeln!(out, "{}", e.render(source))?;
            }
        }
        if let Some(report) = self.report.as_ref().filter(|r| !r.passed()) {
            out.push_str(&report.render(self.output.as_ref()));
        }
        match &self.snapshot {
            SnapshotCheck::Changed {
                path,
                missing,
                diff,
                pending,
            } => {
                if *missing {
                    writeln!(out, "no snapshot at {}", path.display())?;
                } else {
                    writeln!(out, "the output differs from {}:", path.display())?;
                }
                out.push_str(diff);
                if let Some(p) = pending {
                    writeln!(
                        out,
                        "new snapshot stored as {}; `cargo insta review` accepts it",
                        p.display()
                    )?;
                }
            }
            SnapshotCheck::Accepted {
                path,
                pending: None,
            } => {
                writeln!(out, "snapshot {} updated", path.display())?;
            }
            SnapshotCheck::Accepted {
                path,
                pending: Some(p),
            } => {
                writeln!(
                    out,
                    "the output differs from {}, passed as insta was told to; \
                     new snapshot stored as {}",
                    path.display(),
                    p.display()
                )?;
            }
            SnapshotCheck::Unreadable { path, message } => {
                writeln!(out, "cannot read snapshot {}: {message}", path.display())?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Evaluation {
    /// `<scenario-id>@<node>`, the trial name.
    pub fn name(&self) -> String {
        format!("{}@{}", self.scenario, self.node)
    }

    /// The result for `family`, if it was evaluated.
    pub fn family(&self, family: Family) -> Option<&FamilyEvaluation> {
        self.families.iter().find(|f| f.family == family)
    }

    /// Whether reports name the family of each result (the node has two).
    pub fn names_families(&self) -> bool {
        self.families.len() > 1
    }

    /// Sends every flow of the node through its rules loaded into a real
    /// kernel ([`kpconform_kernel::run_node`]) and keeps the result in
    /// [`Evaluation::kernel`]. Does nothing when some family has no rules
    /// that parsed: the case is an error or broken already.
    pub fn run_in_kernel(&mut self, scenario: &Scenario, options: &kpconform_kernel::Options) {
        if self.error.is_some() || self.families.is_empty() {
            return;
        }
        let mut rules = Vec::new();
        for f in &self.families {
            let (Some(output), Some(report)) = (&f.output, &f.report) else {
                return;
            };
            rules.push(FamilyRules {
                family: f.family,
                text: output.text().into(),
                report,
                unmodelled: false,
            });
        }
        let start = Instant::now();
        let report = kpconform_kernel::run_node(scenario, &self.node, &rules, options);
        self.kernel = Some(report);
        self.elapsed += start.elapsed();
    }

    /// The classification, worst family first: error, then broken, then
    /// changed, then passed; the kernel's results count as a family's.
    pub fn status(&self) -> Status {
        if self.error.is_some() {
            return Status::Error;
        }
        let kernel = self.kernel.as_ref().map(|k| {
            if k.setup_error.is_some() {
                Status::Error
            } else if k.passed() {
                Status::Passed
            } else {
                Status::Broken
            }
        });
        self.families
            .iter()
            .map(FamilyEvaluation::status)
            .chain(kernel)
            .min()
            .unwrap_or(Status::Passed)
    }

    /// Whether some family's output failed to parse or a flow or invariant
    /// failed (in the tracer or in the kernel).
    pub fn is_broken(&self) -> bool {
        self.families.iter().any(FamilyEvaluation::is_broken)
            || self
                .kernel
                .as_ref()
                .is_some_and(|k| k.setup_error.is_none() && !k.passed())
    }

    /// Whether some family's output differs from its snapshot (reported
    /// even when the output is also broken).
    pub fn is_changed(&self) -> bool {
        self.families.iter().any(FamilyEvaluation::is_changed)
    }

    /// One line: status, name, and what was checked; for a node with two
    /// families, each family's status and what was checked.
    pub fn summary(&self) -> String {
        let mut line = format!("{}: {}", self.status(), self.name());
        if let Some(e) = &self.error {
            let _ = write!(line, ": {}", e.message);
        } else if let [only] = self.families.as_slice() {
            line.push_str(&only.detail());
        } else {
            let parts: Vec<String> = self
                .families
                .iter()
                .map(|f| format!("{} {}{}", f.family, f.status(), f.detail()))
                .collect();
            let _ = write!(line, ": {}", parts.join("; "));
        }
        if let Some(k) = &self.kernel {
            line.push_str(&kernel_detail(k));
        }
        line
    }

    /// The line of one family of a node with two:
    /// `broken: <id>@<node> (IPv6): ...`.
    pub fn family_summary(&self, family: &FamilyEvaluation) -> String {
        format!(
            "{}: {} ({}){}",
            family.status(),
            self.name(),
            family.family,
            family.detail()
        )
    }

    /// The full explanation: the summary line, then every failure (generator
    /// stderr, parse errors at their line and column, failed flows with
    /// their packet, expected vs actual distribution and chain walk, broken
    /// invariants, the snapshot diff). For a node with two families, one
    /// such block per family, each line naming its family
    /// (`broken: <id>@<node> (IPv6): ...`).
    pub fn render(&self) -> String {
        let mut out = self.render_families();
        if let Some(k) = self
            .kernel
            .as_ref()
            .filter(|k| !k.passed() || k.skipped() > 0)
        {
            if self.names_families() {
                let _ = writeln!(out, "kernel: {}{}", self.name(), kernel_detail(k));
            }
            out.push_str(&k.render());
        }
        out
    }

    fn render_families(&self) -> String {
        let mut out = String::new();
        if !self.names_families() {
            out.push_str(&self.summary());
            out.push('\n');
            match self.families.first() {
                Some(only) => {
                    let _ = only.write_details(&self.generator, &mut out);
                }
                None => {
                    let _ = writeln!(out, "  generator: {}", self.generator);
                }
            }
            return out;
        }
        for family in &self.families {
            out.push_str(&self.family_summary(family));
            out.push('\n');
            if family.status() != Status::Passed {
                let _ = family.write_details(&self.generator, &mut out);
            }
        }
        out
    }
}

/// `; kernel (nft): 5 of 6 flow(s) passed, 1 skipped`.
fn kernel_detail(k: &KernelReport) -> String {
    let mut line = format!("; kernel ({})", k.backend);
    if let Some(e) = &k.setup_error {
        let _ = write!(line, ": {e}");
        return line;
    }
    if !k.refused.is_empty() {
        line.push_str(": rules refused by the kernel");
        return line;
    }
    let run = k.flows.len() - k.skipped();
    let passed = k.flows.iter().filter(|f| f.passed()).count();
    let _ = write!(line, ": {passed} of {run} flow(s) passed");
    if k.skipped() > 0 {
        let _ = write!(line, ", {} skipped", k.skipped());
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::FnGenerator;

    const SCENARIO: &str = "
cluster:
  clusterCIDR: 10.64.0.0/16
  nodes: [{name: node-a, addresses: [192.168.0.10]}, {name: node-b, addresses: [192.168.0.11]}]
  objects: []
flows:
- {name: untouched, node: node-a, from: 203.0.113.7, to: 10.96.0.50:80/tcp,
   expect: {verdict: accept, endpoints: {10.96.0.50:80: 1}}}
";

    const ACCEPT_ALL: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";

    fn scenario() -> Scenario {
        Scenario::from_source(&SourceFile::new("s.yaml", SCENARIO), "group/s").unwrap()
    }

    fn fixed(text: &'static str) -> impl Generator {
        FnGenerator::new("fixed", move |_| Ok(text.to_string()))
    }

    fn flows(e: &Evaluation) -> Vec<Option<usize>> {
        e.families
            .iter()
            .map(|f| f.report.as_ref().map(|r| r.flows.len()))
            .collect()
    }

    const DUAL: &str = "
cluster:
  clusterCIDR: 10.64.0.0/16,fd00:10:64::/48
  nodes: [{name: node-a, addresses: [192.168.0.10, fd00:192:168::10]}]
  objects: []
flows:
- {name: v4, node: node-a, from: 203.0.113.7, to: 10.96.0.50:80/tcp,
   expect: {verdict: accept, endpoints: {10.96.0.50:80: 1}}}
- {name: v6, node: node-a, from: 2001:db8::7, to: '[fd00:10:96::50]:80/tcp',
   expect: {verdict: accept, endpoints: {'[fd00:10:96::50]:80': 1}}}
";

    const DROP_FORWARD: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";

    fn dual() -> Scenario {
        Scenario::from_source(&SourceFile::new("d.yaml", DUAL), "group/d").unwrap()
    }

    /// Accepts everything for IPv4; `ipv6` for IPv6.
    fn per_family(ipv6: Result<&'static str, &'static str>) -> impl Generator {
        FnGenerator::new("pf", move |input| match input.node.family {
            Family::Ipv4 => Ok(ACCEPT_ALL.to_string()),
            Family::Ipv6 => ipv6
                .map(str::to_string)
                .map_err(|m| GeneratorError::new(GeneratorErrorKind::Failed, m)),
        })
    }

    #[test]
    fn a_dual_stack_node_runs_the_generator_once_per_family() {
        let seen = std::sync::Mutex::new(Vec::new());
        let recording = FnGenerator::new("rec", |input| {
            seen.lock().unwrap().push(input.node.family);
            Ok(ACCEPT_ALL.to_string())
        });
        let e = evaluate(&recording, &dual(), "node-a", None);
        assert_eq!(*seen.lock().unwrap(), [Family::Ipv4, Family::Ipv6]);
        assert_eq!(e.status(), Status::Passed, "{}", e.render());
        let families: Vec<Family> = e.families.iter().map(|f| f.family).collect();
        assert_eq!(families, [Family::Ipv4, Family::Ipv6]);
        // Each family traces its own flows only.
        assert_eq!(flows(&e), [Some(1), Some(1)]);
        assert_eq!(
            e.family(Family::Ipv6)
                .unwrap()
                .output
                .as_ref()
                .unwrap()
                .name(),
            "rec/group/d/node-a.ipv6.rules"
        );
        assert_eq!(
            e.summary(),
            "passed: group/d@node-a: IPv4 passed: 1 of 1 flow(s) passed, 0 invariant violation(s); \
             IPv6 passed: 1 of 1 flow(s) passed, 0 invariant violation(s)"
        );
        // An IPv4-only node is evaluated once, as IPv4.
        let e = evaluate(&fixed(ACCEPT_ALL), &scenario(), "node-a", None);
        assert_eq!(e.families.len(), 1);
        assert_eq!(e.families[0].family, Family::Ipv4);
        assert!(!e.names_families());
    }

    #[test]
    fn a_failing_family_names_itself_and_the_other_still_counts() {
        let e = evaluate(&per_family(Ok(DROP_FORWARD)), &dual(), "node-a", None);
        assert_eq!(e.status(), Status::Broken);
        assert_eq!(e.family(Family::Ipv4).unwrap().status(), Status::Passed);
        let text = e.render();
        assert!(
            text.starts_with("passed: group/d@node-a (IPv4): 1 of 1 flow(s) passed"),
            "{text}"
        );
        assert!(
            text.contains("broken: group/d@node-a (IPv6): 0 of 1 flow(s) passed"),
            "{text}"
        );
        assert!(text.contains("FAIL \"v6\" on node-a"), "{text}");
        assert!(!text.contains("FAIL \"v4\""), "{text}");

        let e = evaluate(&per_family(Err("no IPv6 here")), &dual(), "node-a", None);
        assert_eq!(e.status(), Status::Error);
        assert!(
            e.render()
                .contains("error: group/d@node-a (IPv6): no IPv6 here"),
            "{}",
            e.render()
        );
        assert!(e.summary().contains("IPv4 passed"), "{}", e.summary());
    }

    #[test]
    fn ipv4_rules_given_for_ipv6_are_broken() {
        // A generator that ignores node.family.
        let e = evaluate(
            &fixed("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"),
            &dual(),
            "node-a",
            None,
        );
        assert_eq!(e.family(Family::Ipv4).unwrap().status(), Status::Passed);
        assert_eq!(e.family(Family::Ipv6).unwrap().status(), Status::Broken);
    }

    #[test]
    fn only_the_asked_families_run() {
        let e = evaluate_families(
            &per_family(Err("not asked")),
            &dual(),
            "node-a",
            &[Family::Ipv4],
            None,
        );
        assert_eq!(e.status(), Status::Passed, "{}", e.render());
        let e = evaluate_families(
            &fixed(ACCEPT_ALL),
            &scenario(),
            "node-a",
            &[Family::Ipv6],
            None,
        );
        assert_eq!(e.status(), Status::Error);
        assert!(e.render().contains("has no IPv6 address"), "{}", e.render());
    }

    #[test]
    fn each_family_has_its_snapshot() {
        let root = std::env::temp_dir().join(format!("kpconform-eval-dual-{}", std::process::id()));
        let snapshots = Snapshots::read_only(&root);
        let e = evaluate(&fixed(ACCEPT_ALL), &dual(), "node-a", Some(&snapshots));
        let paths: Vec<String> = e
            .families
            .iter()
            .map(|f| match &f.snapshot {
                SnapshotCheck::Changed { path, .. } => path.display().to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(paths[0].ends_with("fixed/group/d@node-a.snap"), "{paths:?}");
        assert!(
            paths[1].ends_with("fixed/group/d@node-a.ipv6.snap"),
            "{paths:?}"
        );
        assert!(!root.exists());
    }

    #[test]
    fn rules_that_meet_the_expectations_pass() {
        let e = evaluate(&fixed(ACCEPT_ALL), &scenario(), "node-a", None);
        assert_eq!(e.status(), Status::Passed, "{}", e.render());
        assert_eq!(e.name(), "group/s@node-a");
        assert_eq!(flows(&e), [Some(1)]);
        // A node without flows is still checked (invariants).
        let e = evaluate(&fixed(ACCEPT_ALL), &scenario(), "node-b", None);
        assert_eq!(e.status(), Status::Passed);
        assert_eq!(flows(&e), [Some(0)]);
    }

    #[test]
    fn a_failed_flow_is_broken_and_explained() {
        let drop_all =
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n\
                        *nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";
        let e = evaluate(&fixed(drop_all), &scenario(), "node-a", None);
        assert_eq!(e.status(), Status::Broken);
        let text = e.render();
        assert!(
            text.starts_with("broken: group/s@node-a: 0 of 1 flow(s) passed"),
            "{text}"
        );
        assert!(text.contains("FAIL \"untouched\" on node-a"), "{text}");
    }

    #[test]
    fn empty_or_partial_output_is_broken_not_a_silent_pass() {
        // See issue #9: an empty rule set passed every flow that expects
        // the destination unchanged.
        for (output, says) in [
            ("", "no `*filter` and `*nat` table"),
            ("# Generated by iptables-save v1.8.9\n", "all comments"),
            ("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "no `*nat` table"),
        ] {
            let e = evaluate(&fixed(output), &scenario(), "node-a", None);
            assert_eq!(e.status(), Status::Broken, "{output:?}");
            assert!(e.render().contains(says), "{output:?}: {}", e.render());
        }
    }

    #[test]
    fn unparsable_output_is_broken_at_its_line_and_column() {
        let e = evaluate(
            &fixed(
                "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING --frobnicate 1 -j ACCEPT\nCOMMIT\n",
            ),
            &scenario(),
            "node-a",
            None,
        );
        assert_eq!(e.status(), Status::Broken);
        assert!(!e.families[0].parse_errors.is_empty());
        let text = e.render();
        assert!(
            text.contains("fixed/group/s/node-a.rules:3:15: unknown option `--frobnicate`"),
            "no position in:\n{text}"
        );
        assert!(text.contains("3 | -A PREROUTING --frobnicate 1"), "{text}");
    }

    #[test]
    fn a_generator_failure_is_an_error_with_its_stderr() {
        let failing = FnGenerator::new("bad", |_| {
            Err(GeneratorError {
                kind: GeneratorErrorKind::Failed,
                message: "generator `bad` exited with exit status: 3".into(),
                stderr: "panic: nil map\n".into(),
            })
        });
        let e = evaluate(&failing, &scenario(), "node-a", None);
        assert_eq!(e.status(), Status::Error);
        let text = e.render();
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("panic: nil map"), "{text}");
        let panicking = FnGenerator::new("p", |_| -> Result<String, GeneratorError> {
            panic!("index out of bounds")
        });
        let e = evaluate(&panicking, &scenario(), "node-a", None);
        assert_eq!(e.status(), Status::Error);
        assert!(e
            .render()
            .contains("generator `p` panicked: index out of bounds"));
        // An unknown node is an error too, not a panic.
        let e = evaluate(&fixed(ACCEPT_ALL), &scenario(), "node-z", None);
        assert_eq!(e.status(), Status::Error);
        assert!(e.render().contains("its nodes: node-a, node-b"));
    }

    #[test]
    fn broken_takes_precedence_but_a_changed_snapshot_is_still_reported() {
        let root = std::env::temp_dir().join(format!("kpconform-eval-{}", std::process::id()));
        let snapshots = Snapshots::read_only(&root);
        let e = evaluate(&fixed(ACCEPT_ALL), &scenario(), "node-a", Some(&snapshots));
        assert_eq!(e.status(), Status::Changed, "{}", e.render());
        assert!(e.render().contains("no snapshot at"));

        let garbage = evaluate(&fixed("garbage\n"), &scenario(), "node-a", Some(&snapshots));
        assert_eq!(garbage.status(), Status::Broken);
        assert!(garbage.is_changed());
        assert!(
            garbage.render().contains("+garbage"),
            "{}",
            garbage.render()
        );
        assert!(!root.exists());
    }

    #[test]
    fn status_order_is_worst_first() {
        let mut all = Status::ALL;
        all.sort();
        assert_eq!(
            all,
            [
                Status::Error,
                Status::Broken,
                Status::Changed,
                Status::Passed
            ]
        );
    }
}
