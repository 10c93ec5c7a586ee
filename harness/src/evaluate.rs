//! The one evaluation every front end shares: run a generator for one
//! (scenario, node), parse its output, check flows and invariants, compare
//! the snapshot, and classify the result.

use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::snapshot::{SnapshotCheck, Snapshots};
use crate::generator::{Generator, GeneratorError, GeneratorErrorKind, Request};
use kpconform_iptables::model::TableName;
use kpconform_iptables::normalize;
use kpconform_iptables::ProbabilityMode;
use kpconform_iptables::SourceFile;
use kpconform_iptables::{parse, require_tables, Mode, ParseError};
use kpconform_suite::check::{check_node, NodeReport};
use kpconform_suite::scenario::Scenario;

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

/// Everything found for one (scenario, node).
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The scenario id.
    pub scenario: String,
    /// The node.
    pub node: String,
    /// The generator's name.
    pub generator: String,
    /// What the generator wrote, named `<generator>/<scenario-id>/<node>.rules`
    /// so that positions read like a recorded-rules directory; `None` when it
    /// failed.
    pub output: Option<SourceFile>,
    /// Why there is no output (or, for an unknown node, nothing to run).
    pub error: Option<GeneratorError>,
    /// Why the output does not parse (strict mode).
    pub parse_errors: Vec<ParseError>,
    /// Flows and invariants, when the output parsed.
    pub report: Option<NodeReport>,
    /// The snapshot comparison.
    pub snapshot: SnapshotCheck,
    /// Wall time of the whole evaluation.
    pub elapsed: Duration,
}

/// Runs `generator` for `node` of `scenario` and judges the result; with
/// `snapshots`, also compares the normalized output with its snapshot.
/// Never panics on anything the generator or the files contain.
pub fn evaluate(
    generator: &dyn Generator,
    scenario: &Scenario,
    node: &str,
    snapshots: Option<&Snapshots>,
) -> Evaluation {
    let start = Instant::now();
    let mut evaluation = Evaluation {
        scenario: scenario.id.clone(),
        node: node.to_string(),
        generator: generator.name().to_string(),
        output: None,
        error: None,
        parse_errors: Vec::new(),
        report: None,
        snapshot: SnapshotCheck::NotChecked,
        elapsed: Duration::ZERO,
    };
    let Some(input) = scenario.generator_input(node) else {
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
        evaluation.elapsed = start.elapsed();
        return evaluation;
    };
    let request = Request {
        scenario: &scenario.id,
        node,
        input: &input,
    };
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
                format!("generator `{}` panicked: {what}", evaluation.generator),
            ))
        });
    let text = match generated {
        Ok(text) => text,
        Err(e) => {
            evaluation.error = Some(e);
            evaluation.elapsed = start.elapsed();
            return evaluation;
        }
    };
    let source = SourceFile::new(
        format!("{}/{}/{node}.rules", evaluation.generator, scenario.id),
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
            evaluation.report =
                check_node(&parsed.rules, scenario, node, None, ProbabilityMode::Kernel);
        }
        Err(errors) => evaluation.parse_errors = errors,
    }
    if let Some(snapshots) = snapshots {
        evaluation.snapshot = snapshots.check(
            &evaluation.generator,
            &scenario.id,
            node,
            &normalize(source.text()),
        );
    }
    evaluation.output = Some(source);
    evaluation.elapsed = start.elapsed();
    evaluation
}

impl Evaluation {
    /// `<scenario-id>@<node>`, the trial name.
    pub fn name(&self) -> String {
        format!("{}@{}", self.scenario, self.node)
    }

    /// The classification: error, then broken, then changed, then passed.
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

    /// Whether the output differs from its snapshot (reported even when the
    /// output is also broken).
    pub fn is_changed(&self) -> bool {
        matches!(self.snapshot, SnapshotCheck::Changed { .. })
    }

    /// One line: status, name, generator, and what was checked.
    pub fn summary(&self) -> String {
        let mut line = format!("{}: {}", self.status(), self.name());
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

    /// The full explanation: the summary line, then every failure (generator
    /// stderr, parse errors at their line and column, failed flows with
    /// their packet, expected vs actual distribution and chain walk, broken
    /// invariants, the snapshot diff).
    pub fn render(&self) -> String {
        let mut out = self.summary();
        out.push('\n');
        let _ = self.write_details(&mut out);
        out
    }

    fn write_details(&self, out: &mut String) -> fmt::Result {
        writeln!(out, "  generator: {}", self.generator)?;
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

    #[test]
    fn rules_that_meet_the_expectations_pass() {
        let e = evaluate(&fixed(ACCEPT_ALL), &scenario(), "node-a", None);
        assert_eq!(e.status(), Status::Passed, "{}", e.render());
        assert_eq!(e.name(), "group/s@node-a");
        assert_eq!(e.report.as_ref().map(|r| r.flows.len()), Some(1));
        // A node without flows is still checked (invariants).
        let e = evaluate(&fixed(ACCEPT_ALL), &scenario(), "node-b", None);
        assert_eq!(e.status(), Status::Passed);
        assert_eq!(e.report.as_ref().map(|r| r.flows.len()), Some(0));
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
        assert!(!e.parse_errors.is_empty());
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
