//! `--format json`: one JSON document on stdout.
//!
//! ```json
//! {"$schema": "urn:kpconform:schema:run-report:1", "schema_version": 1,
//!  "generator": "reference", "scenarios": "golden/scenarios", "snapshots": null,
//!  "summary": {"passed": 90, "broken": 1, "changed": 0, "error": 0, "total": 91, "seconds": 0.4},
//!  "cases": [{"name": "clusterip/one-endpoint@node-a", "scenario": "clusterip/one-endpoint",
//!             "node": "node-a", "status": "passed", "seconds": 0.002,
//!             "flows": 3, "failed_flows": 0, "violations": 0, "parse_errors": 0,
//!             "snapshot": "matched", "summary": "passed: ...", "details": null,
//!             "flow_results": [...], "invariant_violations": [...]}, ...],
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
//!
//! `flow_results` and `invariant_violations` carry the structured facts
//! (see `detail`): per flow the expected and actual distributions and, for
//! a failing flow, its paths with their rule lines; per violation the
//! invariant id and its rule line. The document's shape is
//! `docs/schema/run-report.schema.json` (JSON Schema 2020-12), whose
//! version is [`SCHEMA_VERSION`]; `docs/reports.md` says when it changes.

use std::collections::BTreeMap;

use kpconform_harness::{Evaluation, FamilyEvaluation, SnapshotCheck, Status};
use kpconform_kernel::{KernelFlow, KernelReport};
use kpconform_suite::check::NodeReport;
use serde::Serialize;

use super::detail::{self, FlowDetail, ViolationDetail};
use super::RunReport;

/// The version of the document's shape: bumped when a key is removed,
/// renamed or changes meaning; adding a key keeps it.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The schema's `$id`, which every document names in its `$schema` key.
pub(crate) const SCHEMA_ID: &str = "urn:kpconform:schema:run-report:1";

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    schema_version: u32,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<KernelSummary>,
}

#[derive(Serialize)]
struct KernelSummary {
    flows: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
    tests: u32,
    false_failure_bound: f64,
}

#[derive(Serialize)]
struct KernelCase {
    backend: String,
    status: &'static str,
    setup_error: Option<String>,
    refused: Vec<Refused>,
    seconds: f64,
    flows: Vec<KernelFlowCase>,
}

#[derive(Serialize)]
struct Refused {
    family: &'static str,
    message: String,
}

#[derive(Serialize)]
struct KernelFlowCase {
    name: String,
    family: &'static str,
    to: String,
    result: &'static str,
    reason: Option<String>,
    connections: Option<u32>,
    answered: BTreeMap<String, u32>,
    refused: Option<u32>,
    dropped: Option<u32>,
    masqueraded: Option<u32>,
    sticky: Option<Sticky>,
    predicted: Option<Predicted>,
    failures: Vec<String>,
    disagreements: Vec<String>,
    unconfirmed: Option<String>,
    tests: u32,
}

#[derive(Serialize)]
struct Sticky {
    rounds: u32,
    consistent: u32,
}

#[derive(Serialize)]
struct Predicted {
    accepted: BTreeMap<String, f64>,
    refused: f64,
    dropped: f64,
    masqueraded: f64,
    /// Accepted by the tracer but unanswerable in a kernel (a hairpin
    /// without masquerade), counted in `dropped`.
    unanswerable: BTreeMap<String, f64>,
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
    /// The real kernel's results, with `--kernel`.
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<KernelCase>,
    /// Every flow checked, every family's, IPv4 first.
    flow_results: Vec<FlowDetail>,
    /// Every broken invariant, every family's.
    invariant_violations: Vec<ViolationDetail>,
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
        kernel: e.kernel.as_ref().map(kernel_case),
        flow_results: detail::flows(e),
        invariant_violations: detail::violations(e),
    }
}

fn kernel_case(k: &KernelReport) -> KernelCase {
    KernelCase {
        backend: k.backend.to_string(),
        status: if k.setup_error.is_some() {
            "error"
        } else if k.passed() {
            "passed"
        } else {
            "failed"
        },
        setup_error: k.setup_error.clone(),
        refused: k
            .refused
            .iter()
            .map(|(family, message)| Refused {
                family: family.as_str(),
                message: message.clone(),
            })
            .collect(),
        seconds: k.elapsed.as_secs_f64(),
        flows: k.flows.iter().map(kernel_flow).collect(),
    }
}

fn kernel_flow(f: &KernelFlow) -> KernelFlowCase {
    let o = f.observation.as_ref();
    KernelFlowCase {
        name: f.name.clone(),
        family: f.family.as_str(),
        to: f.to.clone(),
        result: if f.skipped.is_some() {
            "skipped"
        } else if f.passed() {
            "passed"
        } else {
            "failed"
        },
        reason: f.skipped.clone(),
        connections: o.map(|o| o.connections),
        answered: o
            .map(|o| {
                o.answered
                    .iter()
                    .map(|(a, c)| (a.to_string(), *c))
                    .collect()
            })
            .unwrap_or_default(),
        refused: o.map(|o| o.refused),
        dropped: o.map(|o| o.dropped),
        masqueraded: o.map(|o| o.masqueraded),
        sticky: o.and_then(|o| o.sticky).map(|p| Sticky {
            rounds: p.rounds,
            consistent: p.consistent,
        }),
        predicted: f.prediction.as_ref().map(|p| Predicted {
            accepted: p
                .accepted
                .iter()
                .map(|(a, p)| (a.to_string(), *p))
                .collect(),
            refused: p.refused,
            dropped: p.dropped,
            masqueraded: p.masqueraded,
            unanswerable: p
                .unanswerable
                .iter()
                .map(|(a, m)| (a.to_string(), *m))
                .collect(),
        }),
        failures: f.failures.clone(),
        disagreements: f.disagreements.clone(),
        unconfirmed: f.unconfirmed.clone(),
        tests: f.tests,
    }
}

/// The report as pretty-printed JSON.
pub(crate) fn render(report: &RunReport) -> String {
    let document = Document {
        schema: SCHEMA_ID,
        schema_version: SCHEMA_VERSION,
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
            kernel: report.kernel_totals().map(|t| KernelSummary {
                flows: t.flows,
                passed: t.passed,
                failed: t.failed,
                skipped: t.skipped,
                tests: t.tests,
                false_failure_bound: kpconform_kernel::false_failure_bound(t.tests),
            }),
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
    fn kernel_results_are_carried_per_flow_and_summed() {
        let r = super::super::tests::kernel_sample();
        let v: serde_json::Value = serde_json::from_str(&render(&r)).unwrap();
        let k = &v["cases"][0]["kernel"];
        assert_eq!(
            v["cases"][0]["status"], "broken",
            "a failed kernel flow breaks the case"
        );
        assert_eq!(k["backend"], "nft");
        assert_eq!(k["status"], "failed");
        assert_eq!(k["flows"][0]["result"], "failed");
        assert_eq!(k["flows"][0]["answered"]["10.64.0.5:8080"], 990);
        assert_eq!(k["flows"][0]["dropped"], 10);
        assert_eq!(
            k["flows"][0]["predicted"]["accepted"]["10.64.0.5:8080"],
            1.0
        );
        assert_eq!(
            k["flows"][0]["disagreements"][0],
            "dropped: the tracer predicts 0"
        );
        assert_eq!(k["flows"][1]["result"], "skipped");
        assert_eq!(k["flows"][1]["reason"], "cannot be sent");
        assert!(k["flows"][1]["connections"].is_null());
        let summary = &v["summary"]["kernel"];
        assert_eq!(summary["flows"], 2);
        assert_eq!(
            (
                summary["passed"].as_u64(),
                summary["failed"].as_u64(),
                summary["skipped"].as_u64()
            ),
            (Some(0), Some(1), Some(1))
        );
        // Without kernel mode, neither key appears.
        let plain: serde_json::Value = serde_json::from_str(&render(&sample())).unwrap();
        assert!(plain["summary"].get("kernel").is_none());
        assert!(plain["cases"][0].get("kernel").is_none());
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
        let flows = case["flow_results"].as_array().unwrap();
        assert_eq!(flows.len(), 2);
        assert_eq!(
            (&flows[0]["family"], &flows[0]["passed"]),
            (&"IPv4".into(), &true.into())
        );
        assert_eq!(flows[1]["expected"]["verdict"], "accept");
        assert_eq!(flows[1]["actual"][0]["verdict"], "drop");
        assert_eq!(flows[1]["actual"][0]["probability"], 1.0);
        assert_eq!(flows[1]["paths"][0]["rules"][0]["action"], "policy DROP");
        assert_eq!(flows[1]["paths"][0]["rules"][0]["chain"], "FORWARD");
        assert!(flows[1]["paths"][0]["rules"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("node-a.ipv6.rules"));
        assert!(case["invariant_violations"].as_array().unwrap().is_empty());
        assert!(families[1]["summary"]
            .as_str()
            .unwrap()
            .starts_with("broken: g/d@node-a (IPv6): 0 of 1 flow(s) passed"));
    }
}
