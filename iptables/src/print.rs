//! Printing a [`RuleSet`] in iptables-save's spelling.
//!
//! For anything iptables-save itself wrote, `print(parse(text))` gives the
//! same text back (banner lines aside); for other spellings it gives the
//! canonical one (`--or-mark 0x4000` becomes `--set-xmark 0x4000/0x4000`,
//! implicit `-p tcp --dport` gains its `-m tcp`).

use std::fmt::Write;

use super::model::*;

/// The whole rule set as iptables-save text.
pub fn print(rules: &RuleSet) -> String {
    let family = rules.family().unwrap_or(Family::Ipv4);
    let mut out = String::new();
    for table in &rules.tables {
        print_table(&mut out, table, family);
    }
    out
}

fn print_table(out: &mut String, table: &Table, family: Family) {
    let _ = writeln!(out, "*{}", table.name);
    for chain in &table.chains {
        let policy = match chain.policy {
            Some(Policy::Accept) => "ACCEPT",
            Some(Policy::Drop) => "DROP",
            None => "-",
        };
        let c = chain.counters.unwrap_or_default();
        let _ = writeln!(
            out,
            ":{} {} [{}:{}]",
            chain.name, policy, c.packets, c.bytes
        );
    }
    for chain in &table.chains {
        for rule in &chain.rules {
            out.push_str(&rule_line(&chain.name, rule, family));
            out.push('\n');
        }
    }
    if table.committed {
        out.push_str("COMMIT\n");
    }
}

/// One rule of a `family` rule set as an `-A CHAIN ...` line (without
/// newline). The family spells out defaults iptables-save prints (the
/// `-m recent` mask).
pub fn rule_line(chain: &ChainName, rule: &Rule, family: Family) -> String {
    let mut s = format!("-A {chain}");
    push_rule_spec(&mut s, rule, family);
    s
}

/// The rule's matches and target, as they follow `-A CHAIN`.
pub fn rule_spec(rule: &Rule, family: Family) -> String {
    let mut s = String::new();
    push_rule_spec(&mut s, rule, family);
    s.trim_start().to_string()
}

fn push_rule_spec(s: &mut String, rule: &Rule, family: Family) {
    let b = &rule.basic;
    if let Some(n) = &b.source {
        neg(s, n.negated);
        let _ = write!(s, " -s {}", n.value);
    }
    if let Some(n) = &b.destination {
        neg(s, n.negated);
        let _ = write!(s, " -d {}", n.value);
    }
    if let Some(n) = &b.in_interface {
        neg(s, n.negated);
        let _ = write!(s, " -i {}", n.value);
    }
    if let Some(n) = &b.out_interface {
        neg(s, n.negated);
        let _ = write!(s, " -o {}", n.value);
    }
    if let Some(n) = &b.protocol {
        neg(s, n.negated);
        let _ = write!(s, " -p {}", n.value);
    }
    if let Some(n) = &b.fragment {
        neg(s, n.negated);
        s.push_str(" -f");
    }
    for m in &rule.matches {
        push_match(s, m, family);
    }
    if let Some(t) = &rule.target {
        push_target(s, t);
    }
}

fn neg(s: &mut String, negated: bool) {
    if negated {
        s.push_str(" !");
    }
}

fn push_match(s: &mut String, m: &Match, family: Family) {
    match m {
        Match::Ports {
            protocol,
            sport,
            dport,
        } => {
            let _ = write!(s, " -m {protocol}");
            if let Some(p) = sport {
                neg(s, p.negated);
                let _ = write!(s, " --sport {}", range(p.value, ':'));
            }
            if let Some(p) = dport {
                neg(s, p.negated);
                let _ = write!(s, " --dport {}", range(p.value, ':'));
            }
        }
        Match::Multiport {
            sports,
            dports,
            ports,
        } => {
            s.push_str(" -m multiport");
            for (name, list) in [("sports", sports), ("dports", dports), ("ports", ports)] {
                if let Some(l) = list {
                    neg(s, l.negated);
                    let items: Vec<String> = l.value.iter().map(|r| range(*r, ':')).collect();
                    let _ = write!(s, " --{name} {}", items.join(","));
                }
            }
        }
        Match::Comment(c) => {
            s.push_str(" -m comment --comment ");
            quote(s, c);
        }
        Match::Statistic(st) => {
            s.push_str(" -m statistic");
            match &st.value {
                Statistic::Random(p) => {
                    s.push_str(" --mode random");
                    neg(s, st.negated);
                    let _ = write!(s, " --probability {}", p.text());
                }
                Statistic::Nth { every, packet } => {
                    s.push_str(" --mode nth");
                    neg(s, st.negated);
                    let _ = write!(s, " --every {every} --packet {packet}");
                }
            }
        }
        Match::AddrType {
            src_type,
            dst_type,
            limit_iface,
        } => {
            s.push_str(" -m addrtype");
            for (name, t) in [("src-type", src_type), ("dst-type", dst_type)] {
                if let Some(t) = t {
                    neg(s, t.negated);
                    let names: Vec<&str> = t.value.iter().map(|a| a.as_str()).collect();
                    let _ = write!(s, " --{name} {}", names.join(","));
                }
            }
            if let Some(l) = limit_iface {
                let _ = write!(s, " --{l}");
            }
        }
        Match::Conntrack { module, states } => {
            let (m, opt) = match module {
                CtModule::Conntrack => ("conntrack", "ctstate"),
                CtModule::State => ("state", "state"),
            };
            let _ = write!(s, " -m {m}");
            neg(s, states.negated);
            let names: Vec<&str> = states.value.iter().map(|c| c.as_str()).collect();
            let _ = write!(s, " --{opt} {}", names.join(","));
        }
        Match::Mark(mk) => {
            s.push_str(" -m mark");
            neg(s, mk.negated);
            let _ = write!(s, " --mark {}", value_mask(mk.value.value, mk.value.mask));
        }
        Match::Recent(r) => {
            s.push_str(" -m recent");
            neg(s, r.negated);
            s.push_str(match r.action {
                RecentAction::Set => " --set",
                RecentAction::Rcheck => " --rcheck",
                RecentAction::Update => " --update",
                RecentAction::Remove => " --remove",
            });
            if let Some(sec) = r.seconds {
                let _ = write!(s, " --seconds {sec}");
            }
            if r.reap {
                s.push_str(" --reap");
            }
            if let Some(h) = r.hitcount {
                let _ = write!(s, " --hitcount {h}");
            }
            if r.rttl {
                s.push_str(" --rttl");
            }
            s.push_str(" --name ");
            word(s, &r.name);
            let _ = write!(s, " --mask {}", r.mask.unwrap_or(family.full_mask()));
            s.push_str(match r.side {
                RecentSide::Source => " --rsource",
                RecentSide::Dest => " --rdest",
            });
        }
        Match::Limit { rate, burst } => {
            s.push_str(" -m limit");
            if let Some(r) = rate {
                let _ = write!(s, " --limit {r}");
            }
            if let Some(b) = burst {
                let _ = write!(s, " --limit-burst {b}");
            }
        }
        Match::Nfacct { name } => {
            s.push_str(" -m nfacct --nfacct-name ");
            word(s, name);
        }
        Match::Unknown { module, args } => {
            s.push_str(" -m ");
            word(s, module);
            for a in args {
                s.push(' ');
                word(s, a);
            }
        }
    }
}

fn push_target(s: &mut String, t: &Target) {
    match t {
        Target::Accept => s.push_str(" -j ACCEPT"),
        Target::Drop => s.push_str(" -j DROP"),
        Target::Return => s.push_str(" -j RETURN"),
        Target::Reject { with } => {
            s.push_str(" -j REJECT");
            if let Some(w) = with {
                let _ = write!(s, " --reject-with {w}");
            }
        }
        Target::Jump(c) => {
            let _ = write!(s, " -j {c}");
        }
        Target::Goto(c) => {
            let _ = write!(s, " -g {c}");
        }
        Target::Dnat(r) => {
            let _ = write!(s, " -j DNAT --to-destination {}", nat_range(r));
        }
        Target::Snat { to, flags } => {
            let _ = write!(s, " -j SNAT --to-source {}", nat_range(to));
            for f in flags {
                let _ = write!(s, " --{f}");
            }
        }
        Target::Masquerade {
            to_ports,
            random_fully,
            random,
        } => {
            s.push_str(" -j MASQUERADE");
            if let Some(p) = to_ports {
                let _ = write!(s, " --to-ports {}", range(*p, '-'));
            }
            if *random {
                s.push_str(" --random");
            }
            if *random_fully {
                s.push_str(" --random-fully");
            }
        }
        Target::Redirect { to_ports } => {
            s.push_str(" -j REDIRECT");
            if let Some(p) = to_ports {
                let _ = write!(s, " --to-ports {}", range(*p, '-'));
            }
        }
        Target::Mark(op) => {
            let _ = write!(s, " -j MARK --set-xmark {:#x}/{:#x}", op.value, op.mask);
        }
        Target::Log { prefix, level } => {
            s.push_str(" -j LOG");
            if let Some(p) = prefix {
                s.push_str(" --log-prefix ");
                quote(s, p);
            }
            if let Some(l) = level {
                let _ = write!(s, " --log-level {l}");
            }
        }
        Target::Unknown { name, args } => {
            s.push_str(" -j ");
            word(s, name);
            for a in args {
                s.push(' ');
                word(s, a);
            }
        }
    }
}

fn range(r: PortRange, sep: char) -> String {
    if r.first == r.last {
        r.first.to_string()
    } else {
        format!("{}{sep}{}", r.first, r.last)
    }
}

fn value_mask(value: u32, mask: u32) -> String {
    if mask == u32::MAX {
        format!("{value:#x}")
    } else {
        format!("{value:#x}/{mask:#x}")
    }
}

/// `ADDR[-ADDR][:PORTS]`, IPv6 addresses in brackets when ports follow
/// (as ip6tables-save writes them).
fn nat_range(r: &NatRange) -> String {
    let addr = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) if r.ports.is_some() => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    let mut s = addr(r.first);
    if r.last != r.first {
        let _ = write!(s, "-{}", addr(r.last));
    }
    if let Some(p) = r.ports {
        let _ = write!(s, ":{}", range(p, '-'));
    }
    s
}

/// Always double-quoted, as iptables-save writes comments.
fn quote(s: &mut String, text: &str) {
    s.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            s.push('\\');
        }
        s.push(ch);
    }
    s.push('"');
}

/// Quoted only when it would not survive as a bare word.
fn word(s: &mut String, text: &str) {
    if text.is_empty() || text.contains([' ', '\t', '"', '\'', '\\', '\n']) || text == "!" {
        quote(s, text);
    } else {
        s.push_str(text);
    }
}
