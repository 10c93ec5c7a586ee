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

mod matches;
mod rule;
mod spec;
mod targets;
mod value;

use std::collections::HashMap;
use std::fmt;

use super::lex::{self, Token};
use super::model::{Chain, ChainName, Counters, Policy, Rule, RuleSet, Table, TableName};
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
    fn error(&mut self, kind: ErrorKind, span: Span, message: String) {
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
    /// First declaration of each chain name.
    index: HashMap<String, usize>,
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

/// How a command line names its table.
enum TableSource {
    /// An open `*table` block.
    Block(usize),
    /// An `iptables [-t T]` command or a fragment with a default table.
    Implicit(TableName),
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
                    Some(_) => self.command(&toks[1..], line.span, false),
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
            return self.command(&rest[1..], line.span, true);
        }
        if head.is_option() {
            return self.command(rest, line.span, false);
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

    fn table_header(&mut self, tok: &Token, name: &str, extra: &[Token]) {
        if let Some(t) = extra.first() {
            self.ctx.error(
                ErrorKind::Invalid,
                t.span,
                "unexpected text after the table name".into(),
            );
        }
        let Some(table) = TableName::from_name(name) else {
            return self.ctx.error(
                ErrorKind::Invalid,
                tok.span,
                format!("unknown table `{name}` (expected raw, mangle, filter, nat or security)"),
            );
        };
        self.tables.push(TableBuilder {
            table: Table {
                name: table,
                chains: Vec::new(),
                span: tok.span,
                committed: false,
            },
            index: HashMap::new(),
            implicit_chains: false,
        });
        self.open = Some(self.tables.len() - 1);
    }

    fn commit(&mut self, tok: &Token, extra: &[Token]) {
        if let Some(t) = extra.first() {
            self.ctx.error(
                ErrorKind::Invalid,
                t.span,
                "unexpected text after COMMIT".into(),
            );
        }
        match self.open.take() {
            Some(i) => self.tables[i].table.committed = true,
            None => self.ctx.error(
                ErrorKind::Invalid,
                tok.span,
                "COMMIT without a `*table` line before it".into(),
            ),
        }
    }

    fn chain_declaration(&mut self, tok: &Token, name: &str, rest: &[Token], line_span: Span) {
        let Some(ti) = self.open else {
            return self.ctx.error(
                ErrorKind::Invalid,
                tok.span,
                "chain declaration outside a `*table` ... `COMMIT` block".into(),
            );
        };
        if name.is_empty() {
            return self.ctx.error(
                ErrorKind::Invalid,
                tok.span,
                "chain declaration without a name".into(),
            );
        }
        let chain = ChainName::new(name);
        let policy_tok = rest.first();
        let policy = match policy_tok.map(|t| t.text.as_ref()) {
            Some("ACCEPT") => Some(Policy::Accept),
            Some("DROP") => Some(Policy::Drop),
            Some("-") => None,
            Some(other) => {
                let span = policy_tok.map(|t| t.span).unwrap_or(tok.span);
                return self.ctx.error(
                    ErrorKind::Invalid,
                    span,
                    format!("`{other}` is not a chain policy (expected ACCEPT, DROP, or `-` for a user chain)"),
                );
            }
            None => {
                return self.ctx.error(
                    ErrorKind::Invalid,
                    tok.span,
                    format!("declaration of `{name}` has no policy (expected `:{name} ACCEPT [0:0]` or `:{name} - [0:0]`)"),
                )
            }
        };
        let table = self.tables[ti].table.name;
        match (&chain, policy) {
            (ChainName::Builtin(b), _) if !table.builtin_chains().contains(b) => {
                return self.ctx.error(
                    ErrorKind::Invalid,
                    tok.span,
                    format!("table `{table}` has no built-in chain `{name}`"),
                )
            }
            (ChainName::Builtin(_), None) => {
                return self.ctx.error(
                    ErrorKind::Invalid,
                    tok.span,
                    format!("built-in chain `{name}` needs a policy (ACCEPT or DROP), not `-`"),
                )
            }
            (ChainName::User(_), Some(_)) => {
                return self.ctx.error(
                    ErrorKind::Invalid,
                    tok.span,
                    format!("user chain `{name}` cannot have a policy (write `:{name} - [0:0]`)"),
                )
            }
            _ => {}
        }
        let mut counters = None;
        if let Some(c) = rest.get(1) {
            match value::counters(&c.text) {
                Some((packets, bytes)) => counters = Some(Counters { packets, bytes }),
                None => {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        c.span,
                        format!("`{}` is not a counter (expected [packets:bytes])", c.text),
                    )
                }
            }
        }
        if let Some(t) = rest.get(2) {
            self.ctx.error(
                ErrorKind::Invalid,
                t.span,
                "unexpected text after the chain declaration".into(),
            );
        }
        let tb = &mut self.tables[ti];
        tb.table.chains.push(Chain {
            name: chain,
            policy,
            counters,
            rules: Vec::new(),
            span: line_span,
        });
        let idx = tb.table.chains.len() - 1;
        // A duplicate declaration is kept as its own entry for the invariants
        // to report; rules keep going to the first one.
        tb.index.entry(name.to_string()).or_insert(idx);
    }

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
            index: HashMap::new(),
            implicit_chains: true,
        });
        self.tables.len() - 1
    }

    /// Resolves a chain for modification, declaring it where that is allowed.
    fn chain_index(&mut self, ti: usize, name: &Token, create: bool) -> Option<usize> {
        let tb = &mut self.tables[ti];
        if let Some(&i) = tb.index.get(name.text.as_ref()) {
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
            tb.index.insert(name.text.to_string(), i);
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

    /// A `-A`/`-I`/`-N`/... line, from iptables-restore input or an `iptables` command.
    fn command(&mut self, toks: &[Token], line_span: Span, is_program: bool) {
        // `-t TABLE` may stand anywhere in a command; pull it out first.
        let mut table_name = None;
        let mut args: Vec<&Token> = Vec::with_capacity(toks.len());
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            if is_program && !t.quoted && matches!(t.text.as_ref(), "-t" | "--table") {
                match toks.get(i + 1) {
                    Some(v) => match TableName::from_name(&v.text) {
                        Some(n) => table_name = Some(n),
                        None => {
                            return self.ctx.error(
                                ErrorKind::Invalid,
                                v.span,
                                format!("unknown table `{}` (expected raw, mangle, filter, nat or security)", v.text),
                            )
                        }
                    },
                    None => return self.ctx.error(ErrorKind::Invalid, t.span, "`-t` needs a table name".into()),
                }
                i += 2;
                continue;
            }
            if is_program
                && !t.quoted
                && matches!(t.text.as_ref(), "-w" | "--wait" | "-W" | "--wait-interval")
            {
                i += 1;
                if toks.get(i).is_some_and(|v| v.text.parse::<f64>().is_ok()) {
                    i += 1;
                }
                continue;
            }
            args.push(t);
            i += 1;
        }
        // Global flags of listing commands before the command itself.
        let mut pos = 0;
        while args.get(pos).is_some_and(|t| {
            is_program
                && !t.quoted
                && matches!(
                    t.text.as_ref(),
                    "-v" | "--verbose" | "-n" | "--numeric" | "-x" | "--exact" | "--line-numbers"
                )
        }) {
            pos += 1;
        }
        let Some(cmd_tok) = args.get(pos).copied() else {
            return self.ctx.error(
                ErrorKind::Invalid,
                line_span,
                "an `iptables` command without a command such as `-A`".into(),
            );
        };
        let Some(cmd) = command_name(&cmd_tok.text).filter(|_| !cmd_tok.quoted) else {
            return self.ctx.error(
                ErrorKind::Invalid,
                cmd_tok.span,
                format!(
                    "expected a command (-A, -I, -D, -R, -N, -X, -F, -P, -E), found `{}`",
                    cmd_tok.text
                ),
            );
        };
        if matches!(cmd, Command::List) {
            return;
        }
        let source = match (table_name, self.open, is_program) {
            (Some(t), _, true) => TableSource::Implicit(t),
            (None, _, true) => TableSource::Implicit(TableName::Filter),
            (_, Some(ti), false) => TableSource::Block(ti),
            (_, None, false) => match self.options.default_table {
                Some(t) => TableSource::Implicit(t),
                None => {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        cmd_tok.span,
                        "rule outside a `*table` ... `COMMIT` block (add a `*nat`/`*filter` line above it, or name a default table)".into(),
                    )
                }
            },
        };
        let ti = match source {
            TableSource::Block(ti) => ti,
            TableSource::Implicit(t) => self.implicit_table(t),
        };
        let rest: Vec<Token> = args[pos + 1..].iter().map(|t| (*t).clone()).collect();
        self.apply(cmd, cmd_tok, ti, &rest, line_span);
    }

    fn apply(&mut self, cmd: Command, cmd_tok: &Token, ti: usize, rest: &[Token], line_span: Span) {
        let need_chain = |p: &mut Parser| {
            p.ctx.error(
                ErrorKind::Invalid,
                cmd_tok.span,
                format!("`{}` needs a chain name", cmd_tok.text),
            );
        };
        match cmd {
            Command::List => {}
            Command::NewChain => {
                let Some(name) = rest.first() else {
                    return need_chain(self);
                };
                let tb = &self.tables[ti];
                if tb.index.contains_key(name.text.as_ref()) && !tb.implicit_chains {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        name.span,
                        format!("chain `{}` already exists", name.text),
                    );
                }
                if ChainName::new(&name.text).is_builtin() {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        name.span,
                        format!("`{}` is a built-in chain name", name.text),
                    );
                }
                self.chain_index(ti, name, true);
                self.extra(&rest[1..]);
            }
            Command::Append | Command::Insert | Command::Replace | Command::Delete => {
                let Some(name) = rest.first() else {
                    return need_chain(self);
                };
                let mut spec = &rest[1..];
                let mut number = None;
                if matches!(cmd, Command::Insert | Command::Replace | Command::Delete) {
                    if let Some(n) = spec
                        .first()
                        .filter(|t| !t.quoted)
                        .and_then(|t| t.text.parse::<usize>().ok())
                    {
                        if n == 0 {
                            return self.ctx.error(
                                ErrorKind::Invalid,
                                spec[0].span,
                                "rule numbers start at 1".into(),
                            );
                        }
                        number = Some((n, spec[0].span));
                        spec = &spec[1..];
                    } else if cmd == Command::Replace {
                        return self.ctx.error(
                            ErrorKind::Invalid,
                            name.span,
                            "`-R` needs a rule number".into(),
                        );
                    }
                }
                let Some(ci) = self.chain_index(ti, name, false) else {
                    return;
                };
                let rule_span = line_span;
                let rule = if cmd == Command::Delete && number.is_some() {
                    self.extra(spec);
                    None
                } else {
                    match rule::parse_rule(&mut self.ctx, spec, rule_span) {
                        Some(r) => Some(r),
                        None => return,
                    }
                };
                self.edit(ti, ci, cmd, number, rule, name);
            }
            Command::Flush | Command::DeleteChain => {
                let tb = &mut self.tables[ti];
                match rest.first() {
                    None if cmd == Command::Flush => {
                        tb.table.chains.iter_mut().for_each(|c| c.rules.clear())
                    }
                    None => {
                        tb.table.chains.retain(|c| c.name.is_builtin());
                        reindex(tb);
                    }
                    Some(name) => {
                        let Some(&ci) = tb.index.get(name.text.as_ref()) else {
                            return self.ctx.error(
                                ErrorKind::Invalid,
                                name.span,
                                format!("no chain `{}` to flush or delete", name.text),
                            );
                        };
                        if cmd == Command::Flush {
                            tb.table.chains[ci].rules.clear();
                        } else if tb.table.chains[ci].name.is_builtin() {
                            return self.ctx.error(
                                ErrorKind::Invalid,
                                name.span,
                                "built-in chains cannot be deleted".into(),
                            );
                        } else {
                            tb.table.chains.remove(ci);
                            reindex(tb);
                        }
                        self.extra(&rest[1..]);
                    }
                }
            }
            Command::Policy => {
                let (Some(name), Some(pol)) = (rest.first(), rest.get(1)) else {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        cmd_tok.span,
                        "`-P` needs a chain and a policy".into(),
                    );
                };
                let policy = match pol.text.as_ref() {
                    "ACCEPT" => Policy::Accept,
                    "DROP" => Policy::Drop,
                    other => {
                        return self.ctx.error(
                            ErrorKind::Invalid,
                            pol.span,
                            format!("`{other}` is not a policy (ACCEPT or DROP)"),
                        )
                    }
                };
                if !ChainName::new(&name.text).is_builtin() {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        name.span,
                        "only built-in chains have a policy".into(),
                    );
                }
                if let Some(ci) = self.chain_index(ti, name, false) {
                    self.tables[ti].table.chains[ci].policy = Some(policy);
                }
                self.extra(&rest[2..]);
            }
            Command::Rename => {
                let (Some(old), Some(new)) = (rest.first(), rest.get(1)) else {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        cmd_tok.span,
                        "`-E` needs the old and the new chain name".into(),
                    );
                };
                let tb = &mut self.tables[ti];
                let Some(&ci) = tb.index.get(old.text.as_ref()) else {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        old.span,
                        format!("no chain `{}` to rename", old.text),
                    );
                };
                tb.table.chains[ci].name = ChainName::new(&new.text);
                reindex(tb);
            }
        }
    }

    fn edit(
        &mut self,
        ti: usize,
        ci: usize,
        cmd: Command,
        number: Option<(usize, Span)>,
        rule: Option<Rule>,
        name: &Token,
    ) {
        let rules = &mut self.tables[ti].table.chains[ci].rules;
        let len = rules.len();
        let out_of_range = |ctx: &mut Ctx, span: Span, n: usize| {
            ctx.error(
                ErrorKind::Invalid,
                span,
                format!(
                    "chain `{}` has {len} rules, there is no rule {n}",
                    name.text
                ),
            );
        };
        match (cmd, number, rule) {
            (Command::Append, _, Some(r)) => rules.push(r),
            (Command::Insert, None, Some(r)) => rules.insert(0, r),
            (Command::Insert, Some((n, span)), Some(r)) => {
                if n > len + 1 {
                    return out_of_range(&mut self.ctx, span, n);
                }
                rules.insert(n - 1, r);
            }
            (Command::Replace, Some((n, span)), Some(r)) => {
                if n > len {
                    return out_of_range(&mut self.ctx, span, n);
                }
                rules[n - 1] = r;
            }
            (Command::Delete, Some((n, span)), None) => {
                if n > len {
                    return out_of_range(&mut self.ctx, span, n);
                }
                rules.remove(n - 1);
            }
            (Command::Delete, None, Some(r)) => match rules.iter().position(|x| *x == r) {
                Some(i) => {
                    rules.remove(i);
                }
                None => self.ctx.error(
                    ErrorKind::Invalid,
                    r.span,
                    format!("`-D`: chain `{}` has no rule like this one", name.text),
                ),
            },
            _ => {}
        }
    }

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

fn reindex(tb: &mut TableBuilder) {
    tb.index.clear();
    for (i, c) in tb.table.chains.iter().enumerate() {
        tb.index.entry(c.name.as_str().to_string()).or_insert(i);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Append,
    Insert,
    Delete,
    Replace,
    NewChain,
    DeleteChain,
    Flush,
    Policy,
    Rename,
    List,
}

fn command_name(text: &str) -> Option<Command> {
    const LONG: &[(&str, Command)] = &[
        ("append", Command::Append),
        ("insert", Command::Insert),
        ("delete", Command::Delete),
        ("replace", Command::Replace),
        ("new-chain", Command::NewChain),
        ("delete-chain", Command::DeleteChain),
        ("flush", Command::Flush),
        ("policy", Command::Policy),
        ("rename-chain", Command::Rename),
        ("list", Command::List),
        ("list-rules", Command::List),
        ("zero", Command::List),
        ("check", Command::List),
    ];
    Some(match text {
        "-A" => Command::Append,
        "-I" => Command::Insert,
        "-D" => Command::Delete,
        "-R" => Command::Replace,
        "-N" => Command::NewChain,
        "-X" => Command::DeleteChain,
        "-F" => Command::Flush,
        "-P" => Command::Policy,
        "-E" => Command::Rename,
        "-L" | "-S" | "-Z" | "-C" => Command::List,
        long => {
            let name = long.strip_prefix("--")?;
            if let Some((_, c)) = LONG.iter().find(|(n, _)| *n == name) {
                return Some(*c);
            }
            // getopt_long accepts unambiguous prefixes: `--new` is `--new-chain`.
            let mut hits = LONG.iter().filter(|(n, _)| n.starts_with(name));
            match (hits.next(), hits.next()) {
                (Some((_, c)), None) => *c,
                _ => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
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
