//! Deterministic text for snapshots (contract §4).
//!
//! [`normalize`] works line by line on iptables-save text, so it also copes
//! with dumps the strict parser refuses. It
//! - drops `#` comment lines, blank lines and counters (`[p:b]` on chain
//!   declarations and in front of rules);
//! - prints tables in a fixed order (raw, mangle, filter, nat, security, then
//!   any other by name), merging a table that appears twice;
//! - sorts chain declarations (built-ins first in hook order, then by name)
//!   and groups rules per chain in that order, keeping each chain's own
//!   order, except in the chains whose order does not matter
//!   (`KUBE-SERVICES`, `KUBE-NODEPORTS`, `KUBE-EXTERNAL-SERVICES`,
//!   `KUBE-PROXY-FIREWALL`): those are sorted by comment, then by text, with
//!   the jumps to `KUBE-NODEPORTS` kept last.
//!
//! Lines it does not understand are kept, in order: before the first table,
//! or at the end of their table. `normalize(normalize(x)) == normalize(x)`.
//!
//! Each line is split into words by the parser's [lexer](crate::lex), so a
//! quoted comment is one word whatever it contains (`"a  -j KUBE-NODEPORTS"`
//! neither jumps anywhere nor loses its spaces). Rules are kept as written,
//! from their first word on.

use std::collections::BTreeMap;

use crate::lex::{self, Token};

/// Chains kube-proxy fills in map order: their rule order carries no meaning.
pub const ORDER_FREE_CHAINS: [&str; 4] = [
    "KUBE-SERVICES",
    "KUBE-NODEPORTS",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-PROXY-FIREWALL",
];

const TABLE_ORDER: [&str; 5] = ["raw", "mangle", "filter", "nat", "security"];
const HOOK_ORDER: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// One table's lines, sorted out.
#[derive(Default)]
struct TableText {
    /// Chain name → declaration line without counters.
    declarations: BTreeMap<String, String>,
    /// Chain name → `-A` lines without counters, in order.
    rules: BTreeMap<String, Vec<RuleText>>,
    /// Anything else inside the table, in order.
    other: Vec<String>,
    committed: bool,
}

/// An `-A` line as written, with what the order-free sort looks at.
struct RuleText {
    text: String,
    comment: String,
    to_nodeports: bool,
}

/// Normalizes iptables-save text for snapshots. Never fails.
pub fn normalize(text: &str) -> String {
    let mut preamble: Vec<String> = Vec::new();
    let mut tables: BTreeMap<(usize, String), TableText> = BTreeMap::new();
    let mut current: Option<(usize, String)> = None;

    // Physical lines: iptables-save never continues a line with `\`.
    for raw in text.lines() {
        // `lines()` strips the `\r` of a CRLF but not a last line's lone
        // `\r`, which the output then ends with a `\n`: strip it here too,
        // or the second pass reads that line differently (found by fuzz
        // target parse_rules).
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let Some(lexed) = lex::lines(raw).next() else {
            continue; // blank or `#`
        };
        // Counters may stand before anything; drop them first so that what
        // the line is does not change on a second pass (idempotence).
        let skip = lexed
            .tokens
            .iter()
            .take_while(|t| is_counter_token(t))
            .count();
        let toks = &lexed.tokens[skip..];
        let Some(first) = toks.first() else { continue };
        // The line as its tokens span it: trimming by another notion of
        // whitespace than the lexer's (a vertical tab) would make the
        // second pass read a different line (found by fuzz target
        // parse_rules: `COMMIT\x0b` inside a table).
        let end = toks.last().map_or(first.span.end, |t| t.span.end) as usize;
        let line = &raw[first.span.start as usize..end.max(first.span.start as usize)];
        if line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            let name = name.trim().to_string();
            let rank = TABLE_ORDER
                .iter()
                .position(|t| *t == name)
                .unwrap_or(TABLE_ORDER.len());
            let key = (rank, name);
            tables.entry(key.clone()).or_default();
            current = Some(key);
            continue;
        }
        let Some(table) = current.as_ref().and_then(|k| tables.get_mut(k)) else {
            preamble.push(line.to_string());
            continue;
        };
        if toks.len() == 1 && first.is("COMMIT") {
            table.committed = true;
            current = None;
            continue;
        }
        if line.starts_with(':') {
            if let Some((name, decl)) = declaration(raw, toks) {
                table.declarations.insert(name, decl);
                continue;
            }
        }
        match toks {
            [a, chain, ..] if a.is("-A") => {
                let rule = RuleText {
                    text: line.to_string(),
                    comment: comment_of(toks).unwrap_or_default(),
                    to_nodeports: jumps_to_nodeports(toks),
                };
                table
                    .rules
                    .entry(chain.text.to_string())
                    .or_default()
                    .push(rule);
            }
            _ => table.other.push(line.to_string()),
        }
    }

    let mut out = String::new();
    for line in &preamble {
        out.push_str(line);
        out.push('\n');
    }
    for ((_, name), mut table) in tables {
        out.push('*');
        out.push_str(&name);
        out.push('\n');
        let order = chain_order(&table);
        for chain in &order {
            if let Some(decl) = table.declarations.get(chain) {
                out.push_str(decl);
                out.push('\n');
            }
        }
        for chain in &order {
            let Some(rules) = table.rules.get_mut(chain) else {
                continue;
            };
            if ORDER_FREE_CHAINS.contains(&chain.as_str()) {
                sort_order_free(rules);
            }
            for rule in rules.iter() {
                out.push_str(&rule.text);
                out.push('\n');
            }
        }
        for line in &table.other {
            out.push_str(line);
            out.push('\n');
        }
        if table.committed {
            out.push_str("COMMIT\n");
        }
    }
    out
}

/// Declared chains, built-ins first in hook order, then by name; then
/// chains that only have rules, by name.
fn chain_order(table: &TableText) -> Vec<String> {
    let rank = |name: &str| {
        HOOK_ORDER
            .iter()
            .position(|h| *h == name)
            .unwrap_or(HOOK_ORDER.len())
    };
    let mut declared: Vec<&String> = table.declarations.keys().collect();
    declared.sort_by(|a, b| (rank(a), *a).cmp(&(rank(b), *b)));
    let mut undeclared: Vec<&String> = table
        .rules
        .keys()
        .filter(|c| !table.declarations.contains_key(*c))
        .collect();
    undeclared.sort_by(|a, b| (rank(a), *a).cmp(&(rank(b), *b)));
    declared.into_iter().chain(undeclared).cloned().collect()
}

/// Sorts by (comment, text), the jumps to KUBE-NODEPORTS last.
fn sort_order_free(rules: &mut [RuleText]) {
    rules.sort_by(|a, b| {
        (a.to_nodeports, &a.comment, &a.text).cmp(&(b.to_nodeports, &b.comment, &b.text))
    });
}

/// Whether the rule's target (`-j`/`-g`, unquoted) is KUBE-NODEPORTS.
fn jumps_to_nodeports(toks: &[Token]) -> bool {
    toks.windows(2)
        .any(|w| (w[0].is("-j") || w[0].is("-g")) && w[1].text == "KUBE-NODEPORTS")
}

/// The value of the first (unquoted) `--comment` option, unquoted.
fn comment_of(toks: &[Token]) -> Option<String> {
    let i = toks.iter().position(|t| t.is("--comment"))?;
    toks.get(i + 1).map(|t| t.text.to_string())
}

/// `:NAME POLICY [p:b]` (or `: NAME ...`) → (`NAME`, `:NAME POLICY`), with
/// `-` for a missing policy. `None` without a name.
fn declaration(raw: &str, toks: &[Token]) -> Option<(String, String)> {
    let first = &toks[0];
    let first_raw = &raw[first.span.start as usize..first.span.end as usize];
    // `:NAME` is one word; a bare `:` is followed by the name.
    let mut words: Vec<(&str, bool)> = Vec::new();
    if first_raw != ":" {
        let name = first.text.strip_prefix(':').unwrap_or(&first.text);
        words.push((name, first.quoted));
    }
    words.extend(toks[1..].iter().map(|t| (t.text.as_ref(), t.quoted)));
    // Stray counters (`:P [0:0] :`) must not become the policy, or a
    // second pass would read another one (normalize is idempotent).
    let mut words = words
        .into_iter()
        .filter(|&(w, quoted)| quoted || !is_counters(w))
        .map(|(w, _)| w);
    let name = words.next()?;
    let policy = words.next().unwrap_or("-");
    Some((
        name.to_string(),
        format!(":{} {}", word(name), word(policy)),
    ))
}

/// `w` written so that the lexer reads it back as `w`: bare when that is
/// safe, else double-quoted with `\"` and `\\` escaped.
fn word(w: &str) -> String {
    let bare = !w.is_empty()
        && !is_counters(w)
        && !w.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'));
    if bare {
        return w.to_string();
    }
    let mut out = String::with_capacity(w.len() + 2);
    out.push('"');
    for c in w.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_counter_token(t: &Token) -> bool {
    !t.quoted && is_counters(&t.text)
}

fn is_counters(word: &str) -> bool {
    word.strip_prefix('[')
        .and_then(|w| w.strip_suffix(']'))
        .and_then(|w| w.split_once(':'))
        .is_some_and(|(p, b)| {
            !p.is_empty()
                && !b.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_last_line_ending_in_a_lone_carriage_return_is_read_the_same_way_twice() {
        let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open \r";
        let once = super::normalize(text);
        assert_eq!(super::normalize(&once), once);
        assert!(!once.contains('\r'), "{once:?}");
    }

    #[test]
    fn a_line_ending_in_a_vertical_tab_is_read_the_same_way_twice() {
        // Found by fuzz target parse_rules: `COMMIT\x0b` was kept as an
        // "other" line, printed as `COMMIT`, and closed the table on the
        // second pass.
        let text = "*nat\n:A -\nCOMMIT\x0b\n-A A -j DROP\nCOMMIT\n";
        let once = normalize(text);
        assert_eq!(normalize(&once), once);
    }

    use super::*;
    use proptest::prelude::*;

    const DUMP: &str = "\
# Generated by iptables-save v1.8.9
*nat
:PREROUTING ACCEPT [12:720]
:KUBE-SVC-B - [0:0]
:KUBE-SERVICES - [0:0]
:OUTPUT ACCEPT [3:180]
:KUBE-NODEPORTS - [0:0]
[5:300] -A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SERVICES -d 10.96.0.2/32 -p tcp -m comment --comment \"b/b:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-B
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment \"a/a:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-A
-A KUBE-SVC-B -m comment --comment \"z\" -j KUBE-SEP-2
-A KUBE-SVC-B -m comment --comment \"a\" -j KUBE-SEP-1
COMMIT
# Completed
*filter
:INPUT ACCEPT [0:0]
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
COMMIT
";

    #[test]
    fn drops_comments_and_counters() {
        let out = normalize(DUMP);
        assert!(!out.contains('#'), "{out}");
        assert!(!out.contains("[0:0]") && !out.contains("[5:300]"), "{out}");
        assert!(out.contains("\n:PREROUTING ACCEPT\n"), "{out}");
        assert!(out.contains("\n-A PREROUTING -m comment"), "{out}");
    }

    #[test]
    fn tables_in_fixed_order() {
        let out = normalize(DUMP);
        let tables: Vec<&str> = out.lines().filter(|l| l.starts_with('*')).collect();
        assert_eq!(tables, ["*mangle", "*filter", "*nat"]);
    }

    #[test]
    fn declarations_sorted_builtins_first() {
        let out = normalize(DUMP);
        let decls: Vec<&str> = out.lines().filter(|l| l.starts_with(':')).collect();
        assert_eq!(
            decls,
            [
                ":PREROUTING ACCEPT",
                ":INPUT ACCEPT",
                ":PREROUTING ACCEPT",
                ":OUTPUT ACCEPT",
                ":KUBE-NODEPORTS -",
                ":KUBE-SERVICES -",
                ":KUBE-SVC-B -",
            ]
        );
    }

    #[test]
    fn order_free_chains_sorted_nodeports_last_others_kept() {
        let out = normalize(DUMP);
        let rules: Vec<&str> = out.lines().filter(|l| l.starts_with("-A")).collect();
        assert!(rules[0].starts_with("-A PREROUTING"));
        assert!(rules[1].contains("a/a:http"), "{out}");
        assert!(rules[2].contains("b/b:http"), "{out}");
        assert!(rules[3].ends_with("-j KUBE-NODEPORTS"), "{out}");
        // KUBE-SVC-B keeps its own order (z before a).
        assert!(
            rules[4].ends_with("KUBE-SEP-2") && rules[5].ends_with("KUBE-SEP-1"),
            "{out}"
        );
    }

    #[test]
    fn rules_grouped_by_chain_in_declaration_order() {
        let text = "*filter\n:INPUT ACCEPT\n:OUTPUT ACCEPT\n:KUBE-X -\n-A KUBE-X -j DROP\n-A OUTPUT -j KUBE-X\n-A INPUT -j KUBE-X\n-A UNDECLARED -j ACCEPT\nCOMMIT\n";
        let out = normalize(text);
        let rules: Vec<&str> = out.lines().filter(|l| l.starts_with("-A")).collect();
        assert_eq!(
            rules,
            [
                "-A INPUT -j KUBE-X",
                "-A OUTPUT -j KUBE-X",
                "-A KUBE-X -j DROP",
                "-A UNDECLARED -j ACCEPT"
            ]
        );
    }

    fn comment(rule: &str) -> Option<String> {
        lex::lines(rule).next().and_then(|l| comment_of(&l.tokens))
    }

    #[test]
    fn comment_extraction() {
        assert_eq!(
            comment(r#"-m comment --comment "a \"b\" c" -j X"#).as_deref(),
            Some(r#"a "b" c"#)
        );
        assert_eq!(
            comment("-m comment --comment plain -j X").as_deref(),
            Some("plain")
        );
        assert_eq!(comment("-j X"), None);
        assert_eq!(comment("--comment"), None);
        // Only the option counts, not the word inside another quoted value.
        assert_eq!(
            comment(r#"-j LOG --log-prefix "--comment z" -m comment --comment "a  b""#).as_deref(),
            Some("a  b")
        );
    }

    #[test]
    fn quoted_words_are_one_word() {
        // With whitespace splitting, the comment's `-j KUBE-NODEPORTS` made
        // the first rule sort last, as if it jumped to KUBE-NODEPORTS.
        let text = "*nat\n:KUBE-SERVICES - [0:0]\n\
            -A KUBE-SERVICES -m comment --comment \"b  -j KUBE-NODEPORTS\" -j KUBE-SVC-B\n\
            -A KUBE-SERVICES -m comment --comment \"a  two  spaces\" -j KUBE-SVC-A\n\
            -A KUBE-SERVICES -m comment --comment \"nodeports\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n\
            -A KUBE-SERVICES -m comment --comment \"c\" -j KUBE-SVC-C\n\
            COMMIT\n";
        let out = normalize(text);
        let rules: Vec<&str> = out.lines().filter(|l| l.starts_with("-A")).collect();
        assert_eq!(
            rules,
            [
                "-A KUBE-SERVICES -m comment --comment \"a  two  spaces\" -j KUBE-SVC-A",
                "-A KUBE-SERVICES -m comment --comment \"b  -j KUBE-NODEPORTS\" -j KUBE-SVC-B",
                "-A KUBE-SERVICES -m comment --comment \"c\" -j KUBE-SVC-C",
                "-A KUBE-SERVICES -m comment --comment \"nodeports\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
            ]
        );
        assert_eq!(normalize(&out), out);
    }

    #[test]
    fn a_quoted_dash_a_is_not_a_rule_and_quoted_names_stay_quoted() {
        let text =
            "*nat\n: \"KUBE X\" - [0:0]\n\"-A\" KUBE-X -j DROP\n-A \"KUBE-Y\" -j DROP\nCOMMIT\n";
        let out = normalize(text);
        assert_eq!(
            out,
            "*nat\n:\"KUBE X\" -\n-A \"KUBE-Y\" -j DROP\n\"-A\" KUBE-X -j DROP\nCOMMIT\n"
        );
        assert_eq!(normalize(&out), out);
    }

    #[test]
    fn keeps_what_it_does_not_understand() {
        let out = normalize("junk before\n*nat\n-N FOO\n:BAR - [0:0\n:\n[1:2] [3:4] -A\nCOMMIT\n");
        assert_eq!(out, "junk before\n*nat\n:BAR -\n-N FOO\n:\n-A\nCOMMIT\n");
        assert_eq!(normalize(&out), out);
    }

    #[test]
    fn is_idempotent_on_a_dump() {
        let once = normalize(DUMP);
        assert_eq!(normalize(&once), once);
    }

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent(lines in proptest::collection::vec(
            prop_oneof![
                Just("*nat".to_string()),
                Just("*filter".to_string()),
                Just("COMMIT".to_string()),
                Just(":KUBE-SERVICES - [1:2]".to_string()),
                Just("-A KUBE-SERVICES -m comment --comment \"x y\" -j KUBE-NODEPORTS".to_string()),
                "[ -~]{0,30}",
                "(-A|:|\\*|\\[) ?[A-Z\\[\\]:0-9 \"-]{0,20}",
            ],
            0..20,
        )) {
            let text = lines.join("\n");
            let once = normalize(&text);
            prop_assert_eq!(normalize(&once), once);
        }
    }
}
