//! The mutants' unit-test fixture and helpers.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::{find, Mutation};
use kpconform_iptables::model::RuleSet;
use kpconform_iptables::print;

/// The shared kube-proxy-shaped fixture, `golden/fixtures/kube-proxy.rules`
/// (what it holds: `golden/fixtures/README.md`): shop/web (affinity, node
/// port, Local policy, endpoints A, B here and C elsewhere), shop/dns,
/// shop/lb (source range) and shop/empty.
fn fixture_source() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let path = kpconform_golden::fixtures().join("kube-proxy.rules");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

/// The fixture's text.
pub(super) fn fixture_text() -> String {
    fixture_source().to_string()
}

/// The fixture, parsed.
pub(super) fn fixture() -> RuleSet {
    parsed(fixture_source())
}

/// Parses a snippet in strict mode, failing the test on a parse error.
pub(super) fn parsed(text: &str) -> RuleSet {
    match kpconform_iptables::parse_str(text) {
        Ok(rules) => rules,
        Err(errors) => panic!("snippet does not parse: {errors:?}\n{text}"),
    }
}

/// [`parsed`], named for what the tests do with it.
pub(super) fn with_rules(text: &str) -> RuleSet {
    parsed(text)
}

fn mutant(id: &str) -> &'static super::Mutant {
    find(id).unwrap_or_else(|| panic!("no mutant {id}"))
}

/// The variants mutant `id` makes of the fixture.
pub(super) fn apply(id: &str) -> Vec<Mutation> {
    mutant(id).apply(&fixture())
}

/// Variant `i` of mutant `id` on the fixture: its place, the printed lines
/// it removed (in their order) and those it added (in theirs).
pub(super) fn changes(id: &str, i: usize) -> (String, Vec<String>, Vec<String>) {
    let original = fixture();
    let variants = mutant(id).apply(&original);
    let Some(m) = variants.get(i) else {
        panic!("{id} made {} variant(s), not {}", variants.len(), i + 1);
    };
    let before = print(&original);
    let after = print(&m.rules);
    (
        m.place.clone(),
        missing_from(&before, &after),
        missing_from(&after, &before),
    )
}

/// The lines of `a` that `b` does not have (as a multiset), in `a`'s order.
fn missing_from(a: &str, b: &str) -> Vec<String> {
    let mut have: BTreeMap<&str, usize> = BTreeMap::new();
    for line in b.lines() {
        *have.entry(line).or_default() += 1;
    }
    a.lines()
        .filter(|line| match have.get_mut(line) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .map(str::to_string)
        .collect()
}

/// Asserts that mutant `id` makes nothing of `rules`.
pub(super) fn not_applicable(id: &str, rules: &RuleSet) {
    let variants = mutant(id).apply(rules);
    let places: Vec<&str> = variants.iter().map(|m| m.place.as_str()).collect();
    assert!(places.is_empty(), "{id} applies at {places:?}");
}

/// The 1-based line of the fixture's first line containing `needle`.
pub(super) fn line_of(needle: &str) -> u32 {
    match fixture_source().lines().position(|l| l.contains(needle)) {
        Some(i) => i as u32 + 1,
        None => panic!("no fixture line contains {needle:?}"),
    }
}

/// `text` without the lines containing `needle`, failing the test if there
/// is none (so a typo cannot make a test pass vacuously).
pub(super) fn without_lines(text: &str, needle: &str) -> String {
    assert!(text.contains(needle), "no line contains {needle:?}");
    text.lines()
        .filter(|l| !l.contains(needle))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `text` with the first occurrence of `from` replaced, failing the test if
/// `from` is not there.
pub(super) fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "no {from:?} in the text");
    text.replacen(from, to, 1)
}

#[test]
fn the_fixture_prints_back_as_written() {
    assert_eq!(print(&fixture()), fixture_source());
}
