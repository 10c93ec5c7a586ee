//! What a text that is not an iptables rule set looks like, so that errors
//! can say what the user pasted and which command gives what kpconform reads,
//! and the check that a rule set has the tables a node's rules need.

use crate::model::{RuleSet, TableName};
use crate::parse::{ErrorKind, ParseError};
use crate::source::Span;

/// An `iptables -L` listing (`Chain INPUT (policy ACCEPT)`, `Chain X (2
/// references)`): the first such line, as an error saying what it is. The
/// listing drops what kpconform must know exactly (the full match options,
/// the exact probability of `-m statistic`, negations spelled as `!`), so it
/// is recognised and refused rather than guessed at.
pub(crate) fn listing(text: &str) -> Option<ParseError> {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if is_listing_header(trimmed) {
            return Some(listing_error(Span::new(
                offset,
                offset + trimmed.len(),
                i as u32 + 1,
            )));
        }
        offset += line.len();
    }
    None
}

/// The error for an `iptables -L` listing whose first header is at `span`.
pub(crate) fn listing_error(span: Span) -> ParseError {
    ParseError {
        kind: ErrorKind::Invalid,
        span,
        message: "this is `iptables -L` output, a listing for people that leaves out \
                  what kpconform needs (exact options and probabilities); give it \
                  `iptables-save` output instead (`sudo iptables-save`, or \
                  `sudo iptables-save -t nat` for one table)"
            .to_string(),
    }
}

/// Whether `line` (without its newline) is a listing's `Chain NAME (...)` header.
pub(crate) fn is_listing_header(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("Chain ") else {
        return false;
    };
    let Some((_name, tail)) = rest.split_once(' ') else {
        return false;
    };
    tail.starts_with("(policy ") || (tail.starts_with('(') && tail.ends_with(" references)"))
}

/// Checks that `rules` has every table in `required` (kube-proxy's rules
/// live in `filter` and `nat`, and the generator protocol requires both).
/// The error points at the end of `text` and says what the text was when it
/// held no rules at all: an empty rule set must never pass silently (an
/// `iptables-save` run without root prints nothing).
pub fn require_tables(
    rules: &RuleSet,
    text: &str,
    required: &[TableName],
) -> Result<(), ParseError> {
    let missing: Vec<&str> = required
        .iter()
        .filter(|t| rules.table(**t).is_none())
        .map(|t| t.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names = missing
        .iter()
        .map(|t| format!("`*{t}`"))
        .collect::<Vec<_>>()
        .join(" and ");
    let wanted = required
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(" and ");
    let looks = if text.trim().is_empty() {
        " The text is empty (`iptables-save` prints nothing when it does not run as root)."
            .to_string()
    } else if rules.tables.is_empty() {
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        let comments = text
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count();
        if comments == lines {
            format!(" The text has {lines} line(s), all comments, and no rule.")
        } else if crate::parse::is_transcript(text) {
            format!(
                " The text has {lines} line(s), a shell transcript with no `iptables-save` \
                 output in it (paste what `sudo iptables-save` prints)."
            )
        } else {
            format!(" The text has {lines} line(s) but no table and no rule.")
        }
    } else {
        String::new()
    };
    let end = text.len();
    let line = text.lines().count().max(1) as u32;
    let start = text.trim_end().rfind('\n').map_or(0, |i| i + 1).min(end);
    Err(ParseError {
        kind: ErrorKind::Invalid,
        span: Span::new(start, text.trim_end().len().max(start), line),
        message: format!("no {names} table: a node's rules need {wanted}.{looks}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_str;

    #[test]
    fn listings_are_recognised_at_their_first_header() {
        let text = "$ sudo iptables -t nat -L -n\nChain PREROUTING (policy ACCEPT)\n\
                    target     prot opt source               destination\n\
                    KUBE-SERVICES  all  --  0.0.0.0/0  0.0.0.0/0  /* portals */\n\n\
                    Chain KUBE-SVC-X (1 references)\n";
        let e = listing(text).unwrap();
        assert_eq!(e.span.line, 2);
        assert!(e.message.contains("`iptables -L` output"), "{}", e.message);
        assert!(listing("Chain KUBE-SEP-A (12 references)\n").is_some());
        assert!(listing("*nat\n:Chain - [0:0]\n-A Chain -j ACCEPT\nCOMMIT\n").is_none());
    }

    #[test]
    fn empty_and_partial_rule_sets_are_refused() {
        let both = [TableName::Filter, TableName::Nat];
        let empty = require_tables(&parse_str("").unwrap(), "", &both).unwrap_err();
        assert!(
            empty.message.contains("no `*filter` and `*nat` table"),
            "{}",
            empty.message
        );
        assert!(
            empty.message.contains("The text is empty"),
            "{}",
            empty.message
        );

        let comments = "# Generated by iptables-save\n# Completed\n";
        let e = require_tables(&parse_str(comments).unwrap(), comments, &both).unwrap_err();
        assert!(
            e.message.contains("2 line(s), all comments"),
            "{}",
            e.message
        );

        let filter_only = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
        let e = require_tables(&parse_str(filter_only).unwrap(), filter_only, &both).unwrap_err();
        assert_eq!(
            e.message,
            "no `*nat` table: a node's rules need `filter` and `nat`."
        );
        assert_eq!(e.span.line, 3);

        let full = "*filter\nCOMMIT\n*nat\nCOMMIT\n";
        assert!(require_tables(&parse_str(full).unwrap(), full, &both).is_ok());
    }
}
