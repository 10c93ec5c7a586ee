//! Random rule sets built directly from the model, within what iptables
//! itself accepts (`-m tcp` needs `-p tcp`, jumps land on declared chains,
//! probabilities in 0..1), for the printer/parser round trip.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};
use kpconform_iptables::model::*;
use kpconform_iptables::Probability;
use proptest::prelude::*;
use proptest::sample::select;

const USER_CHAINS: [&str; 3] = ["KUBE-SERVICES", "KUBE-SVC-ABCDEFGHIJKLMNOP", "CUSTOM"];

fn neg<T: std::fmt::Debug + Clone>(
    value: impl Strategy<Value = T>,
) -> impl Strategy<Value = Neg<T>> {
    (any::<bool>(), value).prop_map(|(negated, value)| Neg { negated, value })
}

/// IPv4 only: a rule set holds one family, and these rule sets are IPv4.
fn net() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
        IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(a), len)
                .map(|n| n.trunc())
                .unwrap_or_default(),
        )
    })
}

fn ports() -> impl Strategy<Value = PortRange> {
    (any::<u16>(), 0u16..100).prop_map(|(first, span)| PortRange {
        first,
        last: first.saturating_add(span),
    })
}

fn text() -> impl Strategy<Value = String> {
    // Quotes and backslashes exercise the printer's escaping.
    "[a-zA-Z0-9 /:._\"\\\\-]{1,24}"
}

fn probability() -> impl Strategy<Value = Probability> {
    (0u64..=10_000_000_000).prop_map(|n| {
        let text = if n == 10_000_000_000 {
            "1.0000000000".to_string()
        } else {
            format!("0.{n:010}")
        };
        Probability::parse(&text).expect("a probability in 0..=1")
    })
}

fn addr_types() -> impl Strategy<Value = Vec<AddrType>> {
    proptest::collection::vec(
        select(vec![
            AddrType::Local,
            AddrType::Unicast,
            AddrType::Broadcast,
            AddrType::Multicast,
        ]),
        1..3,
    )
}

fn matches(protocol: Option<Neg<Protocol>>) -> impl Strategy<Value = Vec<Match>> {
    let l4 = protocol
        .filter(|p| !p.negated)
        .map(|p| p.value)
        .filter(|p| matches!(p, Protocol::Tcp | Protocol::Udp | Protocol::Sctp));
    let ports_match = match l4 {
        Some(protocol) => (
            proptest::option::of(neg(ports())),
            proptest::option::of(neg(ports())),
        )
            .prop_map(move |(sport, dport)| {
                vec![Match::Ports {
                    protocol,
                    sport,
                    dport,
                }]
            })
            .boxed(),
        None => Just(Vec::new()).boxed(),
    };
    let other = prop_oneof![
        text().prop_map(|t| Match::Comment(t.into())),
        neg(probability().prop_map(Statistic::Random)).prop_map(Match::Statistic),
        (1u32..10, 0u32..10)
            .prop_map(|(every, p)| Statistic::Nth {
                every,
                packet: p % every
            })
            .prop_map(|s| Match::Statistic(Neg::pos(s))),
        // iptables wants at least one of the two.
        (
            proptest::option::of(neg(addr_types())),
            neg(addr_types()),
            any::<bool>()
        )
            .prop_map(|(src_type, t, dst)| match (src_type, dst) {
                (Some(s), false) => Match::AddrType {
                    src_type: Some(Box::new(s)),
                    dst_type: None,
                    limit_iface: None
                },
                (s, _) => Match::AddrType {
                    src_type: s.map(Box::new),
                    dst_type: Some(Box::new(t)),
                    limit_iface: None
                },
            }),
        (
            select(vec![CtModule::Conntrack, CtModule::State]),
            neg(proptest::collection::vec(
                select(vec![
                    CtState::New,
                    CtState::Established,
                    CtState::Dnat,
                    CtState::Related
                ]),
                1..3
            ))
        )
            .prop_map(|(module, states)| Match::Conntrack { module, states }),
        neg(
            (any::<u32>(), any::<u32>()).prop_map(|(value, mask)| MarkMatch {
                value: value & mask,
                mask
            })
        )
        .prop_map(Match::Mark),
        (
            select(vec![
                RecentAction::Set,
                RecentAction::Rcheck,
                RecentAction::Update
            ]),
            proptest::option::of(1u32..100_000),
            any::<bool>(),
            "[A-Z][A-Z0-9-]{0,19}"
        )
            .prop_map(
                |(action, seconds, reap, name)| Match::Recent(Box::new(Recent {
                    negated: false,
                    action,
                    name,
                    seconds,
                    reap: reap && seconds.is_some() && action != RecentAction::Set,
                    hitcount: None,
                    rttl: false,
                    mask: None,
                    side: RecentSide::Source,
                }))
            ),
    ];
    (ports_match, proptest::collection::vec(other, 0..3)).prop_map(|(mut a, b)| {
        a.extend(b);
        a
    })
}

fn nat_range() -> impl Strategy<Value = NatRange> {
    (any::<u32>(), proptest::option::of(ports())).prop_map(|(a, ports)| NatRange {
        first: Ipv4Addr::from(a).into(),
        last: Ipv4Addr::from(a).into(),
        ports,
    })
}

fn target(table: TableName) -> impl Strategy<Value = Option<Target>> {
    let common = prop_oneof![
        Just(Target::Accept),
        Just(Target::Drop),
        Just(Target::Return),
        proptest::option::of(select(vec![
            "icmp-port-unreachable".to_string(),
            "tcp-reset".to_string()
        ]))
        .prop_map(|with| Target::Reject { with }),
        select(USER_CHAINS.to_vec()).prop_map(|c| Target::Jump(ChainName::new(c))),
        select(USER_CHAINS.to_vec()).prop_map(|c| Target::Goto(ChainName::new(c))),
        (any::<u32>(), any::<u32>()).prop_map(|(value, mask)| Target::Mark(MarkOp {
            value: value & mask,
            mask
        })),
        (
            proptest::option::of("[a-z:]{1,10}"),
            proptest::option::of(select(vec!["4".to_string(), "info".to_string()]))
        )
            .prop_map(|(prefix, level)| Target::Log {
                prefix: prefix.map(Into::into),
                level: level.map(Into::into)
            }),
    ];
    let nat = prop_oneof![
        nat_range().prop_map(Target::Dnat),
        (
            nat_range(),
            proptest::collection::vec(Just("random-fully".to_string()), 0..2)
        )
            .prop_map(|(to, flags)| Target::Snat {
                to: Box::new(to),
                flags
            }),
        (proptest::option::of(ports()), any::<bool>()).prop_map(|(to_ports, random_fully)| {
            Target::Masquerade {
                to_ports,
                random_fully,
                random: false,
            }
        }),
        proptest::option::of(ports()).prop_map(|to_ports| Target::Redirect { to_ports }),
    ];
    let any_target = if table == TableName::Nat {
        prop_oneof![3 => common, 2 => nat].boxed()
    } else {
        common.boxed()
    };
    proptest::option::weighted(0.9, any_target)
}

fn rule(table: TableName) -> impl Strategy<Value = Rule> {
    let basic = (
        proptest::option::of(neg(net())),
        proptest::option::of(neg(net())),
        proptest::option::of(neg(select(vec![
            Protocol::Tcp,
            Protocol::Udp,
            Protocol::Sctp,
            Protocol::Icmp,
        ]))),
        proptest::option::of(neg(select(
            ["eth0", "lo", "veth+"]
                .map(|name| Interface::new(name).expect("a valid interface name"))
                .to_vec(),
        ))),
    )
        .prop_map(|(source, destination, protocol, in_interface)| BasicMatch {
            source,
            destination,
            protocol,
            in_interface: in_interface.map(Box::new),
            ..BasicMatch::default()
        });
    basic.prop_flat_map(move |basic| {
        (matches(basic.protocol.clone()), target(table)).prop_map(move |(matches, target)| Rule {
            basic: basic.clone(),
            matches: matches.into(),
            target,
            counters: None,
            span: Default::default(),
        })
    })
}

fn table(name: TableName) -> impl Strategy<Value = Table> {
    let builtins: Vec<BuiltinChain> = name.builtin_chains().to_vec();
    let chain_count = builtins.len() + USER_CHAINS.len();
    (
        proptest::collection::vec(proptest::collection::vec(rule(name), 0..4), chain_count),
        proptest::collection::vec(any::<bool>(), builtins.len()),
    )
        .prop_map(move |(rules, drop)| {
            let names = builtins
                .iter()
                .map(|b| ChainName::Builtin(*b))
                .chain(USER_CHAINS.iter().map(|c| ChainName::new(c)));
            let chains = names
                .zip(rules)
                .enumerate()
                .map(|(i, (name, rules))| Chain {
                    policy: name.is_builtin().then(|| {
                        if drop[i] {
                            Policy::Drop
                        } else {
                            Policy::Accept
                        }
                    }),
                    name,
                    counters: None,
                    rules,
                    span: Default::default(),
                })
                .collect();
            Table {
                name,
                chains,
                span: Default::default(),
                committed: true,
            }
        })
}

/// A filter and/or a nat table with built-in and user chains.
pub(crate) fn rule_set() -> impl Strategy<Value = RuleSet> {
    prop_oneof![
        table(TableName::Filter).prop_map(|t| vec![t]),
        table(TableName::Nat).prop_map(|t| vec![t]),
        (table(TableName::Filter), table(TableName::Nat)).prop_map(|(f, n)| vec![f, n]),
    ]
    .prop_map(|tables| RuleSet { tables })
}
