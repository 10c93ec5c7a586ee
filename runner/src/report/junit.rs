//! `--format junit`: JUnit XML on stdout, one `<testsuite>` per generator run
//! and one `<testcase>` per (scenario, node), for CI test reporting.
//!
//! broken and changed cases are `<failure>`s (type `broken` / `changed`),
//! error cases and scenarios that did not load are `<error>`s; the message
//! is the one-line summary, the body the full explanation. A case of a node
//! with addresses of both families has one property per family in the
//! suite's `<properties>`, `kpconform.family.<scenario-id>@<node>.IPv4` /
//! `...IPv6`, whose value is that family's status: the suite's, because
//! the Jenkins schema (`docs/schema/junit-10.xsd`, which a test checks the
//! output against) allows no properties inside a `<testcase>`.

use kpconform_harness::{Evaluation, Status};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::RunReport;

fn test_case(e: &Evaluation) -> TestCase {
    let status = e.status();
    let mut case_status = match status {
        Status::Passed => TestCaseStatus::success(),
        Status::Broken | Status::Changed => TestCaseStatus::non_success(NonSuccessKind::Failure),
        Status::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
    };
    if status != Status::Passed {
        case_status
            .set_type(status.as_str())
            .set_message(e.summary())
            .set_description(e.render());
    }
    let mut case = TestCase::new(e.name(), case_status);
    case.set_classname(e.scenario.as_str()).set_time(e.elapsed);
    case
}

/// One property per family of each case of a dual-stack node.
fn family_properties(e: &Evaluation) -> impl Iterator<Item = Property> + '_ {
    let families = if e.names_families() {
        e.families.as_slice()
    } else {
        &[]
    };
    families.iter().map(move |f| {
        Property::new(
            format!("kpconform.family.{}.{}", e.name(), f.family),
            f.status().as_str(),
        )
    })
}

/// The report as JUnit XML.
pub(crate) fn render(report: &RunReport) -> String {
    let mut suite = TestSuite::new(format!("kpconform {}", report.generator));
    suite.set_time(report.elapsed);
    for (id, error) in &report.load_errors {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_type("error")
            .set_message(format!("scenario {id} does not load"))
            .set_description(error.to_string());
        let mut case = TestCase::new(id.as_str(), status);
        case.set_classname(id.as_str());
        suite.add_test_case(case);
    }
    suite.add_test_cases(report.evaluations.iter().map(test_case));
    suite.add_properties(report.evaluations.iter().flat_map(family_properties));
    let mut junit = Report::new("kpconform");
    junit.set_time(report.elapsed).add_test_suite(suite);
    document(&junit)
}

/// The XML text of `junit`, valid for docs/schema/junit-10.xsd, ending in a
/// newline: `run`'s and `diff`'s JUnit reports alike.
pub(super) fn document(junit: &Report) -> String {
    match junit.to_string().map(without_suites_skipped) {
        Ok(mut text) => {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        }
        // quick-junit only fails on writer errors; a String does not have any.
        Err(e) => format!("<!-- cannot serialize the JUnit report: {e} -->\n"),
    }
}

/// The report without the `skipped` attribute quick-junit puts on
/// `<testsuites>`, which the Jenkins schema does not allow there. kpconform
/// skips no case, so it always says 0; the `<testsuite>`'s own count stays.
fn without_suites_skipped(text: String) -> String {
    let Some(start) = text.find("<testsuites") else {
        return text;
    };
    let end = text[start..].find('>').map_or(text.len(), |i| start + i);
    let tag = &text[start..end];
    match tag.find(" skipped=\"0\"") {
        Some(at) => {
            let at = start + at;
            format!("{}{}", &text[..at], &text[at + " skipped=\"0\"".len()..])
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn failures_and_errors_are_told_apart() {
        let xml = render(&sample());
        let report = Report::deserialize_from_str(&xml).unwrap();
        let suite = &report.test_suites[0];
        assert_eq!(suite.name.as_str(), "kpconform gen");
        assert_eq!(suite.test_cases.len(), 4);
        assert_eq!((suite.tests, suite.failures, suite.errors), (4, 1, 2));
        // The garbage output is escaped, not spliced into the XML.
        assert!(xml.contains("garbage &amp; &lt;xml&gt;"), "{xml}");
        assert!(xml.contains("type=\"broken\""), "{xml}");
        assert!(!xml.contains("kpconform.family"), "{xml}");
        let suites = &xml[xml.find("<testsuites").unwrap()..];
        let suites = &suites[..suites.find('>').unwrap()];
        assert!(!suites.contains("skipped"), "{suites}");
        assert!(
            xml.contains("<testsuite name=\"kpconform gen\" tests=\"4\" skipped=\"0\""),
            "{xml}"
        );
    }

    #[test]
    fn a_dual_stack_case_carries_each_familys_status() {
        let xml = render(&super::super::tests::dual_stack_sample());
        assert!(
            xml.contains("name=\"kpconform.family.g/d@node-a.IPv4\" value=\"passed\""),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"kpconform.family.g/d@node-a.IPv6\" value=\"broken\""),
            "{xml}"
        );
        assert!(xml.contains("broken: g/d@node-a (IPv6)"), "{xml}");
    }
}
