//! Whether a rule matches the packet: the basic matches, then the extension
//! matches in the order written (as the kernel evaluates them, so `-m recent
//! --set` only runs when every match before it passed).

use crate::model::{
    AddrType, BasicMatch, CtModule, CtState, Match, Neg, PortRange, Protocol, Rule, Statistic,
};

use super::packet::{protocol_number, NodeAddrs, PacketState};
use super::recent::RecentState;

/// The result of evaluating a rule's matches from some position on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eval<'r> {
    /// Some match failed.
    NoMatch,
    /// Every match passed.
    Match,
    /// The match at `index` is `-m statistic --mode random`: the caller
    /// follows both branches and resumes after `index` on the matching one.
    Fork {
        /// Position in `rule.matches`.
        index: usize,
        /// The statistic match (with its negation).
        statistic: &'r Neg<Statistic>,
    },
}

/// Evaluates `rule` from extension match `from` on (`from == 0` also
/// evaluates the basic matches). `-m recent` side effects go to `recent`.
pub(crate) fn eval_rule<'r>(
    rule: &'r Rule,
    from: usize,
    pkt: &PacketState,
    node: &NodeAddrs,
    recent: &mut RecentState,
) -> Eval<'r> {
    if from == 0 && !basic_matches(&rule.basic, pkt) {
        return Eval::NoMatch;
    }
    for (index, m) in rule.matches.iter().enumerate().skip(from) {
        let matched = match m {
            Match::Statistic(
                statistic @ Neg {
                    value: Statistic::Random(_),
                    ..
                },
            ) => return Eval::Fork { index, statistic },
            other => match_one(other, pkt, node, recent),
        };
        if !matched {
            return Eval::NoMatch;
        }
    }
    Eval::Match
}

fn basic_matches(b: &BasicMatch, pkt: &PacketState) -> bool {
    b.source.as_ref().is_none_or(|n| n.eval(n.value.contains(&pkt.src)))
        && b.destination.as_ref().is_none_or(|n| n.eval(n.value.contains(&pkt.dst)))
        && b.protocol.as_ref().is_none_or(|n| n.eval(protocol_matches(n.value, pkt.protocol)))
        && b.in_interface.as_ref().is_none_or(|n| n.eval(iface_matches(&n.value, pkt.in_iface)))
        && b.out_interface.as_ref().is_none_or(|n| n.eval(iface_matches(&n.value, pkt.out_iface)))
        // The first packet of a connection is never a non-first fragment.
        && b.fragment.as_ref().is_none_or(|n| n.eval(false))
}

/// `-p X` against the packet's protocol; `all` (0) matches everything.
pub(crate) fn protocol_matches(rule: Protocol, packet: Protocol) -> bool {
    match protocol_number(rule) {
        None => true,
        Some(n) => protocol_number(packet) == Some(n),
    }
}

/// `-i`/`-o`: exact, or a prefix when the name ends in `+` (`+` alone
/// matches any interface, and also none). A hook without that interface
/// compares against the empty name, as the kernel does.
pub(crate) fn iface_matches(pattern: &str, actual: &str) -> bool {
    match pattern.strip_suffix('+') {
        Some(prefix) => actual.starts_with(prefix),
        None => pattern == actual,
    }
}

fn match_one(m: &Match, pkt: &PacketState, node: &NodeAddrs, recent: &mut RecentState) -> bool {
    match m {
        Match::Ports {
            protocol,
            sport,
            dport,
        } => {
            protocol_number(*protocol).is_some()
                && protocol_matches(*protocol, pkt.protocol)
                && range_matches(sport.as_ref(), pkt.sport)
                && range_matches(dport.as_ref(), pkt.dport)
        }
        Match::Multiport {
            sports,
            dports,
            ports,
        } => {
            has_ports(pkt.protocol)
                && list_matches(sports.as_deref(), |r| r.contains(pkt.sport))
                && list_matches(dports.as_deref(), |r| r.contains(pkt.dport))
                && list_matches(ports.as_deref(), |r| {
                    r.contains(pkt.sport) || r.contains(pkt.dport)
                })
        }
        Match::Comment(_) | Match::Limit { .. } => true,
        Match::Statistic(n) => match n.value {
            // xt_statistic starts the counter at every-1-packet and matches
            // when incrementing wraps it to 0: the first packet to reach the
            // rule matches exactly when --packet is 0. Every trace is taken to
            // be that first packet.
            Statistic::Nth { packet, .. } => n.eval(packet == 0),
            // Forks are handled by the caller; reaching here means a logic
            // error upstream, and not matching is the safe reading.
            Statistic::Random(_) => false,
        },
        Match::AddrType {
            src_type,
            dst_type,
            limit_iface: _,
        } => {
            type_matches(src_type.as_deref(), node.addr_type(pkt.src))
                && type_matches(dst_type.as_deref(), node.addr_type(pkt.dst))
        }
        Match::Conntrack { module, states } => states.eval(
            states
                .value
                .iter()
                .any(|s| ct_state_holds(*s, *module, pkt)),
        ),
        Match::Mark(n) => n.eval(n.value.matches(pkt.mark)),
        Match::Recent(r) => recent.apply(r, pkt.src, pkt.dst),
        // `-m nfacct` only counts the packet.
        Match::Nfacct { .. } => true,
        // An unknown module (lax mode) never matches.
        Match::Unknown { .. } => false,
    }
}

fn has_ports(p: Protocol) -> bool {
    matches!(p, Protocol::Tcp | Protocol::Udp | Protocol::Sctp)
}

fn range_matches(r: Option<&Neg<PortRange>>, port: u16) -> bool {
    r.is_none_or(|n| n.eval(n.value.contains(port)))
}

fn list_matches(l: Option<&Neg<Vec<PortRange>>>, hit: impl Fn(&PortRange) -> bool) -> bool {
    l.is_none_or(|n| n.eval(n.value.iter().any(hit)))
}

fn type_matches(t: Option<&Neg<Vec<AddrType>>>, actual: AddrType) -> bool {
    t.is_none_or(|n| n.eval(n.value.contains(&actual)))
}

/// Whether the connection is in `state`. Conntrack adds the SNAT/DNAT
/// status bits to the state bit; `-m state` only knows the plain states.
fn ct_state_holds(state: CtState, module: CtModule, pkt: &PacketState) -> bool {
    if !pkt.tracked {
        return state == CtState::Invalid;
    }
    match state {
        CtState::New => true,
        CtState::Dnat => module == CtModule::Conntrack && pkt.dnat,
        CtState::Snat => module == CtModule::Conntrack && pkt.snat,
        CtState::Established | CtState::Related | CtState::Invalid | CtState::Untracked => false,
    }
}
