//! Parsing one rule specification: basic matches, `-m` modules and the target.
//!
//! Every module and target declares its options in a small table; options
//! match exactly or by an unambiguous prefix, as iptables' getopt_long does
//! (so the tutorials' `REDIRECT --to-port` means `--to-ports`).

use std::net::Ipv4Addr;

use super::value;
use super::{Ctx, ErrorKind};
use crate::lex::Token;
use crate::model::*;
use crate::probability::Probability;
use crate::source::Span;

/// An option a module or target takes: its long name and how many values follow.
type OptSpec = (&'static str, usize);

/// One collected option.
struct Opt<'t, 'a> {
    name: &'static str,
    negated: bool,
    span: Span,
    values: Vec<&'t Token<'a>>,
}

impl<'t, 'a> Opt<'t, 'a> {
    fn value(&self) -> &'t Token<'a> {
        self.values[0]
    }
}

const PORTS_OPTS: &[OptSpec] = &[
    ("sport", 1),
    ("source-port", 1),
    ("dport", 1),
    ("destination-port", 1),
];

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

/// Target extensions that exist but are not modelled: a precise error in
/// strict mode, an opaque non-terminating target in lax mode.
const UNMODELLED_TARGETS: &[&str] = &[
    "AUDIT",
    "CHECKSUM",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNMARK",
    "CONNSECMARK",
    "CT",
    "DSCP",
    "ECN",
    "HL",
    "HMARK",
    "IDLETIMER",
    "LED",
    "NETMAP",
    "NFLOG",
    "NFQUEUE",
    "NOTRACK",
    "RATEEST",
    "SECMARK",
    "SET",
    "SYNPROXY",
    "TCPMSS",
    "TCPOPTSTRIP",
    "TEE",
    "TOS",
    "TPROXY",
    "TRACE",
    "TTL",
    "ULOG",
];

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
            matches: Vec::new(),
            target: None,
            counters: None,
            span,
        };
        let mut last_module: Option<String> = None;
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
                if let Some(proto) = implicit {
                    if resolve(PORTS_OPTS, &opt.text).is_some() {
                        self.pos -= if negated { 2 } else { 1 };
                        if let Some(m) = self.ports_module(proto) {
                            rule.matches.push(m);
                        }
                        continue;
                    }
                }
                let context = match &last_module {
                    Some(m) => format!(" (not an option of `-m {m}` or of the rule)"),
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
                                rule.counters = Some(Counters { packets, bytes })
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
                    last_module = Some(name.text.to_string());
                    if let Some(m) = self.module(name) {
                        rule.matches.push(m);
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
                        Some(Target::Goto(ChainName::new(&name.text)))
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
                        Basic::InInterface => set_once(&mut rule.basic.in_interface, negated, interface(&v.text)),
                        _ => set_once(&mut rule.basic.out_interface, negated, interface(&v.text)),
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
        rule
    }

    /// Collects this module's options: exact long names or unambiguous prefixes,
    /// each optionally preceded by `!`.
    fn collect(&mut self, spec: &[OptSpec]) -> Vec<Opt<'t, 'a>> {
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
                .and_then(|name| resolve(spec, name).map(|r| (name, r)));
            let Some((_, (name, arity))) = resolved else {
                self.pos = start;
                break;
            };
            self.pos += 1;
            let mut values = Vec::with_capacity(arity);
            for _ in 0..arity {
                if self.peek().is_some_and(|t| t.is("!")) {
                    negated = !negated;
                    self.pos += 1;
                }
                match self.peek() {
                    Some(v) if !v.is_option() || v.text.parse::<i64>().is_ok() => {
                        values.push(v);
                        self.pos += 1;
                    }
                    other => {
                        let span = other.map(|t| t.span).unwrap_or_else(|| self.end_span());
                        self.error(
                            ErrorKind::Invalid,
                            span,
                            format!("option `--{name}` needs a value"),
                        );
                        break;
                    }
                }
            }
            if values.len() == arity {
                out.push(Opt {
                    name,
                    negated,
                    span: tok.span,
                    values,
                });
            }
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

    fn module(&mut self, name: &Token) -> Option<Match> {
        let m = match name.text.as_ref() {
            "tcp" => return self.ports_module(Protocol::Tcp),
            "udp" => return self.ports_module(Protocol::Udp),
            "sctp" => return self.ports_module(Protocol::Sctp),
            "comment" => {
                let opts = self.collect(&[("comment", 1)]);
                let mut text = None;
                for o in &opts {
                    self.no_negation(o);
                    text = Some(o.value().text.to_string());
                }
                match text {
                    Some(t) if t.len() <= 256 => Match::Comment(t),
                    Some(_) => {
                        return self
                            .fail(name.span, "comments are limited to 256 characters".into())
                    }
                    None => {
                        return self.fail(name.span, "`-m comment` needs `--comment TEXT`".into())
                    }
                }
            }
            "statistic" => return self.statistic(name),
            "multiport" => {
                let opts = self.collect(&[
                    ("sports", 1),
                    ("source-ports", 1),
                    ("dports", 1),
                    ("destination-ports", 1),
                    ("ports", 1),
                ]);
                let (mut sports, mut dports, mut ports) = (None, None, None);
                for o in &opts {
                    let list = match value::port_list(&o.value().text) {
                        Ok(l) => l,
                        Err(e) => return self.fail(o.value().span, e),
                    };
                    let slot = match o.name {
                        "sports" | "source-ports" => &mut sports,
                        "dports" | "destination-ports" => &mut dports,
                        _ => &mut ports,
                    };
                    *slot = Some(Neg {
                        negated: o.negated,
                        value: list,
                    });
                }
                if sports.is_none() && dports.is_none() && ports.is_none() {
                    return self.fail(
                        name.span,
                        "`-m multiport` needs `--dports`, `--sports` or `--ports`".into(),
                    );
                }
                Match::Multiport {
                    sports,
                    dports,
                    ports,
                }
            }
            "addrtype" => {
                let opts = self.collect(&[
                    ("src-type", 1),
                    ("dst-type", 1),
                    ("limit-iface-in", 0),
                    ("limit-iface-out", 0),
                ]);
                let (mut src_type, mut dst_type, mut limit_iface) = (None, None, None);
                for o in &opts {
                    match o.name {
                        "src-type" | "dst-type" => {
                            let mut types = Vec::new();
                            for t in o.value().text.split(',') {
                                match AddrType::from_name(t) {
                                    Some(a) => types.push(a),
                                    None => {
                                        return self.fail(
                                            o.value().span,
                                            format!("unknown address type `{t}` (expected LOCAL, UNICAST, BROADCAST, ...)"),
                                        )
                                    }
                                }
                            }
                            let v = Some(Neg {
                                negated: o.negated,
                                value: types,
                            });
                            if o.name == "src-type" {
                                src_type = v;
                            } else {
                                dst_type = v;
                            }
                        }
                        other => limit_iface = Some(other.to_string()),
                    }
                }
                if src_type.is_none() && dst_type.is_none() {
                    return self.fail(
                        name.span,
                        "`-m addrtype` needs `--src-type` or `--dst-type`".into(),
                    );
                }
                Match::AddrType {
                    src_type,
                    dst_type,
                    limit_iface,
                }
            }
            "conntrack" | "state" => {
                let (module, opt) = if name.text == "state" {
                    (CtModule::State, "state")
                } else {
                    (CtModule::Conntrack, "ctstate")
                };
                let opts = self.collect(&[(opt, 1)]);
                let Some(o) = opts.last() else {
                    return self.fail(
                        name.span,
                        format!(
                            "`-m {}` needs `--{opt}` (other conntrack options are not modelled)",
                            name.text
                        ),
                    );
                };
                let mut states = Vec::new();
                for s in o.value().text.split(',') {
                    match CtState::from_name(s) {
                        Some(st) => states.push(st),
                        None => {
                            return self.fail(
                                o.value().span,
                                format!("unknown conntrack state `{s}` (expected NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED, SNAT, DNAT)"),
                            )
                        }
                    }
                }
                Match::Conntrack {
                    module,
                    states: Neg {
                        negated: o.negated,
                        value: states,
                    },
                }
            }
            "mark" => {
                let opts = self.collect(&[("mark", 1)]);
                let Some(o) = opts.last() else {
                    return self.fail(name.span, "`-m mark` needs `--mark VALUE[/MASK]`".into());
                };
                match value::value_mask(&o.value().text) {
                    Ok((value, mask)) => Match::Mark(Neg {
                        negated: o.negated,
                        value: MarkMatch { value, mask },
                    }),
                    Err(e) => return self.fail(o.value().span, e),
                }
            }
            "recent" => return self.recent(name),
            "limit" => {
                let opts = self.collect(&[("limit", 1), ("limit-burst", 1)]);
                let (mut rate, mut burst) = (None, None);
                for o in &opts {
                    self.no_negation(o);
                    if o.name == "limit" {
                        rate = Some(o.value().text.to_string());
                    } else {
                        match o.value().text.parse() {
                            Ok(b) => burst = Some(b),
                            Err(_) => {
                                return self
                                    .fail(o.value().span, "`--limit-burst` takes a number".into())
                            }
                        }
                    }
                }
                Match::Limit { rate, burst }
            }
            other => {
                let module = other.to_string();
                let args = self.skip_unknown();
                self.ctx.unknown(
                    ErrorKind::UnknownMatch,
                    name.span,
                    format!("match module `{module}` is not modelled (known: tcp, udp, sctp, multiport, comment, statistic, addrtype, conntrack, state, mark, recent, limit)"),
                );
                Match::Unknown { module, args }
            }
        };
        Some(m)
    }

    fn fail<T>(&mut self, span: Span, message: String) -> Option<T> {
        self.error(ErrorKind::Invalid, span, message);
        None
    }

    fn no_negation(&mut self, o: &Opt) {
        if o.negated {
            self.error(
                ErrorKind::Invalid,
                o.span,
                format!("`--{}` cannot be negated", o.name),
            );
        }
    }

    fn ports_module(&mut self, protocol: Protocol) -> Option<Match> {
        let opts = self.collect(PORTS_OPTS);
        let (mut sport, mut dport) = (None, None);
        for o in &opts {
            let range = match value::port_range(&o.value().text) {
                Ok(r) => r,
                Err(e) => return self.fail(o.value().span, e),
            };
            let v = Some(Neg {
                negated: o.negated,
                value: range,
            });
            if o.name.starts_with('s') {
                sport = v;
            } else {
                dport = v;
            }
        }
        Some(Match::Ports {
            protocol,
            sport,
            dport,
        })
    }

    fn statistic(&mut self, name: &Token) -> Option<Match> {
        let opts = self.collect(&[("mode", 1), ("probability", 1), ("every", 1), ("packet", 1)]);
        let (mut mode, mut prob, mut every, mut packet, mut negated) =
            (None, None, None, 0u32, false);
        for o in &opts {
            negated |= o.negated;
            let v = o.value();
            match o.name {
                "mode" => mode = Some((v.text.to_string(), v.span)),
                "probability" => match Probability::parse(&v.text) {
                    Ok(p) => prob = Some(p),
                    Err(e) => return self.fail(v.span, e.to_string()),
                },
                "every" => match v.text.parse::<u32>() {
                    Ok(n) if n > 0 => every = Some(n),
                    _ => return self.fail(v.span, "`--every` takes a positive number".into()),
                },
                _ => match v.text.parse::<u32>() {
                    Ok(n) => packet = n,
                    Err(_) => return self.fail(v.span, "`--packet` takes a number".into()),
                },
            }
        }
        let stat = match (mode.as_ref().map(|(m, s)| (m.as_str(), *s)), prob, every) {
            (Some(("random", _)), Some(p), None) => Statistic::Random(p),
            (Some(("nth", _)), None, Some(every)) => {
                if packet >= every {
                    return self.fail(
                        name.span,
                        format!("`--packet {packet}` must be below `--every {every}`"),
                    );
                }
                Statistic::Nth { every, packet }
            }
            (Some(("random", _)), _, _) => {
                return self.fail(
                    name.span,
                    "`--mode random` needs `--probability P` (and no `--every`)".into(),
                )
            }
            (Some(("nth", _)), _, _) => {
                return self.fail(
                    name.span,
                    "`--mode nth` needs `--every N` (and no `--probability`)".into(),
                )
            }
            (Some((m, span)), _, _) => {
                return self.fail(
                    span,
                    format!("unknown statistic mode `{m}` (expected random or nth)"),
                )
            }
            (None, _, _) => {
                return self.fail(
                    name.span,
                    "`-m statistic` needs `--mode random` or `--mode nth`".into(),
                )
            }
        };
        Some(Match::Statistic(Neg {
            negated,
            value: stat,
        }))
    }

    fn recent(&mut self, name: &Token) -> Option<Match> {
        let opts = self.collect(&[
            ("set", 0),
            ("rcheck", 0),
            ("update", 0),
            ("remove", 0),
            ("seconds", 1),
            ("reap", 0),
            ("hitcount", 1),
            ("rttl", 0),
            ("name", 1),
            ("mask", 1),
            ("rsource", 0),
            ("rdest", 0),
        ]);
        let mut r = Recent {
            negated: false,
            action: RecentAction::Set,
            name: "DEFAULT".into(),
            seconds: None,
            reap: false,
            hitcount: None,
            rttl: false,
            mask: Ipv4Addr::BROADCAST,
            side: RecentSide::Source,
        };
        let mut action = None;
        for o in &opts {
            let number = |o: &Opt| {
                o.value()
                    .text
                    .parse::<u32>()
                    .map_err(|_| format!("`--{}` takes a number", o.name))
            };
            match o.name {
                "set" | "rcheck" | "update" | "remove" => {
                    if action.is_some() {
                        return self.fail(
                            o.span,
                            "`-m recent` takes only one of --set, --rcheck, --update, --remove"
                                .into(),
                        );
                    }
                    r.negated = o.negated;
                    action = Some(match o.name {
                        "set" => RecentAction::Set,
                        "rcheck" => RecentAction::Rcheck,
                        "update" => RecentAction::Update,
                        _ => RecentAction::Remove,
                    });
                }
                "seconds" => match number(o) {
                    Ok(n) => r.seconds = Some(n),
                    Err(e) => return self.fail(o.value().span, e),
                },
                "hitcount" => match number(o) {
                    Ok(n) => r.hitcount = Some(n),
                    Err(e) => return self.fail(o.value().span, e),
                },
                "reap" => r.reap = true,
                "rttl" => r.rttl = true,
                "name" => r.name = o.value().text.to_string(),
                "mask" => match o.value().text.parse() {
                    Ok(m) => r.mask = m,
                    Err(_) => {
                        return self.fail(
                            o.value().span,
                            format!("`{}` is not an IPv4 mask", o.value().text),
                        )
                    }
                },
                "rsource" => r.side = RecentSide::Source,
                _ => r.side = RecentSide::Dest,
            }
        }
        match action {
            Some(a) => r.action = a,
            None => {
                return self.fail(
                    name.span,
                    "`-m recent` needs one of --set, --rcheck, --update, --remove".into(),
                )
            }
        }
        if r.reap && r.seconds.is_none() {
            return self.fail(name.span, "`--reap` needs `--seconds`".into());
        }
        Some(Match::Recent(r))
    }

    fn target(&mut self, name: &Token) -> Option<Target> {
        let target = match name.text.as_ref() {
            "ACCEPT" => Target::Accept,
            "DROP" => Target::Drop,
            "RETURN" => Target::Return,
            "REJECT" => {
                let opts = self.collect(&[("reject-with", 1)]);
                Target::Reject {
                    with: opts.last().map(|o| o.value().text.to_string()),
                }
            }
            "DNAT" => {
                let opts = self.collect(&[("to-destination", 1), ("random", 0), ("persistent", 0)]);
                let Some(o) = opts.iter().find(|o| o.name == "to-destination") else {
                    return self.fail(
                        name.span,
                        "`-j DNAT` needs `--to-destination ADDR[:PORT]`".into(),
                    );
                };
                match value::nat_range(&o.value().text) {
                    Ok(r) => Target::Dnat(r),
                    Err(e) => return self.fail(o.value().span, e),
                }
            }
            "SNAT" => {
                let opts = self.collect(&[
                    ("to-source", 1),
                    ("random", 0),
                    ("random-fully", 0),
                    ("persistent", 0),
                ]);
                let Some(o) = opts.iter().find(|o| o.name == "to-source") else {
                    return self.fail(
                        name.span,
                        "`-j SNAT` needs `--to-source ADDR[:PORT]`".into(),
                    );
                };
                let to = match value::nat_range(&o.value().text) {
                    Ok(r) => r,
                    Err(e) => return self.fail(o.value().span, e),
                };
                let flags = opts
                    .iter()
                    .filter(|o| o.values.is_empty())
                    .map(|o| o.name.to_string())
                    .collect();
                Target::Snat { to, flags }
            }
            "MASQUERADE" | "REDIRECT" => {
                let opts = self.collect(&[("to-ports", 1), ("random", 0), ("random-fully", 0)]);
                let mut to_ports = None;
                let (mut random, mut random_fully) = (false, false);
                for o in &opts {
                    match o.name {
                        "to-ports" => match value::port_range(&o.value().text) {
                            Ok(r) => to_ports = Some(r),
                            Err(e) => return self.fail(o.value().span, e),
                        },
                        "random" => random = true,
                        _ => random_fully = true,
                    }
                }
                if name.text == "REDIRECT" {
                    Target::Redirect { to_ports }
                } else {
                    Target::Masquerade {
                        to_ports,
                        random_fully,
                        random,
                    }
                }
            }
            "MARK" => {
                let opts = self.collect(&[
                    ("set-xmark", 1),
                    ("set-mark", 1),
                    ("and-mark", 1),
                    ("or-mark", 1),
                    ("xor-mark", 1),
                ]);
                let Some(o) = opts.last() else {
                    return self.fail(name.span, "`-j MARK` needs --set-xmark, --set-mark, --and-mark, --or-mark or --xor-mark".into());
                };
                // libxt_MARK's translation of each spelling to (value, mask).
                let op = match o.name {
                    "set-xmark" | "set-mark" => match value::value_mask(&o.value().text) {
                        Ok((v, m)) if o.name == "set-mark" => MarkOp {
                            value: v,
                            mask: v | m,
                        },
                        Ok((value, mask)) => MarkOp { value, mask },
                        Err(e) => return self.fail(o.value().span, e),
                    },
                    _ => match value::u32_value(&o.value().text) {
                        Ok(v) => match o.name {
                            "and-mark" => MarkOp { value: 0, mask: !v },
                            "or-mark" => MarkOp { value: v, mask: v },
                            _ => MarkOp { value: v, mask: 0 },
                        },
                        Err(e) => return self.fail(o.value().span, e),
                    },
                };
                Target::Mark(op)
            }
            "LOG" => {
                let opts = self.collect(&[
                    ("log-prefix", 1),
                    ("log-level", 1),
                    ("log-tcp-sequence", 0),
                    ("log-tcp-options", 0),
                    ("log-ip-options", 0),
                    ("log-uid", 0),
                    ("log-macdecode", 0),
                ]);
                let (mut prefix, mut level) = (None, None);
                for o in &opts {
                    match o.name {
                        "log-prefix" => prefix = Some(o.value().text.to_string()),
                        "log-level" => level = Some(o.value().text.to_string()),
                        _ => {}
                    }
                }
                Target::Log { prefix, level }
            }
            other => {
                let followed_by_option = self
                    .peek()
                    .is_some_and(|t| t.is_option() && basic_option(&t.text).is_none());
                if UNMODELLED_TARGETS.contains(&other) || followed_by_option {
                    let name_s = other.to_string();
                    let args = self.skip_unknown();
                    self.ctx.unknown(
                        ErrorKind::UnknownTarget,
                        name.span,
                        format!("target `{name_s}` is not modelled (known: ACCEPT, DROP, REJECT, RETURN, DNAT, SNAT, MASQUERADE, REDIRECT, MARK, LOG, or a chain)"),
                    );
                    Target::Unknown { name: name_s, args }
                } else {
                    Target::Jump(ChainName::new(other))
                }
            }
        };
        Some(target)
    }
}

fn resolve(spec: &[OptSpec], name: &str) -> Option<OptSpec> {
    let name = name.strip_prefix("--").unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    if let Some(exact) = spec.iter().find(|(n, _)| *n == name) {
        return Some(*exact);
    }
    let mut candidates = spec.iter().filter(|(n, _)| n.starts_with(name));
    match (candidates.next(), candidates.next()) {
        (Some(only), None) => Some(*only),
        _ => None,
    }
}

fn interface(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 || s.contains(['/', ' ']) {
        return Err(format!(
            "`{s}` is not an interface name (1-15 characters, `+` as a trailing wildcard)"
        ));
    }
    Ok(s.to_string())
}

enum SetError {
    Twice,
    Bad(String),
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
