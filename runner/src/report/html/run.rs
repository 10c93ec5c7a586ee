//! The run report as a page: the summary, then every case that did not pass
//! with its failing flows (packet, failed expectations, expected and actual
//! distributions as bar charts, each path's chain walk with its rule
//! lines), its broken invariants, and the full explanation.

use std::fmt::Write as _;

use kpconform_harness::{Evaluation, Status};

use super::{bars, counts, escape, pre, Page};
use crate::report::detail::{self, FlowDetail, ViolationDetail};
use crate::report::RunReport;

/// The report as one HTML page.
pub(crate) fn render(report: &RunReport) -> String {
    let mut page = Page::new(&format!("kpconform run: {}", report.generator));
    page.push(&summary(report));
    for (id, error) in &report.load_errors {
        page.push(&format!(
            "<section class=\"case error\">\n<h2><span class=\"error\">error</span> scenario {} does not load</h2>\n{}</section>\n",
            escape(id),
            pre(&error.to_string())
        ));
    }
    for e in report
        .evaluations
        .iter()
        .filter(|e| e.status() != Status::Passed)
    {
        page.push(&case(e));
    }
    page.finish()
}

fn summary(report: &RunReport) -> String {
    let mut out = String::from("<section id=\"summary\">\n");
    let snapshots = match &report.snapshots {
        Some(dir) => format!("snapshots in {dir}"),
        None => "snapshots not compared".to_string(),
    };
    let _ = writeln!(
        out,
        "<p>generator <code>{}</code>, {} case(s) from <code>{}</code>, {}, {:.2} s</p>",
        escape(&report.generator),
        report.total(),
        escape(&report.scenarios),
        escape(&snapshots),
        report.elapsed.as_secs_f64()
    );
    let rows: Vec<(&str, usize)> = Status::ALL
        .iter()
        .map(|&s| (s.as_str(), report.count(s)))
        .collect();
    out.push_str(&counts(&rows));
    if let Some(k) = report.kernel_totals() {
        let _ = writeln!(
            out,
            "<p>kernel mode ({} backend): {} flow(s) in {} case(s): {} passed, {} failed, {} skipped</p>",
            escape(&k.backend),
            k.flows,
            k.cases,
            k.passed,
            k.failed,
            k.skipped
        );
    }
    let failed: Vec<String> = report
        .load_errors
        .iter()
        .map(|(id, _)| format!("<li><span class=\"error\">error</span> {}</li>", escape(id)))
        .chain(
            report
                .evaluations
                .iter()
                .filter(|e| e.status() != Status::Passed)
                .map(|e| {
                    let status = e.status().as_str();
                    format!(
                        "<li><span class=\"{status}\">{status}</span> <a href=\"#{}\">{}</a></li>",
                        escape(&anchor(&e.name())),
                        escape(&e.name())
                    )
                }),
        )
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(
            out,
            "<h3>not passed</h3>\n<ul>\n{}\n</ul>",
            failed.join("\n")
        );
    }
    out.push_str("</section>\n");
    out
}

/// An element id for a case name (ids may not contain spaces; the rest of a
/// scenario id and node name is allowed as is).
fn anchor(name: &str) -> String {
    format!("case-{}", name.replace(|c: char| c.is_whitespace(), "_"))
}

fn case(e: &Evaluation) -> String {
    let status = e.status().as_str();
    let mut out = format!(
        "<section class=\"case {status}\" id=\"{}\">\n<h2><span class=\"{status}\">{status}</span> {}</h2>\n<p>{}</p>\n",
        escape(&anchor(&e.name())),
        escape(&e.name()),
        escape(&e.summary())
    );
    for f in detail::flows(e).iter().filter(|f| !f.passed) {
        out.push_str(&flow(f));
    }
    let violations = detail::violations(e);
    if !violations.is_empty() {
        out.push_str(&invariants(&violations));
    }
    let _ = write!(
        out,
        "<details>\n<summary>full explanation</summary>\n{}</details>\n</section>\n",
        pre(&e.render())
    );
    out
}

fn flow(f: &FlowDetail) -> String {
    let mut out = format!(
        "<div class=\"flow\">\n<h3>FAIL {} <span class=\"walk\">({}, scenario line {})</span></h3>\n<p class=\"mono\">packet: {}</p>\n<ul>\n",
        escape(&format!("{:?}", f.name)),
        f.family,
        f.scenario_line,
        escape(&f.packet)
    );
    for failure in &f.failures {
        let _ = writeln!(out, "<li>{}</li>", escape(failure));
    }
    out.push_str("</ul>\n<div class=\"charts\">\n");
    out.push_str(&bars("expected", "expected", &expected_rows(f)));
    if let Some(actual) = &f.actual {
        let rows: Vec<(String, f64, String)> = actual
            .iter()
            .map(|s| {
                let masq = if s.masquerade { ", masqueraded" } else { "" };
                (
                    format!("{} {}{masq}", s.verdict, s.destination),
                    s.probability,
                    s.text.clone(),
                )
            })
            .collect();
        out.push_str(&bars("actual", "actual", &rows));
    }
    out.push_str("</div>\n");
    let mut notes = Vec::new();
    if let Some(m) = f.expected.masquerade {
        notes.push(format!("masquerade: {m}"));
    }
    if let Some(s) = f.expected.sticky {
        notes.push(format!("sticky: {s}"));
    }
    notes.push(format!("tolerance {}", f.expected.tolerance));
    let _ = writeln!(out, "<p>expected {}</p>", escape(&notes.join(", ")));
    for (i, p) in f.paths.iter().enumerate() {
        let masq = if p.masquerade { ", masqueraded" } else { "" };
        let _ = writeln!(
            out,
            "<h4>path [{}] {} {}{masq} p={}</h4>\n<p class=\"mono walk\">{}</p>\n<table class=\"rules\">",
            i + 1,
            p.verdict,
            escape(&p.destination),
            escape(&p.text),
            escape(&p.walk)
        );
        for r in &p.rules {
            let place = if r.line == 0 {
                String::new()
            } else if r.end_line > r.line {
                format!("{}:{}-{}", r.file, r.line, r.end_line)
            } else {
                format!("{}:{}", r.file, r.line)
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
                escape(&place),
                escape(&r.table),
                escape(&r.chain),
                escape(&r.action),
                escape(&r.text)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</div>\n");
    out
}

/// The expected distribution: the listed endpoints, or all of the mass in
/// the expected verdict.
fn expected_rows(f: &FlowDetail) -> Vec<(String, f64, String)> {
    match (&f.expected.endpoints, f.expected.verdict) {
        (Some(eps), _) => eps
            .iter()
            .map(|p| {
                (
                    format!("accept {}", p.destination),
                    p.probability,
                    p.text.clone(),
                )
            })
            .collect(),
        (None, Some(v)) => vec![(format!("{v} (any destination)"), 1.0, "1".into())],
        (None, None) => Vec::new(),
    }
}

fn invariants(list: &[ViolationDetail]) -> String {
    let mut out = format!(
        "<h3>{} invariant violation(s)</h3>\n<table class=\"rules\">\n<tr><th>invariant</th><th>where</th><th>line</th><th>what</th></tr>\n",
        list.len()
    );
    for v in list {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}:{}</td><td>{}</td><td>{}</td></tr>",
            escape(v.invariant),
            escape(&v.file),
            v.line,
            escape(&v.text),
            escape(&v.message)
        );
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{dual_stack_sample, sample};

    #[test]
    fn failing_cases_are_shown_and_their_output_escaped() {
        let html = render(&sample());
        assert!(
            html.contains("<tr class=\"broken\"><th>broken</th><td class=\"count\">1</td></tr>"),
            "{html}"
        );
        assert!(html.contains("scenario g/bad does not load"), "{html}");
        // The generator's garbage is text on the page, never markup.
        assert!(html.contains("garbage &amp; &lt;xml&gt;"), "{html}");
        assert!(!html.contains("<xml>"), "{html}");
        // The load error and the two failing cases; the passing one is
        // counted, not shown.
        assert_eq!(html.matches("<section class=\"case").count(), 3, "{html}");
    }

    #[test]
    fn a_failing_flow_has_both_distributions_as_bars_and_its_paths() {
        let html = render(&dual_stack_sample());
        let flow = html.find("FAIL &quot;v6&quot;").expect(&html);
        let rest = &html[flow..];
        assert!(rest.contains("accept (any destination)"), "{rest}");
        assert!(
            rest.contains("<td class=\"label\">drop [fd00:10:96::50]:80</td><td><div class=\"track\"><div class=\"bar actual\" style=\"width:100.00%\">"),
            "{rest}"
        );
        assert!(rest.contains("path [1] drop"), "{rest}");
        assert!(rest.contains("policy DROP"), "{rest}");
        assert!(
            !html.contains("FAIL &quot;v4&quot;"),
            "the passing flow is left out: {html}"
        );
    }
}
