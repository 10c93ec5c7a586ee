//! The iptables-save / iptables-restore spelling: `*table` headers, `:CHAIN
//! POLICY [p:b]` declarations, `COMMIT`, and the `-A CHAIN ...` lines of a
//! block (handed to the shared replay in [`command`](super::command), which
//! parses the rule specification with [`rule`](super::rule)).

use super::command::Command;
use super::value;
use super::{ErrorKind, Parser, TableBuilder};
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
        let chain = self.ctx.names.chain(name);
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
