//! The iptables-save / iptables-restore spelling: `*table` headers, `:CHAIN
//! POLICY [p:b]` declarations, `COMMIT`, and the `-A CHAIN ...` lines of a
//! block (handed to the shared replay in [`command`](super::command), which
//! parses the rule specification with [`rule`](super::rule)).

use super::command::Command;
use super::value;
use super::{Ctx, ErrorKind, Parser, TableBuilder};
use crate::lex::Token;
use crate::model::{Chain, ChainName, Counters, NameIndex, Policy, Table, TableName};
use crate::source::Span;

impl Parser {
    pub(super) fn table_header(&mut self, tok: &Token, name: &str, extra: &[Token]) {
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
            index: NameIndex::default(),
            last: None,
            duplicates: false,
            implicit_chains: false,
        });
        self.open = Some(self.tables.len() - 1);
    }

    pub(super) fn commit(&mut self, tok: &Token, extra: &[Token]) {
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

    pub(super) fn chain_declaration(
        &mut self,
        tok: &Token,
        name: &str,
        rest: &[Token],
        line_span: Span,
    ) {
        let Some(ti) = self.open else {
            return self.outside_table(tok.span);
        };
        let Some((chain, policy)) = self.ctx.declaration_head(tok, name, rest) else {
            return;
        };
        if !self.fits(ti, tok.span, &chain, policy) {
            return;
        }
        let Some(counters) = self.ctx.declaration_tail(rest) else {
            return;
        };
        self.add_chain(
            ti,
            Declared {
                tok: tok.span,
                chain,
                policy,
                counters,
                span: line_span,
            },
        );
    }

    fn outside_table(&mut self, span: Span) {
        self.ctx.error(
            ErrorKind::Invalid,
            span,
            "chain declaration outside a `*table` ... `COMMIT` block".into(),
        );
    }

    /// Adds a chain declared by a `:CHAIN POLICY [p:b]` line read apart
    /// from the lines before it ([`Ctx::declaration`]) to the open
    /// `*table` block, which decides whether its policy and built-in name
    /// fit. What [`line`](Parser::line) does before: a `:` line ends
    /// skipped output.
    pub(super) fn declared(&mut self, declared: Declared) {
        self.end_skip();
        let Some(ti) = self.open else {
            return self.outside_table(declared.tok);
        };
        if self.fits(ti, declared.tok, &declared.chain, declared.policy) {
            self.add_chain(ti, declared);
        }
    }

    /// Whether a chain called `chain`, with `policy`, may be declared in
    /// table `ti` (an error if not): built-in chains of that table with a
    /// policy, user chains without.
    fn fits(&mut self, ti: usize, tok: Span, chain: &ChainName, policy: Option<Policy>) -> bool {
        let table = self.tables[ti].table.name;
        let name = chain.as_str();
        let message = match (chain, policy) {
            (ChainName::Builtin(b), _) if !table.builtin_chains().contains(b) => {
                format!("table `{table}` has no built-in chain `{name}`")
            }
            (ChainName::Builtin(_), None) => {
                format!("built-in chain `{name}` needs a policy (ACCEPT or DROP), not `-`")
            }
            (ChainName::User(_), Some(_)) => {
                format!("user chain `{name}` cannot have a policy (write `:{name} - [0:0]`)")
            }
            _ => return true,
        };
        self.ctx.error(ErrorKind::Invalid, tok, message);
        false
    }

    /// Adds a chain that [`fits`](Parser::fits) to table `ti`.
    fn add_chain(&mut self, ti: usize, declared: Declared) {
        let tb = &mut self.tables[ti];
        tb.table.chains.push(Chain {
            name: declared.chain,
            policy: declared.policy,
            counters: declared.counters,
            rules: Vec::new(),
            span: declared.span,
        });
        let idx = tb.table.chains.len() - 1;
        // A duplicate declaration is kept as its own entry for the invariants
        // to report; rules keep going to the first one.
        if !tb.index.insert(&tb.table.chains, idx) {
            tb.duplicates = true;
        }
    }

    /// A line of iptables-restore input that is not a declaration: `-A
    /// CHAIN SPEC` (or `-I`, `-D`, `-N`, ... as iptables-restore also
    /// takes), in the open `*table` block or the default table.
    pub(super) fn restore_command(&mut self, toks: &[Token], line_span: Span) {
        let Some(cmd_tok) = toks.first() else {
            return self.ctx.error(
                ErrorKind::Invalid,
                line_span,
                "an `iptables` command without a command such as `-A`".into(),
            );
        };
        let Some(cmd) = self.command_word(cmd_tok) else {
            return;
        };
        if cmd == Command::List {
            return;
        }
        let Some(ti) = self.rule_table(cmd_tok.span) else {
            return;
        };
        self.apply(cmd, cmd_tok, ti, &toks[1..], line_span);
    }
}

/// A `:CHAIN POLICY [p:b]` line, read as far as it can be without the
/// lines before it.
pub(super) struct Declared {
    /// The `:CHAIN` token.
    tok: Span,
    chain: ChainName,
    policy: Option<Policy>,
    counters: Option<Counters>,
    /// The whole line.
    span: Span,
}

impl Ctx {
    /// What a `:CHAIN POLICY [p:b]` line declares, read apart from the
    /// lines before it (on a thread of a parse of several), or `None` after
    /// an error: `tok` is the `:CHAIN` token, `name` the name after its
    /// `:`. Whether it fits the open block is left to
    /// [`Parser::declared`].
    pub(super) fn declaration(
        &mut self,
        tok: &Token,
        name: &str,
        rest: &[Token],
        line_span: Span,
    ) -> Option<Declared> {
        let (chain, policy) = self.declaration_head(tok, name, rest)?;
        let counters = self.declaration_tail(rest)?;
        Some(Declared {
            tok: tok.span,
            chain,
            policy,
            counters,
            span: line_span,
        })
    }

    /// A declaration's chain and policy (`None` after an error).
    fn declaration_head(
        &mut self,
        tok: &Token,
        name: &str,
        rest: &[Token],
    ) -> Option<(ChainName, Option<Policy>)> {
        if name.is_empty() {
            self.error(
                ErrorKind::Invalid,
                tok.span,
                "chain declaration without a name".into(),
            );
            return None;
        }
        let chain = self.names.chain(name);
        let policy_tok = rest.first();
        let policy = match policy_tok.map(|t| t.text.as_ref()) {
            Some("ACCEPT") => Some(Policy::Accept),
            Some("DROP") => Some(Policy::Drop),
            Some("-") => None,
            Some(other) => {
                let span = policy_tok.map(|t| t.span).unwrap_or(tok.span);
                self.error(
                    ErrorKind::Invalid,
                    span,
                    format!("`{other}` is not a chain policy (expected ACCEPT, DROP, or `-` for a user chain)"),
                );
                return None;
            }
            None => {
                self.error(
                    ErrorKind::Invalid,
                    tok.span,
                    format!("declaration of `{name}` has no policy (expected `:{name} ACCEPT [0:0]` or `:{name} - [0:0]`)"),
                );
                return None;
            }
        };
        Some((chain, policy))
    }

    /// A declaration's counters, after its policy (`None` after an error;
    /// text after them is an error, and the chain declared all the same).
    fn declaration_tail(&mut self, rest: &[Token]) -> Option<Option<Counters>> {
        let mut counters = None;
        if let Some(c) = rest.get(1) {
            match value::counters(&c.text) {
                Some((packets, bytes)) => counters = Some(Counters { packets, bytes }),
                None => {
                    self.error(
                        ErrorKind::Invalid,
                        c.span,
                        format!("`{}` is not a counter (expected [packets:bytes])", c.text),
                    );
                    return None;
                }
            }
        }
        if let Some(t) = rest.get(2) {
            self.error(
                ErrorKind::Invalid,
                t.span,
                "unexpected text after the chain declaration".into(),
            );
        }
        Some(counters)
    }
}
