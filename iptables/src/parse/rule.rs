//! Parsing one rule specification: basic matches, `-m` modules and the target.
//!
//! Every module and target declares its options in a small table; options
//! match exactly or by an unambiguous prefix, as iptables' getopt_long does
//! (so the tutorials' `REDIRECT --to-port` means `--to-ports`).

use super::matches::{self, MATCHES};
use super::spec::{self, Extension, Negate, Opt, OptSpec};
use super::targets::{TARGETS, UNMODELLED};
use super::value;
use super::{Ctx, ErrorKind};
use crate::lex::Token;
use crate::model::*;
use crate::source::Span;

/// Basic options every rule takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Basic {
    Source,
    Destination,
    Protocol,
    InInterface,
    OutInterface,
    Fragment,
    Match,
    Jump,
    Goto,
    Counters,
}

fn basic_option(text: &str) -> Option<Basic> {
    Some(match text {
        "-s" | "--source" | "--src" => Basic::Source,
        "-d" | "--destination" | "--dst" => Basic::Destination,
        "-p" | "--protocol" | "--proto" => Basic::Protocol,
        "-i" | "--in-interface" => Basic::InInterface,
        "-o" | "--out-interface" => Basic::OutInterface,
        "-f" | "--fragment" => Basic::Fragment,
        "-m" | "--match" => Basic::Match,
        "-j" | "--jump" => Basic::Jump,
        "-g" | "--goto" => Basic::Goto,
        "-c" | "--set-counters" => Basic::Counters,
        _ => return None,
    })
}

/// Parses `tokens` as a rule specification.
pub(super) fn parse_rule<'a>(ctx: &mut Ctx, tokens: &[Token<'a>], span: Span) -> Option<Rule> {
    let mut p = RuleParser {
        ctx,
        toks: tokens,
        pos: 0,
        ok: true,
    };
    let rule = p.rule(span);
    p.ok.then_some(rule)
}

struct RuleParser<'c, 't, 'a> {
    ctx: &'c mut Ctx,
    toks: &'t [Token<'a>],
    pos: usize,
    ok: bool,
}

impl<'t, 'a> RuleParser<'_, 't, 'a> {
    fn error(&mut self, kind: ErrorKind, span: Span, message: String) {
        self.ok = false;
        self.ctx.error(kind, span, message);
    }

    fn peek(&self) -> Option<&'t Token<'a>> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<&'t Token<'a>> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }

    fn end_span(&self) -> Span {
        self.toks
            .last()
            .map(|t| Span::new(t.span.end as usize, t.span.end as usize, t.span.line))
            .unwrap_or_default()
    }

    /// The value of option `opt`, honouring the old `-s ! ADDR` negation spelling.
    fn value(&mut self, opt: &Token, negated: &mut bool) -> Option<&'t Token<'a>> {
        if self.peek().is_some_and(|t| t.is("!")) {
            *negated = !*negated;
            self.pos += 1;
        }
        match self.next() {
            Some(v) if !v.is_option() || v.text.parse::<i64>().is_ok() => Some(v),
            other => {
                let span = other.map(|t| t.span).unwrap_or_else(|| self.end_span());
                self.error(
                    ErrorKind::Invalid,
                    span,
                    format!("option `{}` needs a value", opt.text),
                );
                if other.is_some() {
                    self.pos -= 1;
                }
                None
            }
        }
    }

    fn rule(&mut self, span: Span) -> Rule {
        let mut rule = Rule {
            basic: BasicMatch::default(),
            matches: Box::default(),
            target: None,
            counters: None,
            span,
        };
        // Matches are collected in the shared buffer and copied out at
        // their exact length: most rules have one or two, and a growing
        // vector would reserve four.
        let mut matches = std::mem::take(&mut self.ctx.matches);
        matches.clear();
        let mut last_module: Option<&Token> = None;
        while let Some(tok) = self.next() {
            let mut negated = false;
            let mut opt = tok;
            if tok.is("!") {
                negated = true;
                match self.next() {
                    Some(t) => opt = t,
                    None => {
                        self.error(
                            ErrorKind::Invalid,
                            tok.span,
                            "`!` must be followed by an option".into(),
                        );
                        break;
                    }
                }
            }
            if !opt.is_option() {
                self.error(
                    ErrorKind::Invalid,
                    opt.span,
                    format!(
                        "expected an option such as `-m`, `-j` or `-d`, found `{}`",
                        opt.text
                    ),
                );
                continue;
            }
            let Some(basic) = basic_option(&opt.text) else {
                // `-p tcp --dport 80` loads the tcp module implicitly.
                let implicit = rule.basic.protocol.as_ref().and_then(|p| match p {
                    Neg {
                        negated: false,
                        value: proto @ (Protocol::Tcp | Protocol::Udp | Protocol::Sctp),
                    } => Some(*proto),
                    _ => None,
                });
                if let Some(module) = implicit.and_then(matches::implicit) {
                    if spec::resolve(matches::PORTS, &opt.text).is_some() {
                        self.pos -= if negated { 2 } else { 1 };
                        if let Some(m) = self.extension(module, tok) {
                            matches.push(m);
                        }
                        continue;
                    }
                }
                let context = match last_module {
                    Some(m) => format!(" (not an option of `-m {}` or of the rule)", m.text),
                    None => String::new(),
                };
                self.error(
                    ErrorKind::UnknownOption,
                    opt.span,
                    format!("unknown option `{}`{context}", opt.text),
                );
                // Skip the option's values so they are not reported too.
                while self.peek().is_some_and(|t| !t.is_option() && !t.is("!")) {
                    self.pos += 1;
                }
                continue;
            };
            if negated
                && matches!(
                    basic,
                    Basic::Match | Basic::Jump | Basic::Goto | Basic::Counters
                )
            {
                self.error(
                    ErrorKind::Invalid,
                    tok.span,
                    format!("`{}` cannot be negated", opt.text),
                );
            }
            match basic {
                Basic::Fragment => rule.basic.fragment = Some(Neg { negated, value: () }),
                Basic::Counters => {
                    let (p, b) = (self.next(), self.next());
                    match (p, b) {
                        (Some(p), Some(b)) => match (p.text.parse(), b.text.parse()) {
                            (Ok(packets), Ok(bytes)) => {
                                rule.counters = Some(Box::new(Counters { packets, bytes }))
                            }
                            _ => self.error(
                                ErrorKind::Invalid,
                                p.span.to(b.span),
                                "`-c` takes two numbers: packets and bytes".into(),
                            ),
                        },
                        _ => self.error(
                            ErrorKind::Invalid,
                            opt.span,
                            "`-c` takes two numbers: packets and bytes".into(),
                        ),
                    }
                }
                Basic::Match => {
                    let Some(name) = self.value(opt, &mut negated) else {
                        continue;
                    };
                    last_module = Some(name);
                    if let Some(m) = self.module(name) {
                        matches.push(m);
                    }
                }
                Basic::Jump | Basic::Goto => {
                    let Some(name) = self.value(opt, &mut negated) else {
                        continue;
                    };
                    if rule.target.is_some() {
                        self.error(
                            ErrorKind::Invalid,
                            opt.span,
                            "a rule can have only one target".into(),
                        );
                    }
                    rule.target = if basic == Basic::Goto {
                        Some(Target::Goto(self.ctx.names.chain(&name.text)))
                    } else {
                        self.target(name)
                    };
                }
                _ => {
                    let Some(v) = self.value(opt, &mut negated) else {
                        continue;
                    };
                    let dup = match basic {
                        Basic::Source => set_once(&mut rule.basic.source, negated, value::net(&v.text)),
                        Basic::Destination => set_once(&mut rule.basic.destination, negated, value::net(&v.text)),
                        Basic::Protocol => set_once(
                            &mut rule.basic.protocol,
                            negated,
                            Protocol::from_name(&v.text).ok_or_else(|| {
                                format!("unknown protocol `{}` (expected tcp, udp, sctp, icmp, all or a number)", v.text)
                            }),
                        ),
                        Basic::InInterface => set_boxed_once(&mut rule.basic.in_interface, negated, interface(&v.text)),
                        _ => set_boxed_once(&mut rule.basic.out_interface, negated, interface(&v.text)),
                    };
                    match dup {
                        Ok(()) => {}
                        Err(SetError::Twice) => self.error(
                            ErrorKind::Invalid,
                            opt.span,
                            format!("`{}` given twice in one rule", opt.text),
                        ),
                        Err(SetError::Bad(msg)) => self.error(ErrorKind::Invalid, v.span, msg),
                    }
                }
            }
        }
        // Not `mem::take`: that would hand the rule the buffer's spare room.
        rule.matches = matches.drain(..).collect();
        self.ctx.matches = matches;
        rule
    }

    /// Collects this module's options: exact long names or unambiguous prefixes,
    /// each optionally preceded by `!`.
    fn collect(&mut self, spec: &'static [OptSpec]) -> Vec<Opt<'t, 'a>> {
        let mut out = Vec::new();
        loop {
            let start = self.pos;
            let mut negated = false;
            if self.peek().is_some_and(|t| t.is("!")) {
                negated = true;
                self.pos += 1;
            }
            let Some(tok) = self.peek() else {
                self.pos = start;
                break;
            };
            let resolved = tok
                .text
                .strip_prefix("--")
                .filter(|_| !tok.quoted)
                .and_then(|name| spec::resolve(spec, name));
            let Some(found) = resolved else {
                self.pos = start;
                break;
            };
            self.pos += 1;
            let mut arg = None;
            if found.value {
                if self.peek().is_some_and(|t| t.is("!")) {
                    negated = !negated;
                    self.pos += 1;
                }
                match self.peek() {
                    Some(v) if !v.is_option() || v.text.parse::<i64>().is_ok() => {
                        arg = Some(v);
                        self.pos += 1;
                    }
                    other => {
                        let span = other.map(|t| t.span).unwrap_or_else(|| self.end_span());
                        self.error(
                            ErrorKind::Invalid,
                            span,
                            format!("option `--{}` needs a value", found.name),
                        );
                        continue;
                    }
                }
            }
            if negated && found.negate == Negate::No {
                self.error(
                    ErrorKind::Invalid,
                    tok.span,
                    format!("`--{}` cannot be negated", found.name),
                );
            }
            out.push(Opt {
                name: found.name,
                negated: negated && found.negate == Negate::Yes,
                span: tok.span,
                arg,
            });
        }
        out
    }

    /// Skips the arguments of an unknown module or target, keeping their text.
    fn skip_unknown(&mut self) -> Vec<String> {
        let mut args = Vec::new();
        while let Some(t) = self.peek() {
            let next_is_basic = if t.is("!") {
                self.toks
                    .get(self.pos + 1)
                    .is_some_and(|n| basic_option(&n.text).is_some())
            } else {
                !t.quoted && basic_option(&t.text).is_some()
            };
            if next_is_basic {
                break;
            }
            args.push(t.text.to_string());
            self.pos += 1;
        }
        args
    }

    /// `-m NAME` and its options.
    fn module(&mut self, name: &Token) -> Option<Match> {
        if let Some(module) = spec::find(MATCHES, &name.text) {
            return self.extension(module, name);
        }
        let module = name.text.to_string();
        let args = self.skip_unknown();
        self.ctx.unknown(
            ErrorKind::UnknownMatch,
            name.span,
            format!(
                "match module `{module}` is not modelled (known: {})",
                spec::names(MATCHES)
            ),
        );
        Some(Match::Unknown {
            module: module.into(),
            args: args.into(),
        })
    }

    /// `-j NAME` and its options.
    fn target(&mut self, name: &Token) -> Option<Target> {
        if let Some(target) = spec::find(TARGETS, &name.text) {
            return self.extension(target, name);
        }
        let followed_by_option = self
            .peek()
            .is_some_and(|t| t.is_option() && basic_option(&t.text).is_none());
        if !UNMODELLED.contains(&name.text.as_ref()) && !followed_by_option {
            return Some(Target::Jump(self.ctx.names.chain(&name.text)));
        }
        let target = name.text.to_string();
        let args = self.skip_unknown();
        self.ctx.unknown(
            ErrorKind::UnknownTarget,
            name.span,
            format!(
                "target `{target}` is not modelled (known: {}, or a chain)",
                spec::names(TARGETS)
            ),
        );
        Some(Target::Unknown {
            name: target.into(),
            args: args.into(),
        })
    }

    /// Collects the options of a known module or target and builds it.
    fn extension<T>(&mut self, ext: &'static Extension<T>, name: &Token) -> Option<T> {
        let opts = self.collect(ext.options);
        match (ext.build)(name, &opts) {
            Ok(value) => Some(value),
            Err((span, message)) => {
                self.error(ErrorKind::Invalid, span, message);
                None
            }
        }
    }
}

fn interface(s: &str) -> Result<Interface, String> {
    Interface::new(s).ok_or_else(|| {
        format!("`{s}` is not an interface name (1-15 characters, `+` as a trailing wildcard)")
    })
}

enum SetError {
    Twice,
    Bad(String),
}

/// [`set_once`] for a boxed slot.
fn set_boxed_once<T>(
    slot: &mut Option<Box<Neg<T>>>,
    negated: bool,
    value: Result<T, String>,
) -> Result<(), SetError> {
    if slot.is_some() {
        return Err(SetError::Twice);
    }
    let mut one = None;
    set_once(&mut one, negated, value)?;
    *slot = one.map(Box::new);
    Ok(())
}

fn set_once<T>(
    slot: &mut Option<Neg<T>>,
    negated: bool,
    value: Result<T, String>,
) -> Result<(), SetError> {
    if slot.is_some() {
        return Err(SetError::Twice);
    }
    *slot = Some(Neg {
        negated,
        value: value.map_err(SetError::Bad)?,
    });
    Ok(())
}
