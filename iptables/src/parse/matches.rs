//! Match modules (`-m NAME`), one row each: the options the module takes and
//! how they become a [`Match`]. Adding a module is adding a row (and its
//! variant in the model, printer and tracer).

use std::net::IpAddr;

use super::spec::{flag, value, Extension, Fail, Opt, OptSpec};
use super::value as v;
use crate::lex::Token;
use crate::model::*;
use crate::probability::Probability;

/// Every modelled match module, in the order error messages list them.
pub(super) static MATCHES: &[Extension<Match>] = &[
    Extension {
        name: "tcp",
        options: PORTS,
        build: |_, o| ports(Protocol::Tcp, o),
    },
    Extension {
        name: "udp",
        options: PORTS,
        build: |_, o| ports(Protocol::Udp, o),
    },
    Extension {
        name: "sctp",
        options: PORTS,
        build: |_, o| ports(Protocol::Sctp, o),
    },
    Extension {
        name: "multiport",
        options: &[
            value("sports"),
            value("source-ports"),
            value("dports"),
            value("destination-ports"),
            value("ports"),
        ],
        build: multiport,
    },
    Extension {
        name: "comment",
        options: &[value("comment").plain()],
        build: comment,
    },
    Extension {
        name: "statistic",
        options: &[
            value("mode"),
            value("probability"),
            value("every"),
            value("packet"),
        ],
        build: statistic,
    },
    Extension {
        name: "addrtype",
        options: &[
            value("src-type"),
            value("dst-type"),
            flag("limit-iface-in").ignore_bang(),
            flag("limit-iface-out").ignore_bang(),
        ],
        build: addrtype,
    },
    Extension {
        name: "conntrack",
        options: &[value("ctstate")],
        build: |name, o| conntrack(CtModule::Conntrack, "ctstate", name, o),
    },
    Extension {
        name: "state",
        options: &[value("state")],
        build: |name, o| conntrack(CtModule::State, "state", name, o),
    },
    Extension {
        name: "mark",
        options: &[value("mark")],
        build: mark,
    },
    Extension {
        name: "recent",
        options: &[
            flag("set"),
            flag("rcheck"),
            flag("update"),
            flag("remove"),
            value("seconds").ignore_bang(),
            flag("reap").ignore_bang(),
            value("hitcount").ignore_bang(),
            flag("rttl").ignore_bang(),
            value("name").ignore_bang(),
            value("mask").ignore_bang(),
            flag("rsource").ignore_bang(),
            flag("rdest").ignore_bang(),
        ],
        build: recent,
    },
    Extension {
        name: "limit",
        options: &[value("limit").plain(), value("limit-burst").plain()],
        build: limit,
    },
    Extension {
        name: "nfacct",
        options: &[value("nfacct-name").plain()],
        build: nfacct,
    },
];

/// The options of `-m tcp`/`udp`/`sctp`, which `-p tcp` also loads implicitly.
pub(super) const PORTS: &[OptSpec] = &[
    value("sport"),
    value("source-port"),
    value("dport"),
    value("destination-port"),
];

/// The module `-p PROTO` loads implicitly, if any.
pub(super) fn implicit(protocol: Protocol) -> Option<&'static Extension<Match>> {
    let name = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
        _ => return None,
    };
    super::spec::find(MATCHES, name)
}

fn ports(protocol: Protocol, opts: &[Opt]) -> Result<Match, Fail> {
    let (mut sport, mut dport) = (None, None);
    for o in opts {
        let range = v::port_range(&o.value().text).map_err(|e| (o.value().span, e))?;
        let slot = Some(Neg {
            negated: o.negated,
            value: range,
        });
        if o.name.starts_with('s') {
            sport = slot;
        } else {
            dport = slot;
        }
    }
    Ok(Match::Ports {
        protocol,
        sport,
        dport,
    })
}

fn multiport(name: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    let (mut sports, mut dports, mut ports) = (None, None, None);
    for o in opts {
        let list = v::port_list(&o.value().text).map_err(|e| (o.value().span, e))?;
        let slot = match o.name {
            "sports" | "source-ports" => &mut sports,
            "dports" | "destination-ports" => &mut dports,
            _ => &mut ports,
        };
        *slot = Some(Box::new(Neg {
            negated: o.negated,
            value: list,
        }));
    }
    if sports.is_none() && dports.is_none() && ports.is_none() {
        return Err((
            name.span,
            "`-m multiport` needs `--dports`, `--sports` or `--ports`".into(),
        ));
    }
    Ok(Match::Multiport {
        sports,
        dports,
        ports,
    })
}

fn comment(name: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    match opts.last().map(|o| o.value().text.as_ref()) {
        Some(t) if t.len() <= 256 => Ok(Match::Comment(t.into())),
        Some(_) => Err((name.span, "comments are limited to 256 characters".into())),
        None => Err((name.span, "`-m comment` needs `--comment TEXT`".into())),
    }
}

fn statistic(name: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    let (mut mode, mut prob, mut every, mut packet, mut negated) = (None, None, None, 0u32, false);
    for o in opts {
        negated |= o.negated;
        let val = o.value();
        match o.name {
            "mode" => mode = Some((val.text.to_string(), val.span)),
            "probability" => {
                prob = Some(Probability::parse(&val.text).map_err(|e| (val.span, e.to_string()))?)
            }
            "every" => match val.text.parse::<u32>() {
                Ok(n) if n > 0 => every = Some(n),
                _ => return Err((val.span, "`--every` takes a positive number".into())),
            },
            _ => {
                packet = val
                    .text
                    .parse::<u32>()
                    .map_err(|_| (val.span, "`--packet` takes a number".to_string()))?
            }
        }
    }
    let stat = match (mode.as_ref().map(|(m, s)| (m.as_str(), *s)), prob, every) {
        (Some(("random", _)), Some(p), None) => Statistic::Random(p),
        (Some(("nth", _)), None, Some(every)) => {
            if packet >= every {
                return Err((
                    name.span,
                    format!("`--packet {packet}` must be below `--every {every}`"),
                ));
            }
            Statistic::Nth { every, packet }
        }
        (Some(("random", _)), _, _) => {
            return Err((
                name.span,
                "`--mode random` needs `--probability P` (and no `--every`)".into(),
            ))
        }
        (Some(("nth", _)), _, _) => {
            return Err((
                name.span,
                "`--mode nth` needs `--every N` (and no `--probability`)".into(),
            ))
        }
        (Some((m, span)), _, _) => {
            return Err((
                span,
                format!("unknown statistic mode `{m}` (expected random or nth)"),
            ))
        }
        (None, _, _) => {
            return Err((
                name.span,
                "`-m statistic` needs `--mode random` or `--mode nth`".into(),
            ))
        }
    };
    Ok(Match::Statistic(Neg {
        negated,
        value: stat,
    }))
}

fn addrtype(name: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    let (mut src_type, mut dst_type, mut limit_iface) = (None, None, None);
    for o in opts {
        if o.arg.is_none() {
            limit_iface = Some(o.name);
            continue;
        }
        let mut types = Vec::new();
        for t in o.value().text.split(',') {
            let a = AddrType::from_name(t).ok_or_else(|| {
                (
                    o.value().span,
                    format!("unknown address type `{t}` (expected LOCAL, UNICAST, BROADCAST, ...)"),
                )
            })?;
            types.push(a);
        }
        let slot = Some(Box::new(Neg {
            negated: o.negated,
            value: types,
        }));
        if o.name == "src-type" {
            src_type = slot;
        } else {
            dst_type = slot;
        }
    }
    if src_type.is_none() && dst_type.is_none() {
        return Err((
            name.span,
            "`-m addrtype` needs `--src-type` or `--dst-type`".into(),
        ));
    }
    Ok(Match::AddrType {
        src_type,
        dst_type,
        limit_iface,
    })
}

fn conntrack(module: CtModule, opt: &str, name: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    let Some(o) = opts.last() else {
        return Err((
            name.span,
            format!(
                "`-m {}` needs `--{opt}` (other conntrack options are not modelled)",
                name.text
            ),
        ));
    };
    let mut states = Vec::new();
    for s in o.value().text.split(',') {
        let st = CtState::from_name(s).ok_or_else(|| {
            (
                o.value().span,
                format!("unknown conntrack state `{s}` (expected NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED, SNAT, DNAT)"),
            )
        })?;
        states.push(st);
    }
    Ok(Match::Conntrack {
        module,
        states: Neg {
            negated: o.negated,
            value: states,
        },
    })
}

fn mark(name: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    let Some(o) = opts.last() else {
        return Err((name.span, "`-m mark` needs `--mark VALUE[/MASK]`".into()));
    };
    let (value, mask) = v::value_mask(&o.value().text).map_err(|e| (o.value().span, e))?;
    Ok(Match::Mark(Neg {
        negated: o.negated,
        value: MarkMatch { value, mask },
    }))
}

fn recent(name: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    let mut r = Recent {
        negated: false,
        action: RecentAction::Set,
        name: "DEFAULT".into(),
        seconds: None,
        reap: false,
        hitcount: None,
        rttl: false,
        mask: None,
        side: RecentSide::Source,
    };
    let mut action = None;
    for o in opts {
        let number = |o: &Opt| {
            o.value()
                .text
                .parse::<u32>()
                .map_err(|_| (o.value().span, format!("`--{}` takes a number", o.name)))
        };
        match o.name {
            "set" | "rcheck" | "update" | "remove" => {
                if action.is_some() {
                    return Err((
                        o.span,
                        "`-m recent` takes only one of --set, --rcheck, --update, --remove".into(),
                    ));
                }
                r.negated = o.negated;
                action = Some(match o.name {
                    "set" => RecentAction::Set,
                    "rcheck" => RecentAction::Rcheck,
                    "update" => RecentAction::Update,
                    _ => RecentAction::Remove,
                });
            }
            "seconds" => r.seconds = Some(number(o)?),
            "hitcount" => r.hitcount = Some(number(o)?),
            "reap" => r.reap = true,
            "rttl" => r.rttl = true,
            "name" => r.name = o.value().text.to_string(),
            "mask" => {
                let mask: IpAddr = o.value().text.parse().map_err(|_| {
                    (
                        o.value().span,
                        format!("`{}` is not an address mask", o.value().text),
                    )
                })?;
                // The whole address is the default; iptables-save spells it
                // out for the rule set's family.
                r.mask = (mask != Family::of(mask).full_mask()).then_some(mask);
            }
            "rsource" => r.side = RecentSide::Source,
            _ => r.side = RecentSide::Dest,
        }
    }
    let Some(a) = action else {
        return Err((
            name.span,
            "`-m recent` needs one of --set, --rcheck, --update, --remove".into(),
        ));
    };
    r.action = a;
    if r.reap && r.seconds.is_none() {
        return Err((name.span, "`--reap` needs `--seconds`".into()));
    }
    Ok(Match::Recent(Box::new(r)))
}

fn limit(_: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    let (mut rate, mut burst) = (None, None);
    for o in opts {
        if o.name == "limit" {
            rate = Some(o.value().text.to_string());
        } else {
            let b = o
                .value()
                .text
                .parse()
                .map_err(|_| (o.value().span, "`--limit-burst` takes a number".to_string()))?;
            burst = Some(b);
        }
    }
    Ok(Match::Limit { rate, burst })
}

/// The longest name xt_nfacct takes (`NFACCT_NAME_MAX` is 32 with the NUL).
const NFACCT_NAME_MAX: usize = 31;

fn nfacct(name: &Token, opts: &[Opt]) -> Result<Match, Fail> {
    let Some(o) = opts.last() else {
        return Err((name.span, "`-m nfacct` needs `--nfacct-name NAME`".into()));
    };
    let text = &o.value().text;
    if text.is_empty() || text.len() > NFACCT_NAME_MAX {
        return Err((
            o.value().span,
            format!("`--nfacct-name` takes a name of 1 to {NFACCT_NAME_MAX} bytes"),
        ));
    }
    Ok(Match::Nfacct {
        name: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use crate::model::{Match, Rule, RuleSet};
    use crate::{parse, parse_str, print, Mode};

    /// kube-proxy v1.29+'s two nfacct rules, as iptables-save prints them.
    const NFACCT: &str = "*filter\n\
        :INPUT ACCEPT [0:0]\n\
        :FORWARD ACCEPT [0:0]\n\
        :KUBE-FORWARD - [0:0]\n\
        :KUBE-NODEPORTS - [0:0]\n\
        -A FORWARD -j KUBE-FORWARD\n\
        -A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP\n\
        -A KUBE-NODEPORTS -d 127.0.0.0/8 -p tcp -m comment --comment \"shop/web:http\" -m tcp --dport 30080 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j ACCEPT\n\
        COMMIT\n";

    fn rule<'r>(rules: &'r RuleSet, chain: &str) -> &'r Rule {
        &rules.tables[0].chain_by_name(chain).unwrap().rules[0]
    }

    #[test]
    fn nfacct_parses_strictly_and_prints_back() {
        let rules = parse_str(NFACCT).unwrap_or_else(|e| panic!("{e:?}"));
        let invalid = rule(&rules, "KUBE-FORWARD");
        let nfacct = |name: &str| Match::Nfacct {
            name: name.to_string(),
        };
        assert_eq!(invalid.matches[1], nfacct("ct_state_invalid_dropped_pkts"));
        assert_eq!(
            rule(&rules, "KUBE-NODEPORTS").matches[2],
            nfacct("localhost_nps_accepted_pkts")
        );
        assert_eq!(print(&rules), NFACCT);
        assert_eq!(parse_str(&print(&rules)).unwrap(), rules);
        // Lax mode reads it the same way, without a warning.
        let lax = parse(NFACCT, Mode::Lax).unwrap();
        assert_eq!(lax.rules, rules);
        assert!(lax.warnings.is_empty(), "{:?}", lax.warnings);
    }

    #[test]
    fn nfacct_needs_a_name_and_cannot_be_negated() {
        let one = |spec: &str| {
            parse_str(&format!(
                "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT {spec}\nCOMMIT\n"
            ))
        };
        for bad in [
            "-m nfacct -j DROP",
            "-m nfacct ! --nfacct-name x -j DROP",
            "-m nfacct --nfacct-name -j DROP",
            "-m nfacct --nfacct-name a_name_longer_than_thirty_one_bytes -j DROP",
            "-m nfacct --frob x -j DROP",
        ] {
            assert!(one(bad).is_err(), "{bad}");
        }
        assert!(one("-m nfacct --nfacct-name abcdefghijklmnopqrstuvwxyz01234 -j DROP").is_ok());
    }
}
