//! Targets (`-j NAME`), one row each: the options the target takes and how
//! they become a [`Target`]. A name without a row is a user chain, unless it
//! is one of [`UNMODELLED`] or options follow it.

use super::spec::{flag, value, Extension, Fail, Opt, OptSpec};
use super::value as v;
use crate::lex::Token;
use crate::model::*;

/// `!` before a target option is accepted and dropped, as it always was.
const fn val(name: &'static str) -> OptSpec {
    value(name).ignore_bang()
}

/// A target flag; `!` before it is accepted and dropped.
const fn flg(name: &'static str) -> OptSpec {
    flag(name).ignore_bang()
}

/// Every modelled target, in the order error messages list them.
pub(super) static TARGETS: &[Extension<Target>] = &[
    Extension {
        name: "ACCEPT",
        options: &[],
        build: |_, _| Ok(Target::Accept),
    },
    Extension {
        name: "DROP",
        options: &[],
        build: |_, _| Ok(Target::Drop),
    },
    Extension {
        name: "REJECT",
        options: &[val("reject-with")],
        build: |_, o| {
            Ok(Target::Reject {
                with: o.last().map(|o| o.value().text.to_string()),
            })
        },
    },
    Extension {
        name: "RETURN",
        options: &[],
        build: |_, _| Ok(Target::Return),
    },
    Extension {
        name: "DNAT",
        options: &[val("to-destination"), flg("random"), flg("persistent")],
        build: dnat,
    },
    Extension {
        name: "SNAT",
        options: &[
            val("to-source"),
            flg("random"),
            flg("random-fully"),
            flg("persistent"),
        ],
        build: snat,
    },
    Extension {
        name: "MASQUERADE",
        options: TO_PORTS,
        build: |_, o| {
            let (to_ports, random, random_fully) = to_ports(o)?;
            Ok(Target::Masquerade {
                to_ports,
                random_fully,
                random,
            })
        },
    },
    Extension {
        name: "REDIRECT",
        options: TO_PORTS,
        build: |_, o| {
            Ok(Target::Redirect {
                to_ports: to_ports(o)?.0,
            })
        },
    },
    Extension {
        name: "MARK",
        options: &[
            val("set-xmark"),
            val("set-mark"),
            val("and-mark"),
            val("or-mark"),
            val("xor-mark"),
        ],
        build: mark,
    },
    Extension {
        name: "LOG",
        options: &[
            val("log-prefix"),
            val("log-level"),
            flg("log-tcp-sequence"),
            flg("log-tcp-options"),
            flg("log-ip-options"),
            flg("log-uid"),
            flg("log-macdecode"),
        ],
        build: log,
    },
];

/// Target extensions that exist but are not modelled: a precise error in
/// strict mode, an opaque non-terminating target in lax mode.
pub(super) const UNMODELLED: &[&str] = &[
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

const TO_PORTS: &[OptSpec] = &[val("to-ports"), flg("random"), flg("random-fully")];

fn dnat(name: &Token, opts: &[Opt]) -> Result<Target, Fail> {
    let Some(o) = opts.iter().find(|o| o.name == "to-destination") else {
        return Err((
            name.span,
            "`-j DNAT` needs `--to-destination ADDR[:PORT]`".into(),
        ));
    };
    let range = v::nat_range(&o.value().text).map_err(|e| (o.value().span, e))?;
    Ok(Target::Dnat(range))
}

fn snat(name: &Token, opts: &[Opt]) -> Result<Target, Fail> {
    let Some(o) = opts.iter().find(|o| o.name == "to-source") else {
        return Err((
            name.span,
            "`-j SNAT` needs `--to-source ADDR[:PORT]`".into(),
        ));
    };
    let to = v::nat_range(&o.value().text).map_err(|e| (o.value().span, e))?;
    let flags = opts
        .iter()
        .filter(|o| o.arg.is_none())
        .map(|o| o.name.to_string())
        .collect();
    Ok(Target::Snat {
        to: Box::new(to),
        flags,
    })
}

/// MASQUERADE's and REDIRECT's options: (`--to-ports`, `--random`, `--random-fully`).
fn to_ports(opts: &[Opt]) -> Result<(Option<PortRange>, bool, bool), Fail> {
    let mut out = (None, false, false);
    for o in opts {
        match o.name {
            "to-ports" => {
                out.0 = Some(v::port_range(&o.value().text).map_err(|e| (o.value().span, e))?)
            }
            "random" => out.1 = true,
            _ => out.2 = true,
        }
    }
    Ok(out)
}

fn mark(name: &Token, opts: &[Opt]) -> Result<Target, Fail> {
    let Some(o) = opts.last() else {
        return Err((
            name.span,
            "`-j MARK` needs --set-xmark, --set-mark, --and-mark, --or-mark or --xor-mark".into(),
        ));
    };
    let text = &o.value().text;
    let bad = |e| (o.value().span, e);
    // libxt_MARK's translation of each spelling to (value, mask).
    let op = match o.name {
        "set-xmark" => {
            let (value, mask) = v::value_mask(text).map_err(bad)?;
            MarkOp { value, mask }
        }
        "set-mark" => {
            let (value, mask) = v::value_mask(text).map_err(bad)?;
            MarkOp {
                value,
                mask: value | mask,
            }
        }
        "and-mark" => MarkOp {
            value: 0,
            mask: !v::u32_value(text).map_err(bad)?,
        },
        "or-mark" => {
            let value = v::u32_value(text).map_err(bad)?;
            MarkOp { value, mask: value }
        }
        _ => MarkOp {
            value: v::u32_value(text).map_err(bad)?,
            mask: 0,
        },
    };
    Ok(Target::Mark(op))
}

fn log(_: &Token, opts: &[Opt]) -> Result<Target, Fail> {
    let (mut prefix, mut level) = (None, None);
    for o in opts {
        match o.name {
            "log-prefix" => prefix = Some(o.value().text.as_ref().into()),
            "log-level" => level = Some(o.value().text.as_ref().into()),
            _ => {}
        }
    }
    Ok(Target::Log { prefix, level })
}
