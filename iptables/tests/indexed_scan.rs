//! The tracer's chain index against the plain in-order scan: random rule sets
//! mixing rules the index can key (`-d ADDR/32`, `-m tcp --dport PORT`) with
//! rules it must scan (negations, ranges, `-s`, `-m addrtype`, `-m recent`,
//! statistics before a port match, multiport), traced for random packets, must
//! give identical distributions: verdicts, destinations, masquerading,
//! probabilities, walks and recent lists.

use kpconform_iptables::model::Protocol;
use kpconform_iptables::{parse_str, Distribution, FlowSource, Packet, Scan, TraceError, Tracer};
use proptest::prelude::*;

const V4_ADDRS: [&str; 4] = ["10.96.0.1", "10.96.0.2", "192.168.0.10", "127.0.0.1"];
const V6_ADDRS: [&str; 4] = ["fd00:10:96::1", "fd00:10:96::2", "fd00:192:168::10", "::1"];
const PORTS: [u16; 4] = [80, 81, 443, 30080];
const PROTOS: [&str; 3] = ["tcp", "udp", "sctp"];

/// One generated rule, before it is spelled for a family.
#[derive(Debug, Clone)]
struct RuleSpec {
    /// 0: none; 1: `-d A/host`; 2: `! -d A/host`; 3: `-d A/prefix`.
    dst: (u8, usize),
    /// 0: none; 1: `-s A/host`; 2: `! -s A/host`.
    src: (u8, usize),
    /// `-p` and the matching `-m PROTO` module; None: neither.
    proto: Option<usize>,
    /// Extension matches in order (see `spell_match`).
    matches: Vec<(u8, usize)>,
    /// The target (see `spell_target`).
    target: (u8, usize),
}

fn rule_spec(targets: u8) -> impl Strategy<Value = RuleSpec> {
    (
        (0u8..4, 0usize..4),
        (0u8..3, 0usize..4),
        prop::option::weighted(0.8, 0usize..3),
        prop::collection::vec((0u8..9, 0usize..4), 0..4),
        (0u8..targets, 0usize..4),
    )
        .prop_map(|(dst, src, proto, matches, target)| RuleSpec {
            dst,
            src,
            proto,
            matches,
            target,
        })
}

struct Family {
    addrs: [&'static str; 4],
    host: u8,
    prefix: u8,
    v6: bool,
}

const V4: Family = Family {
    addrs: V4_ADDRS,
    host: 32,
    prefix: 24,
    v6: false,
};
const V6: Family = Family {
    addrs: V6_ADDRS,
    host: 128,
    prefix: 64,
    v6: true,
};

impl Family {
    fn socket(&self, i: usize, port: u16) -> String {
        if self.v6 {
            format!("[{}]:{port}", self.addrs[i % 4])
        } else {
            format!("{}:{port}", self.addrs[i % 4])
        }
    }
}

fn spell_match(out: &mut String, (kind, i): (u8, usize), proto: Option<usize>) {
    let port = PORTS[i % 4];
    match (kind, proto) {
        (0, _) => out.push_str(" -m comment --comment \"svc\""),
        // Keyed: one destination port.
        (1, Some(p)) => out.push_str(&format!(" -m {} --dport {port}", PROTOS[p])),
        (2, Some(p)) => out.push_str(&format!(" -m {} ! --dport {port}", PROTOS[p])),
        (3, Some(p)) => out.push_str(&format!(" -m {} --dport {port}:{}", PROTOS[p], port + 1)),
        (4, _) => out.push_str(if i % 2 == 0 {
            " -m addrtype --dst-type LOCAL"
        } else {
            " -m addrtype ! --dst-type LOCAL"
        }),
        (5, _) => out.push_str(" -m statistic --mode random --probability 0.5"),
        (6, _) => out.push_str(if i % 2 == 0 {
            " -m recent --set --name seen --mask 255.255.255.255 --rsource"
        } else {
            " -m recent --rcheck --name seen --mask 255.255.255.255 --rsource"
        }),
        (7, Some(_)) => out.push_str(&format!(" -m multiport --dports {port},30080")),
        (8, _) => out.push_str(" -m mark --mark 0x4000/0x4000"),
        _ => {}
    }
}

/// Targets in a user chain of nat: jumps to the next chain (so that no loop
/// forms), gotos, RETURN, marks, DNAT, REDIRECT, ACCEPT, none.
fn spell_target(out: &mut String, (kind, i): (u8, usize), next: Option<&str>, f: &Family) {
    match kind {
        0 => {
            if let Some(next) = next {
                out.push_str(&format!(" -j {next}"));
            }
        }
        1 => {
            if let Some(next) = next {
                out.push_str(&format!(" -g {next}"));
            }
        }
        2 => out.push_str(" -j RETURN"),
        3 => out.push_str(" -j MARK --set-xmark 0x4000/0x4000"),
        4 => out.push_str(&format!(
            " -j DNAT --to-destination {}",
            f.socket(i, 8080 + i as u16)
        )),
        5 => out.push_str(" -j ACCEPT"),
        6 => out.push_str(" -j REDIRECT --to-ports 15001"),
        _ => {}
    }
}

fn spell_rule(chain: &str, r: &RuleSpec, next: Option<&str>, f: &Family) -> String {
    let mut out = format!("-A {chain}");
    let addr = |i: usize, len: u8| format!("{}/{len}", f.addrs[i % 4]);
    match r.dst {
        (1, i) => out.push_str(&format!(" -d {}", addr(i, f.host))),
        (2, i) => out.push_str(&format!(" ! -d {}", addr(i, f.host))),
        (3, i) => out.push_str(&format!(" -d {}", addr(i, f.prefix))),
        _ => {}
    }
    match r.src {
        (1, i) => out.push_str(&format!(" -s {}", addr(i, f.host))),
        (2, i) => out.push_str(&format!(" ! -s {}", addr(i, f.host))),
        _ => {}
    }
    if let Some(p) = r.proto {
        out.push_str(&format!(" -p {}", PROTOS[p]));
    }
    for m in &r.matches {
        let mut one = String::new();
        spell_match(&mut one, *m, r.proto);
        // `--mask 255.255.255.255` is IPv4's; IPv6 keeps the default mask.
        if f.v6 {
            one = one.replace(" --mask 255.255.255.255", "");
        }
        out.push_str(&one);
    }
    spell_target(&mut out, r.target, next, f);
    out.push('\n');
    out
}

/// A nat table whose PREROUTING and OUTPUT jump to a dispatch chain, which
/// may jump or go to a second chain, which may jump to a third; a filter
/// table with one user chain of its own.
fn rules_text(chains: &[Vec<RuleSpec>; 3], filter: &[RuleSpec], f: &Family) -> String {
    let names = ["DISPATCH", "SECOND", "THIRD"];
    let mut text = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for n in names {
        text.push_str(&format!(":{n} - [0:0]\n"));
    }
    text.push_str("-A PREROUTING -j DISPATCH\n-A OUTPUT -j DISPATCH\n");
    text.push_str("-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n");
    for (c, rules) in chains.iter().enumerate() {
        for r in rules {
            text.push_str(&spell_rule(names[c], r, names.get(c + 1).copied(), f));
        }
    }
    text.push_str("COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:GUARD - [0:0]\n");
    text.push_str("-A INPUT -j GUARD\n-A FORWARD -j GUARD\n-A OUTPUT -j GUARD\n");
    for r in filter {
        let mut line = spell_rule("GUARD", r, None, f);
        // Filter verdicts instead of NAT.
        line = line
            .replace(" -j REDIRECT --to-ports 15001", " -j DROP")
            .replace(" -j ACCEPT", " -j REJECT");
        if let Some(at) = line.find(" -j DNAT") {
            line.truncate(at);
            line.push_str(" -j DROP\n");
        }
        text.push_str(&line);
    }
    text.push_str("COMMIT\n");
    text
}

/// Everything a distribution says, in a form that compares.
fn facts(d: &Result<Distribution, TraceError>) -> Result<Vec<String>, String> {
    match d {
        Err(e) => Err(e.to_string()),
        Ok(d) => Ok(d
            .outcomes
            .iter()
            .map(|o| {
                format!(
                    "{} {} {} p={} path={} walk={:?} recent={:?}",
                    o.verdict,
                    o.destination,
                    o.masquerade,
                    o.probability,
                    o.path(),
                    o.explain(None),
                    o.recent,
                )
            })
            .collect()),
    }
}

fn packets(f: &Family) -> Vec<Packet> {
    let mut out = Vec::new();
    let protocols = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];
    for to in 0..4 {
        for port in PORTS {
            for protocol in protocols {
                let addr = f.socket(to, port).parse().expect("a socket address");
                for from in [
                    FlowSource::Node,
                    FlowSource::Ip(f.addrs[0].parse().expect("an address")),
                    FlowSource::Ip(if f.v6 {
                        "2001:db8::7".parse().expect("an address")
                    } else {
                        "203.0.113.7".parse().expect("an address")
                    }),
                ] {
                    // A packet from the network cannot carry a loopback
                    // destination the way the node's own can; both are
                    // traced anyway, as the tracer defines both.
                    out.push(Packet::new(from, addr, protocol));
                }
            }
        }
    }
    out
}

fn check(chains: [Vec<RuleSpec>; 3], filter: Vec<RuleSpec>, v6: bool) -> Result<(), TestCaseError> {
    let f = if v6 { V6 } else { V4 };
    let text = rules_text(&chains, &filter, &f);
    let rules = parse_str(&text).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
    let node = if v6 {
        vec!["fd00:192:168::10/64".parse().expect("a net")]
    } else {
        vec!["192.168.0.10/24".parse().expect("a net")]
    };
    let plain = Tracer::new(&rules, &node).with_scan(Scan::Plain);
    // Index every chain, however short, so that small rule sets exercise it.
    let indexed = Tracer::new(&rules, &node).with_scan(Scan::Indexed { min_rules: 0 });
    let default = Tracer::new(&rules, &node);
    for packet in packets(&f) {
        let want = facts(&plain.trace(&packet));
        prop_assert_eq!(
            &facts(&indexed.trace(&packet)),
            &want,
            "{}\nrules:\n{}",
            packet,
            text
        );
        prop_assert_eq!(&facts(&default.trace(&packet)), &want, "{}", packet);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn indexed_and_plain_scans_agree(
        dispatch in prop::collection::vec(rule_spec(8), 0..24),
        second in prop::collection::vec(rule_spec(8), 0..12),
        third in prop::collection::vec(rule_spec(7), 0..8),
        filter in prop::collection::vec(rule_spec(8), 0..10),
        v6 in any::<bool>(),
    ) {
        check([dispatch, second, third], filter, v6)?;
    }
}

/// A kube-proxy-shaped dispatch chain: one keyed rule per service, then the
/// node-port jump, which the index must still reach after every keyed rule.
fn dispatch_chain(services: usize) -> String {
    let mut text = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-SVC-LAST - [0:0]\n",
    );
    text.push_str("-A PREROUTING -j KUBE-SERVICES\n-A OUTPUT -j KUBE-SERVICES\n");
    for i in 0..services {
        text.push_str(&format!(
            "-A KUBE-SERVICES -d 10.96.{}.{}/32 -p tcp -m comment --comment \"svc {i}\" -m tcp --dport 80 -j DNAT --to-destination 10.64.{}.{}:8080\n",
            i / 250,
            i % 250 + 1,
            i / 250,
            i % 250 + 1,
        ));
    }
    text.push_str("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n");
    text.push_str("-A KUBE-NODEPORTS -p tcp -m tcp --dport 30080 -j KUBE-SVC-LAST\n");
    text.push_str("-A KUBE-SVC-LAST -j DNAT --to-destination 10.64.200.1:8080\n");
    text.push_str("COMMIT\n");
    text
}

#[test]
fn an_indexed_dispatch_chain_evaluates_only_the_rules_that_can_match() {
    let rules = parse_str(&dispatch_chain(5_000)).expect("the dump parses");
    let node = ["192.168.0.10/24".parse().expect("a net")];
    let pod = FlowSource::Ip("10.64.0.9".parse().expect("an address"));
    // The last service and the node port behind the last rule: a plain scan
    // evaluates 5,000 rules to reach either; the index a handful.
    let last = Packet::new(
        pod,
        "10.96.19.250:80".parse().expect("a socket"),
        Protocol::Tcp,
    );
    let node_port = Packet::new(
        pod,
        "192.168.0.10:30080".parse().expect("a socket"),
        Protocol::Tcp,
    );
    let budget = 20;
    let indexed = Tracer::new(&rules, &node).with_limits(100, budget);
    let plain = Tracer::new(&rules, &node)
        .with_scan(Scan::Plain)
        .with_limits(100, budget);
    for packet in [last, node_port] {
        let fast = indexed.trace(&packet).expect("within the budget");
        assert_eq!(fast.outcomes.len(), 1);
        assert!(fast.outcomes[0].dnated(), "{packet}: {fast}");
        assert!(
            plain.trace(&packet).is_err(),
            "{packet}: the plain scan fits the budget"
        );
        let full = Tracer::new(&rules, &node).with_scan(Scan::Plain);
        assert_eq!(facts(&Ok(fast)), facts(&full.trace(&packet)));
    }
    assert_eq!(
        indexed.trace(&last).expect("traced").outcomes[0].destination,
        "10.64.19.250:8080".parse().expect("a socket")
    );
}
