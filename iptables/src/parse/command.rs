//! `iptables` command replay: `[sudo] iptables [-t TABLE] -A/-I/-D/-R/-N/-X/-F/-P/-E ...`
//! as tutorials write them (long options and their unambiguous prefixes,
//! `\` continuations joined by the lexer), and the edits those commands
//! and iptables-restore's own `-A`/`-I`/... lines make to a table. Rule
//! specifications go to the shared [`rule`](super::rule) parser.

use super::rule;
use super::{Ctx, ErrorKind, Parser, TableBuilder};
use crate::lex::Token;
use crate::model::{ChainName, Policy, Rule, TableName};
use crate::source::Span;

impl Parser {
    /// An `iptables ...` command line (after `sudo` and prompts): global
    /// options such as `-t nat` and `-w` may stand anywhere; listing
    /// commands change nothing.
    pub(super) fn program_command(&mut self, toks: &[Token], line_span: Span) {
        // `-t TABLE` may stand anywhere in a command; pull it out first.
        let mut table_name = None;
        let mut args: Vec<&Token> = Vec::with_capacity(toks.len());
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            if !t.quoted && matches!(t.text.as_ref(), "-t" | "--table") {
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
            if !t.quoted && matches!(t.text.as_ref(), "-w" | "--wait" | "-W" | "--wait-interval") {
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
        let pos = args
            .iter()
            .take_while(|t| {
                !t.quoted
                    && matches!(
                        t.text.as_ref(),
                        "-v" | "--verbose"
                            | "-n"
                            | "--numeric"
                            | "-x"
                            | "--exact"
                            | "--line-numbers"
                    )
            })
            .count();
        let Some(cmd_tok) = args.get(pos).copied() else {
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
        let ti = self.implicit_table(table_name.unwrap_or(TableName::Filter));
        let rest: Vec<Token> = args[pos + 1..].iter().map(|t| (*t).clone()).collect();
        self.apply(cmd, cmd_tok, ti, &rest, line_span);
    }

    /// The command a token names (`-A`, `--append`, `--app`, ...), or an error.
    pub(super) fn command_word(&mut self, tok: &Token) -> Option<Command> {
        let cmd = command_name(&tok.text).filter(|_| !tok.quoted);
        if cmd.is_none() {
            self.ctx.error(
                ErrorKind::Invalid,
                tok.span,
                format!(
                    "expected a command (-A, -I, -D, -R, -N, -X, -F, -P, -E), found `{}`",
                    tok.text
                ),
            );
        }
        cmd
    }

    /// Replays one command on table `ti`; `rest` follows the command word.
    pub(super) fn apply(
        &mut self,
        cmd: Command,
        cmd_tok: &Token,
        ti: usize,
        rest: &[Token],
        line_span: Span,
    ) {
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
                if tb.index.get(&tb.table.chains, &name.text).is_some() && !tb.implicit_chains {
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
                        let Some(ci) = tb.index.get(&tb.table.chains, &name.text) else {
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
                let Some(ci) = tb.index.get(&tb.table.chains, &old.text) else {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        old.span,
                        format!("no chain `{}` to rename", old.text),
                    );
                };
                // iptables refuses a new name that is taken ("File exists");
                // two chains of one name would not survive a print and parse.
                if tb.index.get(&tb.table.chains, &new.text).is_some() {
                    return self.ctx.error(
                        ErrorKind::Invalid,
                        new.span,
                        format!(
                            "chain `{}` already exists; `-E` cannot rename onto it",
                            new.text
                        ),
                    );
                }
                let renamed = self.ctx.names.chain(&new.text);
                let tb = &mut self.tables[ti];
                tb.table.chains[ci].name = renamed;
                reindex(tb);
            }
        }
    }

    /// What [`restore_command`](Parser::restore_command) does with an
    /// `-A NAME SPEC` line of a `*table` block (or of the default table)
    /// whose `SPEC` was parsed elsewhere into `rule` (on another thread of
    /// the same parse, sharing its names): `cmd` is the `-A`, `name` the
    /// chain.
    /// What [`line`](Parser::line) does before: a line starting with `-A`
    /// ends skipped output.
    pub(super) fn append_parsed(&mut self, cmd: &Token, name: &Token, rule: Rule) {
        self.end_skip();
        // On an error (no table) the caller stops and reparses the whole text.
        let Some(ti) = self.rule_table(cmd.span) else {
            return;
        };
        let Some(ci) = self.chain_index(ti, name, false) else {
            return;
        };
        self.edit(ti, ci, Command::Append, None, Some(rule), name);
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
            (Command::Append, _, Some(r)) => {
                // Grow from two rules, not four: most chains of a kube-proxy
                // dump hold two (every endpoint chain) or eleven, and the
                // spare room of a default-grown vector was the largest part
                // of the model. Starting at one cost a reallocation per
                // endpoint chain (7% of `lint`).
                if rules.len() == rules.capacity() {
                    rules.reserve_exact(rules.len().max(2));
                }
                rules.push(r);
            }
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
}

fn reindex(tb: &mut TableBuilder) {
    tb.index.rebuild(&tb.table.chains);
    tb.last = None;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
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

pub(super) fn command_name(text: &str) -> Option<Command> {
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
