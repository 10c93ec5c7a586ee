//! Parser: iptables-save dumps, kube-proxy's iptables-restore input, and
//! iptables command lines as tutorials write them, into one [`RuleSet`].
//!
//! The two spellings can be mixed in one text: `*table` ... `COMMIT` blocks
//! with `:CHAIN` declarations and `-A` lines, and commands such as
//! `sudo iptables --table nat --append PREROUTING --jump DUSTIN-SERVICES`,
//! which are replayed (`-N`, `-A`, `-I`, `-D`, `-R`, `-F`, `-X`, `-P`, `-E`)
//! on the tables they name. Listing commands (`-L`, `-S`) change nothing and
//! are skipped.
//!
//! Errors are collected, not fatal on the first one: every problem in the
//! text is reported, each with its span.

mod command;
mod matches;
mod rule;
mod save;
mod spec;
mod targets;
mod value;

use std::fmt;

use super::lex::{self, Token};
use super::model::{Chain, ChainIndex, ChainName, Policy, RuleSet, Table, TableName};
use crate::source::{SourceFile, Span};

/// How unknown matches and targets are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Anything not modelled is an error (the default).
    #[default]
    Strict,
    /// Unknown matches become [`Match::Unknown`](super::model::Match::Unknown)
    /// (never matching) and unknown targets [`Target::Unknown`](super::model::Target::Unknown),
    /// each reported as a warning.
    Lax,
}

/// Parser settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Strict or lax.
    pub mode: Mode,
    /// The table for `-A` lines outside any `*table` block (fragments such as
    /// `iptables-save | grep KUBE-SVC` output). Chains are then declared on
    /// first use. Without it such lines are an error.
    pub default_table: Option<TableName>,
}

/// What kind of problem a [`ParseError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A syntax or value error.
    Invalid,
    /// A match module the suite does not model.
    UnknownMatch,
    /// A target the suite does not model.
    UnknownTarget,
    /// An option a known module does not take.
    UnknownOption,
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What kind.
    pub kind: ErrorKind,
    /// Where.
    pub span: Span,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ParseError {
    /// Renders the error against its source: `file:line:col: message`, the line, carets.
    pub fn render(&self, source: &SourceFile) -> String {
        source.render(self.span, &self.message)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.span.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A parsed rule set and the warnings lax mode produced.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The rules.
    pub rules: RuleSet,
    /// Unknown matches and targets accepted in lax mode.
    pub warnings: Vec<ParseError>,
}

/// Parses `text` (iptables-save format or iptables commands).
pub fn parse(text: &str, mode: Mode) -> Result<Parsed, Vec<ParseError>> {
    parse_with(
        text,
        Options {
            mode,
            default_table: None,
        },
    )
}

/// Parses in strict mode.
pub fn parse_str(text: &str) -> Result<RuleSet, Vec<ParseError>> {
    parse(text, Mode::Strict).map(|p| p.rules)
}

/// The most errors collected before giving up; a binary file would otherwise
/// produce one per line.
const MAX_ERRORS: usize = 100;

/// Parses with explicit [`Options`].
pub fn parse_with(text: &str, options: Options) -> Result<Parsed, Vec<ParseError>> {
    // A byte-order mark (Windows editors add one) is blanked with as many
    // spaces, so that every span still points into the caller's text.
    let blanked;
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            blanked = format!("   {rest}");
            blanked.as_str()
        }
        None => text,
    };
    let mut p = Parser {
        ctx: Ctx {
            mode: options.mode,
            errors: Vec::new(),
            warnings: Vec::new(),
        },
        tables: Vec::new(),
        open: None,
        options,
    };
    for line in lex::lines(text) {
        p.line(&line);
        if p.ctx.errors.len() >= MAX_ERRORS {
            p.ctx.errors.push(ParseError {
                kind: ErrorKind::Invalid,
                span: line.span,
                message: format!("too many errors ({MAX_ERRORS}); stopped here"),
            });
            break;
        }
    }
    check_chain_names(&p.tables, &mut p.ctx);
    if !p.ctx.errors.is_empty() {
        // A pasted `iptables -L` listing fails on every line; one error
        // saying what it is helps more than a hundred.
        if let Some(listing) = crate::shape::listing(text) {
            return Err(vec![listing]);
        }
    }
    // An unterminated block stays in the model (uncommitted) so that the
    // invariants can point at it; iptables-restore would refuse it.
    if !p.ctx.errors.is_empty() {
        return Err(p.ctx.errors);
    }
    Ok(Parsed {
        rules: RuleSet {
            tables: p.tables.into_iter().map(|t| t.table).collect(),
        },
        warnings: p.ctx.warnings,
    })
}

/// Refuses chain names iptables refuses (empty, or starting with `-` or
/// `!`) and names with whitespace, quotes or backslashes, which quoting or
/// escapes can smuggle into a token but no iptables-save line can carry.
/// Found by fuzz target `parse_rules`: `:\ -` declared a chain named ` `.
fn check_chain_names(tables: &[TableBuilder], ctx: &mut Ctx) {
    let bad = |name: &ChainName| {
        let n = name.as_str();
        n.is_empty()
            || n.starts_with(['-', '!'])
            || n.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    };
    for table in tables.iter().map(|t| &t.table) {
        for chain in &table.chains {
            if bad(&chain.name) {
                ctx.error(
                    ErrorKind::Invalid,
                    chain.span,
                    format!("`{}` is not a valid chain name", chain.name),
                );
            }
            for rule in &chain.rules {
                if let Some(target) = rule.jump_target().filter(|t| bad(t)) {
                    ctx.error(
                        ErrorKind::Invalid,
                        rule.span,
                        format!("`{target}` is not a valid chain name"),
                    );
                }
            }
        }
    }
}

/// Error collection shared with the rule parser.
pub(crate) struct Ctx {
    mode: Mode,
    errors: Vec<ParseError>,
    warnings: Vec<ParseError>,
}

impl Ctx {
    pub(super) fn error(&mut self, kind: ErrorKind, span: Span, message: String) {
        self.errors.push(ParseError {
            kind,
            span,
            message,
        });
    }

    /// An unknown match or target: an error in strict mode, a warning in lax mode.
    fn unknown(&mut self, kind: ErrorKind, span: Span, message: String) {
        let e = ParseError {
            kind,
            span,
            message,
        };
        match self.mode {
            Mode::Strict => self.errors.push(e),
            Mode::Lax => self.warnings.push(e),
        }
    }
}

struct TableBuilder {
    table: Table,
    /// First declaration of each chain name (owned: the table is still
    /// being built).
    index: ChainIndex<'static>,
    /// Chains are declared on first use (command replay and fragments).
    implicit_chains: bool,
}

struct Parser {
    ctx: Ctx,
    tables: Vec<TableBuilder>,
    /// The `*table` block being read.
    open: Option<usize>,
    options: Options,
}

impl Parser {
    fn line(&mut self, line: &lex::Line) {
        for (span, problem) in &line.problems {
            self.ctx
                .error(ErrorKind::Invalid, *span, (*problem).to_string());
        }
        let toks = &line.tokens[..];
        let Some(first) = toks.first() else { return };
        let text = first.text.as_ref();
        if !first.quoted {
            if let Some(name) = text.strip_prefix('*') {
                return self.table_header(first, name, &toks[1..]);
            }
            if let Some(name) = text.strip_prefix(':') {
                return self.chain_declaration(first, name, &toks[1..], line.span);
            }
            if text == "COMMIT" {
                return self.commit(first, &toks[1..]);
            }
            if text.starts_with('[') {
                return match value::counters(text) {
                    Some(_) => self.restore_command(&toks[1..], line.span),
                    None => self.ctx.error(
                        ErrorKind::Invalid,
                        first.span,
                        format!("`{text}` is not a counter (expected [packets:bytes])"),
                    ),
                };
            }
        }
        // Shell prompts and privilege wrappers around a command.
        let mut rest = toks;
        while rest
            .first()
            .is_some_and(|t| !t.quoted && matches!(t.text.as_ref(), "$" | "#" | "sudo"))
        {
            rest = &rest[1..];
        }
        let Some(head) = rest.first() else { return };
        let program = head.text.rsplit('/').next().unwrap_or_default();
        if !head.quoted && matches!(program, "iptables" | "iptables-legacy" | "iptables-nft") {
            return self.program_command(&rest[1..], line.span);
        }
        if head.is_option() {
            return self.restore_command(rest, line.span);
        }
        self.ctx.error(
            ErrorKind::Invalid,
            head.span,
            format!(
                "expected `*table`, `:CHAIN POLICY`, `COMMIT`, a rule such as `-A CHAIN ...`, or an `iptables` command; found `{}`",
                head.text
            ),
        );
    }

    /// The table that commands and fragments naming `name` edit, made on first use.
    fn implicit_table(&mut self, name: TableName) -> usize {
        if let Some(i) = self
            .tables
            .iter()
            .position(|t| t.implicit_chains && t.table.name == name)
        {
            return i;
        }
        self.tables.push(TableBuilder {
            table: Table {
                name,
                chains: Vec::new(),
                span: Span::default(),
                committed: true,
            },
            index: ChainIndex::default(),
            implicit_chains: true,
        });
        self.tables.len() - 1
    }

    /// Resolves a chain for modification, declaring it where that is allowed.
    fn chain_index(&mut self, ti: usize, name: &Token, create: bool) -> Option<usize> {
        let tb = &mut self.tables[ti];
        if let Some(i) = tb.index.get(&name.text) {
            return Some(i);
        }
        let chain = ChainName::new(&name.text);
        let builtin_here =
            matches!(&chain, ChainName::Builtin(b) if tb.table.name.builtin_chains().contains(b));
        if let ChainName::Builtin(_) = chain {
            if !builtin_here {
                let table = tb.table.name;
                self.ctx.error(
                    ErrorKind::Invalid,
                    name.span,
                    format!("table `{table}` has no built-in chain `{}`", name.text),
                );
                return None;
            }
        }
        if builtin_here || tb.implicit_chains || create {
            tb.table.chains.push(Chain {
                policy: builtin_here.then_some(Policy::Accept),
                name: chain,
                counters: None,
                rules: Vec::new(),
                span: name.span,
            });
            let i = tb.table.chains.len() - 1;
            tb.index.declare(name.text.to_string(), i);
            return Some(i);
        }
        let table = tb.table.name;
        self.ctx.error(
            ErrorKind::Invalid,
            name.span,
            format!(
                "chain `{0}` is not declared in table `{table}` (add `:{0} - [0:0]` after `*{table}`)",
                name.text
            ),
        );
        None
    }

    /// Reports the first token of `rest`, which nothing expected.
    fn extra(&mut self, rest: &[Token]) {
        if let Some(t) = rest.first() {
            self.ctx.error(
                ErrorKind::Invalid,
                t.span,
                format!("unexpected `{}`", t.text),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_byte_order_mark_is_whitespace_and_spans_still_fit() {
        let text =
            "\u{feff}*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m nope -j ACCEPT\nCOMMIT\n";
        let errors = parse_str(text).unwrap_err();
        let span = errors[0].span;
        assert_eq!(&text[span.start as usize..span.end as usize], "nope");
        assert!(parse_str(&text.replace(" -m nope", "")).is_ok());
    }

    use super::*;
    use crate::model::{Match, Target};

    fn errors(text: &str) -> Vec<(u32, usize, String)> {
        let src = SourceFile::new("t", text);
        parse_str(text)
            .unwrap_err()
            .into_iter()
            .map(|e| {
                let (line, col) = src.line_col(e.span.start as usize);
                (line as u32, col, e.message)
            })
            .collect()
    }

    #[test]
    fn errors_name_line_and_column() {
        let text = "*nat\n:KUBE-X - [0:0]\n-A KUBE-X -d 10.96.0.300/32 -j ACCEPT\nCOMMIT\n";
        let e = errors(text);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].0, e[0].1), (3, 14));
        assert!(e[0].2.contains("10.96.0.300/32"), "{}", e[0].2);
    }

    #[test]
    fn all_errors_are_collected() {
        let text = "*nat\n-A NOPE -j ACCEPT\n-A PREROUTING -m tcp --dport http -j ACCEPT\n-A PREROUTING -j DNAT\nCOMMIT\n";
        let e = errors(text);
        assert_eq!(e.iter().map(|x| x.0).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(e[0].2.contains("not declared"));
        assert!(e[1].2.contains("not a port number"));
        assert!(e[2].2.contains("--to-destination"));
    }

    #[test]
    fn unknown_option_of_a_known_module_is_precise() {
        let e = errors("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --tcp-flags SYN SYN -j ACCEPT\nCOMMIT\n");
        assert_eq!((e[0].0, e[0].1), (3, 24));
        assert!(
            e[0].2.contains("--tcp-flags") && e[0].2.contains("-m tcp"),
            "{}",
            e[0].2
        );
    }

    #[test]
    fn negation_before_or_after_the_option() {
        let a = parse_str("*nat\n:X - [0:0]\n-A X ! -s 10.0.0.0/8 -m conntrack ! --ctstate DNAT -j RETURN\nCOMMIT\n").unwrap();
        let b = parse_str("*nat\n:X - [0:0]\n-A X -s ! 10.0.0.0/8 -m conntrack --ctstate ! DNAT -j RETURN\nCOMMIT\n").unwrap();
        assert_eq!(a, b);
        let r = &a.tables[0].chains[0].rules[0];
        assert!(r.basic.source.as_ref().unwrap().negated);
        assert!(matches!(&r.matches[0], Match::Conntrack { states, .. } if states.negated));
    }

    #[test]
    fn recent_and_multiport_and_goto() {
        let t = "*nat\n:X - [0:0]\n:Y - [0:0]\n-A X -p udp -m multiport --dports 53,5353:5360 -m recent --rcheck --seconds 10800 --reap --name Y --mask 255.255.255.255 --rsource -g Y\nCOMMIT\n";
        let rs = parse_str(t).unwrap();
        let r = &rs.tables[0].chains[0].rules[0];
        assert!(
            matches!(&r.matches[0], Match::Multiport { dports: Some(d), .. } if d.value.len() == 2)
        );
        assert!(
            matches!(&r.matches[1], Match::Recent(rc) if rc.seconds == Some(10800) && rc.reap && rc.name == "Y")
        );
        assert_eq!(r.target, Some(Target::Goto(ChainName::new("Y"))));
        assert_eq!(crate::print(&rs), t);
    }

    #[test]
    fn declarations_are_checked() {
        let e = errors("*nat\n:FORWARD ACCEPT [0:0]\n:KUBE-X ACCEPT [0:0]\n:INPUT - [0:0]\n:OUTPUT MAYBE [0:0]\nCOMMIT\n");
        assert_eq!(e.iter().map(|x| x.0).collect::<Vec<_>>(), [2, 3, 4, 5]);
    }

    #[test]
    fn duplicate_declarations_and_missing_commit_stay_visible() {
        let rs = parse_str("*nat\n:X - [0:0]\n:X - [0:0]\n-A X -j RETURN\n*filter\n").unwrap();
        assert_eq!(rs.tables[0].chains.len(), 2);
        assert_eq!(rs.tables[0].chains[0].rules.len(), 1);
        assert!(!rs.tables[0].committed);
        assert!(!rs.tables[1].committed);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "\u{0}\u{1}\u{2}",
            "*",
            ":",
            "-A",
            "-A X -j",
            "iptables",
            "sudo",
            "[1:2]",
            "*nat\n-A PREROUTING ! ",
            "*nat\n-A PREROUTING -m statistic --mode random --probability 2 -j DROP",
        ] {
            let _ = parse(text, Mode::Lax);
            let _ = parse(text, Mode::Strict);
        }
        let e = errors("*nat\n-A PREROUTING -m statistic --mode random --probability 2 -j DROP\n");
        assert!(e[0].2.contains("outside 0..1"));
    }

    #[test]
    fn too_many_errors_stop_early() {
        let text = "junk\n".repeat(1000);
        let e = parse_str(&text).unwrap_err();
        assert_eq!(e.len(), MAX_ERRORS + 1);
    }
}
