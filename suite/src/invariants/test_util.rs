//! Helpers for the invariants' unit tests.

use std::sync::OnceLock;

use super::{catalogue, Context, Report, Violation};
use kpconform_iptables::model::RuleSet;

/// Parses a snippet in strict mode, failing the test on a parse error.
pub(super) fn parsed(text: &str) -> RuleSet {
    match kpconform_iptables::parse_str(text) {
        Ok(rules) => rules,
        Err(errors) => panic!("snippet does not parse: {errors:?}\n{text}"),
    }
}

/// Runs the one invariant `id` on a snippet.
pub(super) fn run(id: &str, text: &str) -> Vec<Violation> {
    let rules = parsed(text);
    let Some(inv) = catalogue().iter().find(|i| i.id == id) else {
        panic!("no invariant {id}");
    };
    let cx = Context::new(&rules, 1);
    let mut out = Vec::new();
    (inv.check)(
        &cx,
        &mut Report {
            id: inv.id,
            out: &mut out,
        },
    );
    for v in &out {
        assert_eq!(v.invariant, id);
    }
    // As `check` does.
    out.sort_by_key(|v| (v.span.line, v.span.start));
    out
}

/// The invariant ids of some violations, in order.
pub(super) fn ids(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(|v| v.invariant).collect()
}

/// The line of the only violation, failing the test if there is not exactly one.
pub(super) fn only_line(violations: &[Violation]) -> u32 {
    assert_eq!(
        violations.len(),
        1,
        "expected one violation: {violations:#?}"
    );
    violations[0].span.line
}

/// The 1-based line of the first line of `text` containing `needle`.
pub(super) fn line_of(text: &str, needle: &str) -> u32 {
    match text.lines().position(|l| l.contains(needle)) {
        Some(i) => i as u32 + 1,
        None => panic!("no line contains {needle:?}"),
    }
}

/// The shared kube-proxy-shaped fixture, `golden/fixtures/kube-proxy.rules`
/// (what it holds: `golden/fixtures/README.md`), which the mutants' tests use
/// too. Among others: shop/web's KUBE-SVC-WEB dispatches to KUBE-SEP-A,
/// -B (10.64.0.5, 10.64.0.6) and -C (10.64.2.7) with session affinity, and
/// its Local-policy KUBE-SVL-WEB to A and B. It satisfies every invariant.
pub(super) fn kube_ok() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let path = kpconform_golden::fixtures().join("kube-proxy.rules");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

/// `text` with the first occurrence of `from` replaced, failing the test if
/// `from` is not there (so a typo cannot make a test pass vacuously).
pub(super) fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "snippet does not contain {from:?}");
    text.replacen(from, to, 1)
}
