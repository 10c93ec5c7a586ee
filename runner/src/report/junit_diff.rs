//! `kpconform diff --format junit`: JUnit XML with one `<testsuite>` named
//! `kpconform diff <old> -> <new>` and one `<testcase>` per compared case
//! (`<scenario-id>@<node> (<family>)`, class name the scenario id), so that
//! CI shows behaviour changes as failing tests: a case whose behaviour
//! changed is a `<failure type="behaviour-change">` whose message counts its
//! changes and whose body has one sentence per change. A case that could
//! not be compared is an `<error>`. Valid for `docs/schema/junit-10.xsd`
//! like `run`'s report.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::junit::document;

/// One compared case.
pub(crate) struct DiffCase {
    /// `scenario@node (IPv4)`.
    pub(crate) name: String,
    /// The scenario id.
    pub(crate) scenario: String,
    /// Its behaviour changes, one sentence each; empty: it passes.
    pub(crate) changes: Vec<String>,
}

/// The diff as JUnit XML; `errors` are the setup errors (cases that could
/// not be compared).
pub(crate) fn render(cases: &[DiffCase], errors: &[String], old: &str, new: &str) -> String {
    let mut suite = TestSuite::new(format!("kpconform diff {old} -> {new}"));
    for c in cases {
        let status = if c.changes.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("behaviour-change")
                .set_message(format!("{} behaviour change(s)", c.changes.len()))
                .set_description(
                    c.changes
                        .iter()
                        .map(|s| format!("- {s}\n"))
                        .collect::<String>(),
                );
            s
        };
        let mut case = TestCase::new(c.name.as_str(), status);
        case.set_classname(c.scenario.as_str());
        suite.add_test_case(case);
    }
    // A setup error names its case in its first words, not in a field: each
    // is its own test case, numbered.
    for (i, e) in errors.iter().enumerate() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_type("error")
            .set_message("could not be compared")
            .set_description(e.as_str());
        let mut case = TestCase::new(format!("setup error {}", i + 1), status);
        case.set_classname("kpconform.diff");
        suite.add_test_case(case);
    }
    let mut junit = Report::new("kpconform");
    junit.add_test_suite(suite);
    document(&junit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_cases_fail_with_their_sentences_and_errors_are_errors() {
        let cases = [
            DiffCase {
                name: "a/b@node-a (IPv4)".into(),
                scenario: "a/b".into(),
                changes: vec!["x <y> & z".into(), "second".into()],
            },
            DiffCase {
                name: "a/c@node-a (IPv4)".into(),
                scenario: "a/c".into(),
                changes: Vec::new(),
            },
        ];
        let xml = render(&cases, &["a/d@n (IPv4): <boom>".into()], "v1.28", "v1.30");
        let report = Report::deserialize_from_str(&xml).unwrap();
        let suite = &report.test_suites[0];
        assert_eq!(suite.name.as_str(), "kpconform diff v1.28 -> v1.30");
        assert_eq!((suite.tests, suite.failures, suite.errors), (3, 1, 1));
        assert!(xml.contains("message=\"2 behaviour change(s)\""), "{xml}");
        assert!(xml.contains("- x &lt;y&gt; &amp; z\n- second"), "{xml}");
        assert!(xml.contains("&lt;boom&gt;"), "{xml}");
        assert!(xml.contains("type=\"behaviour-change\""), "{xml}");
    }
}
