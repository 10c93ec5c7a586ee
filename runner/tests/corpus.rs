//! The generated tables in the READMEs are current, and the coverage table
//! has no empty row.

use crate::util::{kpconform, root};

/// `kpconform corpus FLAG` on the golden scenarios: exit code and stdout.
fn corpus(flag: &str) -> (i32, String) {
    let scenarios = root().join("golden/scenarios");
    let out = kpconform(
        &["corpus", flag, "--scenarios", scenarios.to_str().unwrap()],
        None,
    );
    // The tables are pasted into READMEs: they must be valid UTF-8.
    assert!(
        !out.stdout.contains('\u{FFFD}'),
        "not UTF-8:\n{}",
        out.stdout
    );
    (out.code, out.stdout)
}

/// The text between `<!-- BEGIN kpconform corpus FLAG -->` and its END marker.
fn section(readme: &str, flag: &str) -> String {
    let text = std::fs::read_to_string(root().join(readme)).unwrap();
    let begin = format!("<!-- BEGIN kpconform corpus {flag} -->\n");
    let end = format!("<!-- END kpconform corpus {flag} -->");
    let start = text
        .find(&begin)
        .unwrap_or_else(|| panic!("{readme} has no `{begin}` marker"))
        + begin.len();
    let stop = text[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("{readme} has no `{end}` marker"))
        + start;
    text[start..stop].to_string()
}

#[test]
fn coverage_table_is_current_and_has_no_gap() {
    let (code, table) = corpus("--coverage");
    assert_eq!(
        section("golden/README.md", "--coverage"),
        table,
        "golden/README.md's coverage table is stale: paste `kpconform corpus --coverage` between its markers"
    );
    assert!(
        !table.contains("**none**"),
        "a feature has no scenario:\n{table}"
    );
    assert_eq!(code, 0);
}

#[test]
fn recorded_table_is_current() {
    let (code, table) = corpus("--recorded");
    assert_eq!(code, 0);
    assert_eq!(
        section("README.md", "--recorded"),
        table,
        "README.md's recorded-scenarios table is stale: paste `kpconform corpus --recorded` between its markers"
    );
    assert!(table.lines().count() > 40, "{table}");
}
