//! `--format json`: one JSON document on stdout.
//!
//! ```json
//! {"generator": "reference", "scenarios": "golden/scenarios", "snapshots": null,
//!  "summary": {"passed": 90, "broken": 1, "changed": 0, "error": 0, "total": 91, "seconds": 0.4},
//!  "cases": [{"name": "clusterip/one-endpoint@node-a", "scenario": "clusterip/one-endpoint",
//!             "node": "node-a", "status": "passed", "seconds": 0.002,
//!             "flows": 3, "failed_flows": 0, "violations": 0, "parse_errors": 0,
//!             "snapshot": "matched", "summary": "passed: ...", "details": null}, ...],
//!  "load_errors": [{"scenario": "group/x", "file": "...", "line": 3, "column": 5,
//!                   "message": "..."}]}
//! ```
//!
//! A case of a node with addresses of both families (the generator ran
//! twice) also has `"families"`: one entry per family, IPv4 first, each
//! `{"family": "IPv6", "status": ..., "flows": ..., "failed_flows": ...,
//! "violations": ..., "parse_errors": ..., "snapshot": ..., "summary": ...}`;
//! the case's own counts are then the sums over its families, its
//! `snapshot` the first one that did not match. Single-family cases have no
//! `"families"` key.

use kpconform_harness::{Evaluation, FamilyEvaluation, SnapshotCheck, Status};
use kpconform_suite::check::NodeReport;
use serde::Serialize;

use super::RunReport;

#[derive(Serialize)]
struct Document<'a> {
    generator: &'a str,
    scenarios: &'a str,
    snapshots: Option<&'a str>,
    summary: Summary,
    cases: Vec<Case>,
    load_errors: Vec<LoadError<'a>>,
}

#[derive(Serialize)]
struct Summary {
    passed: usize,
    broken: usize,
    changed: usize,
    error: usize,
    total: usize,
    seconds: f64,
}

#[derive(Serialize)]
struct Case {
    name: String,
    scenario: String,
    node: String,
    status: &'static str,
    seconds: f64,
    /// Flows checked; `null` when the output was not checked.
    flows: Option<usize>,
    failed_flows: Option<usize>,
    violations: Option<usize>,
    parse_errors: usize,
    snapshot: &'static str,
    summary: String,
    /// The full explanation; `null` for a passed case.
    details: Option<String>,
    /// Per family, for a node with two.
    #[serde(skip_serializing_if = "Option::is_none")]
    families: Option<Vec<FamilyCase>>,
}

#[derive(Serialize)]
struct FamilyCase {
    family: &'static str,
    status: &'static str,
    flows: Option<usize>,
    failed_flows: Option<usize>,
    violations: Option<usize>,
    parse_errors: usize,
    snapshot: &'static str,
    summary: String,
}

#[derive(Serialize)]
struct LoadError<'a> {
    scenario: &'a str,
    file: &'a str,
    line: usize,
    column: usize,
    message: String,
}

fn snapshot(check: &SnapshotCheck) -> &'static str {
    match check {
        SnapshotCheck::Matched => "matched",
        SnapshotCheck::Accepted { pending: None, .. } => "updated",
        SnapshotCheck::Accepted { .. } => "pending",
        SnapshotCheck::Changed { missing: true, .. } => "missing",
        SnapshotCheck::Changed { .. } => "changed",
        SnapshotCheck::Unreadable { .. } => "unreadable",
        _ => "not-checked",
    }
}

/// The sum of `count` over the families that have a report; `None` when none has.
fn sum(e: &Evaluation, count: impl Fn(&NodeReport) -> usize) -> Option<usize> {
    e.families
        .iter()
        .filter_map(|f| f.report.as_ref().map(&count))
        .reduce(|a, b| a + b)
}

fn family_case(e: &Evaluation, f: &FamilyEvaluation) -> FamilyCase {
    FamilyCase {
        family: f.family.as_str(),
        status: f.status().as_str(),
        flows: f.report.as_ref().map(|r| r.flows.len()),
        failed_flows: f.report.as_ref().map(|r| r.failed_flows()),
        violations: f.report.as_ref().map(|r| r.violations.len()),
        parse_errors: f.parse_errors.len(),
        snapshot: snapshot(&f.snapshot),
        summary: e.family_summary(f),
    }
}

fn case(e: &Evaluation) -> Case {
    let status = e.status();
    let snapshots: Vec<&'static str> = e.families.iter().map(|f| snapshot(&f.snapshot)).collect();
    Case {
        name: e.name(),
        scenario: e.scenario.clone(),
        node: e.node.clone(),
        status: status.as_str(),
        seconds: e.elapsed.as_secs_f64(),
        flows: sum(e, |r| r.flows.len()),
        failed_flows: sum(e, NodeReport::failed_flows),
        violations: sum(e, |r| r.violations.len()),
        parse_errors: e.families.iter().map(|f| f.parse_errors.len()).sum(),
        snapshot: snapshots
            .iter()
            .copied()
            .find(|s| !matches!(*s, "matched" | "not-checked"))
            .or(snapshots.first().copied())
            .unwrap_or("not-checked"),
        summary: e.summary(),
        details: (status != Status::Passed).then(|| e.render()),
        families: e
            .names_families()
            .then(|| e.families.iter().map(|f| family_case(e, f)).collect()),
    }
}

/// The report as pretty-printed JSON.
pub(crate) fn render(report: &RunReport) -> String {
    let document = Document {
        generator: &report.generator,
        scenarios: &report.scenarios,
        snapshots: report.snapshots.as_deref(),
        summary: Summary {
            passed: report.count(Status::Passed),
            broken: report.count(Status::Broken),
            changed: report.count(Status::Changed),
            error: report.count(Status::Error),
            total: report.total(),
            seconds: report.elapsed.as_secs_f64(),
        },
        cases: report.evaluations.iter().map(case).collect(),
        load_errors: report
            .load_errors
            .iter()
            .map(|(id, e)| LoadError {
                scenario: id,
                file: e.file(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })
            .collect(),
    };
    // Serializing plain structs of strings and numbers cannot fail.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn the_document_parses_and_carries_every_case() {
        let v: serde_json::Value = serde_json::from_str(&render(&sample())).unwrap();
        assert_eq!(v["generator"], "gen");
        assert_eq!(v["summary"]["total"], 4);
        assert_eq!(v["summary"]["error"], 2);
        assert_eq!(v["summary"]["seconds"], 1.5);
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0]["status"], "passed");
        assert_eq!(cases[0]["flows"], 1);
        assert!(cases[0]["details"].is_null());
        assert_eq!(cases[1]["status"], "broken");
        assert_eq!(cases[1]["parse_errors"], 1);
        assert!(cases[1]["flows"].is_null());
        assert!(cases[1]["details"].as_str().unwrap().contains(":1:1:"));
        assert_eq!(cases[2]["status"], "error");
        assert_eq!(v["load_errors"][0]["line"], 1);
        assert_eq!(v["load_errors"][0]["scenario"], "g/bad");
        assert!(cases.iter().all(|c| c.get("families").is_none()));
    }

    #[test]
    fn a_dual_stack_case_lists_its_families() {
        let r = super::super::tests::dual_stack_sample();
        let v: serde_json::Value = serde_json::from_str(&render(&r)).unwrap();
        let case = &v["cases"][0];
        assert_eq!(case["status"], "broken");
        assert_eq!(case["flows"], 2);
        assert_eq!(case["failed_flows"], 1);
        let families = case["families"].as_array().unwrap();
        assert_eq!(families.len(), 2);
        assert_eq!(families[0]["family"], "IPv4");
        assert_eq!(families[0]["status"], "passed");
        assert_eq!(families[1]["family"], "IPv6");
        assert_eq!(families[1]["status"], "broken");
        assert_eq!(families[1]["failed_flows"], 1);
        assert!(families[1]["summary"]
            .as_str()
            .unwrap()
            .starts_with("broken: g/d@node-a (IPv6): 0 of 1 flow(s) passed"));
    }
}
